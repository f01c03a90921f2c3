//! Tests against the installed all-MiniLM-L6-v2 model (`scripts/fetch-models.sh`). They fail,
//! not skip, when the model is absent.

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
