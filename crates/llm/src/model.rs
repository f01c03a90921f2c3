//! The transformer itself: candle's quantized implementation for the file's architecture.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{
    quantized_gemma3, quantized_llama, quantized_qwen2, quantized_qwen3, quantized_qwen3_moe,
};

use crate::error::{LlmError, Result};
use crate::gguf::Architecture;

pub(crate) enum Weights {
    Llama(quantized_llama::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Qwen3Moe(quantized_qwen3_moe::GGUFQWenMoE),
}

impl Weights {
    pub fn load(
        path: &Path,
        content: Content,
        arch: Architecture,
        device: &Device,
    ) -> Result<Self> {
        let file = File::open(path).map_err(|source| LlmError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut r = BufReader::new(file);
        let bad = |e: candle_core::Error| LlmError::BadFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        Ok(match arch {
            Architecture::Llama => Weights::Llama(
                quantized_llama::ModelWeights::from_gguf(content, &mut r, device).map_err(bad)?,
            ),
            Architecture::Gemma3 => Weights::Gemma3(
                quantized_gemma3::ModelWeights::from_gguf(content, &mut r, device).map_err(bad)?,
            ),
            Architecture::Qwen2 => Weights::Qwen2(
                quantized_qwen2::ModelWeights::from_gguf(content, &mut r, device).map_err(bad)?,
            ),
            Architecture::Qwen3 => Weights::Qwen3(
                quantized_qwen3::ModelWeights::from_gguf(content, &mut r, device).map_err(bad)?,
            ),
            Architecture::Qwen3Moe => Weights::Qwen3Moe(
                quantized_qwen3_moe::GGUFQWenMoE::from_gguf(content, &mut r, device, DType::F32)
                    .map_err(bad)?,
            ),
        })
    }

    /// Logits of the token after `tokens`, which continue the sequence at position `pos`
    /// (`pos == 0` starts a new sequence).
    pub fn forward(&mut self, tokens: &Tensor, pos: usize) -> Result<Tensor> {
        let logits = match self {
            Weights::Llama(m) => m.forward(tokens, pos)?,
            Weights::Gemma3(m) => m.forward(tokens, pos)?,
            Weights::Qwen2(m) => m.forward(tokens, pos)?,
            Weights::Qwen3(m) => m.forward(tokens, pos)?,
            Weights::Qwen3Moe(m) => m.forward(tokens, pos)?,
        };
        // (batch 1, vocab) → (vocab)
        Ok(logits.squeeze(0)?.to_dtype(DType::F32)?)
    }

    /// Forgets the KV cache before a new sequence. Llama and Gemma restart by themselves when a
    /// sequence begins at position 0; the Qwen MoE model has no way to clear its cache, so the
    /// caller reloads it (see [`Weights::needs_reload`]).
    pub fn reset(&mut self) {
        match self {
            Weights::Qwen2(m) => m.clear_kv_cache(),
            Weights::Qwen3(m) => m.clear_kv_cache(),
            Weights::Llama(m) => m.clear_kv_cache(),
            Weights::Gemma3(_) | Weights::Qwen3Moe(_) => {}
        }
    }

    pub fn needs_reload(&self) -> bool {
        matches!(self, Weights::Qwen3Moe(_))
    }
}
