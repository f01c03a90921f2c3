//! `docent models recommend` and the discovery of GGUFs in other tools' stores.

use crate::{Env, stdout};

#[test]
fn recommend_names_concrete_files_for_each_machine_size() {
    let env = Env::new();
    let out = env.run(&["models", "recommend", "--json"]);
    assert!(out.status.success(), "{}", crate::stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v["memory_gb"].as_f64().unwrap() > 1.0, "{v}");
    let all = v["all"].as_array().unwrap();
    let sizes: Vec<u64> = all
        .iter()
        .map(|r| r["machine_gb"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [16, 24, 32, 48, 64]);
    for r in all {
        let file = r["file"].as_str().unwrap();
        assert!(file.ends_with("Q4_K_M.gguf"), "{file}");
        // Every recommendation fits the machine it is meant for (three quarters of its memory).
        let needs = r["needs_gb"].as_f64().unwrap();
        assert!(needs <= 0.75 * r["machine_gb"].as_f64().unwrap(), "{r}");
    }
    // What fits this machine is what its memory allows, largest first.
    let mem = v["memory_gb"].as_f64().unwrap();
    let fits = v["fits"].as_array().unwrap();
    assert!(
        fits.iter()
            .all(|r| r["machine_gb"].as_f64().unwrap() <= mem + 0.5)
    );
    assert_eq!(
        fits.len(),
        sizes.iter().filter(|&&s| s as f64 <= mem + 0.5).count()
    );

    let text = stdout(&env.run(&["models", "recommend"]));
    assert!(text.contains("Qwen3-30B-A3B-Q4_K_M.gguf"), "{text}");
    assert!(text.contains("0.6 GB per billion"), "{text}");
}

#[test]
fn list_finds_ggufs_in_ollama_lm_studio_and_hugging_face_stores() {
    let env = Env::new();
    let gguf = docent_test_support::require_model("smollm2-135m-instruct")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let home = env.work.path().join("home");
    let link = |p: std::path::PathBuf| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&gguf, &p).unwrap();
    };
    link(home.join(".ollama/models/blobs/sha256-0123abcd"));
    let manifest = home.join(".ollama/models/manifests/registry.ollama.ai/library/smollm2/135m");
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    std::fs::write(
        &manifest,
        r#"{"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:0123abcd"}]}"#,
    )
    .unwrap();
    link(home.join(".lmstudio/models/HuggingFaceTB/SmolLM2-GGUF/smollm2-q4_1.gguf"));
    link(home.join(
        ".cache/huggingface/hub/models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF/snapshots/r1/smollm2.gguf",
    ));

    let run = |args: &[&str]| {
        env.cmd()
            .env("HOME", &home)
            .env_remove("OLLAMA_MODELS")
            .env_remove("HF_HOME")
            .env_remove("HF_HUB_CACHE")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["models", "list", "--json"]);
    assert!(out.status.success(), "{}", crate::stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let found: Vec<(String, String)> = v["found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["source"].as_str().unwrap().to_owned(),
                f["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "huggingface".to_owned(),
                "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2.gguf".to_owned()
            ),
            (
                "lm-studio".to_owned(),
                "HuggingFaceTB/SmolLM2-GGUF/smollm2-q4_1.gguf".to_owned()
            ),
            ("ollama".to_owned(), "smollm2:135m".to_owned()),
        ]
    );
    let size = std::fs::metadata(&gguf).unwrap().len();
    assert!(
        v["found"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["size_bytes"] == size)
    );

    let text = stdout(&run(&["models", "list"]));
    assert!(text.contains("found in other tools"), "{text}");
    assert!(text.contains("sha256-0123abcd"), "{text}");
}
