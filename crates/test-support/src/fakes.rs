//! Fakes for the model seams, for tests of logic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use docent_core::{
    ChatMessage, EmbedKind, Embedder, EmbedderIdentity, GenerationStats, Generator, ModelSource,
    SamplingParams, SeamError, StopReason, TokenCounter, WhitespaceCounter,
};

/// A generator that replies with scripted texts, one per call (the last one repeats), streamed
/// word by word. It counts one token per whitespace-separated word, plus 4 per message and 3
/// for the assistant's opening, refuses prompts beyond its context like a real model, honours
/// the cancel flag between words, and records every conversation it was given.
pub struct ScriptedGenerator {
    replies: Vec<String>,
    responder: Option<Responder>,
    context_length: usize,
    calls: Arc<Mutex<Vec<Vec<ChatMessage>>>>,
    /// Set the flag after this many words (to test cancellation from inside a stream).
    cancel_after: Option<(usize, Arc<AtomicBool>)>,
}

type Responder = Box<dyn FnMut(&[ChatMessage]) -> String + Send>;

/// What a [`ScriptedGenerator`] was asked, readable after the generator was moved away.
#[derive(Clone, Default)]
pub struct GeneratorLog(Arc<Mutex<Vec<Vec<ChatMessage>>>>);

impl GeneratorLog {
    /// Every conversation the generator was asked to continue, in order.
    pub fn calls(&self) -> Vec<Vec<ChatMessage>> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl ScriptedGenerator {
    pub fn new<S: Into<String>>(replies: impl IntoIterator<Item = S>) -> Self {
        ScriptedGenerator {
            replies: replies.into_iter().map(Into::into).collect(),
            responder: None,
            context_length: 4096,
            calls: Arc::default(),
            cancel_after: None,
        }
    }

    /// A generator whose reply is computed from the conversation it is given (e.g. to cite the
    /// number a prompt gave a particular source).
    pub fn responding(f: impl FnMut(&[ChatMessage]) -> String + Send + 'static) -> Self {
        let mut g = Self::new(Vec::<String>::new());
        g.responder = Some(Box::new(f));
        g
    }

    pub fn with_context_length(mut self, n: usize) -> Self {
        self.context_length = n;
        self
    }

    /// Sets `flag` once `words` words were streamed.
    pub fn cancel_after(mut self, words: usize, flag: Arc<AtomicBool>) -> Self {
        self.cancel_after = Some((words, flag));
        self
    }

    pub fn log(&self) -> GeneratorLog {
        GeneratorLog(self.calls.clone())
    }
}

impl Generator for ScriptedGenerator {
    fn model_id(&self) -> &str {
        "scripted"
    }

    fn context_length(&self) -> usize {
        self.context_length
    }

    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize, SeamError> {
        Ok(messages
            .iter()
            .map(|m| self.count_tokens(&m.content) + 4)
            .sum::<usize>()
            + 3)
    }

    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &SamplingParams,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<GenerationStats, SeamError> {
        let prompt_tokens = self.prompt_tokens(messages)?;
        if prompt_tokens > self.context_length {
            return Err(SeamError::new(format!(
                "prompt of {prompt_tokens} tokens exceeds the context of {}",
                self.context_length
            )));
        }
        let n = {
            let mut calls = self
                .calls
                .lock()
                .map_err(|_| SeamError::new("generator log poisoned"))?;
            calls.push(messages.to_vec());
            calls.len()
        };
        let reply = match &mut self.responder {
            Some(f) => f(messages),
            None => self
                .replies
                .get(n - 1)
                .or(self.replies.last())
                .cloned()
                .unwrap_or_default(),
        };
        let mut generated = 0;
        let mut stop = StopReason::EndOfTurn;
        let mut first = true;
        for piece in reply.split_inclusive(char::is_whitespace) {
            if cancel.load(Ordering::Relaxed) {
                stop = StopReason::Cancelled;
                break;
            }
            if generated >= params.max_tokens {
                stop = StopReason::MaxTokens;
                break;
            }
            on_text(piece);
            if !piece.trim().is_empty() || first {
                generated += 1;
            }
            first = false;
            if let Some((after, flag)) = &self.cancel_after
                && generated >= *after
            {
                flag.store(true, Ordering::Relaxed);
            }
        }
        Ok(GenerationStats {
            prompt_tokens,
            generated_tokens: generated,
            ttft_ms: 1.0,
            prefill_ms: 1.0,
            decode_ms: generated as f64,
            stop,
        })
    }
}

/// Fake models for the engine: [`HashEmbedder`], [`WhitespaceCounter`] and generators handed
/// out in order (each question session takes the next; when none is left, loading fails like a
/// missing model).
pub struct FakeModels {
    embedder: Arc<HashEmbedder>,
    generators: Mutex<Vec<Box<dyn Generator>>>,
}

impl FakeModels {
    /// Dimensions of the fake embeddings: enough that unrelated words rarely share one.
    pub const DIM: usize = 512;

    /// Models without a generator: for indexing and search.
    pub fn new() -> Self {
        FakeModels {
            embedder: Arc::new(HashEmbedder::with_dim(FakeModels::DIM)),
            generators: Mutex::new(Vec::new()),
        }
    }

    /// Models whose language model is `g` (loaded once).
    pub fn with_generator(g: impl Generator + 'static) -> Self {
        let m = Self::new();
        m.push_generator(g);
        m
    }

    /// Adds a generator to hand out after those already given.
    pub fn push_generator(&self, g: impl Generator + 'static) {
        if let Ok(mut gs) = self.generators.lock() {
            gs.push(Box::new(g));
        }
    }
}

impl Default for FakeModels {
    fn default() -> Self {
        Self::new()
    }
}

impl ModelSource for FakeModels {
    fn token_counter(&self) -> Result<Arc<dyn TokenCounter>, SeamError> {
        Ok(Arc::new(WhitespaceCounter))
    }

    fn embedder(&self) -> Result<Arc<dyn Embedder>, SeamError> {
        Ok(self.embedder.clone())
    }

    fn generator(&self) -> Result<Box<dyn Generator>, SeamError> {
        let mut gs = self
            .generators
            .lock()
            .map_err(|_| SeamError::new("fake models poisoned"))?;
        if gs.is_empty() {
            return Err(SeamError::new("language model `fake` is not installed"));
        }
        Ok(gs.remove(0))
    }
}

/// An embedder that hashes lower-cased words into a small bag-of-words vector: texts sharing
/// words come out similar. Deterministic and instant.
pub struct HashEmbedder {
    identity: EmbedderIdentity,
}

impl Default for HashEmbedder {
    fn default() -> Self {
        Self::with_dim(64)
    }
}

impl HashEmbedder {
    /// Vectors of `dim` numbers: more dimensions, fewer words sharing one.
    pub fn with_dim(dim: usize) -> Self {
        HashEmbedder {
            identity: EmbedderIdentity {
                model: "hash".into(),
                checksum: "none".into(),
                dim: dim.max(1),
            },
        }
    }
}

impl Embedder for HashEmbedder {
    fn identity(&self) -> &EmbedderIdentity {
        &self.identity
    }

    fn embed(&self, texts: &[&str], _kind: EmbedKind) -> Result<Vec<Vec<f32>>, SeamError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0f32; self.identity.dim];
                for w in t
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                {
                    let h = blake3::hash(w.to_lowercase().as_bytes());
                    let i = u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8]));
                    v[(i % self.identity.dim as u64) as usize] += 1.0;
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                if norm > 0.0 {
                    v.iter_mut().for_each(|x| *x /= norm);
                }
                v
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_generator_streams_records_and_cancels() {
        let mut g = ScriptedGenerator::new(["one two three", "second"]);
        let log = g.log();
        let mut out = String::new();
        let cancel = AtomicBool::new(false);
        let m = [ChatMessage::user("hi there")];
        let s = g
            .generate(&m, &SamplingParams::default(), &cancel, &mut |t| {
                out.push_str(t)
            })
            .unwrap();
        assert_eq!(out, "one two three");
        assert_eq!(s.generated_tokens, 3);
        assert_eq!(g.prompt_tokens(&m).unwrap(), 9);
        let mut out = String::new();
        g.generate(&m, &SamplingParams::default(), &cancel, &mut |t| {
            out.push_str(t)
        })
        .unwrap();
        assert_eq!(out, "second");
        assert_eq!(log.calls().len(), 2);

        let flag = Arc::new(AtomicBool::new(false));
        let mut g = ScriptedGenerator::new(["a b c d"]).cancel_after(2, flag.clone());
        let mut out = String::new();
        let s = g
            .generate(&m, &SamplingParams::default(), &flag, &mut |t| {
                out.push_str(t)
            })
            .unwrap();
        assert_eq!(out, "a b ");
        assert_eq!(s.stop, StopReason::Cancelled);

        let mut g = ScriptedGenerator::new(["x"]).with_context_length(5);
        assert!(
            g.generate(&m, &SamplingParams::default(), &cancel, &mut |_| {})
                .is_err()
        );
    }

    #[test]
    fn hash_embedder_is_normalised_and_similar_for_shared_words() {
        let e = HashEmbedder::default();
        let v = e
            .embed(
                &["roof membrane", "the roof membrane", "cork floor"],
                EmbedKind::Query,
            )
            .unwrap();
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        assert!((dot(&v[0], &v[0]) - 1.0).abs() < 1e-5);
        assert!(dot(&v[0], &v[1]) > dot(&v[0], &v[2]));
    }
}
