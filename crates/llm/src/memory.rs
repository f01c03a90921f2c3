//! Memory planning: will this model, at this context length, fit this machine? Asked before
//! loading, so docent refuses with a suggestion instead of swapping the machine to a halt.

use crate::gguf::ModelInfo;

/// Memory kept free for the operating system, the embedding model and docent itself.
pub const HEADROOM: u64 = 1_500_000_000;

const GB: f64 = 1e9;

/// Weights, KV cache and working memory of one model at one context length.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPlan {
    pub model: String,
    pub context_length: usize,
    /// The weights: the size of the GGUF file (candle keeps the quantized blocks as stored).
    pub weights: u64,
    /// Keys and values of every layer for a full context (f32).
    pub kv_cache: u64,
    /// Activations, logits and scratch: a tenth of the weights, at least 200 MB.
    pub scratch: u64,
    /// What the machine has free now, when known.
    pub available: Option<u64>,
}

impl MemoryPlan {
    pub fn new(info: &ModelInfo, context_length: usize, available: Option<u64>) -> Self {
        MemoryPlan {
            model: info.name.clone(),
            context_length,
            weights: info.file_size,
            kv_cache: info.kv_bytes_per_token() * context_length as u64,
            scratch: (info.file_size / 10).max(200_000_000),
            available,
        }
    }

    /// Memory the model needs.
    pub fn required(&self) -> u64 {
        self.weights + self.kv_cache + self.scratch
    }

    /// Whether it fits with headroom to spare (unknown free memory counts as fitting).
    pub fn fits(&self) -> bool {
        self.available
            .is_none_or(|a| self.required() + HEADROOM <= a)
    }

    pub fn message(&self) -> String {
        format!(
            "{} needs about {:.1} GB at a context of {} tokens (weights {:.1} GB, KV cache {:.1} GB, working memory {:.1} GB), but {}",
            self.model,
            self.required() as f64 / GB,
            self.context_length,
            self.weights as f64 / GB,
            self.kv_cache as f64 / GB,
            self.scratch as f64 / GB,
            match self.available {
                Some(a) => format!(
                    "only {:.1} GB is free (and {:.1} GB is kept for the system)",
                    a as f64 / GB,
                    HEADROOM as f64 / GB
                ),
                None => "free memory is unknown".into(),
            }
        )
    }

    /// What to do instead.
    pub fn hint(&self) -> String {
        let Some(avail) = self.available else {
            return String::new();
        };
        let budget = avail.saturating_sub(HEADROOM + self.weights + self.scratch);
        let per_token = self.kv_cache / self.context_length.max(1) as u64;
        let ctx = budget.checked_div(per_token).unwrap_or(0);
        if ctx >= 2048 {
            format!(
                "set a smaller context, e.g. `llm.context_length = {}`, or close other programs",
                ctx / 1024 * 1024
            )
        } else {
            "choose a smaller model (`docent models recommend` lists what fits this machine), or close other programs; `--allow-low-memory` loads it anyway".into()
        }
    }
}

/// Memory free for new work: `MemAvailable` on Linux; on macOS the physical memory (the
/// system compresses and frees caches as needed); `None` elsewhere.
pub fn available_memory() -> Option<u64> {
    if cfg!(target_os = "linux") {
        meminfo("MemAvailable:")
    } else if cfg!(target_os = "macos") {
        total_memory()
    } else {
        None
    }
}

/// The machine's physical memory.
pub fn total_memory() -> Option<u64> {
    if cfg!(target_os = "linux") {
        meminfo("MemTotal:")
    } else if cfg!(target_os = "macos") {
        let out = std::process::Command::new("sysctl")
            .args(["-n", "hw.memsize"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    } else {
        None
    }
}

fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
}

/// A model worth running on a machine of a given size.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Recommendation {
    /// The machine's memory this row is for.
    pub machine_gb: u32,
    pub model: &'static str,
    /// The GGUF to look for (Q4_K_M: the usual balance of size and quality).
    pub file: &'static str,
    pub parameters_b: f64,
    /// Rule of thumb: 0.6 GB per billion parameters at Q4, plus KV cache for 8K tokens, plus
    /// headroom for the system.
    pub needs_gb: f64,
    pub note: &'static str,
}

struct Row {
    machine_gb: u32,
    model: &'static str,
    file: &'static str,
    parameters_b: f64,
    kv_8k_gb: f64,
    note: &'static str,
}

const ROWS: &[Row] = &[
    Row {
        machine_gb: 16,
        model: "Llama 3.1 8B Instruct",
        file: "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
        parameters_b: 8.0,
        kv_8k_gb: 1.0,
        note: "fast, good English answers; Qwen3-8B is the alternative",
    },
    Row {
        machine_gb: 24,
        model: "Qwen3 14B",
        file: "Qwen3-14B-Q4_K_M.gguf",
        parameters_b: 14.8,
        kv_8k_gb: 1.3,
        note: "clearly better reasoning than 8B models, still quick",
    },
    Row {
        machine_gb: 32,
        model: "Gemma 3 27B Instruct",
        file: "gemma-3-27b-it-Q4_K_M.gguf",
        parameters_b: 27.0,
        kv_8k_gb: 1.0,
        note: "strong on long documents; slower per token",
    },
    Row {
        machine_gb: 48,
        model: "Qwen3 30B A3B (mixture of experts)",
        file: "Qwen3-30B-A3B-Q4_K_M.gguf",
        parameters_b: 30.5,
        kv_8k_gb: 0.8,
        note: "30B quality at the speed of a 3B model: only 3B parameters run per token",
    },
    Row {
        machine_gb: 64,
        model: "Qwen2.5 32B Instruct",
        file: "Qwen2.5-32B-Instruct-Q4_K_M.gguf",
        parameters_b: 32.8,
        kv_8k_gb: 2.1,
        note: "the largest dense model that leaves room for a long context",
    },
];

/// Share of memory a model may take: macOS lets the GPU use about two thirds to three quarters
/// of unified memory, and the rest of the machine must keep working.
pub const MODEL_SHARE: f64 = 0.75;

/// Models for a machine with `total_gb` of memory, largest first: every row meant for a machine
/// of that size or smaller (each row's needs stay within [`MODEL_SHARE`] of its machine).
pub fn recommendations(total_gb: f64) -> Vec<Recommendation> {
    let mut out: Vec<Recommendation> = ROWS
        .iter()
        .map(|r| Recommendation {
            machine_gb: r.machine_gb,
            model: r.model,
            file: r.file,
            parameters_b: r.parameters_b,
            needs_gb: round1(0.6 * r.parameters_b + r.kv_8k_gb + HEADROOM as f64 / GB + 2.0),
            note: r.note,
        })
        .filter(|r| r.machine_gb as f64 <= total_gb + 0.5)
        .collect();
    out.reverse();
    out
}

/// Every row, for printing the whole table.
pub fn all_recommendations() -> Vec<Recommendation> {
    let mut v = recommendations(f64::MAX);
    v.reverse();
    v
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn info(file_gb: f64, layers: usize) -> ModelInfo {
        ModelInfo {
            path: PathBuf::from("m.gguf"),
            arch_name: "llama".into(),
            architecture: None,
            name: "m".into(),
            context_length: 8192,
            block_count: layers,
            embedding_length: 4096,
            head_count: 32,
            head_count_kv: 8,
            head_dim: 128,
            expert_count: None,
            vocab_size: 128_000,
            parameters: 8_000_000_000,
            weight_type: "Q4K".into(),
            file_size: (file_gb * GB) as u64,
            has_chat_template: true,
        }
    }

    #[test]
    fn kv_cache_is_counted_per_layer_and_head() {
        let p = MemoryPlan::new(&info(4.9, 32), 8192, Some(64_000_000_000));
        // 2 (k, v) × 32 layers × 8 heads × 128 dims × 4 bytes × 8192 tokens
        assert_eq!(p.kv_cache, 2 * 32 * 8 * 128 * 4 * 8192);
        assert!(p.fits());
    }

    #[test]
    fn a_short_machine_is_refused_with_a_smaller_context_or_model() {
        let p = MemoryPlan::new(&info(4.9, 32), 32_768, Some(9_000_000_000));
        assert!(!p.fits());
        assert!(p.message().contains("32768"), "{}", p.message());
        assert!(p.hint().contains("llm.context_length"), "{}", p.hint());
        let tiny = MemoryPlan::new(&info(4.9, 32), 8192, Some(5_000_000_000));
        assert!(!tiny.fits());
        assert!(tiny.hint().contains("models recommend"), "{}", tiny.hint());
        assert!(MemoryPlan::new(&info(4.9, 32), 8192, None).fits());
    }

    #[test]
    fn recommendations_grow_with_the_machine() {
        let names =
            |gb: f64| -> Vec<&str> { recommendations(gb).iter().map(|r| r.model).collect() };
        assert!(names(8.0).is_empty());
        assert_eq!(names(16.0)[0], "Llama 3.1 8B Instruct");
        assert_eq!(names(24.0)[0], "Qwen3 14B");
        assert_eq!(names(32.0)[0], "Gemma 3 27B Instruct");
        assert_eq!(names(48.0)[0], "Qwen3 30B A3B (mixture of experts)");
        assert_eq!(names(64.0)[0], "Qwen2.5 32B Instruct");
        for r in all_recommendations() {
            assert!(r.needs_gb <= MODEL_SHARE * r.machine_gb as f64, "{r:?}");
            assert!(r.file.ends_with("Q4_K_M.gguf"));
        }
    }

    #[test]
    fn this_machine_reports_its_memory() {
        if cfg!(target_os = "linux") {
            let total = total_memory().unwrap();
            let avail = available_memory().unwrap();
            assert!(avail <= total && total > 0);
        }
    }
}
