//! The terminal: whether we may prompt, messages for people on stderr, and the spinner shown
//! during long waits.

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

/// Whether long waits get a spinner: stderr is a terminal, the result is for people (`pretty`,
/// not a machine format), and neither `NO_COLOR` (any non-empty value, no-color.org) nor
/// `TERM=dumb` asks for plain output. Otherwise progress is plain lines, as in a log.
pub fn wants_spinner(pretty: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    pretty && !no_color && !dumb && std::io::stderr().is_terminal()
}

/// A long wait on a terminal: a spinner with the elapsed time and what is being waited for,
/// on stderr, cleared when dropped. Off a terminal it shows nothing of its own: the progress
/// lines ([`Spinner::say`]) are then plain lines, exactly as without it.
pub struct Spinner {
    bar: Option<indicatif::ProgressBar>,
}

impl Spinner {
    /// `enabled`: [`wants_spinner`]. `msg`: what is being waited for.
    pub fn start(enabled: bool, msg: &str) -> Spinner {
        let bar = enabled.then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} ({secs})")
                    .expect("a valid template")
                    .with_key(
                        "secs",
                        |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.1}s", s.elapsed().as_secs_f64());
                        },
                    )
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
            );
            bar.set_message(msg.to_owned());
            bar.enable_steady_tick(std::time::Duration::from_millis(100));
            bar
        });
        Spinner { bar }
    }

    /// A progress line: printed above the spinner, or as a plain line ([`say`]).
    pub fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => say(line),
        }
    }

    /// What is being waited for now (shown only by the spinner).
    pub fn set_message(&self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg.to_owned());
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
