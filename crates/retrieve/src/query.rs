//! The search box's syntax: free text plus filters written as `name:value`.
//!
//! | filter | value | meaning |
//! |---|---|---|
//! | `kind:` | `pdf`, `note`, `email` (also `notes`, `emails`, `mail`); a comma list or repeated | any of these kinds |
//! | `path:` | a path prefix, kept as typed (the engine makes it absolute) | files under it |
//! | `from:` | text | sender contains it |
//! | `subject:` | text | subject (or title) has these words |
//! | `after:` | `YYYY-MM-DD` | on or after that day |
//! | `before:` | `YYYY-MM-DD` | before that day |
//!
//! Filter names are case-insensitive. A value may be double-quoted to hold spaces
//! (`subject:"roof membrane"`, `path:"My Docs/"`); an unclosed quote runs to the end of the
//! query. A filter with a missing or invalid value (`kind:video`, `after:2024-13-45`) is
//! dropped with a warning that names it, and is not searched as text. Any other `word:` (`http:`,
//! `note:`) is plain text, and so is a token that starts with a quote (`"kind:pdf"`). A
//! single-valued filter given twice keeps the last value, with a warning.
//!
//! The rest is the query [`ParsedQuery::text`]: its tokens joined by single spaces, with control
//! characters and terminal escapes removed, cut to [`MAX_QUERY_CHARS`] characters. It is the
//! user's words, not a query language: whoever hands it to a search engine with a syntax of its
//! own must escape it (or search [`ParsedQuery::terms`]). Parsing never fails and never panics.

use std::fmt;

use docent_core::text::sanitize;
use docent_core::{DocKind, SearchFilter};

use crate::words::lower_words;

/// The longest query text searched, in characters; longer text is cut, with a warning.
pub const MAX_QUERY_CHARS: usize = 2_000;

/// Characters of a value quoted back in a warning.
const WARN_VALUE_CHARS: usize = 40;

/// A query split into the text to search, its filters, and the words to highlight.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ParsedQuery {
    /// The words to search for, filters removed.
    pub text: String,
    pub filter: SearchFilter,
    /// The lowercased words of `text` (letters and digits, any script), each once, in order:
    /// what snippets highlight.
    pub terms: Vec<String>,
    /// What was ignored or changed, and why, for the user to see.
    pub warnings: Vec<String>,
}

impl fmt::Debug for ParsedQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedQuery")
            .field("text_len", &self.text.len())
            .field("terms", &self.terms.len())
            .field("filter_empty", &self.filter.is_empty())
            .field("warnings", &self.warnings.len())
            .finish()
    }
}

/// One whitespace-separated token of the query; quotes hold whitespace inside a token.
struct Token {
    raw: String,
    /// The token's quote was never closed (it ran to the end of the query).
    unclosed: bool,
}

/// The known filters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Name {
    Kind,
    Path,
    From,
    Subject,
    After,
    Before,
}

impl Name {
    fn parse(s: &str) -> Option<Name> {
        Some(match s.to_ascii_lowercase().as_str() {
            "kind" => Name::Kind,
            "path" => Name::Path,
            "from" => Name::From,
            "subject" => Name::Subject,
            "after" => Name::After,
            "before" => Name::Before,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Name::Kind => "kind",
            Name::Path => "path",
            Name::From => "from",
            Name::Subject => "subject",
            Name::After => "after",
            Name::Before => "before",
        }
    }
}

/// Splits a query into its text, filters and highlight terms. See the module docs for the
/// syntax.
pub fn parse_query(input: &str) -> ParsedQuery {
    let clean = sanitize(input);
    let mut q = ParsedQuery::default();
    let mut text_tokens: Vec<String> = Vec::new();

    for token in tokenize(&clean) {
        match split_filter(&token.raw) {
            Some((name, value)) => {
                if token.unclosed {
                    q.warnings.push(format!(
                        "`{}:` has an unclosed quote: its value runs to the end of the query",
                        name.as_str()
                    ));
                }
                apply_filter(&mut q, name, &value);
            }
            None => text_tokens.push(token.raw),
        }
    }

    if let (Some(after), Some(before)) = (&q.filter.after, &q.filter.before)
        && after >= before
    {
        q.warnings.push(format!(
            "`after:{after}` is not earlier than `before:{before}`: nothing can match"
        ));
    }

    // A quoted token may end in spaces (an unclosed quote runs to the end of the query).
    let mut text = text_tokens.join(" ").trim().to_string();
    if let Some((cut, _)) = text.char_indices().nth(MAX_QUERY_CHARS) {
        text.truncate(cut);
        text.truncate(text.trim_end().len());
        q.warnings.push(format!(
            "the query is longer than {MAX_QUERY_CHARS} characters: only its start is searched"
        ));
    }
    q.terms = lower_words(&text);
    q.text = text;
    q
}

/// Splits on whitespace and control characters, except inside double quotes, which are kept in
/// the token. Whitespace inside quotes becomes plain spaces.
fn tokenize(s: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    for c in s.chars() {
        let space = c.is_whitespace() || c.is_control();
        if c == '"' {
            in_quote = !in_quote;
            cur.push(c);
        } else if space && in_quote {
            cur.push(' ');
        } else if space {
            if !cur.is_empty() {
                tokens.push(Token {
                    raw: std::mem::take(&mut cur),
                    unclosed: false,
                });
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        tokens.push(Token {
            raw: cur,
            unclosed: in_quote,
        });
    }
    tokens
}

/// `name:value` with a known name (ASCII letters before the first colon) → the name and the
/// value with its quotes removed.
fn split_filter(raw: &str) -> Option<(Name, String)> {
    let (name, value) = raw.split_once(':')?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let name = Name::parse(name)?;
    Some((name, value.replace('"', "")))
}

fn apply_filter(q: &mut ParsedQuery, name: Name, value: &str) {
    let n = name.as_str();
    let trimmed = value.trim();
    if trimmed.is_empty() {
        q.warnings.push(format!(
            "ignored `{n}:`: it needs a value right after the colon, e.g. {}",
            example(name)
        ));
        return;
    }
    if trimmed.chars().count() > MAX_QUERY_CHARS {
        q.warnings.push(format!(
            "ignored `{n}:`: its value is longer than {MAX_QUERY_CHARS} characters"
        ));
        return;
    }
    match name {
        Name::Kind => {
            for item in trimmed.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match parse_kind(item) {
                    Some(kind) if !q.filter.kinds.contains(&kind) => q.filter.kinds.push(kind),
                    Some(_) => {}
                    None => q.warnings.push(format!(
                        "ignored `kind:{}`: a kind is pdf, note or email",
                        shorten(item)
                    )),
                }
            }
        }
        Name::Path => set_once(q, name, value.to_string(), |f| &mut f.path_prefix),
        Name::From => set_once(q, name, collapse(trimmed), |f| &mut f.from),
        Name::Subject => set_once(q, name, collapse(trimmed), |f| &mut f.subject),
        Name::After | Name::Before => {
            if !docent_core::date::is_calendar_date(trimmed) {
                q.warnings.push(format!(
                    "ignored `{n}:{}`: a date is written YYYY-MM-DD, e.g. {}",
                    shorten(trimmed),
                    example(name)
                ));
            } else if name == Name::After {
                set_once(q, name, trimmed.to_string(), |f| &mut f.after);
            } else {
                set_once(q, name, trimmed.to_string(), |f| &mut f.before);
            }
        }
    }
}

/// Sets a single-valued filter; a second value replaces the first, with a warning.
fn set_once(
    q: &mut ParsedQuery,
    name: Name,
    value: String,
    slot: impl Fn(&mut SearchFilter) -> &mut Option<String>,
) {
    if slot(&mut q.filter).replace(value).is_some() {
        q.warnings.push(format!(
            "`{}:` is given more than once: the last one is used",
            name.as_str()
        ));
    }
}

fn example(name: Name) -> &'static str {
    match name {
        Name::Kind => "`kind:pdf` or `kind:note,email`",
        Name::Path => "`path:~/Documents/taxes` or `path:\"My Docs/\"`",
        Name::From => "`from:alice`",
        Name::Subject => "`subject:\"roof membrane\"`",
        Name::After => "`after:2024-01-31`",
        Name::Before => "`before:2024-01-31`",
    }
}

fn parse_kind(s: &str) -> Option<DocKind> {
    Some(match s.to_lowercase().as_str() {
        "pdf" | "pdfs" => DocKind::Pdf,
        "note" | "notes" => DocKind::Note,
        "email" | "emails" | "mail" => DocKind::Email,
        _ => return None,
    })
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A value as quoted back in a warning: at most [`WARN_VALUE_CHARS`] characters.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(WARN_VALUE_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plain_text() {
        let q = parse_query("  Roof   membrane\tleak ");
        assert_eq!(q.text, "Roof membrane leak");
        assert_eq!(q.terms, terms(&["roof", "membrane", "leak"]));
        assert!(q.filter.is_empty());
        assert!(q.warnings.is_empty());
    }

    #[test]
    fn every_filter() {
        let q = parse_query(
            "invoice kind:pdf path:~/Documents/taxes from:Alice subject:\"roof  membrane\" \
             after:2024-01-01 before:2024-12-31 total",
        );
        assert_eq!(q.text, "invoice total");
        assert_eq!(q.terms, terms(&["invoice", "total"]));
        assert_eq!(
            q.filter,
            SearchFilter {
                kinds: vec![DocKind::Pdf],
                path_prefix: Some("~/Documents/taxes".into()),
                from: Some("Alice".into()),
                subject: Some("roof membrane".into()),
                after: Some("2024-01-01".into()),
                before: Some("2024-12-31".into()),
            }
        );
        assert!(q.warnings.is_empty(), "{:?}", q.warnings);
    }

    #[test]
    fn kinds_repeat_and_list() {
        let q = parse_query("kind:pdf,email x KIND:Note kind:pdf");
        assert_eq!(
            q.filter.kinds,
            vec![DocKind::Pdf, DocKind::Email, DocKind::Note]
        );
        assert_eq!(q.text, "x");
        assert!(q.warnings.is_empty());
    }

    #[test]
    fn quoted_values_and_paths_kept_as_given() {
        let q = parse_query("path:\"My Docs/\" budget");
        assert_eq!(q.filter.path_prefix.as_deref(), Some("My Docs/"));
        assert_eq!(q.text, "budget");
        let q = parse_query("path:./notes/a:b");
        assert_eq!(q.filter.path_prefix.as_deref(), Some("./notes/a:b"));
    }

    #[test]
    fn invalid_values_warn_and_are_dropped() {
        let q = parse_query("kind:video after:2024-13-45 before:yesterday report kind:pdf,gif");
        assert_eq!(q.text, "report");
        assert_eq!(q.filter.kinds, vec![DocKind::Pdf]);
        assert_eq!(q.filter.after, None);
        assert_eq!(q.filter.before, None);
        assert_eq!(q.warnings.len(), 4, "{:?}", q.warnings);
        assert!(q.warnings[0].contains("kind:video"));
        assert!(q.warnings[1].contains("after:2024-13-45"));
        assert!(q.warnings[2].contains("before:yesterday"));
        assert!(q.warnings[3].contains("kind:gif"));
    }

    #[test]
    fn empty_values_warn() {
        let q = parse_query("from: alice kind:");
        assert_eq!(q.text, "alice");
        assert!(q.filter.is_empty());
        assert_eq!(q.warnings.len(), 2);
        assert!(q.warnings[0].contains("`from:`"));
    }

    #[test]
    fn dates_are_real_days() {
        for ok in ["2024-02-29", "2000-02-29", "1999-12-31", "2024-01-01"] {
            assert!(docent_core::date::is_calendar_date(ok), "{ok}");
        }
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "2024-04-31",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
            "2024-01-0x",
            "2024/01/01",
            "２０２４-01-01",
        ] {
            assert!(!docent_core::date::is_calendar_date(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_prefixes_are_text() {
        let q = parse_query("see http://example.com note:todo c++:x");
        assert_eq!(q.text, "see http://example.com note:todo c++:x");
        assert!(q.filter.is_empty());
        assert_eq!(
            q.terms,
            terms(&["see", "http", "example", "com", "note", "todo", "c", "x"])
        );
    }

    #[test]
    fn a_leading_quote_makes_a_filter_text() {
        let q = parse_query("\"kind:pdf is a filter\"");
        assert!(q.filter.is_empty());
        assert_eq!(q.text, "\"kind:pdf is a filter\"");
    }

    #[test]
    fn unclosed_quote_runs_to_the_end() {
        let q = parse_query("leak subject:\"roof membrane");
        assert_eq!(q.text, "leak");
        assert_eq!(q.filter.subject.as_deref(), Some("roof membrane"));
        assert_eq!(q.warnings.len(), 1);
        let q = parse_query("\"unbalanced text");
        assert_eq!(q.text, "\"unbalanced text");
        assert!(q.warnings.is_empty());
    }

    #[test]
    fn repeated_single_filters_keep_the_last() {
        let q = parse_query("from:a from:b");
        assert_eq!(q.filter.from.as_deref(), Some("b"));
        assert_eq!(q.warnings.len(), 1);
    }

    #[test]
    fn impossible_date_range_warns() {
        let q = parse_query("after:2024-05-01 before:2024-01-01");
        assert_eq!(q.filter.after.as_deref(), Some("2024-05-01"));
        assert_eq!(q.warnings.len(), 1);
    }

    #[test]
    fn only_filters_and_empty() {
        let q = parse_query("kind:note");
        assert_eq!(q.text, "");
        assert!(q.terms.is_empty());
        assert_eq!(q.filter.kinds, vec![DocKind::Note]);
        assert_eq!(parse_query(""), ParsedQuery::default());
        assert_eq!(parse_query(" \n\t "), ParsedQuery::default());
    }

    #[test]
    fn syntax_characters_are_plain_text() {
        let q = parse_query("+roof -leak && (a || b) !c {d} [e] ^2 ~3 * ? \\ / :");
        assert_eq!(
            q.text,
            "+roof -leak && (a || b) !c {d} [e] ^2 ~3 * ? \\ / :"
        );
        assert_eq!(
            q.terms,
            terms(&["roof", "leak", "a", "b", "c", "d", "e", "2", "3"])
        );
    }

    #[test]
    fn control_characters_and_escapes_are_removed() {
        let q = parse_query("roof\u{1b}[31m leak\u{0}\u{7}s\r\nkind:pdf\u{202e}");
        assert_eq!(q.text, "roof leaks");
        assert_eq!(q.filter.kinds, vec![DocKind::Pdf]);
    }

    #[test]
    fn any_script() {
        let q = parse_query("東京タワー Привет МИР שלום مرحبا 👍🏽 café");
        assert_eq!(
            q.terms,
            terms(&["東京タワー", "привет", "мир", "שלום", "مرحبا", "café"])
        );
        assert_eq!(q.text, "東京タワー Привет МИР שלום مرحبا 👍🏽 café");
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let input = "é".repeat(10_000);
        let q = parse_query(&input);
        assert_eq!(q.text.chars().count(), MAX_QUERY_CHARS);
        assert_eq!(q.warnings.len(), 1);
        let input = "word ".repeat(2_000);
        let q = parse_query(&input);
        assert!(q.text.chars().count() <= MAX_QUERY_CHARS);
        assert!(q.text.ends_with("word"));
        assert_eq!(q.terms, terms(&["word"]));
    }

    #[test]
    fn debug_hides_the_query() {
        let q = parse_query("secret words from:bob");
        let dbg = format!("{q:?}");
        assert!(!dbg.contains("secret") && !dbg.contains("bob"), "{dbg}");
    }
}
