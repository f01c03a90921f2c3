//! Errors of the language model crate. Every error about a file names it.

use std::path::PathBuf;

/// A `Result` with [`LlmError`].
pub type Result<T, E = LlmError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{} is not a usable GGUF model file: {message}\nhint: re-download it, or check it with `docent models verify`",
        path.display()
    )]
    BadFile { path: PathBuf, message: String },

    #[error(
        "{} is a `{arch}` model, which docent cannot run yet\nhint: supported architectures are llama (Llama 3, Mistral, SmolLM2), qwen2, qwen3, qwen3moe and gemma3",
        path.display()
    )]
    UnsupportedArchitecture { path: PathBuf, arch: String },

    #[error("{} has a tokenizer docent cannot use: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },

    #[error("the chat template of {} failed to render: {message}", path.display())]
    Template { path: PathBuf, message: String },

    #[error(
        "the prompt needs {prompt} tokens but {model} has room for {context} (context length), leaving none for the answer\nhint: ask with fewer sources (-k) or a larger `llm.context_length`"
    )]
    PromptTooLong {
        model: String,
        prompt: usize,
        context: usize,
    },

    #[error("{message}\nhint: {hint}")]
    NotEnoughMemory { message: String, hint: String },

    #[error("device `{0}` is not available in this build\nhint: {1}")]
    Device(String, String),

    #[error("model computation failed: {0}")]
    Compute(#[from] candle_core::Error),

    #[error("model computation failed: {0}")]
    Kernel(String),
}

impl From<docent_kernels::ggml::QuantError> for LlmError {
    fn from(e: docent_kernels::ggml::QuantError) -> Self {
        LlmError::Kernel(e.to_string())
    }
}

impl From<docent_kernels::ShapeError> for LlmError {
    fn from(e: docent_kernels::ShapeError) -> Self {
        LlmError::Kernel(e.to_string())
    }
}
