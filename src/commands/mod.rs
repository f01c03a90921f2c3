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

/// A path shown relative to the current directory when it lies below it.
pub fn display_path(p: &str) -> String {
    if let Ok(cwd) = std::env::current_dir()
        && let Ok(rel) = std::path::Path::new(p).strip_prefix(&cwd)
    {
        return rel.display().to_string();
    }
    p.to_string()
}
