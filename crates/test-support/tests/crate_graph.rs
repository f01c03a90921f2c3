//! The shape of the workspace, as `crates/README.md` draws it, checked against `cargo metadata`:
//! stage crates meet only through `docent-core`; heavy dependencies stay in the one crate that
//! needs them; `unsafe` is denied everywhere but a crate named `kernels`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Stage crates: each depends on no other docent crate but `docent-core`.
const STAGES: &[&str] = &[
    "parse", "chunk", "embed", "store", "retrieve", "llm", "remote", "export",
];

/// Heavy dependencies (a name, or a prefix ending in `*`) and the crates allowed to declare them.
const HEAVY: &[(&str, &[&str])] = &[
    ("candle*", &["embed", "llm"]),
    ("lancedb", &["store"]),
    ("arrow*", &["store"]),
    ("tantivy", &["store"]),
    ("rusqlite", &["store"]),
    ("ratatui", &["tui"]),
    ("crossterm", &["tui"]),
];

/// The one crate that may use `unsafe`.
const UNSAFE_CRATE: &str = "kernels";

struct Member {
    /// `core` for `docent-core`; `docent` for the binary.
    short: String,
    manifest: PathBuf,
    /// Normal (not dev, not build) dependencies: package names.
    deps: Vec<String>,
}

fn members() -> Vec<Member> {
    let root = docent_test_support::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let mut members: Vec<Member> = packages
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default();
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str().map(str::to_string))
                .collect();
            Member {
                short: name.strip_prefix("docent-").unwrap_or(name).to_string(),
                manifest: PathBuf::from(p["manifest_path"].as_str().unwrap_or_default()),
                deps,
            }
        })
        .collect();
    members.sort_by(|a, b| a.short.cmp(&b.short));
    assert!(
        members.iter().any(|m| m.short == "core") && members.len() > STAGES.len(),
        "cargo metadata listed too few members"
    );
    members
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

#[test]
fn stage_crates_depend_on_no_docent_crate_but_core_and_kernels() {
    let mut wrong = Vec::new();
    for m in members()
        .iter()
        .filter(|m| STAGES.contains(&m.short.as_str()))
    {
        for d in &m.deps {
            // The compute core is a foundation like `core`: it knows no model and no stage.
            if d.starts_with("docent-") && d != "docent-core" && d != "docent-kernels" {
                wrong.push(format!("docent-{} depends on {d}", m.short));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "stage crates meet only through docent-core (and use docent-kernels):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn heavy_dependencies_stay_in_their_crates() {
    let mut wrong = Vec::new();
    for m in members() {
        for d in &m.deps {
            for (pattern, allowed) in HEAVY {
                if matches(pattern, d) && !allowed.contains(&m.short.as_str()) {
                    wrong.push(format!(
                        "{} depends on {d}, which belongs to {}",
                        m.short,
                        allowed.join(" and ")
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn unsafe_code_is_denied_everywhere_but_the_kernels_crate() {
    let mut wrong = Vec::new();
    for m in members().iter().filter(|m| m.short != UNSAFE_CRATE) {
        let text = std::fs::read_to_string(&m.manifest).expect("read a manifest");
        let manifest: toml::Table = toml::from_str(&text).expect("parse a manifest");
        let inherits = manifest
            .get("lints")
            .and_then(|l| l.get("workspace"))
            .and_then(toml::Value::as_bool)
            == Some(true);
        if !inherits {
            wrong.push(format!(
                "{}: `[lints] workspace = true` is missing",
                m.manifest.display()
            ));
        }
        let dir = m.manifest.parent().expect("manifest folder");
        for sub in ["src", "tests", "benches", "examples"] {
            for file in rust_files(&dir.join(sub)) {
                let src = std::fs::read_to_string(&file).unwrap_or_default();
                // Spelt in two parts so that this file does not match itself.
                if src.contains(&["allow(", "unsafe_code)"].concat()) {
                    wrong.push(format!("{}: allows unsafe code", file.display()));
                }
            }
        }
    }
    // The workspace itself denies it.
    let root = docent_test_support::repo_root().join("Cargo.toml");
    let ws: toml::Table = toml::from_str(&std::fs::read_to_string(&root).expect("root manifest"))
        .expect("parse the root manifest");
    let level = ws
        .get("workspace")
        .and_then(|w| w.get("lints"))
        .and_then(|l| l.get("rust"))
        .and_then(|r| r.get("unsafe_code"))
        .and_then(toml::Value::as_str);
    assert!(
        matches!(level, Some("deny" | "forbid")),
        "the workspace must deny unsafe_code, found {level:?}"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `.rs` files under `dir` (none when it does not exist); skips nested crates' `target`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                out.extend(rust_files(&p));
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_checks_catch_what_they_are_for() {
    assert!(matches("candle*", "candle-core"));
    assert!(matches("arrow*", "arrow-array"));
    assert!(!matches("tantivy", "tantivy-fst"));
    let members = members();
    // The checks look at real declarations: the crates that own heavy dependencies have them.
    let has = |short: &str, dep: &str| {
        members
            .iter()
            .any(|m| m.short == short && m.deps.iter().any(|d| matches(dep, d)))
    };
    assert!(has("embed", "candle*"));
    assert!(has("store", "lancedb"));
    assert!(has("tui", "ratatui"));
    assert!(has("engine", "docent-embed"));
}
