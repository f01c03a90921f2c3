//! Narrow traits at the seams between stages. Real implementations live in leaf crates; tests of
//! logic use the simple ones here or in `docent-test-support`.

/// Counts tokens the way the embedding model will see a text.
pub trait TokenCounter: Send + Sync {
    /// Tokens of `text`, special tokens (such as `[CLS]`/`[SEP]`) included.
    fn count(&self, text: &str) -> usize;

    /// Tokens a text of one word costs beyond the special tokens: the fixed overhead of any
    /// input, so counts of pieces can be added up.
    fn overhead(&self) -> usize {
        self.count("").min(self.count(" "))
    }

    /// A short identity of the tokenizer (model id), recorded with what it measured.
    fn id(&self) -> &str;
}

/// A counter that treats each whitespace-separated word and each punctuation character as one
/// token, plus two special tokens. For tests of logic, where the real tokenizer is not the
/// point.
#[derive(Debug, Default, Clone, Copy)]
pub struct WhitespaceCounter;

impl TokenCounter for WhitespaceCounter {
    fn count(&self, text: &str) -> usize {
        let mut n = 2;
        let mut in_word = false;
        for c in text.chars() {
            if c.is_whitespace() {
                in_word = false;
            } else if c.is_ascii_punctuation() {
                n += 1;
                in_word = false;
            } else if !in_word {
                n += 1;
                in_word = true;
            }
        }
        n
    }

    fn id(&self) -> &str {
        "whitespace"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_counter_counts_words_and_punctuation() {
        let c = WhitespaceCounter;
        assert_eq!(c.count(""), 2);
        assert_eq!(c.overhead(), 2);
        assert_eq!(c.count("hello, world"), 5);
        assert_eq!(c.count("  a  b\n c "), 5);
    }
}

/// An error from the far side of a seam, carried as text plus its source.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SeamError {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SeamError {
    pub fn new(message: impl Into<String>) -> Self {
        SeamError {
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        SeamError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Who made a vector: stored with every index so vectors of different models never mix.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EmbedderIdentity {
    /// Model name (its folder name), e.g. `all-MiniLM-L6-v2`.
    pub model: String,
    /// SHA-256 (or BLAKE3, prefixed `blake3:`) of the weights file.
    pub checksum: String,
    /// Vector dimension.
    pub dim: usize,
}

/// Whether a text is a document chunk or a search query (some models prefix them differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbedKind {
    Document,
    Query,
}

/// Turns texts into L2-normalised vectors.
pub trait Embedder: Send + Sync {
    fn identity(&self) -> &EmbedderIdentity;

    /// One vector per text, in order, each of length `identity().dim`.
    fn embed(&self, texts: &[&str], kind: EmbedKind) -> Result<Vec<Vec<f32>>, SeamError>;
}

/// Where an operation's models come from. The engine loads them from the models directory by
/// default; tests of logic hand it fakes through this seam instead.
pub trait ModelSource: Send + Sync {
    /// Measures chunks.
    fn token_counter(&self) -> Result<std::sync::Arc<dyn TokenCounter>, SeamError>;
    /// Embeds chunks and queries.
    fn embedder(&self) -> Result<std::sync::Arc<dyn Embedder>, SeamError>;
    /// Answers questions; called when a question first needs the model.
    fn generator(&self) -> Result<Box<dyn crate::Generator>, SeamError>;
}
