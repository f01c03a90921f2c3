//! The BERT encoder's forward pass on candle tensors: the GPU path (Metal, CUDA). The CPU runs
//! the encoder on docent's own kernels instead (`cpu.rs`).
//!
//! It computes what the reference BERT does (Hugging Face `BertModel`, absolute positions,
//! single-segment inputs) on sub-batches padded to their longest text, with only operations
//! every candle back end has: the query, key and value projections are one matrix product (the
//! `1/sqrt(head_dim)` scale folded into the query weights) and padding keys are masked by
//! adding a large negative score.

use candle_core::{IndexOp, Tensor, bail};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};

/// A linear layer stored transposed, `(in, out)`, for `x · W`.
struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    fn load(vb: &VarBuilder<'_>, inp: usize, out: usize) -> candle_core::Result<Self> {
        let weight = vb.get((out, inp), "weight")?;
        let bias = vb.get(out, "bias")?;
        Ok(Dense {
            weight: weight.t()?.contiguous()?,
            bias,
        })
    }

    /// `x · W` without the bias, for `x` of shape `(rows, in)`.
    fn matmul(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.weight)
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.matmul(x)?.broadcast_add(&self.bias)
    }
}

struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    fn load(vb: &VarBuilder<'_>, size: usize, eps: f64) -> candle_core::Result<Self> {
        Ok(Norm {
            weight: vb.get(size, "weight")?,
            bias: vb.get(size, "bias")?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    qkv: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
}

/// The embeddings and encoder layers of a BERT model.
pub(crate) struct Encoder {
    word: Tensor,
    /// Position embeddings plus the embedding of token type 0 (inputs are single segments).
    position: Tensor,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    act: HiddenAct,
}

impl Encoder {
    /// Loads the tensors under `vb` (named as in Hugging Face's `BertModel`: `embeddings.*`,
    /// `encoder.layer.N.*`), checking every shape against `config`.
    pub fn load(vb: &VarBuilder<'_>, config: &Config) -> candle_core::Result<Self> {
        let h = config.hidden_size;
        let heads = config.num_attention_heads;
        let head_dim = h / heads;
        let eps = config.layer_norm_eps;

        let emb = vb.pp("embeddings");
        let word = emb.get((config.vocab_size, h), "word_embeddings.weight")?;
        let position = emb.get(
            (config.max_position_embeddings, h),
            "position_embeddings.weight",
        )?;
        let token_types = emb.get((config.type_vocab_size, h), "token_type_embeddings.weight")?;
        let position = position.broadcast_add(&token_types.i(0)?)?;
        let embedding_norm = Norm::load(&emb.pp("LayerNorm"), h, eps)?;

        let scale = 1.0 / (head_dim as f64).sqrt();
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for n in 0..config.num_hidden_layers {
            let vb = vb.pp(format!("encoder.layer.{n}"));
            let att = vb.pp("attention.self");
            let (qw, qb) = (
                (att.get((h, h), "query.weight")? * scale)?,
                (att.get(h, "query.bias")? * scale)?,
            );
            let (kw, kb) = (att.get((h, h), "key.weight")?, att.get(h, "key.bias")?);
            let (vw, vb_) = (att.get((h, h), "value.weight")?, att.get(h, "value.bias")?);
            let qkv = Dense {
                weight: Tensor::cat(&[&qw, &kw, &vw], 0)?.t()?.contiguous()?,
                bias: Tensor::cat(&[&qb, &kb, &vb_], 0)?,
            };
            layers.push(Layer {
                qkv,
                attention_out: Dense::load(&vb.pp("attention.output.dense"), h, h)?,
                attention_norm: Norm::load(&vb.pp("attention.output.LayerNorm"), h, eps)?,
                intermediate: Dense::load(
                    &vb.pp("intermediate.dense"),
                    h,
                    config.intermediate_size,
                )?,
                output: Dense::load(&vb.pp("output.dense"), config.intermediate_size, h)?,
                output_norm: Norm::load(&vb.pp("output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Encoder {
            word,
            position,
            embedding_norm,
            layers,
            heads,
            head_dim,
            hidden: h,
            act: config.hidden_act,
        })
    }

    /// Token vectors `(rows · width, hidden)` for `ids` of shape `(rows, width)`, where row `r`
    /// holds `lengths[r]` real tokens followed by padding. Padding never influences the real
    /// tokens' vectors.
    pub fn forward(&self, ids: &Tensor, lengths: &[u32]) -> candle_core::Result<Tensor> {
        let (rows, width) = ids.dims2()?;
        if lengths.len() != rows {
            bail!("{} lengths for {rows} rows", lengths.len());
        }
        let h = self.hidden;
        let x = self.word.index_select(&ids.flatten_all()?, 0)?;
        let x = x
            .reshape((rows, width, h))?
            .broadcast_add(&self.position.narrow(0, 0, width)?)?
            .reshape((rows * width, h))?;
        let mut x = self.embedding_norm.forward(&x)?;
        // 0 over each row's real keys, a large negative number over its padding.
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&n| (0..width).map(move |j| if j < n as usize { 0.0 } else { -1e9 }))
            .collect();
        let mask = Tensor::from_vec(mask, (rows, 1, 1, width), ids.device())?;
        for layer in &self.layers {
            x = self.layer(layer, &x, rows, width, &mask)?;
        }
        Ok(x)
    }

    fn layer(
        &self,
        layer: &Layer,
        x: &Tensor,
        rows: usize,
        width: usize,
        mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let h = self.hidden;
        let qkv = layer
            .qkv
            .forward(x)?
            .reshape((rows, width, 3, self.heads, self.head_dim))?;
        let part = |i: usize| qkv.i((.., .., i))?.transpose(1, 2)?.contiguous();
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let scores = q.matmul(&k.t()?)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(mask)?)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((rows * width, h))?;
        let attended = (layer.attention_out.forward(&context)? + x)?;
        let x = layer.attention_norm.forward(&attended)?;

        let inner = layer.intermediate.matmul(&x)?;
        let inner = match self.act {
            HiddenAct::Gelu => inner.broadcast_add(&layer.intermediate.bias)?.gelu_erf()?,
            HiddenAct::GeluApproximate => inner.broadcast_add(&layer.intermediate.bias)?.gelu()?,
            HiddenAct::Relu => inner.broadcast_add(&layer.intermediate.bias)?.relu()?,
        };
        let out = (layer.output.forward(&inner)? + x)?;
        layer.output_norm.forward(&out)
    }
}
