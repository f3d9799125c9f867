//! Progress bars for long work (imports, index builds). Hidden when stderr is not a terminal
//! or when the caller asks for quiet, so logs and tests stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `len` items, or a spinner counting items when `len` is 0.
pub fn bar(len: u64, message: impl Into<std::borrow::Cow<'static, str>>, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let (bar, template) = if len == 0 {
        (ProgressBar::new_spinner(), "{spinner} {msg}: {human_pos} [{elapsed}] {per_sec}")
    } else {
        (ProgressBar::new(len), "{msg:>10} [{bar:40}] {human_pos}/{human_len} [{elapsed}<{eta}] {per_sec}")
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}
