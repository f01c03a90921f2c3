//! The models directory: what is installed, importing a model the user already has, verifying
//! checksums. Every model lives in its own folder with a `MODEL.json` manifest:
//! `{"name", "kind": "embedding"|"llm", "files": {relative path: sha256}, "source"}` — the same
//! layout `scripts/fetch-models.sh` writes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{EngineError, Result};

pub const MANIFEST: &str = "MODEL.json";

/// The manifest of one installed model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelManifest {
    pub name: String,
    pub kind: String,
    pub files: BTreeMap<String, String>,
    #[serde(default)]
    pub source: Option<String>,
}

/// An installed model as `docent models list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct InstalledModel {
    pub name: String,
    pub kind: String,
    pub path: PathBuf,
    pub size_bytes: u64,
    pub files: Vec<ModelFile>,
    pub source: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelFile {
    pub name: String,
    pub size_bytes: u64,
    pub sha256: Option<String>,
    /// Set by [`verify_model`]: whether the file's content matches `sha256`.
    pub verified: Option<bool>,
}

/// Files a sentence-transformers folder must have, and those copied when present.
const ST_REQUIRED: &[&str] = &["config.json", "tokenizer.json", "model.safetensors"];
const ST_OPTIONAL: &[&str] = &[
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
    "config_sentence_transformers.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "vocab.txt",
];

/// Models in `models_dir`, sorted by name. Folders without a manifest are listed when they look
/// like a model (a sentence-transformers folder or a folder with a `.gguf`).
pub fn list_models(models_dir: &Path) -> Result<Vec<InstalledModel>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(models_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(EngineError::Io {
                path: models_dir.to_path_buf(),
                source,
            });
        }
    };
    for e in entries.flatten() {
        let dir = e.path();
        if !dir.is_dir() || e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if let Some(m) = describe(&dir)? {
            out.push(m);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn describe(dir: &Path) -> Result<Option<InstalledModel>> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let manifest = read_manifest(dir)?;
    let (kind, files, source) = match manifest {
        Some(m) => (
            m.kind,
            m.files.into_iter().map(|(f, h)| (f, Some(h))).collect(),
            m.source,
        ),
        None => {
            let ggufs: Vec<(String, Option<String>)> = std::fs::read_dir(dir)
                .map_err(|source| EngineError::Io {
                    path: dir.to_path_buf(),
                    source,
                })?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".gguf"))
                .map(|n| (n, None))
                .collect();
            if !ggufs.is_empty() {
                ("llm".to_string(), ggufs, None)
            } else if ST_REQUIRED.iter().all(|f| dir.join(f).is_file()) {
                let files = ST_REQUIRED
                    .iter()
                    .chain(ST_OPTIONAL)
                    .filter(|f| dir.join(f).is_file())
                    .map(|f| (f.to_string(), None))
                    .collect();
                ("embedding".to_string(), files, None)
            } else {
                return Ok(None);
            }
        }
    };
    let mut listed = Vec::new();
    let mut total = 0;
    for (f, sha) in files {
        let size = std::fs::metadata(dir.join(&f))
            .map(|m| m.len())
            .unwrap_or(0);
        total += size;
        listed.push(ModelFile {
            name: f,
            size_bytes: size,
            sha256: sha,
            verified: None,
        });
    }
    Ok(Some(InstalledModel {
        name,
        kind,
        path: dir.to_path_buf(),
        size_bytes: total,
        files: listed,
        source,
    }))
}

fn read_manifest(dir: &Path) -> Result<Option<ModelManifest>> {
    let path = dir.join(MANIFEST);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            EngineError::Invalid(format!(
                "{}: not a valid model manifest: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EngineError::Io { path, source }),
    }
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let io = |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Recomputes every file's checksum and compares it with the manifest.
pub fn verify_model(model: &mut InstalledModel) -> Result<bool> {
    let mut ok = true;
    for f in &mut model.files {
        let actual = sha256_file(&model.path.join(&f.name))?;
        let good = f.sha256.as_deref().is_none_or(|s| s == actual);
        if f.sha256.is_none() {
            f.sha256 = Some(actual);
        }
        f.verified = Some(good);
        ok &= good;
    }
    Ok(ok)
}

/// Imports a model the user already has: a sentence-transformers folder (config.json,
/// tokenizer.json, model.safetensors) or a `.gguf` file. Files are copied into
/// `<models_dir>/<name>/`, checksummed, and described by a `MODEL.json`; the copy is assembled in
/// a temporary folder and moved into place only when complete.
pub fn import_model(models_dir: &Path, src: &Path, name: Option<&str>) -> Result<InstalledModel> {
    let meta = std::fs::metadata(src).map_err(|source| EngineError::Io {
        path: src.to_path_buf(),
        source,
    })?;
    let (kind, files): (&str, Vec<(PathBuf, String)>) = if meta.is_dir() {
        let missing: Vec<&str> = ST_REQUIRED
            .iter()
            .copied()
            .filter(|f| !src.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(EngineError::Invalid(format!(
                "{}: not a sentence-transformers model folder (missing {})\nhint: a model folder has config.json, tokenizer.json and model.safetensors",
                src.display(),
                missing.join(", ")
            )));
        }
        let files = ST_REQUIRED
            .iter()
            .chain(ST_OPTIONAL)
            .filter(|f| src.join(f).is_file())
            .map(|f| (src.join(f), f.to_string()))
            .collect();
        ("embedding", files)
    } else {
        let mut magic = [0u8; 4];
        let mut f = std::fs::File::open(src).map_err(|source| EngineError::Io {
            path: src.to_path_buf(),
            source,
        })?;
        let read_ok = f.read_exact(&mut magic).is_ok();
        if !read_ok || &magic != b"GGUF" {
            return Err(EngineError::Invalid(format!(
                "{}: not a GGUF model file\nhint: import a .gguf file or a sentence-transformers folder",
                src.display()
            )));
        }
        let file_name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model.gguf".into());
        ("llm", vec![(src.to_path_buf(), file_name)])
    };
    let name = match name {
        Some(n) => n.to_string(),
        None => src
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into()),
    };
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(EngineError::Invalid(format!(
            "{name:?} is not a usable model name"
        )));
    }
    let dest = models_dir.join(&name);
    if dest.exists() {
        return Err(EngineError::Invalid(format!(
            "a model named {name:?} is already installed at {}\nhint: pass --name to import it under another name",
            dest.display()
        )));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EngineError::Io { path, source }
    };
    // Created private (0700) when docent makes it; a folder that exists is left as it is (it
    // may be shared on purpose, and models are not private data).
    if !models_dir.is_dir() {
        docent_store::private::private_dir(models_dir).map_err(io(models_dir))?;
    }
    let tmp = models_dir.join(format!(".import-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| -> Result<ModelManifest> {
        let mut sums = BTreeMap::new();
        for (from, rel) in &files {
            let to = tmp.join(rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::copy(from, &to).map_err(io(from))?;
            sums.insert(rel.clone(), sha256_file(&to)?);
        }
        let manifest = ModelManifest {
            name: name.clone(),
            kind: kind.to_string(),
            files: sums,
            source: Some(format!("import:{}", src.display())),
        };
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        std::fs::write(tmp.join(MANIFEST), text).map_err(io(&tmp))?;
        Ok(manifest)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
    describe(&dest)?.ok_or_else(|| EngineError::Invalid("imported model not found".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_gguf_and_list_and_verify() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("tiny.gguf");
        std::fs::write(&src, b"GGUF\x03\x00\x00\x00rest").unwrap();
        let models = d.path().join("models");
        let m = import_model(&models, &src, None).unwrap();
        assert_eq!(m.name, "tiny");
        assert_eq!(m.kind, "llm");
        let listed = list_models(&models).unwrap();
        assert_eq!(listed.len(), 1);
        let mut one = listed[0].clone();
        assert!(verify_model(&mut one).unwrap());
        // Corrupt the copy: verification fails.
        std::fs::write(models.join("tiny/tiny.gguf"), b"GGUF broken").unwrap();
        let mut one = list_models(&models).unwrap().remove(0);
        assert!(!verify_model(&mut one).unwrap());
        // Importing again under the same name is refused with a hint.
        let err = import_model(&models, &src, None).unwrap_err().to_string();
        assert!(err.contains("--name"), "{err}");
    }

    #[test]
    fn import_rejects_non_models() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("notes.txt");
        std::fs::write(&f, "hello").unwrap();
        assert!(import_model(d.path(), &f, None).is_err());
        let err = import_model(d.path(), d.path(), Some("x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.json"), "{err}");
    }
}
