//! At a steady shape the kernels allocate nothing: a counting global allocator watches one
//! encoder-like step (quantise, int8 and f32 products with fused epilogues, norms, attention)
//! repeated after a first call has sized every buffer. One test in this binary, so no other
//! test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use docent_kernels::ops::{self, AttentionScratch, Mask, Rows};
use docent_kernels::{
    Epilogue, Isa, PackedF32, PackedI8, QuantizedRows, Scratch, Team, gemm_f32, gemm_i8,
};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged, counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller's contract is forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller's contract is forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Layer {
    qkv: PackedF32,
    up: PackedI8,
    bias3: Vec<f32>,
    bias_up: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

#[allow(clippy::too_many_arguments)]
fn step(
    isa: Isa,
    team: &Team,
    layer: &Layer,
    x: &[f32],
    tokens: usize,
    scratch: &mut Scratch,
    qa: &mut QuantizedRows,
    attention: &mut AttentionScratch,
) {
    let (d, heads, hidden) = (8, 4, 32);
    let [qkv, attn, up] = scratch.f32s([tokens * 3 * hidden, tokens * hidden, tokens * 4 * hidden]);
    gemm_f32(
        isa,
        team,
        x,
        tokens,
        &layer.qkv,
        qkv,
        Epilogue::Bias(&layer.bias3),
    )
    .unwrap();
    for h in 0..heads {
        let rows = |off: usize| Rows {
            data: &qkv[off + h * d..],
            stride: 3 * hidden,
            rows: tokens,
        };
        let out = &mut attn[h * d..];
        ops::attend_rows(
            isa,
            rows(0),
            d,
            rows(hidden),
            rows(2 * hidden),
            0.35,
            Mask::None,
            0,
            out,
            hidden,
        )
        .unwrap();
        let out = &mut attn[h * d..];
        let mask = Mask::Causal;
        ops::attend_blocked(
            isa,
            attention,
            rows(0),
            d,
            rows(hidden),
            rows(2 * hidden),
            0.35,
            mask,
            0,
            out,
            hidden,
        )
        .unwrap();
    }
    ops::layer_norm(isa, attn, hidden, &layer.gamma, &layer.beta, 1e-12).unwrap();
    qa.quantize(isa, attn, tokens, hidden).unwrap();
    qa.quantize_on(isa, team, attn, tokens, hidden).unwrap();
    gemm_i8(
        isa,
        team,
        qa,
        &layer.up,
        up,
        Epilogue::BiasGelu(&layer.bias_up),
    )
    .unwrap();
    ops::softmax_rows(isa, up, 4 * hidden).unwrap();
}

#[test]
fn a_steady_shape_allocates_nothing() {
    let hidden = 32;
    let tokens = 37;
    let w = |n: usize, k: usize| -> Vec<f32> {
        (0..n * k)
            .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.5)
            .collect()
    };
    let layer = Layer {
        qkv: PackedF32::pack(&w(3 * hidden, hidden), 3 * hidden, hidden).unwrap(),
        up: PackedI8::quantize(&w(4 * hidden, hidden), 4 * hidden, hidden).unwrap(),
        bias3: vec![0.1; 3 * hidden],
        bias_up: vec![0.1; 4 * hidden],
        gamma: vec![1.0; hidden],
        beta: vec![0.0; hidden],
    };
    let x = w(tokens, hidden);
    let team = Team::new(2);
    for isa in Isa::available() {
        let mut scratch = Scratch::new();
        let mut qa = QuantizedRows::new();
        let mut attention = AttentionScratch::new();
        step(
            isa,
            &team,
            &layer,
            &x,
            tokens,
            &mut scratch,
            &mut qa,
            &mut attention,
        );
        let growths = scratch.growths();
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        for _ in 0..5 {
            step(
                isa,
                &team,
                &layer,
                &x,
                tokens,
                &mut scratch,
                &mut qa,
                &mut attention,
            );
            // A smaller batch reuses the same buffers.
            step(
                isa,
                &team,
                &layer,
                &x[..20 * hidden],
                20,
                &mut scratch,
                &mut qa,
                &mut attention,
            );
        }
        let after = ALLOCATIONS.load(Ordering::SeqCst);
        assert_eq!(after - before, 0, "{isa}: the steady state allocated");
        assert_eq!(scratch.growths(), growths);
    }
}
