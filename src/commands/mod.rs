//! One module per subcommand.

pub mod ask;
pub mod completions;
pub mod config;
pub mod daemon;
pub mod eval;
pub mod files;
pub mod folders;
pub mod index;
pub mod inspect;
pub mod man;
pub mod models;
pub mod reindex;
pub mod search;
pub mod status;
pub mod tui;

/// A path shown relative to the current directory when it lies below it, with control
/// characters escaped ([`shown`]): file names come from anyone who could write a file.
pub fn display_path(p: &str) -> String {
    if let Ok(cwd) = std::env::current_dir()
        && let Ok(rel) = std::path::Path::new(p).strip_prefix(&cwd)
    {
        return shown(&rel.display().to_string());
    }
    shown(p)
}

/// Text that came from outside docent (a file or folder name, a reason naming one, a line of
/// the daemon's log) made safe for one line of human-readable output: control characters and
/// escape sequences are shown as escapes, never sent to the terminal. JSON output does not need
/// this (JSON escapes control characters itself) and stays exact.
pub fn shown(s: &str) -> String {
    docent_core::text::escape_controls(s).into_owned()
}
