//! Privacy at the edges of the binary: what docent writes is for its owner alone whatever the
//! umask it was started with, and names chosen by whoever wrote a file never reach the terminal
//! as control sequences.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::{Env, stderr, stdout, stdout_json};

/// `docent args…` started under umask 022, the usual default that makes new files readable by
/// every user of the machine.
fn under_umask_022(env: &Env, args: &[&str]) -> Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_docent"))
        .args(args)
        .env("DOCENT_HOME", env.home.path())
        .env_remove("DOCENT_CONFIG")
        .env("NO_COLOR", "1")
        .current_dir(env.work.path())
        .output()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every folder and file below `dir` (itself included) that its group or others can use.
fn open_to_others(dir: &Path) -> Vec<String> {
    let mut open = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        if mode(&p) & 0o077 != 0 {
            open.push(format!("{:o} {}", mode(&p), p.display()));
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    open
}

#[test]
fn the_data_directory_is_private_under_umask_022() {
    let env = Env::new();
    let root = env.copy_fixtures();
    // A data directory that others can read is tightened, with a warning.
    std::fs::set_permissions(env.home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = under_umask_022(&env, &["index", root.to_str().unwrap()]);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
    assert!(stderr(&out).contains("private now"), "{}", stderr(&out));
    let out = under_umask_022(&env, &["folders", "add", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // An answer exported, and the conversation kept for --continue (no model needed: refused).
    let out = under_umask_022(
        &env,
        &[
            "ask",
            "--export",
            "answer.md",
            "How do I bake sourdough bread?",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    assert_eq!(mode(env.home.path()), 0o700);
    let home = env.home.path();
    for name in ["manifest.sqlite3", "write.lock", "index"] {
        assert!(home.join(name).exists(), "{name} missing");
    }
    let open = open_to_others(home);
    assert!(open.is_empty(), "open to others:\n{}", open.join("\n"));
    assert_eq!(mode(&env.work.path().join("answer.md")), 0o600);

    // Once private, no more warnings.
    let out = under_umask_022(&env, &["status"]);
    assert!(!stderr(&out).contains("private now"), "{}", stderr(&out));
}

/// A name that would turn the terminal red, and one that would set its title.
const RED: &str = "evil\x1b[31mred.md";
const TITLE: &str = "bad\x1b]0;pwned\x07.pdf";

fn no_escapes(what: &str, out: &Output) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !bytes.contains(&0x1b) && !bytes.contains(&0x07),
            "{what} sent a control character to {stream}: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn file_names_with_escape_sequences_never_reach_the_terminal() {
    let env = Env::new();
    let root: PathBuf = env.work.path().join("docs\x1b[7m");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join(RED),
        "# Kettles\n\nThe copper kettle whistles loudly when the water boils.\n",
    )
    .unwrap();
    // A PDF cut short: it fails, and its name is shown with the reason.
    let pdf = std::fs::read(docent_test_support::fixture("pdf/linden-contract.pdf")).unwrap();
    std::fs::write(root.join(TITLE), &pdf[..pdf.len() / 3]).unwrap();
    let root_arg = root.to_str().unwrap();

    let out = env.run(&["index", root_arg]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    no_escapes("index", &out);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("bad\\u{1b}]0;pwned\\u{7}.pdf"), "{said}");

    let out = env.run(&["search", "--mode", "bm25", "copper kettle whistles"]);
    assert!(out.status.success(), "{}", stderr(&out));
    no_escapes("search", &out);
    assert!(
        stdout(&out).contains("evil\\u{1b}[31mred.md"),
        "{}",
        stdout(&out)
    );

    let out = env.run(&["files"]);
    assert!(out.status.success(), "{}", stderr(&out));
    no_escapes("files", &out);
    // JSON stays exact: the real name, escaped by JSON itself.
    let v = stdout_json(&env.run(&["files", "--json"]));
    let paths: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(paths.iter().any(|p| p.ends_with(RED)), "{paths:?}");

    let out = env.run(&["folders", "add", root_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.run(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    no_escapes("status", &out);
    assert!(stdout(&out).contains("docs\\u{1b}[7m"), "{}", stdout(&out));

    // The daemon's log, as `daemon logs` shows it, whatever was written into it.
    let log_dir = env.home.path().join("daemon");
    std::fs::create_dir_all(&log_dir).unwrap();
    std::fs::write(
        log_dir.join("daemon.log"),
        format!(
            "2026-01-01T00:00:00Z indexed {}\n",
            root.join(RED).display()
        ),
    )
    .unwrap();
    let out = env.run(&["daemon", "logs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    no_escapes("daemon logs", &out);
    assert!(stdout(&out).contains("red.md"), "{}", stdout(&out));

    // An error naming such a file is escaped too.
    let out = env.run(&["index", root.join("missing\x1b[2J").to_str().unwrap()]);
    no_escapes("an error", &out);
}
