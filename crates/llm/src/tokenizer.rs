//! The model's tokenizer, built from the GGUF's own metadata (`tokenizer.ggml.*`), so a single
//! `.gguf` file is all a user needs.
//!
//! Two families, as `tokenizer.ggml.model` names them:
//! - `gpt2`: byte-level BPE with merges (SmolLM2, Qwen, Llama 3). Pre-tokenisation follows
//!   `tokenizer.ggml.pre` (the split regex of the model family); the BPE itself runs on the
//!   `tokenizers` crate.
//! - `llama`: SentencePiece-style BPE by piece score with byte fallback (Gemma, Llama 2,
//!   Mistral): adjacent symbols are merged, best score first, while the merged piece is in the
//!   vocabulary; characters outside it become `<0xNN>` byte tokens.
//!
//! Special tokens are matched before either runs, longest first, as llama.cpp does: user-defined
//! tokens always, control tokens (`<|im_start|>`, `<start_of_turn>`) only when the caller asks
//! (`parse_special`), so text from documents cannot forge a turn.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::error::{LlmError, Result};
use crate::gguf::Meta;

const TYPE_NORMAL: i32 = 1;
const TYPE_UNKNOWN: i32 = 2;
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;
const TYPE_BYTE: i32 = 6;

// One per loaded model: the size of the SentencePiece variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Kind {
    /// Byte-level BPE; `tokenizers` does the pre-tokenisation and merges.
    Gpt2(Box<Tokenizer>),
    /// SentencePiece-style: pieces with scores.
    Spm {
        scores: Vec<f32>,
        byte_tokens: [Option<u32>; 256],
        add_space_prefix: bool,
    },
}

/// A tokenizer read from a GGUF file.
pub struct GgufTokenizer {
    kind: Kind,
    tokens: Vec<String>,
    types: Vec<i32>,
    ids: HashMap<String, u32>,
    /// Control, user-defined and unknown tokens, longest first.
    specials: Vec<(String, u32, i32)>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    unknown: Option<u32>,
    /// Byte values of a gpt2 token's characters.
    byte_decoder: HashMap<char, u8>,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("vocab", &self.tokens.len())
            .field(
                "kind",
                &match self.kind {
                    Kind::Gpt2(_) => "gpt2",
                    Kind::Spm { .. } => "llama",
                },
            )
            .finish_non_exhaustive()
    }
}

/// Token texts that end a turn or a sequence in the common chat formats.
pub(crate) const END_OF_TURN_TEXTS: &[&str] = &[
    "</s>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "<end_of_utterance>",
    "<|return|>",
    "<|call|>",
    "<EOT>",
];

impl GgufTokenizer {
    pub(crate) fn from_content(path: &Path, c: &Content) -> Result<Self> {
        let md = Meta {
            path,
            map: &c.metadata,
        };
        let err = |m: String| LlmError::Tokenizer {
            path: path.to_path_buf(),
            message: m,
        };
        let model = md.string("tokenizer.ggml.model")?;
        let tokens = strings(c.metadata.get("tokenizer.ggml.tokens"))
            .ok_or_else(|| err("`tokenizer.ggml.tokens` is missing".into()))?;
        let mut types: Vec<i32> = match c.metadata.get("tokenizer.ggml.token_type") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.to_i32().or_else(|_| v.to_u32().map(|x| x as i32)))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| err(format!("bad `tokenizer.ggml.token_type`: {e}")))?,
            _ => vec![TYPE_NORMAL; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(err("token types and tokens differ in number".into()));
        }
        // Texts that end a turn are control tokens whatever the file says (Gemma stores `</s>`
        // as user-defined): never parsed out of document text, as llama.cpp treats them.
        for (t, ty) in tokens.iter().zip(types.iter_mut()) {
            if *ty == TYPE_USER_DEFINED && END_OF_TURN_TEXTS.contains(&t.as_str()) {
                *ty = TYPE_CONTROL;
            }
        }
        let mut ids = HashMap::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            ids.entry(t.clone()).or_insert(i as u32);
        }
        let mut specials: Vec<(String, u32, i32)> = tokens
            .iter()
            .zip(&types)
            .enumerate()
            .filter(|(_, (t, ty))| {
                !t.is_empty() && matches!(**ty, TYPE_CONTROL | TYPE_USER_DEFINED | TYPE_UNKNOWN)
            })
            .map(|(i, (t, ty))| (t.clone(), i as u32, *ty))
            .collect();
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));

        let id_of = |key: &str| md.opt_usize(key).map(|x| x as u32);
        let kind = match model.as_str() {
            "gpt2" => {
                let merges: Vec<(String, String)> =
                    strings(c.metadata.get("tokenizer.ggml.merges"))
                        .ok_or_else(|| err("`tokenizer.ggml.merges` is missing".into()))?
                        .into_iter()
                        .filter_map(|m| {
                            m.split_once(' ')
                                .map(|(a, b)| (a.to_string(), b.to_string()))
                        })
                        .collect();
                let vocab: tokenizers::models::bpe::Vocab =
                    ids.iter().map(|(k, v)| (k.clone(), *v)).collect();
                let bpe = BPE::builder()
                    .vocab_and_merges(vocab, merges)
                    .ignore_merges(false)
                    .build()
                    .map_err(|e| err(format!("cannot build the BPE model: {e}")))?;
                let pre = md
                    .opt_string("tokenizer.ggml.pre")
                    .unwrap_or_else(|| "default".into());
                let mut tk = Tokenizer::new(bpe);
                tk.with_pre_tokenizer(Some(pre_tokenizer(&pre).map_err(err)?));
                Kind::Gpt2(Box::new(tk))
            }
            "llama" => {
                let scores: Vec<f32> = match c.metadata.get("tokenizer.ggml.scores") {
                    Some(Value::Array(a)) => a.iter().map(|v| v.to_f32().unwrap_or(0.0)).collect(),
                    _ => vec![0.0; tokens.len()],
                };
                let mut byte_tokens = [None; 256];
                for (b, slot) in byte_tokens.iter_mut().enumerate() {
                    *slot = ids.get(&format!("<0x{b:02X}>")).copied();
                }
                Kind::Spm {
                    scores,
                    byte_tokens,
                    add_space_prefix: md
                        .opt_bool("tokenizer.ggml.add_space_prefix")
                        .unwrap_or(true),
                }
            }
            other => {
                return Err(err(format!(
                    "tokenizer model `{other}` is not supported (gpt2 and llama are)"
                )));
            }
        };
        Ok(GgufTokenizer {
            bos: id_of("tokenizer.ggml.bos_token_id"),
            eos: id_of("tokenizer.ggml.eos_token_id"),
            unknown: id_of("tokenizer.ggml.unknown_token_id"),
            add_bos: md.opt_bool("tokenizer.ggml.add_bos_token").unwrap_or(false),
            byte_decoder: byte_decoder(),
            kind,
            tokens,
            types,
            ids,
            specials,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The id of a token written out, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// The text of a token as the vocabulary stores it.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Whether `id` is a control token (never shown as text).
    pub fn is_control(&self, id: u32) -> bool {
        self.types.get(id as usize) == Some(&TYPE_CONTROL)
    }

    /// The control tokens' texts (for neutralising them in untrusted text).
    pub fn control_tokens(&self) -> impl Iterator<Item = &str> {
        self.specials
            .iter()
            .filter(|(_, _, ty)| *ty == TYPE_CONTROL)
            .map(|(t, _, _)| t.as_str())
    }

    /// Token ids of `text`. `parse_special`: control tokens written in the text become those
    /// tokens (for rendered chat templates); otherwise they are tokenized as plain text. No BOS
    /// is added: the chat template or the caller decides.
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        let mut rest = text;
        while !rest.is_empty() {
            match self.next_special(rest, parse_special) {
                Some((at, tok, id)) => {
                    self.encode_plain(&rest[..at], &mut out)?;
                    out.push(id);
                    rest = &rest[at + tok.len()..];
                }
                None => {
                    self.encode_plain(rest, &mut out)?;
                    break;
                }
            }
        }
        Ok(out)
    }

    fn next_special<'s>(
        &'s self,
        text: &str,
        parse_special: bool,
    ) -> Option<(usize, &'s str, u32)> {
        let mut best: Option<(usize, &str, u32)> = None;
        for (tok, id, ty) in &self.specials {
            if !parse_special && *ty != TYPE_USER_DEFINED {
                continue;
            }
            if let Some(at) = text.find(tok.as_str()) {
                // Earliest match wins; at the same place the longest (they are sorted so).
                if best.is_none_or(|(b, _, _)| at < b) {
                    best = Some((at, tok.as_str(), *id));
                }
            }
        }
        best
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        match &self.kind {
            Kind::Gpt2(tk) => {
                let enc = tk.encode(text, false).map_err(|e| LlmError::Tokenizer {
                    path: Default::default(),
                    message: e.to_string(),
                })?;
                out.extend_from_slice(enc.get_ids());
            }
            Kind::Spm {
                scores,
                byte_tokens,
                add_space_prefix,
            } => {
                let mut s = String::with_capacity(text.len() + 3);
                if *add_space_prefix && out.is_empty() {
                    s.push(' ');
                }
                s.push_str(text);
                let s = s.replace(' ', "\u{2581}");
                spm_encode(&s, &self.ids, scores, byte_tokens, self.unknown, out);
            }
        }
        Ok(())
    }

    /// The bytes a token stands for (empty for control tokens). Bytes, not text: one character
    /// may be split across tokens.
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let Some(t) = self.tokens.get(id as usize) else {
            return Vec::new();
        };
        let ty = self.types[id as usize];
        if ty == TYPE_CONTROL || ty == TYPE_UNKNOWN {
            return Vec::new();
        }
        if ty == TYPE_USER_DEFINED {
            return t.as_bytes().to_vec();
        }
        match &self.kind {
            Kind::Gpt2(_) => t
                .chars()
                .map(|c| self.byte_decoder.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .unwrap_or_else(|| t.as_bytes().to_vec()),
            Kind::Spm { .. } => {
                if ty == TYPE_BYTE
                    && let Some(hex) = t.strip_prefix("<0x").and_then(|h| h.strip_suffix('>'))
                    && let Ok(b) = u8::from_str_radix(hex, 16)
                {
                    return vec![b];
                }
                t.replace('\u{2581}', " ").into_bytes()
            }
        }
    }

    /// The text of `ids` (control tokens dropped, invalid UTF-8 replaced).
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| self.token_bytes(id)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::Array(a) => a.iter().map(|x| x.to_string().ok().cloned()).collect(),
        _ => None,
    }
}

/// The pre-tokeniser of a gpt2-style vocabulary, by `tokenizer.ggml.pre`.
fn pre_tokenizer(pre: &str) -> std::result::Result<PreTokenizerWrapper, String> {
    // The split regexes of the model families, as their `tokenizer.json` files define them.
    const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    let split = |re: &str| -> std::result::Result<PreTokenizerWrapper, String> {
        let s = Split::new(
            SplitPattern::Regex(re.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| e.to_string())?;
        Ok(PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Split(s),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)),
        ])))
    };
    match pre {
        "llama-bpe" | "llama3" | "llama-v3" | "smaug-bpe" => split(LLAMA3),
        "qwen2" | "deepseek-r1-qwen" => split(QWEN2),
        "smollm" | "starcoder" | "refact" => {
            Ok(PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, true)),
            ])))
        }
        // GPT-2's own split.
        "default" | "gpt2" | "gpt-2" => Ok(PreTokenizerWrapper::ByteLevel(ByteLevel::new(
            false, false, true,
        ))),
        other => Err(format!(
            "pre-tokenizer `{other}` is not supported (llama-bpe, qwen2, smollm and gpt2 are)"
        )),
    }
}

/// GPT-2's reversible map from bytes to printable characters, inverted.
fn byte_decoder() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    printable
        .into_iter()
        .zip(chars)
        .filter_map(|(b, c)| char::from_u32(c).map(|c| (c, b as u8)))
        .collect()
}

#[derive(PartialEq)]
struct Bigram {
    score: f32,
    left: usize,
    size: usize,
}

impl Eq for Bigram {}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        // Highest score first; on a tie, the leftmost pair.
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// SentencePiece-style BPE: start from characters, repeatedly merge the adjacent pair whose
/// concatenation is the best-scoring piece in the vocabulary.
fn spm_encode(
    text: &str,
    ids: &HashMap<String, u32>,
    scores: &[f32],
    byte_tokens: &[Option<u32>; 256],
    unknown: Option<u32>,
    out: &mut Vec<u32>,
) {
    let mut symbols: Vec<Symbol> = Vec::new();
    for (i, (start, c)) in text.char_indices().enumerate() {
        symbols.push(Symbol {
            start,
            len: c.len_utf8(),
            prev: i.checked_sub(1),
            next: None,
        });
        if i > 0 {
            symbols[i - 1].next = Some(i);
        }
    }
    let mut heap = BinaryHeap::new();
    let try_add = |heap: &mut BinaryHeap<Bigram>, symbols: &[Symbol], left: usize| {
        let Some(right) = symbols[left].next else {
            return;
        };
        let (s, e) = (
            symbols[left].start,
            symbols[right].start + symbols[right].len,
        );
        if let Some(&id) = ids.get(&text[s..e]) {
            heap.push(Bigram {
                score: scores.get(id as usize).copied().unwrap_or(0.0),
                left,
                size: e - s,
            });
        }
    };
    for i in 0..symbols.len() {
        try_add(&mut heap, &symbols, i);
    }
    while let Some(b) = heap.pop() {
        let left = b.left;
        let Some(right) = symbols[left].next else {
            continue;
        };
        // Skip pairs that changed since they were queued.
        if symbols[left].len == 0 || symbols[left].len + symbols[right].len != b.size {
            continue;
        }
        symbols[left].len += symbols[right].len;
        symbols[right].len = 0;
        let after = symbols[right].next;
        symbols[left].next = after;
        if let Some(a) = after {
            symbols[a].prev = Some(left);
        }
        if let Some(p) = symbols[left].prev {
            try_add(&mut heap, &symbols, p);
        }
        try_add(&mut heap, &symbols, left);
    }
    let mut i = if symbols.is_empty() { None } else { Some(0) };
    while let Some(k) = i {
        let s = &symbols[k];
        let piece = &text[s.start..s.start + s.len];
        match ids.get(piece) {
            Some(&id) => out.push(id),
            None => {
                for b in piece.bytes() {
                    if let Some(id) = byte_tokens[b as usize].or(unknown) {
                        out.push(id)
                    }
                }
            }
        }
        i = s.next;
    }
}

/// Turns a stream of token ids into text pieces that never split a character: bytes wait until
/// their character is complete.
#[derive(Default)]
pub struct IncrementalDecoder {
    pending: Vec<u8>,
}

impl IncrementalDecoder {
    /// Adds a token; returns the text that became complete, if any.
    pub fn push(&mut self, tok: &GgufTokenizer, id: u32) -> Option<String> {
        self.pending.extend(tok.token_bytes(id));
        self.take_complete()
    }

    fn take_complete(&mut self) -> Option<String> {
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) => {
                if e.error_len().is_some() {
                    // Invalid bytes (not a cut character): emit them replaced.
                    let s = String::from_utf8_lossy(&self.pending).into_owned();
                    self.pending.clear();
                    return Some(s);
                }
                e.valid_up_to()
            }
        };
        if valid == 0 {
            return None;
        }
        let rest = self.pending.split_off(valid);
        let done = std::mem::replace(&mut self.pending, rest);
        String::from_utf8(done).ok()
    }

    /// Whatever is left at the end (an incomplete character becomes U+FFFD).
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(s)
    }
}
