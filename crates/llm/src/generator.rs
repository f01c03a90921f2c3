//! [`GgufGenerator`]: a GGUF model on candle behind docent's [`Generator`] seam.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use docent_core::{ChatMessage, GenerationStats, Generator, SamplingParams, SeamError, StopReason};

use crate::cpu::{CpuOptions, KvCacheType};
use crate::device::DeviceChoice;
use crate::error::{LlmError, Result};
use crate::gguf::{Architecture, ModelInfo, file_stem, read_content};
use crate::memory::{MemoryPlan, available_memory};
use crate::model::Weights;
use crate::template::ChatTemplate;
use crate::tokenizer::{GgufTokenizer, IncrementalDecoder};

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub device: DeviceChoice,
    /// The context to plan for (prompt and answer together); `None`: the model's own, capped at
    /// 8192 tokens so a 128K-context model does not reserve memory nobody uses.
    pub context_length: Option<usize>,
    /// Load even when the memory plan says the machine is short.
    pub allow_low_memory: bool,
    /// Threads of the CPU path; `None`: one per physical core.
    pub threads: Option<usize>,
    /// How the CPU path stores keys and values (f16 unless asked otherwise).
    pub kv_cache: KvCacheType,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: DeviceChoice::Auto,
            context_length: None,
            allow_low_memory: false,
            threads: None,
            kv_cache: KvCacheType::default(),
        }
    }
}

/// The default cap on the planned context.
pub const DEFAULT_CONTEXT_CAP: usize = 8192;

/// A loaded GGUF chat model.
pub struct GgufGenerator {
    info: ModelInfo,
    model_id: String,
    tokenizer: Arc<GgufTokenizer>,
    template: ChatTemplate,
    weights: Weights,
    device: Device,
    context_length: usize,
    /// Tokens that end the assistant's turn.
    stop_ids: Vec<u32>,
    /// Whether the KV cache holds a sequence.
    dirty: bool,
    cpu: CpuOptions,
}

impl std::fmt::Debug for GgufGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufGenerator")
            .field("model", &self.model_id)
            .field("context_length", &self.context_length)
            .finish_non_exhaustive()
    }
}

impl GgufGenerator {
    /// Reads, plans memory for, and loads the model at `path`.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Self> {
        let (content, size) = read_content(path)?;
        let info = ModelInfo::from_content(path, &content, size)?;
        let arch = info.require_supported()?;
        let context_length = opts
            .context_length
            .unwrap_or(DEFAULT_CONTEXT_CAP)
            .min(info.context_length)
            .max(1);
        let plan = MemoryPlan::new(&info, context_length, available_memory());
        if !plan.fits() && !opts.allow_low_memory {
            return Err(LlmError::NotEnoughMemory {
                message: plan.message(),
                hint: plan.hint(),
            });
        }
        let device = opts.device.resolve()?;
        let tokenizer = GgufTokenizer::from_content(path, &content)?;
        let token_text = |id: Option<u32>| {
            id.and_then(|i| tokenizer.token(i))
                .unwrap_or_default()
                .to_string()
        };
        let template_src = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        let template = ChatTemplate::new(
            path,
            template_src,
            arch,
            token_text(tokenizer.bos),
            token_text(tokenizer.eos),
        )?;
        let mut stop_ids: Vec<u32> = tokenizer.eos.into_iter().collect();
        for t in crate::tokenizer::END_OF_TURN_TEXTS {
            if let Some(id) = tokenizer.token_id(t)
                && tokenizer.is_control(id)
                && !stop_ids.contains(&id)
            {
                stop_ids.push(id);
            }
        }
        if let Some(id) = content
            .metadata
            .get("tokenizer.ggml.eot_token_id")
            .and_then(|v| v.to_u32().ok())
            && !stop_ids.contains(&id)
        {
            stop_ids.push(id);
        }
        let cpu = CpuOptions {
            threads: opts.threads,
            kv: opts.kv_cache,
        };
        let weights = Weights::load(path, content, arch, &device, context_length, cpu)?;
        Ok(GgufGenerator {
            model_id: file_stem(path),
            info,
            tokenizer: Arc::new(tokenizer),
            template,
            weights,
            device,
            context_length,
            stop_ids,
            dirty: false,
            cpu,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    /// Renders `messages` with the model's chat template. Control tokens written inside the
    /// messages (a document quoting `<|im_start|>`) are neutralised first, so they stay text.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        let safe: Vec<ChatMessage> = messages
            .iter()
            .map(|m| ChatMessage::new(m.role, self.neutralise(&m.content)))
            .collect();
        self.template.render(&safe)
    }

    fn neutralise(&self, text: &str) -> String {
        let mut out = text.to_string();
        for t in self.tokenizer.control_tokens() {
            if out.contains(t) {
                // U+200C (zero-width non-joiner) after the first character breaks the match
                // without changing what a reader sees.
                let mut chars = t.chars();
                let first = chars.next().map(String::from).unwrap_or_default();
                let broken = format!("{first}\u{200C}{}", chars.as_str());
                out = out.replace(t, &broken);
            }
        }
        out
    }

    /// The prompt's token ids: the rendered template, control tokens parsed, BOS added when the
    /// model wants one and the template did not write it.
    pub fn prompt_ids(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let text = self.render(messages)?;
        let mut ids = self.tokenizer.encode(&text, true)?;
        if self.tokenizer.add_bos
            && let Some(bos) = self.tokenizer.bos
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// Teacher forcing, for reference comparisons: the logits that predict each token of
    /// `forced` after `prompt` and the forced tokens before it (a fresh sequence).
    pub fn forced_logits(&mut self, prompt: &[u32], forced: &[u32]) -> Result<Vec<Vec<f32>>> {
        if prompt.is_empty() || prompt.len() + forced.len() >= self.context_length {
            return Err(LlmError::PromptTooLong {
                model: self.model_id.clone(),
                prompt: prompt.len() + forced.len(),
                context: self.context_length,
            });
        }
        self.fresh_cache()?;
        self.dirty = true;
        let mut out = Vec::with_capacity(forced.len());
        let input = Tensor::new(prompt, &self.device)?.unsqueeze(0)?;
        let mut logits = self.weights.forward(&input, 0)?;
        for (i, &id) in forced.iter().enumerate() {
            out.push(logits.to_vec1()?);
            if i + 1 < forced.len() {
                let input = Tensor::new(&[id], &self.device)?.unsqueeze(0)?;
                logits = self.weights.forward(&input, prompt.len() + i)?;
            }
        }
        Ok(out)
    }

    /// Generates from token ids (what reference comparisons use). `on_token` gets each id.
    pub fn generate_ids(
        &mut self,
        prompt: &[u32],
        params: &SamplingParams,
        cancel: &AtomicBool,
        stop_at_end_of_turn: bool,
        on_token: &mut dyn FnMut(u32),
    ) -> Result<GenerationStats> {
        let start = Instant::now();
        if prompt.is_empty() {
            return Err(LlmError::PromptTooLong {
                model: self.model_id.clone(),
                prompt: 0,
                context: self.context_length,
            });
        }
        if prompt.len() >= self.context_length {
            return Err(LlmError::PromptTooLong {
                model: self.model_id.clone(),
                prompt: prompt.len(),
                context: self.context_length,
            });
        }
        self.fresh_cache()?;
        self.dirty = true;
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling(params));
        let mut history: Vec<u32> = prompt.to_vec();

        let input = Tensor::new(prompt, &self.device)?.unsqueeze(0)?;
        let logits = self.weights.forward(&input, 0)?;
        let prefill_ms = ms(start);
        let mut next = self.sample(&mut sampler, &logits, params, &history)?;
        let ttft_ms = ms(start);
        let decode_start = Instant::now();
        let mut generated = 0usize;
        let stop = loop {
            if stop_at_end_of_turn && self.stop_ids.contains(&next) {
                break StopReason::EndOfTurn;
            }
            on_token(next);
            generated += 1;
            history.push(next);
            if generated >= params.max_tokens {
                break StopReason::MaxTokens;
            }
            if history.len() >= self.context_length {
                break StopReason::ContextFull;
            }
            if cancel.load(Ordering::Relaxed) {
                break StopReason::Cancelled;
            }
            let input = Tensor::new(&[next], &self.device)?.unsqueeze(0)?;
            let logits = self.weights.forward(&input, history.len() - 1)?;
            next = self.sample(&mut sampler, &logits, params, &history)?;
        };
        Ok(GenerationStats {
            prompt_tokens: prompt.len(),
            generated_tokens: generated,
            ttft_ms,
            prefill_ms,
            decode_ms: if generated > 0 { ms(decode_start) } else { 0.0 },
            stop,
        })
    }

    fn sample(
        &self,
        sampler: &mut LogitsProcessor,
        logits: &Tensor,
        params: &SamplingParams,
        history: &[u32],
    ) -> Result<u32> {
        let logits = if params.repeat_penalty != 1.0 && params.repeat_last_n > 0 {
            let from = history.len().saturating_sub(params.repeat_last_n);
            candle_transformers::utils::apply_repeat_penalty(
                logits,
                params.repeat_penalty,
                &history[from..],
            )?
        } else {
            logits.clone()
        };
        Ok(sampler.sample(&logits)?)
    }

    /// Makes sure the next sequence starts from an empty KV cache.
    fn fresh_cache(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if self.weights.needs_reload() {
            let (content, _) = read_content(&self.info.path)?;
            let arch = self.info.require_supported()?;
            self.weights = Weights::load(
                &self.info.path,
                content,
                arch,
                &self.device,
                self.context_length,
                self.cpu,
            )?;
        } else {
            self.weights.reset();
        }
        self.dirty = false;
        Ok(())
    }
}

fn sampling(p: &SamplingParams) -> Sampling {
    if p.temperature <= 0.0 {
        return Sampling::ArgMax;
    }
    let temperature = p.temperature;
    match (
        p.top_k.filter(|k| *k > 0),
        p.top_p.filter(|x| *x > 0.0 && *x < 1.0),
    ) {
        (None, None) => Sampling::All { temperature },
        (Some(k), None) => Sampling::TopK { k, temperature },
        (None, Some(p)) => Sampling::TopP { p, temperature },
        (Some(k), Some(p)) => Sampling::TopKThenTopP { k, p, temperature },
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn seam(e: LlmError) -> SeamError {
    SeamError::with_source(e.to_string(), e)
}

impl Generator for GgufGenerator {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn context_length(&self) -> usize {
        self.context_length
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer
            .encode(&self.neutralise(text), false)
            .map(|v| v.len())
            .unwrap_or(text.len())
    }

    fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize, SeamError> {
        self.prompt_ids(messages).map(|v| v.len()).map_err(seam)
    }

    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &SamplingParams,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<GenerationStats, SeamError> {
        let ids = self.prompt_ids(messages).map_err(seam)?;
        let mut decoder = IncrementalDecoder::default();
        let tokenizer = Arc::clone(&self.tokenizer);
        let result = self.generate_ids(&ids, params, cancel, true, &mut |id| {
            if let Some(text) = decoder.push(&tokenizer, id) {
                on_text(&text);
            }
        });
        if let Some(rest) = decoder.finish() {
            on_text(&rest);
        }
        result.map_err(seam)
    }
}

/// Whether `arch` is one docent runs (for listings).
pub fn is_supported(arch: &str) -> bool {
    Architecture::parse(arch).is_some()
}
