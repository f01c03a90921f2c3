//! The transformer itself. On the CPU, docent's own compute path ([`crate::cpu`]) for dense
//! llama models and Gemma 3; on Metal/CUDA, docent's candle graphs for those two
//! ([`crate::llama`], [`crate::gemma3`]); candle's implementations for the rest.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{
    quantized_llama, quantized_qwen2, quantized_qwen3, quantized_qwen3_moe,
};

use crate::cpu::{CpuModel, CpuOptions};
use crate::error::{LlmError, Result};
use crate::gemma3::Gemma3;
use crate::gguf::Architecture;
use crate::llama::Llama;

pub(crate) enum Weights {
    /// docent's CPU path.
    Cpu(Box<CpuModel>),
    Llama(Llama),
    /// Mixture-of-experts llama files (Mixtral), on candle's implementation.
    LlamaMoe(quantized_llama::ModelWeights),
    Gemma3(Gemma3),
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
        context_length: usize,
        cpu: CpuOptions,
    ) -> Result<Self> {
        if device.is_cpu() && cpu_path(arch) && CpuModel::handles(&content, arch) {
            return Ok(Weights::Cpu(Box::new(CpuModel::load(
                path,
                &content,
                arch,
                context_length,
                cpu,
            )?)));
        }
        let file = File::open(path).map_err(|source| LlmError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut r = BufReader::new(file);
        if let Some((content, mut buf)) = requantized(path, &content, &mut r)? {
            return Self::load_from(path, content, &mut buf, arch, device, context_length);
        }
        Self::load_from(path, content, &mut r, arch, device, context_length)
    }

    fn load_from<R: Read + Seek>(
        path: &Path,
        content: Content,
        r: &mut R,
        arch: Architecture,
        device: &Device,
        context_length: usize,
    ) -> Result<Self> {
        let bad = |e: candle_core::Error| LlmError::BadFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        Ok(match arch {
            Architecture::Llama if Llama::handles(&content) => {
                Weights::Llama(Llama::from_gguf(&content, r, device, context_length).map_err(bad)?)
            }
            Architecture::Llama => Weights::LlamaMoe(
                quantized_llama::ModelWeights::from_gguf(content, r, device).map_err(bad)?,
            ),
            Architecture::Gemma3 => Weights::Gemma3(
                Gemma3::from_gguf(&content, r, device, context_length).map_err(bad)?,
            ),
            Architecture::Qwen2 => Weights::Qwen2(
                quantized_qwen2::ModelWeights::from_gguf(content, r, device).map_err(bad)?,
            ),
            Architecture::Qwen3 => Weights::Qwen3(
                quantized_qwen3::ModelWeights::from_gguf(content, r, device).map_err(bad)?,
            ),
            Architecture::Qwen3Moe => Weights::Qwen3Moe(
                quantized_qwen3_moe::GGUFQWenMoE::from_gguf(content, r, device, DType::F32)
                    .map_err(bad)?,
            ),
        })
    }

    /// Logits of the token after `tokens`, which continue the sequence at position `pos`
    /// (`pos == 0` starts a new sequence).
    pub fn forward(&mut self, tokens: &Tensor, pos: usize) -> Result<Tensor> {
        let logits = match self {
            Weights::Cpu(m) => {
                let ids: Vec<u32> = tokens.squeeze(0)?.to_vec1()?;
                let logits = m.forward(&ids, pos)?;
                return Ok(Tensor::from_slice(logits, logits.len(), &Device::Cpu)?);
            }
            Weights::Llama(m) => m.forward(tokens, pos)?,
            Weights::LlamaMoe(m) => m.forward(tokens, pos)?,
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
            Weights::LlamaMoe(m) => m.clear_kv_cache(),
            Weights::Gemma3(m) => m.clear_kv_cache(),
            Weights::Qwen3Moe(_) | Weights::Cpu(_) => {}
        }
    }

    pub fn needs_reload(&self) -> bool {
        matches!(self, Weights::Qwen3Moe(_))
    }
}

/// Architectures on docent's CPU path.
fn cpu_path(arch: Architecture) -> bool {
    matches!(
        arch,
        Architecture::Llama | Architecture::Gemma3 | Architecture::Qwen2 | Architecture::Qwen3
    )
}

/// Weights candle multiplies slowly on the CPU: Q4_1/Q5_0/Q5_1 with a scalar dot product per
/// block, and F16 matrices (SmolLM2's tied output layer), which it converts to f32 on every
/// forward pass — 170 ms per token for SmolLM2's 49152 × 576 output matrix.
fn slow_on_cpu(t: &gguf_file::TensorInfo) -> bool {
    match t.ggml_dtype {
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 => true,
        GgmlDType::F16 => {
            let dims = t.shape.dims();
            dims.len() == 2 && dims[1].is_multiple_of(GgmlDType::Q8_0.block_size())
        }
        _ => false,
    }
}

/// Files up to this size are converted in memory; larger ones load as they are.
const REQUANTIZE_LIMIT: u64 = 4_000_000_000;

/// When the file holds weights candle multiplies slowly (Q4_1 and F16 in the SmolLM2 starter
/// model), converts those tensors to Q8_0, which it has a SIMD kernel for: Q8_0 keeps every Q4_1 value to
/// within half a step of 1/127 of the block's range, and the dot products run on AVX2/NEON.
/// Returns the converted model as an in-memory GGUF, or `None` when nothing needs converting.
/// The price is memory: converted tensors take about 1.8 times their Q4_1 size.
fn requantized<R: Read + Seek>(
    path: &Path,
    content: &Content,
    r: &mut R,
) -> Result<Option<(Content, Cursor<Vec<u8>>)>> {
    let slow = content.tensor_infos.values().any(slow_on_cpu);
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX);
    if !slow || size > REQUANTIZE_LIMIT {
        return Ok(None);
    }
    let bad = |e: candle_core::Error| LlmError::BadFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(&str, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let convert = slow_on_cpu(&content.tensor_infos[name]);
        let t = content.tensor(r, name, &Device::Cpu).map_err(bad)?;
        let t = if convert {
            let f = t.dequantize(&Device::Cpu).map_err(bad)?;
            QTensor::quantize(&f, GgmlDType::Q8_0).map_err(bad)?
        } else {
            t
        };
        tensors.push((name.as_str(), t));
    }
    let metadata: Vec<(&str, &Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut buf = Cursor::new(Vec::with_capacity(size as usize * 2));
    gguf_file::write(&mut buf, &metadata, &refs).map_err(bad)?;
    buf.set_position(0);
    let converted = Content::read(&mut buf).map_err(bad)?;
    Ok(Some((converted, buf)))
}
