//! Tests against the installed all-MiniLM-L6-v2 model (`scripts/fetch-models.sh`). They fail,
//! not skip, when the model is absent.

#[path = "embed/bert.rs"]
mod bert;

use docent_core::TokenCounter;
use docent_embed::HfTokenCounter;
use docent_test_support::require_model;

fn minilm() -> HfTokenCounter {
    let dir = require_model("all-MiniLM-L6-v2");
    HfTokenCounter::from_model_dir(&dir).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn known_counts_include_cls_and_sep() {
    let c = minilm();
    assert_eq!(c.count(""), 2);
    assert_eq!(c.overhead(), 2);
    assert_eq!(c.count("hello world"), 4);
    // Lower-cased, accents stripped, punctuation split off: [CLS] hello , world ! [SEP]
    assert_eq!(c.count("Héllo, World!"), 6);
    // WordPiece splits a rare word into pieces: [CLS] token ##izer [SEP]
    assert_eq!(c.count("tokenizer"), 4);
}

#[test]
fn counting_never_truncates() {
    let c = minilm();
    let text = (0..2000)
        .map(|i| ["alpha", "beta", "gamma", "delta"][i % 4])
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(c.count(&text), 2002);
    // No padding either: a short text is not padded up to any fixed length.
    assert_eq!(c.count("alpha"), 3);
}

#[test]
fn id_is_the_model_folder_and_max_length_is_256() {
    let c = minilm();
    assert_eq!(c.id(), "all-MiniLM-L6-v2");
    // The shipped tokenizer.json truncates at 128; fetch-models.sh sets sentence-transformers'
    // max_seq_length of 256.
    assert_eq!(c.max_input_tokens(), Some(256));
}

#[test]
fn debug_shows_no_vocabulary() {
    let s = format!("{:?}", minilm());
    assert!(s.contains("all-MiniLM-L6-v2"), "{s}");
    assert!(s.len() < 200, "{s}");
}

/// `HfTokenCounter` counts exactly what the `tokenizers` crate's own encoding gives, on text
/// chosen to reach every normalisation step: accents and combining marks, Hangul, CJK,
/// controls, format characters, case mappings that grow, added tokens, over-long words.
mod exact_counts {
    use docent_core::TokenCounter;
    use docent_embed::HfTokenCounter;
    use docent_test_support::require_model;
    use tokenizers::Tokenizer;

    fn reference() -> Tokenizer {
        let dir = require_model("all-MiniLM-L6-v2");
        let mut t = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
        t.with_truncation(None).unwrap();
        t.with_padding(None);
        t
    }

    fn slow_count(t: &Tokenizer, text: &str) -> usize {
        t.encode_fast(text, true).unwrap().len()
    }

    /// Deterministic xorshift, so a failure can be reproduced.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u32) -> u32 {
            (self.next() % u64::from(n)) as u32
        }

        fn char(&mut self) -> char {
            const RANGES: &[(u32, u32)] = &[
                (0x61, 0x7a),       // a-z
                (0x41, 0x5a),       // A-Z
                (0x30, 0x39),       // digits
                (0x20, 0x2f),       // space and punctuation
                (0x3a, 0x40),       // punctuation
                (0x5b, 0x60),       // punctuation, including [ and ]
                (0x7b, 0x7f),       // punctuation and DEL
                (0x00, 0x1f),       // controls, tab, newline
                (0x80, 0xff),       // C1 controls, Latin-1
                (0x100, 0x24f),     // Latin extended
                (0x300, 0x36f),     // combining marks
                (0x370, 0x3ff),     // Greek (and unassigned)
                (0x400, 0x4ff),     // Cyrillic
                (0x590, 0x6ff),     // Hebrew, Arabic
                (0x900, 0x97f),     // Devanagari (spacing marks)
                (0xe00, 0xe7f),     // Thai
                (0x1100, 0x11ff),   // Hangul jamo
                (0xac00, 0xd7a3),   // Hangul syllables (decompose)
                (0x1e00, 0x1eff),   // Latin extended additional (ẞ, Vietnamese)
                (0x2000, 0x206f),   // general punctuation, zero-width and format characters
                (0x2150, 0x218f),   // number forms
                (0x3000, 0x30ff),   // CJK punctuation, kana
                (0x4e00, 0x9fff),   // CJK
                (0xe000, 0xe0ff),   // private use
                (0xf900, 0xfaff),   // CJK compatibility
                (0xfb00, 0xfb4f),   // ligatures
                (0xfe00, 0xfe0f),   // variation selectors
                (0xfeff, 0xfeff),   // BOM
                (0xff00, 0xffef),   // full width
                (0xfffd, 0xfffd),   // replacement character
                (0x1f300, 0x1f6ff), // emoji
                (0x1f3fb, 0x1f3ff), // skin tones
                (0x20000, 0x200ff), // CJK extension B
                (0x1d400, 0x1d4ff), // mathematical letters
            ];
            loop {
                let (lo, hi) = RANGES[self.below(RANGES.len() as u32) as usize];
                if let Some(c) = char::from_u32(lo + self.below(hi - lo + 1)) {
                    return c;
                }
            }
        }

        fn text(&mut self) -> String {
            let len = self.below(60);
            let mut s = String::new();
            for _ in 0..len {
                match self.below(40) {
                    0 => s.push_str(
                        ["[CLS]", "[cls]", "[MASK]x", "##ing", "[UNK"][self.below(5) as usize],
                    ),
                    1 => s.push_str(&"x".repeat(90 + self.below(20) as usize)),
                    2 => s.push_str(
                        ["İstanbul", "ΣΑΣ", "ẞtraße", "ﬁnal", "Å", "e\u{301}\u{327}"]
                            [self.below(6) as usize],
                    ),
                    3..=12 => s.push(' '),
                    _ => s.push(self.char()),
                }
            }
            s
        }
    }

    #[test]
    fn counts_equal_the_tokenizers_encoding() {
        let counter = HfTokenCounter::from_model_dir(&require_model("all-MiniLM-L6-v2")).unwrap();
        let reference = reference();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for i in 0..30_000 {
            let text = rng.text();
            let (fast, slow) = (counter.count(&text), slow_count(&reference, &text));
            assert_eq!(fast, slow, "case {i}: {text:?}");
        }
    }

    #[test]
    fn counts_equal_on_long_mixed_text() {
        let counter = HfTokenCounter::from_model_dir(&require_model("all-MiniLM-L6-v2")).unwrap();
        let reference = reference();
        let text = "The naïve café’s “résumé” — 日本語のテキスト, 한국어 문장, Ελληνικά; \
                    ﬁnal İstanbul ẞ. x\u{200b}y\u{ad}z \u{feff}emoji 👍🏽🇫🇷 e\u{301}\u{327}\n\t"
            .repeat(500);
        assert_eq!(counter.count(&text), slow_count(&reference, &text));
    }
}
