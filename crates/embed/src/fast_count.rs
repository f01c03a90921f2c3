//! Token counting for BERT-style tokenizers (a `BertNormalizer`, the `BertPreTokenizer` and a
//! `WordPiece` model) without building an `Encoding`.
//!
//! `Tokenizer::encode_fast` tracks, for every byte, where it came from through normalisation and
//! pre-tokenisation; that bookkeeping costs far more than the WordPiece lookups, and a counter
//! needs none of it. This module applies the same steps to a plain stream of characters, with
//! the same Unicode tables (`unicode_categories`, `unicode-normalization-alignments`, as the
//! `tokenizers` crate uses), and hands each word to the tokenizer's own WordPiece model, so the
//! counts are the same. Texts that contain an added token (`[CLS]`, `[MASK]`, ...) go the slow
//! way, where the added vocabulary splits them.

use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::{Model, ModelWrapper, NormalizerWrapper, PreTokenizerWrapper, Tokenizer};
use unicode_categories::UnicodeCategories;
use unicode_normalization_alignments::UnicodeNormalization;

/// The steps of a `BertNormalizer`, resolved.
#[derive(Clone, Copy, Debug)]
struct Steps {
    clean_text: bool,
    chinese_chars: bool,
    strip_accents: bool,
    lowercase: bool,
}

/// A counter for tokenizers of the BERT family; see the module documentation.
#[derive(Clone)]
pub(crate) struct BertCounter {
    steps: Option<Steps>,
    model: WordPiece,
    /// Contents of the added tokens: a text holding one goes the slow way.
    added: Vec<String>,
    /// Tokens the post-processor adds to one sequence (`[CLS]` and `[SEP]`).
    specials: usize,
}

impl BertCounter {
    /// A counter for `tokenizer` (truncation and padding off), when it is of the BERT family
    /// and its added tokens are matched on the raw text.
    pub(crate) fn new(tokenizer: &Tokenizer) -> Option<Self> {
        let steps = match tokenizer.get_normalizer() {
            None => None,
            Some(NormalizerWrapper::BertNormalizer(n)) => Some(steps(n)),
            Some(_) => return None,
        };
        if !matches!(
            tokenizer.get_pre_tokenizer(),
            Some(PreTokenizerWrapper::BertPreTokenizer(_))
        ) {
            return None;
        }
        let ModelWrapper::WordPiece(model) = tokenizer.get_model() else {
            return None;
        };
        let added_tokens = tokenizer.get_added_tokens_decoder();
        if added_tokens.values().any(|t| t.normalized) {
            return None;
        }
        let added = added_tokens.into_values().map(|t| t.content).collect();
        let specials = tokenizer.encode_fast("", true).ok()?.len();
        Some(BertCounter {
            steps,
            model: model.clone(),
            added,
            specials,
        })
    }

    /// Tokens of `text`, special tokens included; `None` when the text must be counted the slow
    /// way.
    pub(crate) fn count(&self, text: &str) -> Option<usize> {
        if self.added.iter().any(|a| text.contains(a.as_str())) {
            return None;
        }
        let mut state = State {
            model: &self.model,
            word: String::new(),
            run: Vec::new(),
            tokens: 0,
            failed: false,
        };
        match self.steps {
            None => text.chars().for_each(|c| state.pre_tokenize(c)),
            Some(steps) => {
                for c in text.chars() {
                    state.normalize(steps, c);
                }
                state.flush_run(steps);
            }
        }
        state.end_word();
        (!state.failed).then_some(state.tokens + self.specials)
    }
}

fn steps(n: &BertNormalizer) -> Steps {
    Steps {
        clean_text: n.clean_text,
        chinese_chars: n.handle_chinese_chars,
        strip_accents: n.strip_accents.unwrap_or(n.lowercase),
        lowercase: n.lowercase,
    }
}

struct State<'a> {
    model: &'a WordPiece,
    /// The word being read.
    word: String,
    /// Non-ASCII characters waiting for canonical decomposition: runs end at ASCII characters,
    /// which never combine with their neighbours, so decomposing run by run is the same as
    /// decomposing the whole text.
    run: Vec<char>,
    tokens: usize,
    failed: bool,
}

impl State<'_> {
    /// `BertNormalizer`: clean, isolate CJK characters, strip accents, lowercase; in that order.
    fn normalize(&mut self, steps: Steps, c: char) {
        let c = if steps.clean_text {
            if c == '\0' || c == '\u{fffd}' || is_control(c) {
                return;
            }
            if is_bert_whitespace(c) { ' ' } else { c }
        } else {
            c
        };
        if steps.chinese_chars && is_chinese_char(c) {
            self.accents(steps, ' ');
            self.accents(steps, c);
            self.accents(steps, ' ');
        } else {
            self.accents(steps, c);
        }
    }

    fn accents(&mut self, steps: Steps, c: char) {
        if !steps.strip_accents {
            self.lowercase(steps, c);
        } else if c.is_ascii() {
            self.flush_run(steps);
            self.lowercase(steps, c);
        } else {
            self.run.push(c);
        }
    }

    /// Decomposes the pending run and drops its non-spacing marks.
    fn flush_run(&mut self, steps: Steps) {
        if self.run.is_empty() {
            return;
        }
        let run = std::mem::take(&mut self.run);
        for (c, _) in run.iter().copied().nfd() {
            if !c.is_mark_nonspacing() {
                self.lowercase(steps, c);
            }
        }
        self.run = run;
        self.run.clear();
    }

    fn lowercase(&mut self, steps: Steps, c: char) {
        if !steps.lowercase {
            self.pre_tokenize(c);
        } else if c.is_ascii() {
            self.pre_tokenize(c.to_ascii_lowercase());
        } else {
            for l in c.to_lowercase() {
                self.pre_tokenize(l);
            }
        }
    }

    /// `BertPreTokenizer`: whitespace separates words and is dropped; punctuation is a word of
    /// its own.
    fn pre_tokenize(&mut self, c: char) {
        if c.is_whitespace() {
            self.end_word();
        } else if is_bert_punctuation(c) {
            self.end_word();
            // One character: in the vocabulary, or the unknown token.
            self.tokens += 1;
        } else {
            self.word.push(c);
        }
    }

    fn end_word(&mut self) {
        if self.word.is_empty() {
            return;
        }
        match self.model.tokenize(&self.word) {
            Ok(pieces) => self.tokens += pieces.len(),
            Err(_) => self.failed = true,
        }
        self.word.clear();
    }
}

fn is_bert_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

fn is_control(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r');
    }
    c.is_other()
}

fn is_bert_punctuation(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_punctuation();
    }
    c.is_punctuation()
}

fn is_chinese_char(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minilm_tokenizer_takes_the_fast_way() {
        let dir = docent_test_support::require_model("all-MiniLM-L6-v2");
        let mut t = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
        t.with_truncation(None).unwrap();
        t.with_padding(None);
        let c = BertCounter::new(&t).expect("a BERT-family tokenizer");
        assert_eq!(c.count("hello world"), Some(4));
        assert_eq!(c.count("Héllo, World!"), Some(6));
        assert_eq!(c.count("a [CLS] b"), None);
    }
}
