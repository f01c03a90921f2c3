//! The watcher daemon, as a real background process over real files: every kind of change
//! reaches search; kill -9 loses nothing; bursts coalesce; bad input is reported while the
//! daemon keeps running.
//!
//! Waits below are liveness bounds (a hung daemon fails the test instead of hanging CI), not
//! speed limits: they are minutes long, and freshness is measured in `benches/daemon.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Env, stderr, stdout_json};

const PATIENCE: Duration = Duration::from_secs(240);

/// Polls `check` until it holds; panics with `what` and the daemon's log if it never does.
fn wait_for(env: &Env, what: &str, mut check: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < PATIENCE {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = env.run(&["daemon", "logs", "-n", "60"]);
    panic!(
        "timed out waiting for: {what}\ndaemon log:\n{}",
        String::from_utf8_lossy(&log.stdout)
    );
}

/// Paths (relative to `root`) of keyword hits for `query`.
fn hits(env: &Env, root: &Path, query: &str) -> BTreeSet<String> {
    let out = env.run(&["search", "--json", "--mode", "bm25", "-k", "50", query]);
    if !out.status.success() {
        return BTreeSet::new(); // no index yet
    }
    let v = stdout_json(&out);
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let p = h["path"].as_str().unwrap();
            Path::new(p)
                .strip_prefix(root)
                .map(|r| r.display().to_string())
                .unwrap_or_else(|_| p.to_string())
        })
        .collect()
}

fn status(env: &Env) -> serde_json::Value {
    let out = env.run(&["status", "--json"]);
    assert!(out.status.success(), "status failed: {}", stderr(&out));
    stdout_json(&out)
}

/// A daemon started for the test and stopped (or killed) when the test ends.
struct Daemon<'a> {
    env: &'a Env,
}

impl<'a> Daemon<'a> {
    fn start(env: &'a Env) -> Self {
        let out = env.run(&["daemon", "start"]);
        assert!(
            out.status.success(),
            "daemon start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        Daemon { env }
    }

    fn pid(&self) -> i32 {
        status(self.env)["pid"].as_i64().expect("daemon pid") as i32
    }

    fn idle(&self) -> bool {
        let s = status(self.env);
        s["phase"] == "idle" && s["queue"] == 0
    }
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        let _ = self.env.run(&["daemon", "stop"]);
    }
}

fn folder(env: &Env, name: &str) -> PathBuf {
    let dir = env.work.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::canonicalize(dir).unwrap()
}

#[test]
fn every_kind_of_change_reaches_search() {
    let env = Env::new();
    let root = folder(&env, "docs");
    std::fs::write(
        root.join("a.md"),
        "# Garden\n\nThe quokka eats marmalade at dawn.\n",
    )
    .unwrap();
    let out = env.run(&["folders", "add", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = env.run(&["status", "--json"]);
    assert_eq!(stdout_json(&out)["daemon"], "stopped");
    let daemon = Daemon::start(&env);
    wait_for(&env, "a.md indexed by the first walk", || {
        hits(&env, &root, "quokka marmalade").contains("a.md")
    });
    let s = status(&env);
    assert_eq!(s["daemon"], "running");
    assert_eq!(s["folders"][0], root.display().to_string());
    assert_eq!(s["embedder"], "all-MiniLM-L6-v2");

    // Created.
    std::fs::write(
        root.join("b.md"),
        "Notes about the zeppelin hangar lease.\n",
    )
    .unwrap();
    wait_for(&env, "new b.md", || {
        hits(&env, &root, "zeppelin hangar").contains("b.md")
    });

    // Modified.
    std::fs::write(
        root.join("a.md"),
        "# Garden\n\nThe pangolin sleeps in the shed.\n",
    )
    .unwrap();
    wait_for(&env, "edited a.md", || {
        hits(&env, &root, "pangolin shed").contains("a.md")
            && hits(&env, &root, "quokka marmalade").is_empty()
    });

    // Moved: re-pointed, not re-embedded.
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::rename(root.join("a.md"), root.join("sub/c.md")).unwrap();
    wait_for(&env, "a.md moved to sub/c.md", || {
        let h = hits(&env, &root, "pangolin shed");
        h.contains("sub/c.md") && !h.contains("a.md")
    });

    // A PDF and an email dropped in.
    std::fs::copy(
        docent_test_support::fixture("pdf/linden-contract.pdf"),
        root.join("contract.pdf"),
    )
    .unwrap();
    std::fs::copy(
        docent_test_support::fixture("mail/hvac-delay.eml"),
        root.join("hvac.eml"),
    )
    .unwrap();
    wait_for(&env, "PDF and email indexed", || {
        hits(&env, &root, "liquidated damages").contains("contract.pdf")
            && !hits(&env, &root, "hvac kind:email").is_empty()
    });

    // Deleted file, then a deleted folder.
    std::fs::remove_file(root.join("b.md")).unwrap();
    wait_for(&env, "deleted b.md gone", || {
        hits(&env, &root, "zeppelin hangar").is_empty()
    });
    std::fs::remove_dir_all(root.join("sub")).unwrap();
    wait_for(&env, "deleted folder gone", || {
        hits(&env, &root, "pangolin shed").is_empty()
    });

    // `docent index` goes through the daemon, which holds the write lock.
    let other = folder(&env, "other");
    std::fs::write(other.join("x.txt"), "The walrus invoice is overdue.\n").unwrap();
    let out = env.run(&["index", "--json", other.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("daemon"), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["files_indexed"], 1);
    assert!(hits(&env, &other, "walrus invoice").contains("x.txt"));

    let log =
        String::from_utf8_lossy(&env.run(&["daemon", "logs", "-n", "200"]).stdout).into_owned();
    assert!(log.contains("moved "), "{log}");
    let pid = daemon.pid();
    drop(daemon);
    assert!(!docent_daemon::alive(pid), "daemon {pid} still running");
    assert_eq!(status(&env)["daemon"], "stopped");
}

#[test]
fn kill_9_mid_ingest_loses_nothing() {
    let env = Env::new();
    let root = folder(&env, "many");
    for i in 0..300 {
        std::fs::write(
            root.join(format!("n{i:03}.md")),
            format!(
                "# Note {i}\n\nEntry {i} concerns item-{i} and the ledger of week {}.\n",
                i % 52
            ),
        )
        .unwrap();
    }
    env.run(&["folders", "add", root.to_str().unwrap()]);
    let daemon = Daemon::start(&env);
    let pid = daemon.pid();
    wait_for(&env, "some files indexed", || {
        status(&env)["files"].as_u64().unwrap_or(0) > 0
    });
    let done = status(&env)["files"].as_u64().unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_for(&env, "killed daemon gone", || !docent_daemon::alive(pid));
    std::mem::forget(daemon);
    assert!(
        done < 300,
        "the kill came too late to test anything ({done} done)"
    );

    // Restart: the walk finds what is not done; nothing done is redone.
    let daemon = Daemon::start(&env);
    wait_for(&env, "all 300 files indexed after restart", || {
        status(&env)["files"] == 300 && daemon.idle()
    });
    drop(daemon);

    let clean = Env::new();
    let out = clean.run(&["index", "-q", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (a, a_keyword) = chunk_ids(env.home.path());
    let (b, b_keyword) = chunk_ids(clean.home.path());
    assert_eq!(a.len(), b.len(), "chunk counts differ");
    assert_eq!(a, b, "chunk ids differ from a clean index");
    let unique: BTreeSet<&String> = a.iter().map(|(id, _)| id).collect();
    assert_eq!(unique.len(), a.len(), "duplicate chunks");
    assert_eq!(a_keyword, a.len() as u64, "keyword index out of step");
    assert_eq!(b_keyword, b.len() as u64);
}

/// Every (chunk id, path) in the index of a data directory, and the keyword index's count.
fn chunk_ids(data_dir: &Path) -> (Vec<(String, String)>, u64) {
    use docent_store::{Index, OpenMode};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let identity = Index::stored_identity(data_dir).unwrap().unwrap();
        let index = Index::open(data_dir, &identity, OpenMode::ReadOnly)
            .await
            .unwrap();
        let mut out: Vec<(String, String)> = index
            .scan(0, 1_000_000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id.to_string(), r.path))
            .collect();
        out.sort();
        (out, index.keyword_count())
    })
}

#[test]
fn a_burst_of_writes_is_one_or_a_few_updates() {
    let env = Env::new();
    let root = folder(&env, "burst");
    std::fs::write(root.join("seed.md"), "Seed note about the orchard.\n").unwrap();
    env.run(&["folders", "add", root.to_str().unwrap()]);
    let daemon = Daemon::start(&env);
    wait_for(&env, "first walk done", || {
        hits(&env, &root, "orchard").contains("seed.md") && daemon.idle()
    });
    let before = status(&env)["updates"].as_u64().unwrap();
    let f = root.join("draft.md");
    for i in 0..300 {
        std::fs::write(&f, format!("Draft version {i} of the heron survey.\n")).unwrap();
    }
    wait_for(&env, "final version of draft.md", || {
        hits(&env, &root, "heron survey").contains("draft.md") && daemon.idle()
    });
    let updates = status(&env)["updates"].as_u64().unwrap() - before;
    assert!(
        (1..=10).contains(&updates),
        "300 writes caused {updates} index updates"
    );
    let v = stdout_json(&env.run(&["search", "--json", "--mode", "bm25", "heron survey"]));
    assert!(
        v["hits"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("version 299"),
        "{v:#}"
    );
}

#[test]
fn bad_input_while_watching_is_reported_and_the_daemon_keeps_running() {
    let env = Env::new();
    let root = folder(&env, "bad");
    std::fs::write(root.join("ok.md"), "A fine note about lanterns.\n").unwrap();
    env.run(&["folders", "add", root.to_str().unwrap()]);
    let daemon = Daemon::start(&env);
    wait_for(&env, "first walk", || {
        hits(&env, &root, "lanterns").contains("ok.md")
    });

    // A corrupt PDF.
    std::fs::copy(
        docent_test_support::fixture("invalid/truncated.pdf"),
        root.join("broken.pdf"),
    )
    .unwrap();
    wait_for(&env, "corrupt PDF reported", || {
        status(&env)["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"].as_str().unwrap().ends_with("broken.pdf"))
    });

    // A file made unreadable (root reads everything, so only check when it matters).
    let secret = root.join("secret.md");
    std::fs::write(&secret, "Private note about the cellar.\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let unreadable = std::fs::read(&secret).is_err();

    // A folder deleted while being indexed.
    let doomed = root.join("doomed");
    std::fs::create_dir_all(&doomed).unwrap();
    for i in 0..40 {
        std::fs::write(
            doomed.join(format!("d{i}.md")),
            format!("Doomed note {i} about kestrels.\n"),
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(400));
    std::fs::remove_dir_all(&doomed).unwrap();

    std::fs::write(
        root.join("after.md"),
        "Written after the trouble: osprey.\n",
    )
    .unwrap();
    wait_for(&env, "a later note still indexed", || {
        hits(&env, &root, "osprey").contains("after.md") && daemon.idle()
    });
    assert!(
        hits(&env, &root, "kestrels").is_empty(),
        "deleted folder left chunks"
    );
    if unreadable {
        let s = status(&env);
        assert!(
            s["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["path"].as_str().unwrap().ends_with("secret.md")),
            "{s:#}"
        );
    }
    assert_eq!(status(&env)["daemon"], "running");
}

#[test]
fn a_file_that_kills_the_indexer_is_quarantined() {
    let env = Env::new();
    let root = folder(&env, "poison");
    std::fs::write(root.join("fine.md"), "An ordinary note about teapots.\n").unwrap();
    std::fs::write(root.join("poison.md"), "This note crashes the parser.\n").unwrap();
    // Each run dies on poison.md, as a parser crash would; the third start sets it aside.
    for _ in 0..3 {
        let out = env
            .cmd()
            .env("DOCENT_FAULT_ABORT_ON", "poison.md")
            .env("DOCENT_INGEST_THREADS", "1")
            .args(["index", "-q", root.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
    }
    let out = env
        .cmd()
        .env("DOCENT_FAULT_ABORT_ON", "poison.md")
        .args(["index", root.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("quarantined"), "{}", stderr(&out));
    let s = status(&env);
    assert_eq!(s["files"], 1, "{s:#}");
    let q = s["quarantined"].as_array().unwrap();
    assert_eq!(q.len(), 1, "{s:#}");
    assert!(q[0]["path"].as_str().unwrap().ends_with("poison.md"));
    assert!(hits(&env, &root, "teapots").contains("fine.md"));

    // Changed, it is tried again.
    std::fs::write(root.join("poison.md"), "Fixed now: a note about kettles.\n").unwrap();
    let out = env.run(&["index", "-q", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(hits(&env, &root, "kettles").contains("poison.md"));
    assert!(status(&env)["quarantined"].as_array().unwrap().is_empty());
}

#[test]
fn folders_and_service_files() {
    let env = Env::new();
    let a = folder(&env, "a");
    let out = env.run(&["folders", "add", a.to_str().unwrap()]);
    assert!(out.status.success());
    let out = env.run(&["folders", "add", a.join("..").join("a").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already watched"));
    let v = stdout_json(&env.run(&["folders", "list", "--json"]));
    assert_eq!(v, serde_json::json!([a.display().to_string()]));
    let out = env.run(&["folders", "add", "no-such-dir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no-such-dir"));

    let out = env.run(&["daemon", "status"]);
    assert_eq!(out.status.code(), Some(3));
    let out = env.run(&["daemon", "stop"]);
    assert!(out.status.success());
    let out = env.run(&["daemon", "install", "--print"]);
    assert!(out.status.success());
    let unit = String::from_utf8_lossy(&out.stdout);
    assert!(unit.contains("watch"), "{unit}");
    assert!(
        unit.contains(&env.home.path().display().to_string()),
        "{unit}"
    );

    let empty = Env::new();
    let out = empty.run(&["watch"]);
    assert!(
        stderr(&out).contains("docent folders add"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stop_leaves_alone_a_process_named_by_a_stale_pid_file() {
    let env = Env::new();
    // After a crash or a reboot the pid in the file may belong to any process.
    let mut other = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let dir = env.home.path().join("daemon");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("docent.pid"), other.id().to_string()).unwrap();

    let out = env.run(&["daemon", "stop"]);
    let alive = other.try_wait().unwrap().is_none();
    let _ = other.kill();
    let _ = other.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(alive, "daemon stop signalled an unrelated process");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("stale pid file"), "{said}");
    assert!(!dir.join("docent.pid").exists());
}

#[test]
fn an_edited_ignore_file_takes_effect_at_once() {
    let env = Env::new();
    let root = folder(&env, "docs");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(
        root.join("sub/diary.md"),
        "The albatross confession stays private.\n",
    )
    .unwrap();
    std::fs::write(root.join("sub/plan.md"), "The gazebo plan is public.\n").unwrap();
    let out = env.run(&["folders", "add", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Reconciliation walks only at start: what follows is the watcher's doing.
    std::fs::write(
        env.home.path().join("docent.toml"),
        "[watch]\nreconcile_minutes = 0\n",
    )
    .unwrap();
    let _daemon = Daemon::start(&env);
    wait_for(&env, "both files indexed", || {
        hits(&env, &root, "albatross confession").contains("sub/diary.md")
            && hits(&env, &root, "gazebo plan").contains("sub/plan.md")
    });

    // Excluded for privacy: it leaves search at once, the rest of the folder stays.
    std::fs::write(root.join("sub/.gitignore"), "diary.md\n").unwrap();
    wait_for(&env, "diary.md excluded by the new .gitignore", || {
        hits(&env, &root, "albatross confession").is_empty()
    });
    assert!(hits(&env, &root, "gazebo plan").contains("sub/plan.md"));

    // The rule taken back (a .docentignore at the top now excludes the plan instead).
    std::fs::remove_file(root.join("sub/.gitignore")).unwrap();
    std::fs::write(root.join(".docentignore"), "plan.md\n").unwrap();
    wait_for(&env, "diary.md back, plan.md excluded", || {
        hits(&env, &root, "albatross confession").contains("sub/diary.md")
            && hits(&env, &root, "gazebo plan").is_empty()
    });
}
