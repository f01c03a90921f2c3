//! The generation seam: chat messages in, a token stream out.
//!
//! The real implementations live in `docent-llm` (a GGUF model on candle, or the user's own
//! OpenAI-compatible server); tests of logic use a scripted fake from `docent-test-support`.

use std::fmt;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use crate::seam::SeamError;

/// Who speaks a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of a conversation. Its `Debug` prints the role and the length, never the text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

impl fmt::Debug for ChatMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatMessage")
            .field("role", &self.role)
            .field("len", &self.content.len())
            .finish()
    }
}

/// How the next token is chosen. `temperature == 0.0` means greedy (arg-max) decoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingParams {
    pub temperature: f64,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`.
    pub top_p: Option<f64>,
    /// Keep only the `top_k` most likely tokens.
    pub top_k: Option<usize>,
    /// Penalty for tokens seen in the last `repeat_last_n` tokens (1.0 = none).
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    pub seed: u64,
    /// The most tokens to generate for one answer.
    pub max_tokens: usize,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.2,
            top_p: Some(0.9),
            top_k: Some(40),
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            seed: 299_792_458,
            max_tokens: 512,
        }
    }
}

impl SamplingParams {
    /// Deterministic arg-max decoding with no penalty (what reference comparisons use).
    pub fn greedy(max_tokens: usize) -> Self {
        SamplingParams {
            temperature: 0.0,
            top_p: None,
            top_k: None,
            repeat_penalty: 1.0,
            repeat_last_n: 0,
            seed: 0,
            max_tokens,
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced one of its end-of-turn tokens.
    EndOfTurn,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The context window is full.
    ContextFull,
    /// The caller's cancel flag was set.
    Cancelled,
}

/// What a generation cost. Times are in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// From the call to the first token out (prefill plus one sampling step).
    pub ttft_ms: f64,
    /// Prompt processing alone.
    pub prefill_ms: f64,
    /// Everything after the first token.
    pub decode_ms: f64,
    pub stop: StopReason,
}

impl GenerationStats {
    /// Prompt tokens processed per second during prefill.
    pub fn prefill_tokens_per_s(&self) -> f64 {
        per_second(self.prompt_tokens, self.prefill_ms)
    }
    /// Tokens generated per second after the first.
    pub fn decode_tokens_per_s(&self) -> f64 {
        per_second(self.generated_tokens.saturating_sub(1), self.decode_ms)
    }
}

fn per_second(n: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        n as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

/// A chat model that streams text.
///
/// Implementations own their model state (weights, KV cache), hence `&mut self`; they are `Send`
/// so a worker thread can own one, and are driven synchronously there.
pub trait Generator: Send {
    /// The model's name as the user knows it (file stem or configured name).
    fn model_id(&self) -> &str;

    /// The most tokens prompt and answer together may use.
    fn context_length(&self) -> usize;

    /// Tokens `text` costs in this model's tokenizer, without special tokens.
    fn count_tokens(&self, text: &str) -> usize;

    /// Tokens the whole prompt costs once `messages` are rendered with the model's chat template
    /// (special tokens and the assistant's opening included), so callers can budget exactly.
    fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize, SeamError>;

    /// Answers the conversation `messages` (the last is the user's turn). Each piece of text is
    /// passed to `on_text` as soon as it is decoded (pieces split on UTF-8 boundaries, never
    /// inside a character). `cancel` is checked between tokens. The prompt must fit the context
    /// (see [`Generator::prompt_tokens`]); a prompt that does not is an error, not a truncation.
    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &SamplingParams,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<GenerationStats, SeamError>;
}
