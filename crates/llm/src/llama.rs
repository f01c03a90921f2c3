//! Llama-architecture models (Llama 3.x, Mistral, SmolLM2, …) from a GGUF file, on docent's own
//! graph ([`crate::graph`]).
//!
//! Compared with `candle_transformers::models::quantized_llama`, which docent used before: keys
//! and values are not copied per query head (grouped-query attention by reshaping), prompts go
//! through f32 GEMM on the CPU, the embedding table stays quantised, and Llama 3.1's RoPE
//! frequency factors (`rope_freqs.weight`) are applied. Mixture-of-experts files (Mixtral) still
//! run on candle's implementation. `greedy_continuation_matches_llama_cpp` in the tests compares
//! the output with llama.cpp's on the same file.

use std::sync::Arc;

use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use crate::gemma3::check_heads;
use crate::graph::{Embedding, KvCache, Linear, Meta, Rope, attention, heads, logits};

pub(crate) struct Llama {
    embed: Embedding,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    rope: Rope,
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
    cache: KvCache,
}

impl Llama {
    /// Whether this file is one docent's graph runs (dense, not mixture-of-experts).
    pub fn handles(content: &Content) -> bool {
        let md = Meta {
            content,
            arch: "llama",
        };
        md.opt_usize("expert_count").unwrap_or(0) == 0
    }

    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: &Content,
        r: &mut R,
        device: &Device,
        context_length: usize,
    ) -> Result<Self> {
        let md = Meta {
            content,
            arch: "llama",
        };
        let n_embd = md.usize("embedding_length")?;
        let n_layer = md.usize("block_count")?;
        let n_head = md.usize("attention.head_count")?;
        let n_kv_head = md.opt_usize("attention.head_count_kv").unwrap_or(n_head);
        let head_dim = md
            .opt_usize("attention.key_length")
            .unwrap_or(n_embd / n_head.max(1));
        let rotary_dim = md.opt_usize("rope.dimension_count").unwrap_or(head_dim);
        let eps = md.f64("attention.layer_norm_rms_epsilon").unwrap_or(1e-5);
        let base = md.f64("rope.freq_base").unwrap_or(10_000.0);
        let position_scale = match (
            md.string("rope.scaling.type"),
            md.f64("rope.scaling.factor"),
        ) {
            (Some("linear"), Some(f)) if f > 0.0 => 1.0 / f,
            _ => 1.0,
        };
        check_heads(n_head, n_kv_head, head_dim)?;
        if rotary_dim != head_dim {
            candle_core::bail!(
                "partial rotary embeddings ({rotary_dim} of {head_dim}) are not supported"
            );
        }

        let mut tensor = |name: &str, dev: &Device| content.tensor(r, name, dev);
        let freq_factors: Option<Vec<f32>> =
            if content.tensor_infos.contains_key("rope_freqs.weight") {
                Some(
                    tensor("rope_freqs.weight", &Device::Cpu)?
                        .dequantize(&Device::Cpu)?
                        .flatten_all()?
                        .to_vec1()?,
                )
            } else {
                None
            };
        let table = Arc::new(tensor("token_embd.weight", &Device::Cpu)?);
        let output = if content.tensor_infos.contains_key("output.weight") {
            Linear::new(tensor("output.weight", device)?)?
        } else if device.is_cpu() {
            Linear::from_arc(table.clone())?
        } else {
            Linear::new(tensor("token_embd.weight", device)?)?
        };
        let embed = Embedding::new(table, device)?;
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight", device)?, eps)?;

        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let mut w = |n: &str| tensor(&format!("blk.{i}.{n}.weight"), device);
            let mut mm = |n: &str| w(n).and_then(Linear::new);
            let (q, k, v, o) = (
                mm("attn_q")?,
                mm("attn_k")?,
                mm("attn_v")?,
                mm("attn_output")?,
            );
            let (gate, up, down) = (mm("ffn_gate")?, mm("ffn_up")?, mm("ffn_down")?);
            let mut rms = |n: &str| w(n).and_then(|t| RmsNorm::from_qtensor(t, eps));
            layers.push(Layer {
                q,
                k,
                v,
                o,
                attn_norm: rms("attn_norm")?,
                ffn_norm: rms("ffn_norm")?,
                gate,
                up,
                down,
                cache: KvCache::default(),
            });
        }
        Ok(Llama {
            embed,
            n_head,
            n_kv_head,
            head_dim,
            layers,
            norm,
            output,
            // llama's GGUF layout rotates adjacent pairs.
            rope: Rope::new(
                head_dim,
                base,
                position_scale,
                freq_factors.as_deref(),
                true,
                context_length.max(1),
                device,
            )?,
        })
    }

    pub fn clear_kv_cache(&mut self) {
        for l in &mut self.layers {
            l.cache.clear();
        }
    }

    /// Logits `(1, vocab)` of the token after `tokens` `(1, len)`, which start at position `pos`.
    pub fn forward(&mut self, tokens: &Tensor, pos: usize) -> Result<Tensor> {
        let ids: Vec<u32> = tokens.squeeze(0)?.to_vec1()?;
        if pos + ids.len() > self.rope.positions() {
            candle_core::bail!(
                "position {} is beyond the context length {} the model was loaded for",
                pos + ids.len(),
                self.rope.positions()
            );
        }
        let (nh, nkv, hd) = (self.n_head, self.n_kv_head, self.head_dim);
        let scale = 1.0 / (hd as f64).sqrt();
        let mut x = self.embed.rows(&ids)?.unsqueeze(0)?;
        for l in &mut self.layers {
            let h = l.attn_norm.forward(&x)?;
            let q = self.rope.apply(&heads(l.q.forward(&h)?, nh, hd)?, pos)?;
            let k = self.rope.apply(&heads(l.k.forward(&h)?, nkv, hd)?, pos)?;
            let v = heads(l.v.forward(&h)?, nkv, hd)?;
            let a = attention(&q, k, v, &mut l.cache, pos, scale, None)?;
            x = (x + l.o.forward(&a)?)?;
            let h = l.ffn_norm.forward(&x)?;
            let h = (candle_nn::ops::silu(&l.gate.forward(&h)?)? * l.up.forward(&h)?)?;
            x = (x + l.down.forward(&h)?)?;
        }
        logits(&x, &self.norm, &self.output)
    }
}
