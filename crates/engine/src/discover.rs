//! GGUF models the user already has from other tools: Ollama's store, LM Studio's models folder
//! and the Hugging Face cache. Found files are used where they are (`--model PATH` or
//! `[llm] model = "PATH"`), never copied.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A GGUF file found in another tool's store.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FoundModel {
    /// `ollama`, `lm-studio` or `huggingface`.
    pub source: &'static str,
    /// The name the other tool shows (`qwen3:14b`, `lmstudio-community/Qwen3-14B-GGUF/…`).
    pub name: String,
    pub path: PathBuf,
    pub size_bytes: u64,
}

/// Where to look; built from the environment by [`Stores::from_env`], or given for tests.
#[derive(Clone, Debug, Default)]
pub struct Stores {
    pub ollama: Vec<PathBuf>,
    pub lm_studio: Vec<PathBuf>,
    pub huggingface: Vec<PathBuf>,
}

impl Stores {
    /// The default locations, honouring `OLLAMA_MODELS` and `HF_HOME`/`HF_HUB_CACHE`.
    pub fn from_env() -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let mut s = Stores::default();
        match var("OLLAMA_MODELS") {
            Some(p) => s.ollama.push(p),
            None => s
                .ollama
                .extend(home.iter().map(|h| h.join(".ollama/models"))),
        }
        // Ollama's Linux service keeps its store under its own user.
        s.ollama
            .push(PathBuf::from("/usr/share/ollama/.ollama/models"));
        s.lm_studio.extend(home.iter().flat_map(|h| {
            [
                h.join(".lmstudio/models"),
                h.join(".cache/lm-studio/models"),
            ]
        }));
        match (var("HF_HUB_CACHE"), var("HF_HOME")) {
            (Some(p), _) => s.huggingface.push(p),
            (None, Some(p)) => s.huggingface.push(p.join("hub")),
            (None, None) => s
                .huggingface
                .extend(home.iter().map(|h| h.join(".cache/huggingface/hub"))),
        }
        s
    }

    /// Every GGUF model file found, by source then name. Unreadable folders are skipped: this is
    /// a convenience listing, never an error.
    pub fn discover(&self) -> Vec<FoundModel> {
        let mut out = Vec::new();
        for root in &self.ollama {
            ollama(root, &mut out);
        }
        for root in &self.lm_studio {
            walk_ggufs(root, 4, &mut |path| {
                let name = path.strip_prefix(root).unwrap_or(path);
                push(
                    &mut out,
                    "lm-studio",
                    name.to_string_lossy().into_owned(),
                    path,
                );
            });
        }
        for root in &self.huggingface {
            huggingface(root, &mut out);
        }
        out.sort_by(|a, b| (a.source, &a.name).cmp(&(b.source, &b.name)));
        out.dedup_by(|a, b| a.path == b.path);
        out
    }
}

fn push(out: &mut Vec<FoundModel>, source: &'static str, name: String, path: &Path) {
    // Vision projectors sit beside the language models in these stores; they are not one.
    let file = path.file_name().unwrap_or_default().to_string_lossy();
    if file.starts_with("mmproj") || !is_gguf(path) {
        return;
    }
    let size_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    out.push(FoundModel {
        source,
        name,
        path: path.to_path_buf(),
        size_bytes,
    });
}

fn is_gguf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"GGUF"
}

/// Ollama: `manifests/<registry>/<namespace>/<model>/<tag>` are JSON manifests whose layer of
/// media type `application/vnd.ollama.image.model` names the GGUF blob by digest.
fn ollama(root: &Path, out: &mut Vec<FoundModel>) {
    let manifests = root.join("manifests");
    let mut files = Vec::new();
    collect_files(&manifests, 4, &mut files);
    for m in files {
        let Ok(text) = std::fs::read_to_string(&m) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let Some(layers) = v["layers"].as_array() else {
            continue;
        };
        let Some(digest) = layers
            .iter()
            .find(|l| l["mediaType"] == "application/vnd.ollama.image.model")
            .and_then(|l| l["digest"].as_str())
        else {
            continue;
        };
        let blob = root.join("blobs").join(digest.replace(':', "-"));
        // registry/namespace/model/tag → model:tag, or namespace/model:tag outside `library`.
        let parts: Vec<String> = m
            .strip_prefix(&manifests)
            .unwrap_or(&m)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let name = match parts.as_slice() {
            [_, ns, model, tag] if ns == "library" => format!("{model}:{tag}"),
            [_, ns, model, tag] => format!("{ns}/{model}:{tag}"),
            _ => parts.join("/"),
        };
        push(out, "ollama", name, &blob);
    }
}

/// Hugging Face hub cache: `models--<org>--<name>/snapshots/<revision>/…/*.gguf`.
fn huggingface(root: &Path, out: &mut Vec<FoundModel>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let dir = e.file_name().to_string_lossy().into_owned();
        let Some(repo) = dir.strip_prefix("models--") else {
            continue;
        };
        let repo = repo.replacen("--", "/", 1);
        let snapshots = e.path().join("snapshots");
        walk_ggufs(&snapshots, 4, &mut |path| {
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            push(out, "huggingface", format!("{repo}/{file}"), path);
        });
    }
}

fn collect_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if depth > 0 {
                collect_files(&p, depth - 1, out);
            }
        } else if p.is_file() {
            out.push(p);
        }
    }
}

fn walk_ggufs(dir: &Path, depth: usize, f: &mut dyn FnMut(&Path)) {
    let mut files = Vec::new();
    collect_files(dir, depth, &mut files);
    files.sort();
    for p in files {
        if p.extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))
        {
            f(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gguf(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"GGUF\x03\x00\x00\x00rest").unwrap();
    }

    #[test]
    fn finds_models_in_each_store_and_skips_what_is_not_one() {
        let t = tempfile::tempdir().unwrap();
        let o = t.path().join("ollama");
        gguf(&o.join("blobs/sha256-aaa"));
        std::fs::write(o.join("blobs/sha256-ccc"), b"{\"license\":1}").unwrap();
        let manifest = |model: &str, tag: &str, ns: &str, digest: &str| {
            let p = o.join(format!("manifests/registry.ollama.ai/{ns}/{model}/{tag}"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(
                &p,
                format!(
                    r#"{{"layers":[{{"mediaType":"application/vnd.ollama.image.license","digest":"sha256:ccc"}},
                        {{"mediaType":"application/vnd.ollama.image.model","digest":"{digest}"}}]}}"#
                ),
            )
            .unwrap();
        };
        manifest("qwen3", "14b", "library", "sha256:aaa");
        manifest("tool", "latest", "someone", "sha256:aaa");
        manifest("gone", "1b", "library", "sha256:missing");

        let l = t.path().join("lmstudio");
        gguf(&l.join("lmstudio-community/Qwen3-14B-GGUF/Qwen3-14B-Q4_K_M.gguf"));
        gguf(&l.join("lmstudio-community/gemma-3-27b-it-GGUF/mmproj-model-f16.gguf"));
        std::fs::write(l.join("notes.gguf"), b"not a model").unwrap();

        let h = t.path().join("hf");
        gguf(&h.join(
            "models--unsloth--gemma-3-27b-it-GGUF/snapshots/abc123/gemma-3-27b-it-Q4_K_M.gguf",
        ));
        gguf(&h.join("datasets--x--y/snapshots/1/data.gguf"));

        let found = Stores {
            ollama: vec![o.clone()],
            lm_studio: vec![l],
            huggingface: vec![h, t.path().join("absent")],
        }
        .discover();
        let names: Vec<(&str, &str)> = found.iter().map(|f| (f.source, f.name.as_str())).collect();
        // Two Ollama names share one blob: listed once.
        assert_eq!(
            names,
            vec![
                (
                    "huggingface",
                    "unsloth/gemma-3-27b-it-GGUF/gemma-3-27b-it-Q4_K_M.gguf"
                ),
                (
                    "lm-studio",
                    "lmstudio-community/Qwen3-14B-GGUF/Qwen3-14B-Q4_K_M.gguf"
                ),
                ("ollama", "qwen3:14b"),
            ],
            "{found:#?}"
        );
        assert_eq!(found[2].path, o.join("blobs/sha256-aaa"));
        assert_eq!(found[2].size_bytes, 12);
    }
}
