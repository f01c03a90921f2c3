//! What a GGUF file says about its model, read from the header alone (no weights loaded).

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};

use crate::error::{LlmError, Result};

/// Architectures docent can run, as named in `general.architecture`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// Llama 2/3, Mistral, SmolLM2 and other llama-shaped models.
    Llama,
    Qwen2,
    Qwen3,
    /// Qwen3 mixture of experts (Qwen3-30B-A3B).
    Qwen3Moe,
    Gemma3,
}

impl Architecture {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "llama" | "mistral" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            "qwen3" => Architecture::Qwen3,
            "qwen3moe" => Architecture::Qwen3Moe,
            "gemma3" => Architecture::Gemma3,
            _ => return None,
        })
    }
}

/// The model's shape and identity from the GGUF metadata.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub path: PathBuf,
    /// `general.architecture` as written.
    pub arch_name: String,
    pub architecture: Option<Architecture>,
    /// `general.name`, else the file stem.
    pub name: String,
    pub context_length: usize,
    pub block_count: usize,
    pub embedding_length: usize,
    pub head_count: usize,
    pub head_count_kv: usize,
    pub head_dim: usize,
    pub expert_count: Option<usize>,
    pub vocab_size: usize,
    /// Parameters counted from the tensor shapes.
    pub parameters: u64,
    /// The most common weight type (e.g. `Q4K`).
    pub weight_type: String,
    pub file_size: u64,
    pub has_chat_template: bool,
}

impl ModelInfo {
    /// Reads the header of `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let (content, file_size) = read_content(path)?;
        Self::from_content(path, &content, file_size)
    }

    pub(crate) fn from_content(path: &Path, c: &Content, file_size: u64) -> Result<Self> {
        let md = Meta {
            path,
            map: &c.metadata,
        };
        let arch_name = md.string("general.architecture")?;
        let a = arch_name.as_str();
        let head_count = md.usize(&format!("{a}.attention.head_count"))?;
        let embedding_length = md.usize(&format!("{a}.embedding_length"))?;
        let head_count_kv = md
            .opt_usize(&format!("{a}.attention.head_count_kv"))
            .unwrap_or(head_count);
        let head_dim = md
            .opt_usize(&format!("{a}.attention.key_length"))
            .unwrap_or(embedding_length / head_count.max(1));
        let vocab_size = c
            .metadata
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
            .map(Vec::len)
            .or_else(|| md.opt_usize(&format!("{a}.vocab_size")))
            .unwrap_or(0);
        let mut parameters = 0u64;
        let mut by_type: HashMap<String, u64> = HashMap::new();
        for info in c.tensor_infos.values() {
            let n = info.shape.elem_count() as u64;
            parameters += n;
            *by_type.entry(format!("{:?}", info.ggml_dtype)).or_default() += n;
        }
        let weight_type = by_type
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(t, _)| t)
            .unwrap_or_default();
        let name = md
            .opt_string("general.name")
            .unwrap_or_else(|| file_stem(path));
        Ok(ModelInfo {
            path: path.to_path_buf(),
            architecture: Architecture::parse(a),
            context_length: md.usize(&format!("{a}.context_length"))?,
            block_count: md.usize(&format!("{a}.block_count"))?,
            expert_count: md.opt_usize(&format!("{a}.expert_count")),
            arch_name,
            name,
            embedding_length,
            head_count,
            head_count_kv,
            head_dim,
            vocab_size,
            parameters,
            weight_type,
            file_size,
            has_chat_template: c.metadata.contains_key("tokenizer.chat_template"),
        })
    }

    /// The architecture, or the typed error for one docent cannot run.
    pub fn require_supported(&self) -> Result<Architecture> {
        self.architecture
            .ok_or_else(|| LlmError::UnsupportedArchitecture {
                path: self.path.clone(),
                arch: self.arch_name.clone(),
            })
    }

    /// Bytes of KV cache per token of context (keys and values of every layer, f32 as candle
    /// keeps them on the CPU).
    pub fn kv_bytes_per_token(&self) -> u64 {
        2 * self.block_count as u64 * self.head_count_kv as u64 * self.head_dim as u64 * 4
    }
}

impl fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {:.2}B parameters, {}, context {})",
            self.name,
            self.arch_name,
            self.parameters as f64 / 1e9,
            self.weight_type,
            self.context_length
        )
    }
}

pub(crate) fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}

/// Reads the GGUF header (metadata and tensor table) of `path`.
pub(crate) fn read_content(path: &Path) -> Result<(Content, u64)> {
    let file = File::open(path).map_err(|source| LlmError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let size = file
        .metadata()
        .map_err(|source| LlmError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut reader = BufReader::new(file);
    // candle's reader allocates by the counts in the header; a damaged header must not make it
    // allocate without bound, so the counts are checked against the file size first.
    check_header(path, &mut reader, size)?;
    let content = Content::read(&mut reader).map_err(|e| LlmError::BadFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    // Every tensor must lie inside the file (a truncated download fails here, not at load).
    for (name, info) in &content.tensor_infos {
        let end = content.tensor_data_offset + info.offset;
        if end > size {
            return Err(LlmError::BadFile {
                path: path.to_path_buf(),
                message: format!("tensor `{name}` lies past the end of the file (truncated?)"),
            });
        }
    }
    Ok((content, size))
}

fn check_header(path: &Path, r: &mut BufReader<File>, size: u64) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let bad = |m: &str| LlmError::BadFile {
        path: path.to_path_buf(),
        message: m.to_string(),
    };
    let mut head = [0u8; 24];
    r.read_exact(&mut head)
        .map_err(|_| bad("the file is too short to be a GGUF file"))?;
    if &head[..4] != b"GGUF" {
        return Err(bad("it does not start with the GGUF magic bytes"));
    }
    let version = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if !(2..=3).contains(&version) {
        return Err(bad(&format!("GGUF version {version} is not supported")));
    }
    let tensors = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
    let kvs = u64::from_le_bytes(head[16..24].try_into().unwrap_or_default());
    // Each tensor entry and each key/value takes well over 8 bytes.
    if tensors.saturating_mul(8) > size || kvs.saturating_mul(8) > size {
        return Err(bad("its header counts more entries than the file can hold"));
    }
    r.seek(SeekFrom::Start(0)).map_err(|source| LlmError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// Typed access to metadata, with errors that name the file and the key.
pub(crate) struct Meta<'a> {
    pub path: &'a Path,
    pub map: &'a HashMap<String, Value>,
}

impl Meta<'_> {
    fn missing(&self, key: &str) -> LlmError {
        LlmError::BadFile {
            path: self.path.to_path_buf(),
            message: format!("metadata `{key}` is missing or has the wrong type"),
        }
    }
    pub fn string(&self, key: &str) -> Result<String> {
        self.opt_string(key).ok_or_else(|| self.missing(key))
    }
    pub fn opt_string(&self, key: &str) -> Option<String> {
        self.map.get(key).and_then(|v| v.to_string().ok()).cloned()
    }
    pub fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key).ok_or_else(|| self.missing(key))
    }
    pub fn opt_usize(&self, key: &str) -> Option<usize> {
        let v = self.map.get(key)?;
        v.to_u64()
            .ok()
            .or_else(|| v.to_u32().ok().map(u64::from))
            .or_else(|| v.to_i32().ok().and_then(|x| u64::try_from(x).ok()))
            .or_else(|| v.to_i64().ok().and_then(|x| u64::try_from(x).ok()))
            .or_else(|| v.to_u16().ok().map(u64::from))
            .map(|x| x as usize)
    }
    pub fn opt_bool(&self, key: &str) -> Option<bool> {
        self.map.get(key).and_then(|v| v.to_bool().ok())
    }
}
