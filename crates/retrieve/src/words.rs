//! What a word is, shared by the query parser (search terms) and the snippet maker (matches),
//! so that a term always has a chance to match the word it came from.
//!
//! A word is a maximal run of letters, digits and combining marks, in any script. Scripts
//! written without spaces (Chinese, Japanese, Thai, …) make long "words"; terms in them match
//! anywhere inside a word (see [`is_unspaced`]).

use std::ops::Range;

/// True for characters that make up words: letters and digits of any script, and the common
/// combining marks (so `e` + U+0301 is one word).
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(c,
            '\u{300}'..='\u{36f}'
            | '\u{1ab0}'..='\u{1aff}'
            | '\u{1dc0}'..='\u{1dff}'
            | '\u{20d0}'..='\u{20ff}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{fe20}'..='\u{fe2f}'
            | '\u{200d}')
}

/// True for characters of scripts that are written without spaces between words.
pub(crate) fn is_unspaced(c: char) -> bool {
    matches!(c,
        '\u{0e00}'..='\u{0eff}'     // Thai, Lao
        | '\u{1000}'..='\u{109f}'   // Myanmar
        | '\u{1780}'..='\u{17ff}'   // Khmer
        | '\u{3040}'..='\u{30ff}'   // Hiragana, Katakana
        | '\u{31f0}'..='\u{31ff}'   // Katakana extensions
        | '\u{3400}'..='\u{4dbf}'   // CJK extension A
        | '\u{4e00}'..='\u{9fff}'   // CJK unified ideographs
        | '\u{f900}'..='\u{faff}'   // CJK compatibility ideographs
        | '\u{ff66}'..='\u{ff9f}'   // half-width Katakana
        | '\u{20000}'..='\u{2ffff}') // CJK extensions B and later
}

/// Byte ranges of the words of `s`, in order.
pub(crate) fn word_ranges(s: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (is_word_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(st)) => {
                out.push(st..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push(st..s.len());
    }
    out
}

/// The lowercased words of `s`, each once, in order of first appearance.
pub(crate) fn lower_words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in word_ranges(s) {
        let w = s[r].to_lowercase();
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// If `hay` starts with `needle` when compared case-insensitively (`needle` already lowercase),
/// the number of bytes of `hay` that the match covers. A character whose lowercase form only
/// partly overlaps the needle's end does not match.
pub(crate) fn starts_with_ci(hay: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    let mut rest = needle;
    for (i, c) in hay.char_indices() {
        for l in c.to_lowercase() {
            let mut buf = [0u8; 4];
            let l = l.encode_utf8(&mut buf);
            rest = rest.strip_prefix(&*l)?;
        }
        if rest.is_empty() {
            return Some(i + c.len_utf8());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_in_any_script() {
        let s = "Roof-membrane, café e\u{301}t\u{e9} 東京タワー 42x";
        let words: Vec<&str> = word_ranges(s).into_iter().map(|r| &s[r]).collect();
        assert_eq!(
            words,
            [
                "Roof",
                "membrane",
                "café",
                "e\u{301}t\u{e9}",
                "東京タワー",
                "42x"
            ]
        );
        assert_eq!(lower_words("The the THE Straße"), ["the", "straße"]);
        assert!(word_ranges("  ,;!  ").is_empty());
    }

    #[test]
    fn case_insensitive_prefix() {
        assert_eq!(starts_with_ci("Membranes", "membrane"), Some(8));
        assert_eq!(starts_with_ci("ÉCOLE", "éc"), Some(3));
        assert_eq!(starts_with_ci("mem", "membrane"), None);
        // U+0130 lowercases to `i` + U+0307: a needle of just `i` ends inside it.
        assert_eq!(starts_with_ci("\u{130}x", "i"), None);
        assert_eq!(starts_with_ci("\u{130}x", "i\u{307}"), Some(2));
    }
}
