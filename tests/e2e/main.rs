//! End-to-end tests of the `docent` binary over the fixtures, each in its own data directory.

mod ask;
mod completions;
mod daemon;
mod index;
mod inspect;
mod models;
mod privacy;
mod search;
mod tui;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// A throw-away data directory and the commands run against it.
pub struct Env {
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Self {
        Env {
            home: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("docent").unwrap();
        c.env("DOCENT_HOME", self.home.path())
            .env_remove("DOCENT_CONFIG")
            // OCR is off unless a test turns it on: outcomes must not depend on whether
            // Tesseract is installed.
            .env("DOCENT_OCR_ENABLED", "false")
            .env("NO_COLOR", "1")
            .current_dir(self.work.path());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// A copy of `fixtures/` in the work directory (tests change it freely).
    pub fn copy_fixtures(&self) -> PathBuf {
        let dst = self.work.path().join("fixtures");
        copy_dir(&docent_test_support::fixture(""), &dst);
        dst
    }
}

pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

pub fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
