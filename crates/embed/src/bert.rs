//! [`BertEmbedder`]: a BERT-family sentence-transformers model run with candle.
//!
//! Loading reads `config.json`, `tokenizer.json` and `model.safetensors`, plus the
//! sentence-transformers files that say how to pool (`modules.json`, `1_Pooling/config.json`)
//! and how long inputs may be (`sentence_bert_config.json`). Embedding tokenizes a batch,
//! sorts it by length, runs the encoder on sub-batches padded only to their own longest
//! input, pools (mean over the attention mask, or the `[CLS]` token), L2-normalises, and
//! returns the vectors in the caller's order.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use docent_core::{EmbedKind, Embedder, EmbedderIdentity, SeamError};
use tokenizers::{EncodeInput, Encoding, Tokenizer, TruncationParams};

use crate::encoder::Encoder;
use crate::layout::{
    Pooling, invalid, manifest_sha256, parse_json, read_layout, read_required, sha256_hex,
    unsupported,
};
use crate::{EmbedError, Result, model_name};

/// How a [`BertEmbedder`] prepares its inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbedOptions {
    /// The most tokens (special tokens included) the model sees of one text; longer texts are
    /// truncated. `None`: the model's own limit (`max_seq_length` of
    /// `sentence_bert_config.json`, else the truncation of `tokenizer.json`, else
    /// `max_position_embeddings` of `config.json`).
    pub max_tokens: Option<usize>,
    /// Prepended to every text embedded as [`EmbedKind::Query`] (e.g. `"query: "`).
    pub query_prefix: String,
    /// Prepended to every text embedded as [`EmbedKind::Document`] (e.g. `"passage: "`).
    pub document_prefix: String,
    /// Texts run through the model at once; a larger batch is split into sub-batches of this
    /// size. `0` counts as `1`.
    pub batch_size: usize,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            max_tokens: None,
            query_prefix: String::new(),
            document_prefix: String::new(),
            batch_size: 32,
        }
    }
}

/// Where the model runs. Only the CPU for now; GPU backends can be added behind features.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmbedDevice {
    /// The CPU, all cores (candle's matrix products are multi-threaded).
    #[default]
    Cpu,
}

impl EmbedDevice {
    fn candle(self) -> Device {
        match self {
            EmbedDevice::Cpu => Device::Cpu,
        }
    }
}

/// The weights file of a model directory.
const WEIGHTS: &str = "model.safetensors";
/// Suffix of the word-embedding tensor, used to find how a weights file prefixes its names
/// (`bert.`, `model.`, or nothing).
const WORD_EMBEDDINGS: &str = "embeddings.word_embeddings.weight";

/// A sentence embedder for BERT-family sentence-transformers models (all-MiniLM-L6-v2,
/// bge-small-en-v1.5, ...), computing the same vectors as sentence-transformers.
///
/// Thread-safe: [`Embedder::embed`] takes `&self` and can be called from several threads, each
/// call using all cores for its matrix products.
pub struct BertEmbedder {
    identity: EmbedderIdentity,
    dir: PathBuf,
    model: Encoder,
    /// Truncates at `max_tokens`; pads nothing (sub-batches are padded here).
    tokenizer: Tokenizer,
    device: Device,
    pooling: Pooling,
    lowercase: bool,
    max_tokens: usize,
    pad_id: u32,
    query_prefix: String,
    document_prefix: String,
    batch_size: usize,
}

impl BertEmbedder {
    /// Loads the model in `model_dir` to run on the CPU.
    pub fn load(model_dir: &Path, opts: EmbedOptions) -> Result<Self> {
        Self::load_on(model_dir, opts, EmbedDevice::Cpu)
    }

    /// Loads the model in `model_dir` to run on `device`.
    pub fn load_on(model_dir: &Path, opts: EmbedOptions, device: EmbedDevice) -> Result<Self> {
        let dir = model_dir;
        if !dir.is_dir() {
            return Err(EmbedError::ModelDirMissing {
                dir: dir.to_path_buf(),
            });
        }
        let device = device.candle();

        let config_path = dir.join("config.json");
        let config = read_config(&config_path)?;
        let layout = read_layout(dir)?;
        if let Some((dim, path)) = &layout.pooling_dim
            && *dim != config.hidden_size
        {
            return Err(invalid(
                path,
                format!(
                    "word_embedding_dimension {dim} differs from the hidden_size {} of {}",
                    config.hidden_size,
                    config_path.display()
                ),
            ));
        }

        let tokenizer_path = dir.join("tokenizer.json");
        let bytes = read_required(&tokenizer_path)?;
        let mut tokenizer =
            Tokenizer::from_bytes(&bytes).map_err(|e| EmbedError::InvalidTokenizer {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;
        let tokenizer_max = tokenizer.get_truncation().map(|t| t.max_length);
        let pad_id = tokenizer
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| tokenizer.token_to_id("[PAD]"))
            .unwrap_or(u32::try_from(config.pad_token_id).unwrap_or(0));
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| EmbedError::InvalidTokenizer {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > config.vocab_size || pad_id as usize >= config.vocab_size {
            return Err(invalid(
                &tokenizer_path,
                format!(
                    "it has {vocab} tokens (padding id {pad_id}) but config.json's vocab_size \
                     is {}; the files belong to different models",
                    config.vocab_size
                ),
            ));
        }
        // Tokens every input costs (special tokens); a limit must leave room for text.
        let overhead = tokenizer
            .encode_fast("", true)
            .map(|e| e.len())
            .map_err(|e| EmbedError::InvalidTokenizer {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;

        let limit = config.max_position_embeddings;
        let max_tokens = match opts.max_tokens {
            Some(n) if n > limit => {
                return Err(EmbedError::InvalidOption {
                    dir: dir.to_path_buf(),
                    message: format!(
                        "max_tokens {n} exceeds the model's limit of {limit} tokens \
                         (max_position_embeddings)"
                    ),
                });
            }
            Some(n) => n,
            None => layout
                .max_seq_length
                .or(tokenizer_max)
                .unwrap_or(limit)
                .min(limit),
        };
        if max_tokens <= overhead {
            return Err(EmbedError::InvalidOption {
                dir: dir.to_path_buf(),
                message: format!(
                    "max_tokens {max_tokens} leaves no room for text after the model's \
                     {overhead} special tokens"
                ),
            });
        }
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| EmbedError::InvalidTokenizer {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;

        let weights_path = dir.join(WEIGHTS);
        let bytes = read_required(&weights_path)?;
        let checksum = match manifest_sha256(dir, WEIGHTS)? {
            Some(sha) => sha,
            None => sha256_hex(&bytes),
        };
        let model = load_model(&weights_path, bytes, &config, &device)?;

        Ok(BertEmbedder {
            identity: EmbedderIdentity {
                model: model_name(dir),
                checksum,
                dim: config.hidden_size,
            },
            dir: dir.to_path_buf(),
            model,
            tokenizer,
            device,
            pooling: layout.pooling,
            lowercase: layout.lowercase,
            max_tokens,
            pad_id,
            query_prefix: opts.query_prefix,
            document_prefix: opts.document_prefix,
            batch_size: opts.batch_size.max(1),
        })
    }

    /// The model directory it was loaded from.
    pub fn model_dir(&self) -> &Path {
        &self.dir
    }

    /// How token vectors are pooled into one vector.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// The most tokens (special tokens included) the model sees of one text.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Texts run through the model at once.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Tokens the model sees of `text` embedded as `kind`: prefix and special tokens included,
    /// after truncation to [`max_tokens`](Self::max_tokens).
    pub fn input_tokens(&self, text: &str, kind: EmbedKind) -> Result<usize> {
        let input = self.prepare(text, kind);
        self.tokenizer
            .encode_fast(input, true)
            .map(|e| e.len())
            .map_err(|e| self.inference_error(e.to_string()))
    }

    /// One L2-normalised vector per text, in order (the typed-error form of
    /// [`Embedder::embed`]).
    pub fn embed_texts(&self, texts: &[&str], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<EncodeInput<'_>> =
            texts.iter().map(|t| self.prepare(t, kind).into()).collect();
        let encodings = self
            .tokenizer
            .encode_batch_fast(inputs, true)
            .map_err(|e| self.inference_error(e.to_string()))?;

        // Longest first, so each sub-batch holds texts of similar length and pads little.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));

        let mut out = vec![Vec::new(); texts.len()];
        let mut buffers = Buffers::default();
        for group in order.chunks(self.batch_size) {
            let batch: Vec<&Encoding> = group.iter().map(|&i| &encodings[i]).collect();
            let vectors = self
                .forward(&batch, &mut buffers)
                .map_err(|e| self.inference_error(e.to_string()))?;
            for (&i, v) in group.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// The text the tokenizer sees: the kind's prefix, then the text, lower-cased when the
    /// model asks for it.
    fn prepare<'t>(&self, text: &'t str, kind: EmbedKind) -> Cow<'t, str> {
        let prefix = match kind {
            EmbedKind::Query => &self.query_prefix,
            EmbedKind::Document => &self.document_prefix,
        };
        match (prefix.is_empty(), self.lowercase) {
            (true, false) => Cow::Borrowed(text),
            (true, true) => Cow::Owned(text.to_lowercase()),
            (false, false) => Cow::Owned(format!("{prefix}{text}")),
            (false, true) => Cow::Owned(format!("{prefix}{text}").to_lowercase()),
        }
    }

    /// Runs one sub-batch: pads to its longest input, encodes, pools and normalises.
    fn forward(
        &self,
        batch: &[&Encoding],
        buffers: &mut Buffers,
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let width = batch.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        buffers.ids.clear();
        buffers.lengths.clear();
        for e in batch {
            let ids = e.get_ids();
            buffers.ids.extend_from_slice(ids);
            buffers
                .ids
                .resize(buffers.ids.len() + width - ids.len(), self.pad_id);
            buffers
                .lengths
                .push(u32::try_from(ids.len()).unwrap_or(u32::MAX));
        }
        let ids = Tensor::from_slice(&buffers.ids, (rows, width), &self.device)?;
        let hidden = self.model.forward(&ids, &buffers.lengths)?;
        let hidden = hidden
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;

        let dim = self.identity.dim;
        let mut vectors = Vec::with_capacity(rows);
        for (r, e) in batch.iter().enumerate() {
            let tokens = &hidden[r * width * dim..(r * width + e.len()) * dim];
            let mut v = match self.pooling {
                Pooling::Cls => tokens.get(..dim).map(<[f32]>::to_vec).unwrap_or_default(),
                Pooling::Mean => mean_rows(tokens, dim),
            };
            v.resize(dim, 0.0);
            normalize(&mut v);
            vectors.push(v);
        }
        Ok(vectors)
    }

    fn inference_error(&self, message: String) -> EmbedError {
        EmbedError::Inference {
            model: self.identity.model.clone(),
            message,
        }
    }
}

/// Input buffers reused across the sub-batches of one call.
#[derive(Default)]
struct Buffers {
    ids: Vec<u32>,
    lengths: Vec<u32>,
}

/// The mean of the `dim`-wide rows of `tokens` (zeros when there are none).
fn mean_rows(tokens: &[f32], dim: usize) -> Vec<f32> {
    let mut sum = vec![0f32; dim];
    let mut n = 0usize;
    for row in tokens.chunks_exact(dim) {
        for (s, x) in sum.iter_mut().zip(row) {
            *s += x;
        }
        n += 1;
    }
    let n = n.max(1) as f32;
    for s in &mut sum {
        *s /= n;
    }
    sum
}

/// Scales `v` to unit length (a zero vector stays zero).
fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for x in v {
        *x /= norm;
    }
}

/// Reads `config.json` as a BERT config, refusing other architectures with a clear message.
fn read_config(path: &Path) -> Result<Config> {
    let bytes = read_required(path)?;
    let value: serde_json::Value = parse_json(path, &bytes)?;
    if let Some(t) = value.get("model_type").and_then(|v| v.as_str())
        && t != "bert"
    {
        return Err(unsupported(
            path,
            format!("model_type `{t}` (only `bert` models are supported)"),
        ));
    }
    let mut value = value;
    if let Some(act) = value.get("hidden_act").and_then(|v| v.as_str()) {
        // candle's names: `gelu` (exact, erf) and `geluapproximate` (tanh).
        let candle_act = match act {
            "gelu" | "relu" => act.to_owned(),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => "geluapproximate".to_owned(),
            _ => return Err(unsupported(path, format!("hidden_act `{act}`"))),
        };
        value["hidden_act"] = serde_json::Value::String(candle_act);
    }
    if let Some(p) = value
        .get("position_embedding_type")
        .and_then(|v| v.as_str())
        && p != "absolute"
    {
        return Err(unsupported(path, format!("position_embedding_type `{p}`")));
    }
    let config: Config = serde_json::from_value(value).map_err(|e| invalid(path, e.to_string()))?;
    if config.hidden_size == 0
        || config.num_attention_heads == 0
        || !config
            .hidden_size
            .is_multiple_of(config.num_attention_heads)
    {
        return Err(invalid(
            path,
            format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                config.hidden_size, config.num_attention_heads
            ),
        ));
    }
    if config.max_position_embeddings == 0 || config.type_vocab_size == 0 {
        return Err(invalid(
            path,
            "max_position_embeddings and type_vocab_size must be positive",
        ));
    }
    Ok(config)
}

/// Builds the encoder from the bytes of `model.safetensors`, whatever prefix its tensor names
/// carry (`bert.`, `model.`, or none).
fn load_model(path: &Path, bytes: Vec<u8>, config: &Config, device: &Device) -> Result<Encoder> {
    let weights_error = |message: String| EmbedError::InvalidWeights {
        path: path.to_path_buf(),
        message,
    };
    let tensors = candle_core::safetensors::BufferedSafetensors::new(bytes)
        .map_err(|e| weights_error(e.to_string()))?;
    let prefix = tensors
        .tensors()
        .into_iter()
        .find_map(|(name, _)| name.strip_suffix(WORD_EMBEDDINGS).map(str::to_owned))
        .ok_or_else(|| weights_error(format!("no tensor named `{WORD_EMBEDDINGS}`")))?;
    let vb = VarBuilder::from_backend(Box::new(tensors), DType::F32, device.clone());
    let vb = match prefix.strip_suffix('.') {
        Some(p) => vb.pp(p),
        None if prefix.is_empty() => vb,
        None => {
            return Err(weights_error(format!(
                "unexpected tensor name `{prefix}{WORD_EMBEDDINGS}`"
            )));
        }
    };
    Encoder::load(&vb, config).map_err(|e| weights_error(e.to_string()))
}

impl Embedder for BertEmbedder {
    fn identity(&self) -> &EmbedderIdentity {
        &self.identity
    }

    fn embed(&self, texts: &[&str], kind: EmbedKind) -> Result<Vec<Vec<f32>>, SeamError> {
        self.embed_texts(texts, kind)
            .map_err(|e| SeamError::new(e.to_string()))
    }
}

impl fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("identity", &self.identity)
            .field("dir", &self.dir)
            .field("pooling", &self.pooling)
            .field("max_tokens", &self.max_tokens)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_normalize() {
        let v = mean_rows(&[1.0, 2.0, 3.0, 6.0], 2);
        assert_eq!(v, vec![2.0, 4.0]);
        assert!(mean_rows(&[], 3).iter().all(|x| *x == 0.0));
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut z = vec![0.0; 3];
        normalize(&mut z);
        assert_eq!(z, vec![0.0; 3]);
    }

    #[test]
    fn missing_dir_and_files_say_how_to_install() {
        let err = BertEmbedder::load(Path::new("/nonexistent/docent/m"), EmbedOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/docent/m"), "{err}");
        assert!(err.contains("scripts/fetch-models.sh"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let err = BertEmbedder::load(dir.path(), EmbedOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.json: not found"), "{err}");
        assert!(err.contains("docent models import <DIR>"), "{err}");
    }

    #[test]
    fn other_architectures_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"model_type": "roberta"}"#).unwrap();
        let err = read_config(&path).unwrap_err().to_string();
        assert!(err.contains("unsupported model"), "{err}");
        assert!(err.contains("roberta"), "{err}");
        std::fs::write(&path, r#"{"model_type": "bert"}"#).unwrap();
        let err = read_config(&path).unwrap_err().to_string();
        assert!(err.contains("config.json: not a valid model file"), "{err}");
    }
}
