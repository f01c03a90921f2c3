//! # docent-llm
//!
//! docent's language model: a quantized GGUF chat model running in-process on candle, behind
//! the [`docent_core::Generator`] seam.
//!
//! - [`ModelInfo`]: what a `.gguf` says about itself (architecture from `general.architecture`,
//!   never the file name; context length, layers, heads, parameters, weight type), read from
//!   the header without loading weights. Damaged and truncated files are errors naming the file.
//! - [`GgufTokenizer`]: the tokenizer from the file's own metadata (`tokenizer.ggml.*`):
//!   byte-level BPE (`gpt2`: SmolLM2, Qwen, Llama 3) or SentencePiece-style pieces with scores
//!   (`llama`: Gemma, Mistral); control tokens are parsed only in rendered templates, so text from
//!   documents cannot open a turn. [`IncrementalDecoder`] streams text without splitting a
//!   character.
//! - [`ChatTemplate`]: the file's `tokenizer.chat_template` rendered with minijinja (with
//!   Python string methods), or the family's format when the file has none.
//! - [`GgufGenerator`]: loads llama, qwen2, qwen3, qwen3moe and gemma3 models; greedy or sampled
//!   (temperature, top-k, top-p, repeat penalty, seed) generation that streams, stops on the
//!   model's end-of-turn tokens, can be cancelled between tokens, and refuses a prompt that
//!   does not fit the context instead of truncating it.
//! - [`MemoryPlan`] and [`recommendations`]: weights + KV cache + working memory against what the
//!   machine has free, checked before loading; models that fit 16–64 GB machines.
//! - [`DeviceChoice`]: `auto|cpu|metal|cuda`; GPU back ends are the cargo features `metal`,
//!   `cuda`, `accelerate` and `mkl`, none needed by default.
//!
//! It refuses network access (weights load from local paths only), retrieval and prompt
//! building (the engine's), and logging of prompts or answers: no type here prints text in its
//! `Debug` output.

mod cpu;
mod device;
mod error;
mod gemma3;
mod generator;
mod gguf;
mod graph;
mod llama;
mod memory;
mod model;
mod template;
mod tokenizer;

pub use cpu::KvCacheType;
pub use device::{DeviceChoice, describe as describe_device};
pub use error::{LlmError, Result};
pub use generator::{DEFAULT_CONTEXT_CAP, GgufGenerator, LoadOptions, is_supported};
pub use gguf::{Architecture, ModelInfo};
pub use memory::{
    HEADROOM, MODEL_SHARE, MemoryPlan, Recommendation, all_recommendations, available_memory,
    recommendations, total_memory,
};
pub use template::ChatTemplate;
pub use tokenizer::{GgufTokenizer, IncrementalDecoder};
