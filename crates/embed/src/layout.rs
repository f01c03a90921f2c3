//! Reading a sentence-transformers model directory: which modules it stacks, how it pools, how
//! long its inputs may be, and the recorded checksum of its weights. Every failure names the
//! file it is about.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::{EmbedError, Result};

/// How token vectors become one sentence vector (from the model's pooling config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The mean of the token vectors under the attention mask (padding excluded).
    Mean,
    /// The vector of the first token (`[CLS]`).
    Cls,
}

/// Reads a file the model needs; a missing file is [`EmbedError::FileMissing`].
pub(crate) fn read_required(path: &Path) -> Result<Vec<u8>> {
    match read_optional(path)? {
        Some(bytes) => Ok(bytes),
        None => Err(EmbedError::FileMissing {
            path: path.to_path_buf(),
        }),
    }
}

/// Reads a file the model may lack; `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EmbedError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Parses JSON read from `path`; a parse error names the file.
pub(crate) fn parse_json<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| invalid(path, e.to_string()))
}

pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> EmbedError {
    EmbedError::InvalidModelFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub(crate) fn unsupported(path: &Path, message: impl Into<String>) -> EmbedError {
    EmbedError::Unsupported {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// What the sentence-transformers files around the transformer say about running it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SentenceLayout {
    pub pooling: Pooling,
    /// `word_embedding_dimension` of the pooling config with the file it came from, to check
    /// against the transformer's hidden size.
    pub pooling_dim: Option<(usize, PathBuf)>,
    /// `max_seq_length` of `sentence_bert_config.json`.
    pub max_seq_length: Option<usize>,
    /// `do_lower_case` of `sentence_bert_config.json`: inputs are lower-cased before tokenizing.
    pub lowercase: bool,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

/// Reads `modules.json`, the pooling config and `sentence_bert_config.json`, each optional: a
/// bare transformer folder is run with mean pooling, as sentence-transformers does.
pub(crate) fn read_layout(dir: &Path) -> Result<SentenceLayout> {
    let modules_path = dir.join("modules.json");
    let mut pooling_dir = dir.join("1_Pooling");
    if let Some(bytes) = read_optional(&modules_path)? {
        let modules: Vec<ModuleEntry> = parse_json(&modules_path, &bytes)?;
        for m in &modules {
            let kind = m.kind.rsplit('.').next().unwrap_or_default();
            match kind {
                "Transformer" | "Normalize" => {}
                "Pooling" => pooling_dir = dir.join(&m.path),
                _ => {
                    return Err(unsupported(
                        &modules_path,
                        format!(
                            "module `{}` ({}) is not supported; docent runs a transformer, \
                             pooling and normalisation only",
                            m.kind, m.path
                        ),
                    ));
                }
            }
        }
    }

    let pooling_path = pooling_dir.join("config.json");
    let (pooling, pooling_dim) = match read_optional(&pooling_path)? {
        Some(bytes) => {
            let value: serde_json::Map<String, serde_json::Value> =
                parse_json(&pooling_path, &bytes)?;
            let (pooling, dim) = parse_pooling(&pooling_path, &value)?;
            (pooling, dim.map(|d| (d, pooling_path.clone())))
        }
        None => (Pooling::Mean, None),
    };

    let st_path = dir.join("sentence_bert_config.json");
    let (max_seq_length, lowercase) = match read_optional(&st_path)? {
        Some(bytes) => {
            let c: SentenceBertConfig = parse_json(&st_path, &bytes)?;
            (c.max_seq_length, c.do_lower_case)
        }
        None => (None, false),
    };

    Ok(SentenceLayout {
        pooling,
        pooling_dim,
        max_seq_length,
        lowercase,
    })
}

/// The pooling mode of a sentence-transformers pooling config (`pooling_mode_*` flags), and its
/// `word_embedding_dimension`.
fn parse_pooling(
    path: &Path,
    value: &serde_json::Map<String, serde_json::Value>,
) -> Result<(Pooling, Option<usize>)> {
    let mut modes = Vec::new();
    for (key, v) in value {
        if let Some(mode) = key.strip_prefix("pooling_mode_") {
            match v {
                serde_json::Value::Bool(true) => modes.push(mode),
                serde_json::Value::Bool(false) | serde_json::Value::Null => {}
                _ => return Err(invalid(path, format!("`{key}` must be true or false"))),
            }
        }
    }
    let pooling = match modes.as_slice() {
        ["mean_tokens"] => Pooling::Mean,
        ["cls_token"] => Pooling::Cls,
        [] => return Err(unsupported(path, "no pooling mode is set")),
        other => {
            return Err(unsupported(
                path,
                format!(
                    "pooling `{}` is not supported (only mean_tokens or cls_token)",
                    other.join(" + ")
                ),
            ));
        }
    };
    let dim = match value.get("word_embedding_dimension") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| invalid(path, "`word_embedding_dimension` must be a number"))?,
        ),
    };
    Ok((pooling, dim))
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    files: std::collections::BTreeMap<String, String>,
}

/// The SHA-256 that `<dir>/MODEL.json` records for `file`, if the manifest exists and lists it.
pub(crate) fn manifest_sha256(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join("MODEL.json");
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
    };
    let manifest: Manifest = parse_json(&path, &bytes)?;
    match manifest.files.get(file) {
        None => Ok(None),
        Some(sha) if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(sha.to_ascii_lowercase()))
        }
        Some(_) => Err(invalid(
            &path,
            format!("the SHA-256 of `{file}` is not 64 hexadecimal digits"),
        )),
    }
}

/// Lower-case hexadecimal SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: &str) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn pooling_modes() {
        let p = Path::new("1_Pooling/config.json");
        let (mode, dim) = parse_pooling(
            p,
            &map(
                r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
                     "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false}"#,
            ),
        )
        .unwrap();
        assert_eq!((mode, dim), (Pooling::Mean, Some(384)));
        let (mode, _) = parse_pooling(p, &map(r#"{"pooling_mode_cls_token": true}"#)).unwrap();
        assert_eq!(mode, Pooling::Cls);

        let err = parse_pooling(p, &map(r#"{"pooling_mode_max_tokens": true}"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("1_Pooling/config.json"), "{err}");
        assert!(err.contains("max_tokens"), "{err}");
        assert!(err.contains("unsupported"), "{err}");
        let err = parse_pooling(
            p,
            &map(r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}"#),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cls_token + mean_tokens"), "{err}");
        assert!(parse_pooling(p, &map("{}")).is_err());
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn layout_defaults_and_unsupported_modules() {
        let dir = tempfile::tempdir().unwrap();
        let layout = read_layout(dir.path()).unwrap();
        assert_eq!(layout.pooling, Pooling::Mean);
        assert_eq!(layout.max_seq_length, None);
        assert!(!layout.lowercase);

        std::fs::write(
            dir.path().join("modules.json"),
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
               {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
               {"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#,
        )
        .unwrap();
        let err = read_layout(dir.path()).unwrap_err().to_string();
        assert!(err.contains("modules.json"), "{err}");
        assert!(err.contains("Dense"), "{err}");

        std::fs::write(dir.path().join("modules.json"), "[").unwrap();
        let err = read_layout(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("modules.json: not a valid model file"),
            "{err}"
        );
    }

    #[test]
    fn manifest_checksum() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            manifest_sha256(dir.path(), "model.safetensors").unwrap(),
            None
        );
        let sha = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
        std::fs::write(
            dir.path().join("MODEL.json"),
            format!(r#"{{"name":"m","kind":"embedding","files":{{"model.safetensors":"{sha}"}}}}"#),
        )
        .unwrap();
        assert_eq!(
            manifest_sha256(dir.path(), "model.safetensors")
                .unwrap()
                .as_deref(),
            Some(sha)
        );
        assert_eq!(manifest_sha256(dir.path(), "other.bin").unwrap(), None);
        std::fs::write(
            dir.path().join("MODEL.json"),
            r#"{"files":{"model.safetensors":"xyz"}}"#,
        )
        .unwrap();
        let err = manifest_sha256(dir.path(), "model.safetensors")
            .unwrap_err()
            .to_string();
        assert!(err.contains("MODEL.json"), "{err}");
    }
}
