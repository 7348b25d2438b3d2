//! The terminal: whether we may prompt, and messages for people on stderr.

use std::io::IsTerminal;

/// Prompts only when both stdin and stderr are terminals (jj's `Ui::can_prompt`).
pub fn can_prompt() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// A line for people: stderr, never mixed into the result on stdout.
#[allow(clippy::print_stderr)]
pub fn say(msg: &str) {
    eprintln!("{msg}");
}
