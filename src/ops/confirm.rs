//! The one prompt before a change: only on a terminal (stdin and stderr); without one the
//! command needs `--yes`, and says so with the caller's hint (a usage error, exit 2).

use anyhow::bail;

/// Ask `question`; `no_terminal` is the usage error when there is no terminal to ask on.
pub async fn ask(question: &str, no_terminal: &str) -> anyhow::Result<bool> {
    if !crate::ui::can_prompt() {
        bail!(crate::UsageError(no_terminal.to_owned()));
    }
    let q = question.to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        dialoguer::Confirm::new()
            .with_prompt(q)
            .default(false)
            .interact_opt()
    })
    .await??;
    Ok(answer == Some(true))
}
