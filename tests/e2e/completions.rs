//! `docent completions <SHELL>` and `docent man`: generated from the command line's definition,
//! and usable before anything is configured or indexed.

use crate::{Env, stderr, stdout};

#[test]
fn completions_for_every_shell_know_the_subcommands() {
    // A data directory that does not exist and a settings file that is broken: neither matters
    // to these commands, which read no settings.
    let env = Env::new();
    let missing_home = env.home.path().join("not-yet");
    let broken_config = env.work.path().join("broken.toml");
    std::fs::write(&broken_config, "this is = = not toml").unwrap();

    let expected_head = [
        ("bash", "_docent()"),
        ("zsh", "#compdef docent"),
        ("fish", "complete -c docent"),
        ("elvish", "edit:completion:arg-completer[docent]"),
        ("powershell", "Register-ArgumentCompleter"),
    ];
    for (shell, marker) in expected_head {
        let out = env
            .cmd()
            .env("DOCENT_HOME", &missing_home)
            .env("DOCENT_CONFIG", &broken_config)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(
            script.contains(marker),
            "{shell}: no {marker:?} in\n{script}"
        );
        for sub in ["index", "search", "ask", "completions"] {
            assert!(script.contains(sub), "{shell}: no {sub} in\n{script}");
        }
        // The internal PDF worker is not offered.
        assert!(!script.contains("__pdf-worker"), "{shell}:\n{script}");
    }
    assert!(
        !missing_home.exists(),
        "completions created the data directory"
    );

    // An unknown shell is a usage error that lists the ones there are.
    let out = env.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bash"), "{}", stderr(&out));
}

#[test]
fn man_prints_a_roff_page_and_writes_one_per_subcommand() {
    let env = Env::new();
    let out = env.run(&["man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.starts_with('.'), "not roff:\n{page}");
    assert!(page.contains(".TH docent 1"), "{page}");
    assert!(page.contains("private document assistant"), "{page}");
    assert!(page.contains("docent\\-index"), "{page}");
    // Options that can come from the environment say so.
    assert!(page.contains("DOCENT_HOME"), "{page}");

    let dir = env.work.path().join("man1");
    std::fs::create_dir(&dir).unwrap();
    let out = env.run(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["docent.1", "docent-index.1", "docent-daemon-start.1"] {
        let p = dir.join(name);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".TH docent"), "{name}:\n{text}");
    }
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("pdf-worker")), "{names:?}");

    // A folder that is not there is named, with what to do.
    let out = env.run(&["man", "--dir", "no/such/dir"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no/such/dir") && err.contains("hint:"),
        "{err}"
    );
}
