//! The BERT encoder's forward pass on candle tensors, shaped for sentence embedding on the CPU.
//!
//! It computes what the reference BERT does (Hugging Face `BertModel`, absolute positions,
//! single-segment inputs), with fewer passes over memory: the query, key and value
//! projections are one matrix product (the `1/sqrt(head_dim)` scale folded into the query
//! weights), the attention softmax skips padding keys instead of adding a mask, and the
//! feed-forward bias and GELU are one pass.

use candle_core::{CpuStorage, CustomOp2, IndexOp, Layout, Shape, Tensor, bail};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;

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
        let lengths = Tensor::from_slice(lengths, rows, ids.device())?;
        for layer in &self.layers {
            x = self.layer(layer, &x, rows, width, &lengths)?;
        }
        Ok(x)
    }

    fn layer(
        &self,
        layer: &Layer,
        x: &Tensor,
        rows: usize,
        width: usize,
        lengths: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let h = self.hidden;
        let qkv = layer
            .qkv
            .forward(x)?
            .reshape((rows, width, 3, self.heads, self.head_dim))?;
        let part = |i: usize| qkv.i((.., .., i))?.transpose(1, 2)?.contiguous();
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let scores = q.matmul(&k.t()?)?;
        let probs = scores.apply_op2_no_bwd(lengths, &MaskedSoftmax)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((rows * width, h))?;
        let attended = (layer.attention_out.forward(&context)? + x)?;
        let x = layer.attention_norm.forward(&attended)?;

        let inner = layer.intermediate.matmul(&x)?;
        let inner = match self.act {
            HiddenAct::Gelu => inner.apply_op2_no_bwd(&layer.intermediate.bias, &BiasGelu)?,
            HiddenAct::GeluApproximate => inner.broadcast_add(&layer.intermediate.bias)?.gelu()?,
            HiddenAct::Relu => inner.broadcast_add(&layer.intermediate.bias)?.relu()?,
        };
        let out = (layer.output.forward(&inner)? + x)?;
        layer.output_norm.forward(&out)
    }
}

/// Softmax over the last dimension of attention scores `(rows, heads, queries, keys)`, over the
/// first `lengths[row]` keys only; padding keys get probability 0. The same as adding a large
/// negative mask before the softmax, in one pass.
struct MaskedSoftmax;

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let ((a, b), (c, d)) = contiguous("masked-softmax", l1, l2)?;
        let scores = &s1.as_slice::<f32>()?[a..b];
        let lengths = &s2.as_slice::<u32>()?[c..d];
        let &[rows, heads, queries, keys] = l1.dims() else {
            bail!("masked-softmax: scores must be (rows, heads, queries, keys)");
        };
        if lengths.len() != rows || keys == 0 {
            bail!("masked-softmax: {} lengths for {rows} rows", lengths.len());
        }
        let per_row = heads * queries;
        let mut out = vec![0f32; scores.len()];
        out.par_chunks_mut(keys)
            .zip(scores.par_chunks(keys))
            .enumerate()
            .for_each(|(i, (dst, src))| {
                let n = (lengths[i / per_row] as usize).clamp(1, keys);
                let (src, dst) = (&src[..n], &mut dst[..n]);
                let max = src.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for (d, s) in dst.iter_mut().zip(src) {
                    *d = exp(s - max);
                }
                let inv = 1.0 / sum(dst);
                for d in dst {
                    *d *= inv;
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// The element ranges of two contiguous inputs of a custom op.
type Ranges = ((usize, usize), (usize, usize));

fn contiguous(op: &str, l1: &Layout, l2: &Layout) -> candle_core::Result<Ranges> {
    match (l1.contiguous_offsets(), l2.contiguous_offsets()) {
        (Some(x), Some(y)) => Ok((x, y)),
        _ => bail!("{op}: inputs must be contiguous"),
    }
}

/// `gelu(x + bias)` (the exact, erf-based GELU) for `x` of shape `(rows, n)` and `bias` of
/// shape `(n)`, in one pass.
struct BiasGelu;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let ((a, b), (c, d)) = contiguous("bias-gelu", l1, l2)?;
        let x = &s1.as_slice::<f32>()?[a..b];
        let bias = &s2.as_slice::<f32>()?[c..d];
        let n = bias.len();
        if n == 0 || l1.dims().last() != Some(&n) {
            bail!("bias-gelu: bias of {n} for input {:?}", l1.dims());
        }
        // Several rows per task, so each task has enough work.
        let chunk = n * 16;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .for_each(|(dst, src)| {
                for (drow, srow) in dst.chunks_exact_mut(n).zip(src.chunks_exact(n)) {
                    for ((d, s), b) in drow.iter_mut().zip(srow).zip(bias) {
                        *d = gelu_erf(s + b);
                    }
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `x · Φ(x)`, the exact GELU.
#[inline]
fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The error function, to within 1e-6 in f32 arithmetic (Abramowitz and Stegun 7.1.26: 1.5e-7
/// in exact arithmetic).
#[inline]
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152_1,
        1.061_405_4,
    ];
    let ax = x.abs();
    let t = 1.0 / (1.0 + P * ax);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let y = 1.0 - poly * exp(-ax * ax);
    y.copysign(x)
}

/// `e^x` to within 2 units in the last place for `x` in [-87, 88] (Cephes' polynomial on a
/// range reduced by powers of two), in plain arithmetic the compiler can vectorise; outside
/// that range it saturates at about `1e-38` and `1.7e38`.
#[inline]
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let k = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let p = p * r * r + r + 1.0;
    // 2^k, built from its exponent bits (k is in [-126, 127] after the clamp).
    let scale = f32::from_bits(((k as i32 + 127) as u32) << 23);
    p * scale
}

/// The sum of `xs`, in eight interleaved lanes so the compiler can vectorise it.
#[inline]
fn sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn erf_is_accurate() {
        let mut worst = 0f64;
        for i in -60_000..=60_000 {
            let x = i as f64 / 10_000.0;
            let got = f64::from(erf(x as f32));
            let want = candle_core::cpu::erf::erf_f64(x);
            worst = worst.max((got - want).abs());
        }
        assert!(worst < 1e-6, "max error {worst}");
    }

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0f64;
        for i in -870_000..=880_000 {
            let x = i as f32 / 10_000.0;
            let want = f64::from(x).exp();
            let rel = (f64::from(exp(x)) - want).abs() / want;
            worst = worst.max(rel);
        }
        assert!(worst < 3e-7, "max relative error {worst}");
        assert!(exp(-1000.0) < 1e-37);
        assert!(exp(1000.0).is_finite());
        let xs: Vec<f32> = (0..21).map(|i| i as f32 * 0.25).collect();
        assert_eq!(sum(&xs), xs.iter().sum::<f32>());
    }

    #[test]
    fn masked_softmax_equals_an_additive_mask() {
        let dev = Device::Cpu;
        let scores = Tensor::arange(0f32, 2.0 * 2.0 * 3.0 * 3.0, &dev)
            .unwrap()
            .affine(0.37, -2.0)
            .unwrap()
            .sin()
            .unwrap()
            .reshape((2, 2, 3, 3))
            .unwrap();
        let lengths = Tensor::new(&[3u32, 2], &dev).unwrap();
        let got = scores.apply_op2_no_bwd(&lengths, &MaskedSoftmax).unwrap();
        let mask = Tensor::new(&[[0f32, 0., 0.], [0., 0., f32::MIN]], &dev)
            .unwrap()
            .reshape((2, 1, 1, 3))
            .unwrap();
        let want = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask).unwrap()).unwrap();
        let diff = (got - want)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
    }

    #[test]
    fn bias_gelu_equals_candle() {
        let dev = Device::Cpu;
        let x = Tensor::arange(-40f32, 40.0, &dev)
            .unwrap()
            .affine(0.1, 0.0)
            .unwrap()
            .reshape((4, 20))
            .unwrap();
        let bias = Tensor::arange(0f32, 20.0, &dev)
            .unwrap()
            .affine(0.05, -0.5)
            .unwrap();
        let got = x.apply_op2_no_bwd(&bias, &BiasGelu).unwrap();
        let want = x.broadcast_add(&bias).unwrap().gelu_erf().unwrap();
        let diff = (got - want)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
    }
}
