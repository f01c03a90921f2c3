//! # docent-test-support
//!
//! Helpers shared by docent's tests: where the fixtures and the models are, insta settings that
//! filter machine-specific paths out of snapshots, and fakes for the seams (re-exported
//! [`WhitespaceCounter`], a [`ScriptedGenerator`] for the generation seam, a [`HashEmbedder`]
//! for the embedding seam). Never a dependency of non-test code.

mod fakes;

use std::path::{Path, PathBuf};

pub use fakes::{FakeModels, GeneratorLog, HashEmbedder, ScriptedGenerator};

pub use docent_core::WhitespaceCounter;

/// The repository root (the workspace that holds `fixtures/`).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|p| p.join("fixtures").is_dir() && p.join("crates").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}

/// `fixtures/<rel>` in the repository.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// The models directory tests use: `DOCENT_MODELS`, else the per-user default that
/// `scripts/fetch-models.sh` installs into.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCENT_MODELS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    if cfg!(target_os = "macos")
        && let Some(h) = std::env::var_os("HOME")
    {
        return PathBuf::from(h).join("Library/Application Support/docent/models");
    }
    home.join("docent/models")
}

/// The directory of an installed model, or a panic that says how to install it: tests that need
/// weights fail loudly when they are absent.
pub fn require_model(name: &str) -> PathBuf {
    let dir = models_dir().join(name);
    assert!(
        dir.exists(),
        "model `{name}` is not installed in {}: run `scripts/fetch-models.sh` first",
        dir.display()
    );
    dir
}

/// insta settings for snapshots that mention fixture paths: the repository root becomes
/// `[REPO]`, temporary directories `[TMP]`.
pub fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    let root = repo_root().display().to_string();
    s.add_filter(&regex_escape(&root), "[REPO]");
    let tmp = std::env::temp_dir().display().to_string();
    s.add_filter(&format!(r"{}/[^/\s]+", regex_escape(&tmp)), "[TMP]");
    s.set_prepend_module_to_snapshot(false);
    // serde_json's map order depends on whether some crate in the build enables its
    // `preserve_order` feature; snapshots must not.
    s.set_sort_maps(true);
    s
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A temporary directory that is removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create temp dir")
}
