//! The BERT encoder on docent's own CPU compute core (`docent-kernels`).
//!
//! It computes what the reference BERT does (Hugging Face `BertModel`, absolute positions,
//! single-segment inputs) on a batch of texts packed by length: every text's tokens are rows of
//! one `[tokens × hidden]` matrix, one after the other, with no padding. Per layer:
//!
//! 1. `qkv = x · W_qkvᵀ + b` (query, key and value projections as one product);
//! 2. attention per (text, head) with the tiled online-softmax kernel, never holding a text's
//!    full score matrix, texts handed to the team's workers one at a time;
//! 3. `h = LayerNorm(ctx · W_oᵀ + b + x)`, bias, residual and norm fused into the product;
//! 4. `up = gelu(h · W_iᵀ + b)`, bias and GELU fused;
//! 5. `x = LayerNorm(up · W_dᵀ + b + h)`.
//!
//! Weights are packed once at load, in f32 ([`PackedF32`]) or quantised per row to int8
//! ([`PackedI8`], activations then quantised per row before each product). Activations live in
//! a [`Scratch`] that grows to the largest batch seen and is reused: the steady state allocates
//! nothing per layer. Every row of every product is computed on its own (int8 scales are per
//! row too) and attention never crosses texts, so a text's vector does not depend on the other
//! texts of its batch.

use std::sync::Mutex;

use candle_core::IndexOp;
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use docent_kernels::ops::{self, AttentionScratch, Mask, Rows};
use docent_kernels::{
    Epilogue, Isa, PackedF32, PackedI8, PerWorker, QuantizedRows, RowNorm, Scratch, Team, gemm_f32,
    gemm_i8,
};

use crate::bert::Precision;

/// A linear layer's weights, packed for the kernels.
enum Weights {
    F32(PackedF32),
    I8(PackedI8),
}

struct Linear {
    weights: Weights,
    bias: Vec<f32>,
}

impl Linear {
    /// Packs `weight [out × in]` (PyTorch's layout) and `bias [out]`.
    fn new(
        weight: &[f32],
        bias: Vec<f32>,
        out: usize,
        inp: usize,
        precision: Precision,
    ) -> Result<Self, String> {
        let weights = match precision {
            Precision::F32 => {
                Weights::F32(PackedF32::pack(weight, out, inp).map_err(|e| e.to_string())?)
            }
            Precision::Int8 => {
                Weights::I8(PackedI8::quantize(weight, out, inp).map_err(|e| e.to_string())?)
            }
        };
        Ok(Linear { weights, bias })
    }

    fn load(
        vb: &VarBuilder<'_>,
        inp: usize,
        out: usize,
        precision: Precision,
    ) -> candle_core::Result<Self> {
        let weight = vec_of(&vb.get((out, inp), "weight")?)?;
        let bias = vec_of(&vb.get(out, "bias")?)?;
        Linear::new(&weight, bias, out, inp, precision).map_err(candle_core::Error::msg)
    }

    /// `c [m × out] = epilogue(a [m × in] · Wᵀ)`.
    fn forward(
        &self,
        ctx: &Ctx<'_>,
        qa: &mut QuantizedRows,
        a: &[f32],
        m: usize,
        c: &mut [f32],
        epilogue: Epilogue<'_>,
    ) -> docent_kernels::Result<()> {
        match &self.weights {
            Weights::F32(w) => gemm_f32(ctx.isa, ctx.team, a, m, w, c, epilogue),
            Weights::I8(w) => {
                qa.quantize_on(ctx.isa, ctx.team, a, m, w.k())?;
                gemm_i8(ctx.isa, ctx.team, qa, w, c, epilogue)
            }
        }
    }
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn load(vb: &VarBuilder<'_>, size: usize, eps: f64) -> candle_core::Result<Self> {
        Ok(Norm {
            gamma: vec_of(&vb.get(size, "weight")?)?,
            beta: vec_of(&vb.get(size, "bias")?)?,
            eps: eps as f32,
        })
    }

    fn row_norm(&self) -> RowNorm<'_> {
        RowNorm::Layer {
            gamma: &self.gamma,
            beta: &self.beta,
            eps: self.eps,
        }
    }
}

struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

/// The values of a tensor, flattened, as f32.
fn vec_of(t: &candle_core::Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()
}

/// The team, dispatch path and per-worker attention buffers one forward pass uses.
struct Ctx<'a> {
    isa: Isa,
    team: &'a Team,
}

/// Buffers reused from batch to batch.
#[derive(Default)]
struct State {
    scratch: Scratch,
    qa: QuantizedRows,
    /// Offsets of each text's rows, in values of the context matrix (`tokens × hidden`).
    offsets: Vec<usize>,
}

/// The embeddings and encoder layers of a BERT model, packed for the CPU kernels.
pub(crate) struct CpuEncoder {
    word: Vec<f32>,
    /// Position embeddings plus the embedding of token type 0 (inputs are single segments).
    position: Vec<f32>,
    max_positions: usize,
    vocab: usize,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    ffn: usize,
    act: HiddenAct,
    isa: Isa,
    team: Team,
    attention: PerWorker<AttentionScratch>,
    state: Mutex<State>,
}

impl CpuEncoder {
    /// Loads the tensors under `vb` (named as in Hugging Face's `BertModel`), checking every
    /// shape against `config`, and packs them for `precision`. `threads` sizes the team (`0`:
    /// one worker per physical core).
    pub fn load(
        vb: &VarBuilder<'_>,
        config: &Config,
        precision: Precision,
        threads: usize,
    ) -> candle_core::Result<Self> {
        let h = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || !h.is_multiple_of(heads) {
            candle_core::bail!("hidden_size {h} is not a multiple of num_attention_heads {heads}");
        }
        let head_dim = h / heads;
        let ffn = config.intermediate_size;
        let eps = config.layer_norm_eps;

        let emb = vb.pp("embeddings");
        let word = vec_of(&emb.get((config.vocab_size, h), "word_embeddings.weight")?)?;
        let position = emb.get(
            (config.max_position_embeddings, h),
            "position_embeddings.weight",
        )?;
        let token_types = emb.get((config.type_vocab_size, h), "token_type_embeddings.weight")?;
        let position = vec_of(&position.broadcast_add(&token_types.i(0)?)?)?;
        let embedding_norm = Norm::load(&emb.pp("LayerNorm"), h, eps)?;

        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for n in 0..config.num_hidden_layers {
            let vb = vb.pp(format!("encoder.layer.{n}"));
            let att = vb.pp("attention.self");
            let mut w = Vec::with_capacity(3 * h * h);
            let mut b = Vec::with_capacity(3 * h);
            for name in ["query", "key", "value"] {
                w.extend(vec_of(&att.get((h, h), &format!("{name}.weight"))?)?);
                b.extend(vec_of(&att.get(h, &format!("{name}.bias"))?)?);
            }
            let qkv = Linear::new(&w, b, 3 * h, h, precision).map_err(candle_core::Error::msg)?;
            layers.push(Layer {
                qkv,
                attention_out: Linear::load(&vb.pp("attention.output.dense"), h, h, precision)?,
                attention_norm: Norm::load(&vb.pp("attention.output.LayerNorm"), h, eps)?,
                intermediate: Linear::load(&vb.pp("intermediate.dense"), h, ffn, precision)?,
                output: Linear::load(&vb.pp("output.dense"), ffn, h, precision)?,
                output_norm: Norm::load(&vb.pp("output.LayerNorm"), h, eps)?,
            });
        }
        let team = match threads {
            0 => Team::with_physical_cores(),
            n => Team::new(n),
        };
        let attention = PerWorker::new(team.count(), AttentionScratch::new);
        Ok(CpuEncoder {
            word,
            position,
            max_positions: config.max_position_embeddings,
            vocab: config.vocab_size,
            embedding_norm,
            layers,
            heads,
            head_dim,
            hidden: h,
            ffn,
            act: config.hidden_act,
            isa: Isa::active(),
            team,
            attention,
            state: Mutex::new(State::default()),
        })
    }

    /// Workers in the encoder's thread team.
    pub fn threads(&self) -> usize {
        self.team.count()
    }

    /// How many times the activation buffers had to grow so far (for tests of the steady
    /// state).
    #[cfg(test)]
    pub fn scratch_growths(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .scratch
            .growths()
    }

    /// Encodes the texts whose token ids are `ids` packed one after the other, text `t` being
    /// `ids[starts[t]..starts[t + 1]]` (`starts` has one more entry than there are texts), and
    /// calls `pool(t, rows)` with each text's final token vectors (`rows` is
    /// `len × hidden`, row-major).
    pub fn forward(
        &self,
        ids: &[u32],
        starts: &[usize],
        mut pool: impl FnMut(usize, &[f32]),
    ) -> Result<(), String> {
        let (h, ffn) = (self.hidden, self.ffn);
        let tokens = ids.len();
        if starts.first() != Some(&0) || starts.last() != Some(&tokens) {
            return Err("text offsets do not cover the packed tokens".into());
        }
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        state.offsets.clear();
        state.offsets.extend(starts.iter().map(|s| s * h));
        let [x, qkv, ctx, h1, up] = state.scratch.f32s([
            tokens * h,
            tokens * 3 * h,
            tokens * h,
            tokens * h,
            tokens * ffn,
        ]);

        // Embeddings: word + position (+ token type 0), then LayerNorm.
        for t in 0..starts.len() - 1 {
            for (pos, r) in (starts[t]..starts[t + 1]).enumerate() {
                let id = ids[r] as usize;
                if id >= self.vocab || pos >= self.max_positions {
                    return Err(format!(
                        "token id {id} at position {pos} is outside the model's vocabulary \
                         or positions"
                    ));
                }
                let row = &mut x[r * h..(r + 1) * h];
                let (w, p) = (
                    &self.word[id * h..(id + 1) * h],
                    &self.position[pos * h..(pos + 1) * h],
                );
                for ((o, a), b) in row.iter_mut().zip(w).zip(p) {
                    *o = a + b;
                }
            }
        }
        let en = &self.embedding_norm;
        let err = |e: docent_kernels::ShapeError| e.to_string();
        ops::layer_norm(self.isa, x, h, &en.gamma, &en.beta, en.eps).map_err(err)?;

        let c = Ctx {
            isa: self.isa,
            team: &self.team,
        };
        let qa = &mut state.qa;
        for layer in &self.layers {
            layer
                .qkv
                .forward(&c, qa, x, tokens, qkv, Epilogue::Bias(&layer.qkv.bias))
                .map_err(err)?;
            self.attend(qkv, ctx, &state.offsets)?;
            layer
                .attention_out
                .forward(
                    &c,
                    qa,
                    ctx,
                    tokens,
                    h1,
                    Epilogue::BiasResidualNorm {
                        bias: &layer.attention_out.bias,
                        residual: x,
                        norm: layer.attention_norm.row_norm(),
                    },
                )
                .map_err(err)?;
            self.intermediate(&c, qa, layer, h1, tokens, up)
                .map_err(err)?;
            layer
                .output
                .forward(
                    &c,
                    qa,
                    up,
                    tokens,
                    x,
                    Epilogue::BiasResidualNorm {
                        bias: &layer.output.bias,
                        residual: h1,
                        norm: layer.output_norm.row_norm(),
                    },
                )
                .map_err(err)?;
        }
        for t in 0..starts.len() - 1 {
            pool(t, &x[starts[t] * h..starts[t + 1] * h]);
        }
        Ok(())
    }

    /// `up = act(h1 · W_iᵀ + b)`: bias and the exact GELU fused into the product; the other
    /// activations BERT configs name applied after it.
    fn intermediate(
        &self,
        c: &Ctx<'_>,
        qa: &mut QuantizedRows,
        layer: &Layer,
        h1: &[f32],
        tokens: usize,
        up: &mut [f32],
    ) -> docent_kernels::Result<()> {
        let bias = &layer.intermediate.bias;
        match self.act {
            HiddenAct::Gelu => {
                layer
                    .intermediate
                    .forward(c, qa, h1, tokens, up, Epilogue::BiasGelu(bias))
            }
            HiddenAct::GeluApproximate => {
                layer
                    .intermediate
                    .forward(c, qa, h1, tokens, up, Epilogue::Bias(bias))?;
                for x in up.iter_mut() {
                    *x = gelu_tanh(*x);
                }
                Ok(())
            }
            HiddenAct::Relu => {
                layer
                    .intermediate
                    .forward(c, qa, h1, tokens, up, Epilogue::Bias(bias))?;
                for x in up.iter_mut() {
                    *x = x.max(0.0);
                }
                Ok(())
            }
        }
    }

    /// Self-attention of every text over its own tokens, one text per part of `ctx`, all its
    /// heads on the worker that takes it.
    fn attend(&self, qkv: &[f32], ctx: &mut [f32], offsets: &[usize]) -> Result<(), String> {
        let (h, d, heads) = (self.hidden, self.head_dim, self.heads);
        let scale = 1.0 / (d as f32).sqrt();
        let isa = self.isa;
        let failed = Mutex::new(None::<String>);
        self.team
            .for_each_part_mut(ctx, offsets, |w, text, out| {
                let len = out.len() / h;
                let base = offsets[text] * 3;
                self.attention.with(w.index, |s| {
                    for head in 0..heads {
                        let rows = |off: usize| Rows {
                            data: &qkv[base + off + head * d..],
                            stride: 3 * h,
                            rows: len,
                        };
                        let result = ops::attend_blocked(
                            isa,
                            s,
                            rows(0),
                            d,
                            rows(h),
                            rows(2 * h),
                            scale,
                            Mask::None,
                            0,
                            &mut out[head * d..],
                            h,
                        );
                        if let Err(e) = result {
                            let mut f = failed.lock().unwrap_or_else(|e| e.into_inner());
                            f.get_or_insert(e.to_string());
                            return;
                        }
                    }
                });
            })
            .map_err(|e| e.to_string())?;
        match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// GELU with the tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2 / π)
    0.5 * x * (1.0 + (C * (x + 0.044_715 * x * x * x)).tanh())
}
