//! The terminal interface in a real terminal: the `docent` binary runs inside tmux over the
//! fixtures with a real index and a real language model; the test types a question, waits for
//! the cited answer, opens the cited passage, exports the answer and reads the file.
//!
//! Waits are liveness bounds (a hung interface fails the test instead of hanging CI), not speed
//! limits.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{Env, stderr};

const PATIENCE: Duration = Duration::from_secs(300);

/// A tmux server of the test's own (its own socket), killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `docent <args>` in a 120×40 terminal, in `env`'s work directory.
    fn start(env: &Env, args: &[&str]) -> Tmux {
        // One tmux server per terminal: tests run in parallel in one process, and one test's
        // `kill-server` on a shared socket would end another's session mid-answer.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = format!("docent-e2e-{}-{n}", std::process::id());
        let bin = assert_cmd::cargo::cargo_bin("docent");
        let mut line = format!(
            "env -u DOCENT_CONFIG -u VISUAL -u EDITOR DOCENT_HOME={} NO_COLOR=1 TERM=xterm-256color {}",
            shell_quote(env.home.path()),
            shell_quote(&bin)
        );
        for a in args {
            line.push(' ');
            line.push_str(&shell_quote(Path::new(a)));
        }
        // Keep the pane after the program ends, so that an early exit shows its message.
        line.push_str("; echo \"[docent exited: $?]\"; sleep 600");
        let out = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "120", "-y", "40", "-c"])
            .arg(env.work.path())
            .arg(line)
            .output()
            .expect("tmux is needed for this test: apt-get install tmux (.ci/run installs it)");
        assert!(out.status.success(), "tmux failed: {}", stderr(&out));
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]);
    }

    /// Sends named keys (`Enter`, `Tab`, `C-u`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    fn tmux(&self, args: &[&str]) {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "tmux {args:?}: {}", stderr(&out));
    }

    /// Polls the screen until `check` holds; panics with `what` and the screen if it never does.
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let t0 = Instant::now();
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            if t0.elapsed() > PATIENCE {
                panic!("timed out waiting for: {what}\nscreen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The text of the pane whose top border starts with `title`: the columns from that border's
/// left edge, on the lines below it.
fn pane_below(screen: &str, title: &str) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    let Some((row, col)) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| l.find(title).map(|byte| (i, l[..byte].chars().count())))
    else {
        return String::new();
    };
    lines[row + 1..]
        .iter()
        .map(|l| l.chars().skip(col).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn asks_reads_the_cited_passage_and_exports_in_a_real_terminal() {
    let env = Env::new();
    let root = env.copy_fixtures();
    // The fixtures hold broken files on purpose: the exit code says some could not be indexed.
    let out = env.run(&["index", "-q", root.to_str().unwrap()]);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));

    // One source: the 135M starter model cites it reliably; with three it often answers
    // without any citation (the demo asks with `-k 1` for the same reason).
    let t = Tmux::start(
        &env,
        &["tui", "-k", "1", "--model", "smollm2-135m-instruct"],
    );
    // The status bar knows the index before anything is asked.
    let screen = t.wait_for("the status bar with the index's counts", |s| {
        s.contains(" docs") && s.contains("chunks")
    });
    assert!(screen.contains("SmolLM2-135M-Instruct"), "{screen}");

    t.type_text("What are the liquidated damages per calendar day of delay?");
    t.keys(&["Enter"]);
    let screen = t.wait_for("a finished answer with cited sources", |s| {
        s.contains("tok/s") || s.contains("[docent exited")
    });
    assert!(!screen.contains("[docent exited"), "{screen}");
    // The sources pane lists what the model was given, and at least one is cited.
    let header = screen
        .lines()
        .find_map(|l| l.split("┌ Sources · ").nth(1))
        .unwrap_or_else(|| panic!("no sources pane:\n{screen}"));
    assert!(!header.contains(" 0 cited"), "nothing cited:\n{screen}");
    assert!(screen.contains("[1] "), "{screen}");
    assert!(
        screen.contains("page ") || screen.contains("lines "),
        "{screen}"
    );

    // Esc leaves the question box, Tab moves to the sources, Enter shows the first source's
    // passage in the preview.
    t.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300)); // else Esc + Tab reads as Alt-Tab
    t.keys(&["Tab"]);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["Enter"]);
    let screen = t.wait_for("the passage in the preview", |s| {
        s.contains("Preview · [1]")
    });
    let passage = pane_below(&screen, "┌ Preview").to_lowercase();
    assert!(
        passage.contains("liquidated") || passage.contains("delay"),
        "the passage of the cited source is not in the preview:\n{screen}"
    );

    // Export: `e` proposes a file name; replace it and confirm.
    t.keys(&["e"]);
    t.wait_for("the export prompt", |s| s.contains("Export"));
    t.keys(&["C-u"]);
    t.type_text("answer-from-tui.md");
    t.keys(&["Enter"]);
    let file = env.work.path().join("answer-from-tui.md");
    t.wait_for("the export written", |_| file.is_file());
    let md = std::fs::read_to_string(&file).unwrap();
    assert!(md.contains("liquidated damages per calendar day"), "{md}");
    assert!(
        md.contains("[^1]"),
        "no footnote citation in the export:\n{md}"
    );
    assert!(md.contains("SmolLM2-135M-Instruct"), "{md}");

    // q quits and gives the terminal back.
    t.keys(&["q"]);
    t.wait_for("docent to exit", |s| s.contains("[docent exited: 0]"));
}

#[test]
fn without_an_index_the_interface_says_what_to_run() {
    let env = Env::new();
    let t = Tmux::start(&env, &["tui"]);
    let screen = t.wait_for("the first-run guidance", |s| {
        s.contains("docent index") || s.contains("[docent exited")
    });
    assert!(!screen.contains("[docent exited"), "{screen}");
    // Asking anyway is answered with the same advice, not an error dump, and the interface stays.
    t.type_text("anything at all?");
    t.keys(&["Enter"]);
    t.wait_for("the question refused with advice", |s| {
        s.contains("nothing is indexed yet: run `docent index <FOLDER>` first")
    });
    t.keys(&["C-c"]);
    t.wait_for("docent to exit", |s| s.contains("[docent exited: 0]"));
}
