//! # docent-embed
//!
//! The embedding model's side of docent. It owns the embedding model: everything that needs the
//! model's own files from a local model directory laid out like a sentence-transformers model
//! (`config.json`, `tokenizer.json`, `model.safetensors`, `1_Pooling/config.json`, ...).
//!
//! - [`BertEmbedder`]: the on-device sentence embedder, a [`docent_core::Embedder`]. It
//!   tokenizes (the model's `tokenizer.json`, truncated at the model's input limit), runs the
//!   BERT encoder on the CPU with docent's own kernels (`docent-kernels`: weights packed once
//!   in f32 or int8 ([`Precision`]), texts packed without padding, one thread team), or with
//!   candle on a GPU (features `metal`, `cuda`), pools the token vectors as the model's pooling config
//!   says (mean over the attention mask, or `[CLS]`) and L2-normalises, so its vectors match
//!   sentence-transformers for the same model. A batch is sorted by length and run in
//!   sub-batches of [`EmbedOptions::batch_size`]; the vectors come back in the caller's order. Its [`EmbedderIdentity`](docent_core::EmbedderIdentity)
//!   is the folder name, the SHA-256 of the weights (from `MODEL.json` when the installer
//!   recorded it) and the vector dimension; with int8 the model name carries ` (int8)`, so an
//!   index of f32 vectors asks for a reindex. [`EmbedOptions`] sets the input limit, the query
//!   and document prefixes some models expect, and the batch size.
//! - [`HfTokenCounter`]: the same `tokenizer.json` used as a [`TokenCounter`], so chunks are
//!   measured in exactly the tokens the model will see (special tokens such as `[CLS]`/`[SEP]`
//!   included, nothing truncated).
//!
//! It refuses to fetch anything: models load from local paths only. A missing or incomplete
//! model directory is an [`EmbedError`] that names the path and says how to install the model;
//! damaged files, mismatched shapes and unsupported models (other architectures, pooling modes
//! or extra modules) are errors naming the file. It also refuses storage and caching of vectors:
//! that is the store's and the engine's business.
//!
//! Privacy: no type here keeps document text, and neither errors nor `Debug` output quote it.

mod bert;
mod cpu;
#[cfg(any(feature = "metal", feature = "cuda", test))]
mod encoder;
mod fast_count;
mod layout;

pub use bert::{BertEmbedder, EmbedDevice, EmbedOptions, Precision};
pub use layout::Pooling;

use std::fmt;
use std::path::{Path, PathBuf};

use docent_core::TokenCounter;
use tokenizers::Tokenizer;

/// The hint shown whenever a model, or a file of one, is missing.
const INSTALL_HINT: &str = "hint: run scripts/fetch-models.sh, or `docent models import <DIR>`";

/// Why a model could not be loaded. Every variant names the path it is about.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model directory does not exist (the model is not installed).
    #[error("model directory {} not found\n{INSTALL_HINT}", dir.display())]
    ModelDirMissing { dir: PathBuf },
    /// The model directory exists but lacks a file the model needs.
    #[error("{}: not found; the model directory is incomplete\n{INSTALL_HINT}", path.display())]
    FileMissing { path: PathBuf },
    /// A model file exists but could not be read.
    #[error("{}: could not read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `tokenizer.json` is not a tokenizer the `tokenizers` crate can load.
    #[error("{}: not a valid tokenizer: {message}\n{INSTALL_HINT}", path.display())]
    InvalidTokenizer { path: PathBuf, message: String },
    /// A model file (`config.json`, a pooling config, `MODEL.json`, ...) is not what a
    /// sentence-transformers model directory holds: damaged, or a different kind of model.
    #[error("{}: not a valid model file: {message}\n{REINSTALL_HINT}", path.display())]
    InvalidModelFile { path: PathBuf, message: String },
    /// The weights file is damaged, lacks a tensor, or has a tensor of the wrong shape for the
    /// model's `config.json`.
    #[error("{}: unusable weights: {message}\n{REINSTALL_HINT}", path.display())]
    InvalidWeights { path: PathBuf, message: String },
    /// The model is valid but of a kind docent cannot run (architecture, pooling mode, extra
    /// sentence-transformers modules).
    #[error("{}: unsupported model: {message}\n{SUPPORTED_HINT}", path.display())]
    Unsupported { path: PathBuf, message: String },
    /// An embedding option cannot work with this model (the caller's settings are at fault).
    #[error("model {}: invalid embedding option: {message}", dir.display())]
    InvalidOption { dir: PathBuf, message: String },
    /// Tokenizing or running the model failed (a bug, or the machine ran out of resources).
    /// Never quotes the input text.
    #[error("model {model}: could not compute embeddings: {message}")]
    Inference { model: String, message: String },
}

/// The hint shown when an installed model's files are damaged.
const REINSTALL_HINT: &str = "hint: reinstall the model: run scripts/fetch-models.sh, or \
     `docent models import <DIR>` with a complete sentence-transformers folder";

/// The hint shown when a model is of a kind docent cannot run.
const SUPPORTED_HINT: &str = "hint: docent runs BERT-family sentence-transformers models \
     (mean or CLS pooling), such as all-MiniLM-L6-v2 or bge-small-en-v1.5";

pub type Result<T, E = EmbedError> = std::result::Result<T, E>;

/// A [`TokenCounter`] backed by a model's own `tokenizer.json`.
///
/// Counts include the special tokens the model adds (`[CLS]`/`[SEP]` for BERT-like models) and
/// are never truncated: a text longer than the model's input limit counts all of its tokens, so
/// a chunker can see that it does not fit.
#[derive(Clone)]
pub struct HfTokenCounter {
    id: String,
    /// The model's tokenizer with truncation and padding turned off, used only for counting.
    counting: Tokenizer,
    /// The same counts without the tokenizer's bookkeeping, for BERT-family tokenizers.
    fast: Option<fast_count::BertCounter>,
    max_input_tokens: Option<usize>,
}

impl HfTokenCounter {
    /// Loads `<dir>/tokenizer.json`. The counter's [`TokenCounter::id`] is the name of the
    /// model directory (`all-MiniLM-L6-v2`).
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(EmbedError::ModelDirMissing {
                dir: dir.to_path_buf(),
            });
        }
        let path = dir.join("tokenizer.json");
        let bytes = std::fs::read(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                EmbedError::FileMissing { path: path.clone() }
            } else {
                EmbedError::Read {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let tokenizer =
            Tokenizer::from_bytes(&bytes).map_err(|e| EmbedError::InvalidTokenizer {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let max_input_tokens = tokenizer.get_truncation().map(|t| t.max_length);

        let mut counting = tokenizer;
        counting
            .with_truncation(None)
            .map_err(|e| EmbedError::InvalidTokenizer {
                path: path.clone(),
                message: e.to_string(),
            })?;
        counting.with_padding(None);

        Ok(HfTokenCounter {
            id: model_name(dir),
            fast: fast_count::BertCounter::new(&counting),
            counting,
            max_input_tokens,
        })
    }

    /// The most tokens the model takes in one input, as set by the truncation `max_length` of
    /// its `tokenizer.json`; `None` when the file sets no truncation.
    pub fn max_input_tokens(&self) -> Option<usize> {
        self.max_input_tokens
    }
}

/// The last component of the model directory, even when it was given as `.` or with a trailing
/// `..`.
fn model_name(dir: &Path) -> String {
    let named = match dir.file_name() {
        Some(name) => Some(name.to_os_string()),
        None => dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_os_string())),
    };
    match named {
        Some(name) => name.to_string_lossy().into_owned(),
        None => dir.display().to_string(),
    }
}

impl TokenCounter for HfTokenCounter {
    fn count(&self, text: &str) -> usize {
        if let Some(n) = self.fast.as_ref().and_then(|f| f.count(text)) {
            return n;
        }
        match self.counting.encode_fast(text, true) {
            Ok(encoding) => encoding.len(),
            // Encoding a plain string does not fail in practice; if it ever does, over-count
            // (no tokenizer makes more tokens than bytes, plus its special tokens) so that a
            // budget is never exceeded.
            Err(_) => text.len() + self.count_empty(),
        }
    }

    fn id(&self) -> &str {
        &self.id
    }
}

impl HfTokenCounter {
    /// Tokens of an empty input: the special tokens alone.
    fn count_empty(&self) -> usize {
        self.counting
            .encode_fast("", true)
            .map(|e| e.len())
            .unwrap_or(2)
    }
}

impl fmt::Debug for HfTokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HfTokenCounter")
            .field("id", &self.id)
            .field("max_input_tokens", &self.max_input_tokens)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dir_says_how_to_install() {
        let err = HfTokenCounter::from_model_dir(Path::new("/nonexistent/docent/models/m"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/docent/models/m"), "{err}");
        assert!(err.contains("scripts/fetch-models.sh"), "{err}");
        assert!(err.contains("docent models import <DIR>"), "{err}");
    }

    #[test]
    fn missing_and_invalid_tokenizer_name_the_file() {
        let dir = std::env::temp_dir().join(format!("docent-embed-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = HfTokenCounter::from_model_dir(&dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
        assert!(err.contains("hint:"), "{err}");

        std::fs::write(dir.join("tokenizer.json"), "{not json").unwrap();
        let err = HfTokenCounter::from_model_dir(&dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
        assert!(err.contains("not a valid tokenizer"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn model_name_is_the_folder() {
        assert_eq!(
            model_name(Path::new("/m/all-MiniLM-L6-v2")),
            "all-MiniLM-L6-v2"
        );
        assert_eq!(
            model_name(Path::new("/m/all-MiniLM-L6-v2/")),
            "all-MiniLM-L6-v2"
        );
    }
}
