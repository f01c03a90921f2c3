//! [`BertEmbedder`]: a BERT-family sentence-transformers model run with candle.
//!
//! Loading reads `config.json`, `tokenizer.json` and `model.safetensors`, plus the
//! sentence-transformers files that say how to pool (`modules.json`, `1_Pooling/config.json`)
//! and how long inputs may be (`sentence_bert_config.json`). Embedding tokenizes a batch,
//! sorts it by length, runs the encoder on sub-batches (on the CPU packed without padding, on
//! a GPU padded only to their own longest input), pools (mean over the attention mask, or the
//! `[CLS]` token), L2-normalises, and returns the vectors in the caller's order.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

#[cfg(any(feature = "metal", feature = "cuda"))]
use candle_core::Tensor;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use docent_core::{EmbedKind, Embedder, EmbedderIdentity, SeamError};
use tokenizers::{EncodeInput, Encoding, Tokenizer, TruncationParams};

use crate::cpu::CpuEncoder;
#[cfg(any(feature = "metal", feature = "cuda"))]
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
    /// The arithmetic of the CPU encoder's matrix products.
    pub precision: Precision,
    /// Workers in the CPU encoder's thread team; `0`: one per physical core.
    pub threads: usize,
}

/// The arithmetic of the encoder's matrix products on the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats throughout: the vectors of sentence-transformers.
    #[default]
    F32,
    /// Weights quantised to 8-bit integers per output row at load, activations per row before
    /// each product, integer dot products. Faster, slightly different vectors: the embedder's
    /// identity says `int8`, so an index built with one precision is not mixed with the other.
    Int8,
}

impl Precision {
    /// `"f32"` or `"int8"`, as in the configuration.
    pub fn parse(s: &str) -> Option<Precision> {
        match s {
            "f32" => Some(Precision::F32),
            "int8" => Some(Precision::Int8),
            _ => None,
        }
    }

    /// The configuration's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
        }
    }
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            max_tokens: None,
            query_prefix: String::new(),
            document_prefix: String::new(),
            batch_size: 32,
            precision: Precision::F32,
            threads: 0,
        }
    }
}

/// Where the model runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmbedDevice {
    /// The CPU, on docent's own kernels (`docent-kernels`), with a team of
    /// [`EmbedOptions::threads`] workers.
    #[default]
    Cpu,
    /// An Apple GPU through candle's Metal back end (feature `metal`).
    #[cfg(feature = "metal")]
    Metal,
    /// An NVIDIA GPU through candle's CUDA back end (feature `cuda`).
    #[cfg(feature = "cuda")]
    Cuda,
}

/// The encoder, on the device it was loaded for.
enum Model {
    Cpu(CpuEncoder),
    #[cfg(any(feature = "metal", feature = "cuda"))]
    Candle {
        encoder: Encoder,
        device: Device,
    },
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
    model: Model,
    /// Truncates at `max_tokens`; pads nothing.
    tokenizer: Tokenizer,
    precision: Precision,
    pooling: Pooling,
    lowercase: bool,
    max_tokens: usize,
    /// The padding token (the GPU path pads sub-batches).
    #[cfg_attr(not(any(feature = "metal", feature = "cuda")), allow(dead_code))]
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
        let model = load_model(&weights_path, bytes, &config, device, &opts)?;
        // The f32 identity is the one indexes were built with before int8 existed, so they stay
        // valid; int8 vectors differ slightly and must not be mixed with them.
        let name = match opts.precision {
            Precision::F32 => model_name(dir),
            Precision::Int8 => format!("{} (int8)", model_name(dir)),
        };

        Ok(BertEmbedder {
            identity: EmbedderIdentity {
                model: name,
                checksum,
                dim: config.hidden_size,
            },
            dir: dir.to_path_buf(),
            model,
            tokenizer,
            precision: opts.precision,
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

    /// The arithmetic of the encoder's matrix products.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Workers in the CPU encoder's thread team (`None` on a GPU).
    pub fn threads(&self) -> Option<usize> {
        match &self.model {
            Model::Cpu(m) => Some(m.threads()),
            #[cfg(any(feature = "metal", feature = "cuda"))]
            Model::Candle { .. } => None,
        }
    }

    /// How many times the CPU encoder's activation buffers have grown (allocated) so far.
    #[cfg(test)]
    fn scratch_growths(&self) -> u64 {
        match &self.model {
            Model::Cpu(m) => m.scratch_growths(),
            #[cfg(any(feature = "metal", feature = "cuda"))]
            Model::Candle { .. } => 0,
        }
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
                .map_err(|e| self.inference_error(e))?;
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

    /// Runs one sub-batch: encodes, pools and normalises.
    fn forward(&self, batch: &[&Encoding], buffers: &mut Buffers) -> Result<Vec<Vec<f32>>, String> {
        match &self.model {
            Model::Cpu(encoder) => self.forward_cpu(encoder, batch, buffers),
            #[cfg(any(feature = "metal", feature = "cuda"))]
            Model::Candle { encoder, device } => self
                .forward_padded(encoder, device, batch, buffers)
                .map_err(|e| e.to_string()),
        }
    }

    /// The CPU path: the texts' tokens packed one after the other, no padding.
    fn forward_cpu(
        &self,
        encoder: &CpuEncoder,
        batch: &[&Encoding],
        buffers: &mut Buffers,
    ) -> Result<Vec<Vec<f32>>, String> {
        buffers.ids.clear();
        buffers.starts.clear();
        buffers.starts.push(0);
        for e in batch {
            buffers.ids.extend_from_slice(e.get_ids());
            buffers.starts.push(buffers.ids.len());
        }
        let dim = self.identity.dim;
        let mut vectors = Vec::with_capacity(batch.len());
        encoder.forward(&buffers.ids, &buffers.starts, |_, tokens| {
            vectors.push(self.pool(tokens, dim));
        })?;
        Ok(vectors)
    }

    /// One vector from a text's token vectors (`tokens` is `len × dim`), normalised.
    fn pool(&self, tokens: &[f32], dim: usize) -> Vec<f32> {
        let mut v = match self.pooling {
            Pooling::Cls => tokens.get(..dim).map(<[f32]>::to_vec).unwrap_or_default(),
            Pooling::Mean => mean_rows(tokens, dim),
        };
        v.resize(dim, 0.0);
        normalize(&mut v);
        v
    }

    /// The GPU path: pads to the sub-batch's longest input.
    #[cfg(any(feature = "metal", feature = "cuda"))]
    fn forward_padded(
        &self,
        encoder: &Encoder,
        device: &Device,
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
        let ids = Tensor::from_slice(&buffers.ids, (rows, width), device)?;
        let hidden = encoder.forward(&ids, &buffers.lengths)?;
        let hidden = hidden
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let dim = self.identity.dim;
        Ok(batch
            .iter()
            .enumerate()
            .map(|(r, e)| self.pool(&hidden[r * width * dim..(r * width + e.len()) * dim], dim))
            .collect())
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
    /// Where each text's tokens start in `ids` (CPU path), and where they end.
    starts: Vec<usize>,
    /// Each text's length (GPU path).
    #[cfg(any(feature = "metal", feature = "cuda"))]
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
/// carry (`bert.`, `model.`, or none), for `device`.
fn load_model(
    path: &Path,
    bytes: Vec<u8>,
    config: &Config,
    device: EmbedDevice,
    opts: &EmbedOptions,
) -> Result<Model> {
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
    let candle_device = match device {
        EmbedDevice::Cpu => Device::Cpu,
        #[cfg(feature = "metal")]
        EmbedDevice::Metal => Device::new_metal(0).map_err(|e| weights_error(e.to_string()))?,
        #[cfg(feature = "cuda")]
        EmbedDevice::Cuda => Device::new_cuda(0).map_err(|e| weights_error(e.to_string()))?,
    };
    // The CPU path reads the weights on the CPU and packs them; a GPU path keeps them there.
    let vb = VarBuilder::from_backend(Box::new(tensors), DType::F32, candle_device.clone());
    let vb = match prefix.strip_suffix('.') {
        Some(p) => vb.pp(p),
        None if prefix.is_empty() => vb,
        None => {
            return Err(weights_error(format!(
                "unexpected tensor name `{prefix}{WORD_EMBEDDINGS}`"
            )));
        }
    };
    match device {
        EmbedDevice::Cpu => CpuEncoder::load(&vb, config, opts.precision, opts.threads)
            .map(Model::Cpu)
            .map_err(|e| weights_error(e.to_string())),
        #[cfg(any(feature = "metal", feature = "cuda"))]
        _ => {
            if opts.precision != Precision::F32 {
                return Err(EmbedError::InvalidOption {
                    dir: path.parent().unwrap_or(path).to_path_buf(),
                    message: "precision `int8` runs on the CPU only; use `f32` on a GPU".into(),
                });
            }
            Encoder::load(&vb, config)
                .map(|encoder| Model::Candle {
                    encoder,
                    device: candle_device,
                })
                .map_err(|e| weights_error(e.to_string()))
        }
    }
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
            .field("precision", &self.precision)
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

    fn model_dir() -> PathBuf {
        docent_test_support::require_model("all-MiniLM-L6-v2")
    }

    #[test]
    fn steady_state_does_not_grow_the_scratch() {
        let e = BertEmbedder::load(&model_dir(), EmbedOptions::default()).unwrap();
        let long = "The architect issues the certificate of completion. ".repeat(8);
        let texts = [
            "a short one",
            long.as_str(),
            "another text of middling length here",
        ];
        e.embed_texts(&texts, EmbedKind::Document).unwrap();
        let grown = e.scratch_growths();
        assert!(grown > 0);
        for _ in 0..3 {
            e.embed_texts(&texts, EmbedKind::Document).unwrap();
            e.embed_texts(&texts[..1], EmbedKind::Document).unwrap();
        }
        assert_eq!(e.scratch_growths(), grown);
    }

    /// The GPU path's candle encoder, run on the CPU, gives the kernels' vectors: both paths
    /// compute the same model.
    #[test]
    fn candle_path_equals_kernels_path() {
        let dir = model_dir();
        let e = BertEmbedder::load(&dir, EmbedOptions::default()).unwrap();
        let config = read_config(&dir.join("config.json")).unwrap();
        let bytes = std::fs::read(dir.join(WEIGHTS)).unwrap();
        let tensors = candle_core::safetensors::BufferedSafetensors::new(bytes).unwrap();
        let vb = VarBuilder::from_backend(Box::new(tensors), DType::F32, Device::Cpu);
        let encoder = crate::encoder::Encoder::load(&vb, &config).unwrap();

        let long = "Payment is due thirty days after the certificate of completion. ".repeat(5);
        let texts = ["The roof repairs were approved.", long.as_str()];
        let want = e.embed_texts(&texts, EmbedKind::Document).unwrap();
        let encodings: Vec<Encoding> = texts
            .iter()
            .map(|t| e.tokenizer.encode_fast(*t, true).unwrap())
            .collect();
        let width = encodings.iter().map(Encoding::len).max().unwrap();
        let mut ids = Vec::new();
        for enc in &encodings {
            ids.extend_from_slice(enc.get_ids());
            ids.resize(ids.len() + width - enc.len(), e.pad_id);
        }
        let lengths: Vec<u32> = encodings.iter().map(|x| x.len() as u32).collect();
        let ids =
            candle_core::Tensor::from_slice(&ids, (texts.len(), width), &Device::Cpu).unwrap();
        let hidden = encoder.forward(&ids, &lengths).unwrap();
        let hidden = hidden.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (r, enc) in encodings.iter().enumerate() {
            let got = e.pool(&hidden[r * width * 384..(r * width + enc.len()) * 384], 384);
            let dot: f32 = got.iter().zip(&want[r]).map(|(a, b)| a * b).sum();
            assert!(dot > 0.99999, "text {r}: cosine {dot}");
        }
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
