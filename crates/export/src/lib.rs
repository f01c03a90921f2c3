//! # docent-export
//!
//! An [`Answer`] rendered for people and programs:
//!
//! - [`to_markdown`]: the question, the answer with footnote citations (`[^1]`), and one
//!   footnote per cited source: a link to the file relative to the export's folder (spaces and
//!   other unsafe characters percent-encoded; `#page=N` for PDFs, `#L3-L9` line anchors for
//!   notes), email subject, sender and date, each quoted passage as a blockquote, and a machine
//!   readable `<!-- docent:chunk=… -->` comment; then the model, the index and the date.
//! - [`to_json`]: the `--json` shape of `docent ask`.
//! - [`to_text`]: the terminal summary shown under a streamed answer (removed citations, weakly
//!   supported sentences, the sources), plain or coloured.
//!
//! It owns no I/O beyond reading the clock for [`today_utc`], and no heavy dependency. Document
//! text shown on a terminal is stripped of control sequences first.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use docent_core::text::sanitize;
use docent_core::{Answer, DocKind, Source};
use serde_json::{Value, json};

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today_utc() -> String {
    let (y, m, d) = docent_core::date::today_utc();
    format!("{y:04}-{m:02}-{d:02}")
}

/// A path as a Markdown link target relative to `from_dir` (both absolute; `..` where needed),
/// every byte outside `A-Z a-z 0-9 - . _ ~ /` percent-encoded. When the two share no root, the
/// absolute path, encoded the same way.
pub fn relative_link(target: &Path, from_dir: &Path) -> String {
    let t: Vec<Component<'_>> = target.components().collect();
    let f: Vec<Component<'_>> = from_dir.components().collect();
    let common = t.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let rel: PathBuf = if common == 0 {
        target.to_path_buf()
    } else {
        let mut p = PathBuf::new();
        for _ in common..f.len() {
            p.push("..");
        }
        for c in &t[common..] {
            p.push(c.as_os_str());
        }
        p
    };
    percent_encode(&rel.to_string_lossy().replace('\\', "/"))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Where a source is, in words: `linden-contract.pdf, page 2`, `notes.md, lines 3-9`,
/// `archive.mbox, message 2`.
pub fn location(s: &Source) -> String {
    let name = Path::new(&s.path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| s.path.clone());
    let mut out = name;
    if let Some(p) = &s.part {
        let _ = write!(out, ", {p}");
    }
    match s.page {
        Some(p) => {
            let _ = write!(out, ", page {p}");
        }
        None if s.kind != DocKind::Email => {
            let _ = write!(out, ", lines {}-{}", s.lines.start, s.lines.end);
        }
        None => {}
    }
    sanitize(&out).replace('\n', " ")
}

/// `email "Subject" from Sender, 2024-11-12`, for sources from messages.
fn email_line(s: &Source) -> Option<String> {
    let subject = s.subject.as_ref()?;
    let mut out = format!("email \u{201c}{}\u{201d}", subject.trim());
    if let Some(f) = &s.from {
        let _ = write!(out, " from {}", f.trim());
    }
    if let Some(d) = &s.date {
        let _ = write!(out, ", {}", d.get(..10).unwrap_or(d));
    }
    Some(sanitize(&out).replace('\n', " "))
}

fn anchor(s: &Source) -> String {
    // Attachments live inside their message's file: no anchor into them.
    if s.part.is_some() {
        return String::new();
    }
    match (s.kind, s.page) {
        (DocKind::Pdf, Some(p)) => format!("#page={p}"),
        (DocKind::Note, _) => format!("#L{}-L{}", s.lines.start, s.lines.end),
        _ => String::new(),
    }
}

/// Markdown special characters in a link label, escaped.
fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '[' | ']' | '\\' | '*' | '_' | '`' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The answer's text with `[n]` marks as footnote references `[^n]` and weak sentences marked.
fn footnoted(answer: &Answer) -> String {
    let text = &answer.text;
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for m in docent_core_marks(text) {
        let refs: String = m.1.iter().map(|n| format!("[^{n}]")).collect();
        edits.push((m.0, refs));
    }
    for s in answer.sentences.iter().filter(|s| s.weak) {
        let at = s.bytes.end.min(text.len());
        edits.push((at..at, " *(weakly supported)*".into()));
    }
    edits.sort_by_key(|(r, _)| (r.start, r.end));
    let mut out = String::with_capacity(text.len() + 64);
    let mut last = 0;
    for (r, rep) in edits {
        if r.start < last || !text.is_char_boundary(r.start) || !text.is_char_boundary(r.end) {
            continue;
        }
        out.push_str(&text[last..r.start]);
        out.push_str(&rep);
        last = r.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Citation marks `[1]`, `[1, 3]` as the answer holds them after cleaning (the ask pipeline
/// rewrites only the marks it changed; others keep the model's form, so any form is read).
fn docent_core_marks(text: &str) -> Vec<(std::ops::Range<usize>, Vec<usize>)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'['
            && let Some(len) = text[i + 1..].find(']')
        {
            let body = &text[i + 1..i + 1 + len];
            let nums: Option<Vec<usize>> = if body.is_empty() || len > 64 {
                None
            } else {
                body.split([',', ';'])
                    .map(|p| p.trim().parse::<usize>().ok())
                    .collect()
            };
            if let Some(nums) = nums {
                out.push((i..i + len + 2, nums));
                i += len + 2;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The answer as a Markdown document, for a file to be written at `export_path` (links are
/// relative to its folder). `date` is `YYYY-MM-DD`.
pub fn to_markdown(answer: &Answer, export_path: &Path, date: &str) -> String {
    let dir = export_path.parent().unwrap_or(Path::new("/"));
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# {}\n",
        sanitize(answer.question.trim()).replace('\n', " ")
    );
    if answer.refused {
        let _ = writeln!(md, "{}\n", sanitize(&answer.text));
    } else {
        let _ = writeln!(md, "{}\n", sanitize(&footnoted(answer)).trim_end());
    }
    if !answer.removed_citations.is_empty() {
        let list: Vec<String> = answer
            .removed_citations
            .iter()
            .map(|n| format!("\\[{n}\\]"))
            .collect();
        let _ = writeln!(
            md,
            "*Citations to sources that were not given were removed: {}.*\n",
            list.join(", ")
        );
    }
    let mut cited: Vec<usize> = answer.citations.iter().map(|c| c.n).collect();
    cited.sort_unstable();
    cited.dedup();
    for n in cited {
        let Some(s) = answer.source(n) else { continue };
        let link = format!("{}{}", relative_link(Path::new(&s.path), dir), anchor(s));
        let _ = write!(md, "[^{n}]: [{}]({link})", escape_label(&location(s)));
        if let Some(e) = email_line(s) {
            let _ = write!(md, " \u{2014} {}", escape_label(&e));
        }
        let _ = writeln!(md, " <!-- docent:chunk={} -->", s.chunk_id.as_str());
        let mut quotes: Vec<&str> = Vec::new();
        for c in answer.citations.iter().filter(|c| c.n == n) {
            if !quotes.contains(&c.quote.as_str()) {
                quotes.push(&c.quote);
            }
        }
        for q in quotes {
            md.push('\n');
            for line in sanitize(q).lines() {
                if line.trim().is_empty() {
                    md.push_str("    >\n");
                } else {
                    let _ = writeln!(md, "    > {line}");
                }
            }
        }
        md.push('\n');
    }
    md.push_str("---\n\n");
    if answer.refused {
        let _ = writeln!(
            md,
            "*Searched by docent ({}) on {date}; no language model was asked.*",
            answer.index
        );
    } else {
        let _ = writeln!(
            md,
            "*Answered by `{}` from {} on {date}.*",
            answer.model, answer.index
        );
    }
    md
}

fn round(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

fn round64(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The answer as `docent ask --json` prints it.
pub fn to_json(answer: &Answer) -> Value {
    let citations: Vec<Value> = answer
        .citations
        .iter()
        .map(|c| {
            json!({
                "n": c.n,
                "sentence": c.sentence,
                "path": c.path,
                "part": c.part,
                "page": c.page,
                "lines": [c.lines.start, c.lines.end],
                "chunk_id": c.chunk_id,
                "quote": c.quote,
                "support": round(c.support),
                "lexical": round(c.lexical),
                "semantic": c.semantic.map(round),
                "weak": c.weak,
            })
        })
        .collect();
    let sources: Vec<Value> = answer
        .sources
        .iter()
        .map(|s| {
            json!({
                "n": s.n,
                "path": s.path,
                "part": s.part,
                "kind": s.kind,
                "page": s.page,
                "lines": [s.lines.start, s.lines.end],
                "chunk_id": s.chunk_id,
                "title": s.title,
                "heading": s.heading,
                "subject": s.subject,
                "from": s.from,
                "date": s.date,
                "similarity": s.similarity.map(round),
                "truncated": s.truncated,
            })
        })
        .collect();
    let weak: Vec<Value> = answer
        .sentences
        .iter()
        .filter(|s| s.weak)
        .map(|s| {
            json!({
                "text": answer.text.get(s.bytes.clone()).unwrap_or(""),
                "cites": s.cites,
                "support": s.support.map(round),
            })
        })
        .collect();
    json!({
        "question": answer.question,
        "query": answer.query,
        "answer": answer.text,
        "refused": answer.refused,
        "citations": citations,
        "removed_citations": answer.removed_citations,
        "weak": weak,
        "sources": sources,
        "model": if answer.refused { Value::Null } else { Value::from(answer.model.clone()) },
        "index": answer.index,
        "relevance": answer.relevance.map(round),
        "retrieval_ms": answer.retrieval_ms,
        "ttft_ms": answer.ttft_ms.map(round64),
        "tokens_per_s": answer.tokens_per_s.map(round64),
        "prompt_tokens": answer.prompt_tokens,
        "generated_tokens": answer.generated_tokens,
        "stop": answer.stop,
        "warnings": answer.warnings,
    })
}

/// How [`to_text`] renders.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    /// ANSI colours and emphasis.
    pub color: bool,
    /// Include the answer's text (false when it was already streamed).
    pub with_answer: bool,
}

/// The answer for a terminal: optionally its text, then notes on removed citations and weakly
/// supported sentences, then the sources, cited ones with their quote. `display_path` shortens
/// paths (e.g. relative to the current directory).
pub fn to_text(
    answer: &Answer,
    opts: TextOptions,
    display_path: &dyn Fn(&str) -> String,
) -> String {
    let (dim, bold, yellow, reset) = if opts.color {
        ("\x1b[2m", "\x1b[1m", "\x1b[33m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    let mut out = String::new();
    if opts.with_answer {
        let _ = writeln!(out, "{}", sanitize(answer.text.trim_end()));
    }
    if answer.refused {
        return out;
    }
    out.push('\n');
    if !answer.removed_citations.is_empty() {
        let list: Vec<String> = answer
            .removed_citations
            .iter()
            .map(|n| format!("[{n}]"))
            .collect();
        let _ = writeln!(
            out,
            "{yellow}note:{reset} removed citations to sources that were not given: {}",
            list.join(", ")
        );
    }
    for s in answer.sentences.iter().filter(|s| s.weak) {
        let text = sanitize(answer.text.get(s.bytes.clone()).unwrap_or(""));
        let short: String = text.chars().take(100).collect();
        let ell = if short.len() < text.len() { "…" } else { "" };
        let _ = writeln!(
            out,
            "{yellow}weakly supported{reset} ({:.2}): \u{201c}{}{ell}\u{201d}",
            s.support.unwrap_or(0.0),
            short.replace('\n', " ")
        );
    }
    if answer.citations.is_empty() && !answer.sources.is_empty() {
        let _ = writeln!(out, "{yellow}note:{reset} the answer cites no source");
    }
    let _ = writeln!(out, "{bold}Sources{reset}");
    for s in &answer.sources {
        let cited: Vec<&docent_core::Citation> =
            answer.citations.iter().filter(|c| c.n == s.n).collect();
        let mut loc = display_path(&s.path);
        if let Some(p) = &s.part {
            let _ = write!(loc, " [{p}]");
        }
        match s.page {
            Some(p) => {
                let _ = write!(loc, "  page {p}");
            }
            None => {
                let _ = write!(loc, "  lines {}-{}", s.lines.start, s.lines.end);
            }
        }
        let loc = sanitize(&loc).replace('\n', " ");
        if cited.is_empty() {
            let _ = writeln!(out, "{dim}[{}] {loc} (not cited){reset}", s.n);
            continue;
        }
        let best = cited.iter().map(|c| c.support).fold(0.0f32, f32::max);
        let _ = writeln!(out, "[{}] {loc}  support {best:.2}", s.n);
        if let Some(e) = email_line(s) {
            let _ = writeln!(out, "    {e}");
        }
        let mut shown: Vec<&str> = Vec::new();
        for c in cited {
            if shown.contains(&c.quote.as_str()) {
                continue;
            }
            shown.push(&c.quote);
            let q = sanitize(&c.quote)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let short: String = q.chars().take(160).collect();
            let ell = if short.len() < q.len() { "…" } else { "" };
            let _ = writeln!(out, "    {dim}\u{201c}{short}{ell}\u{201d}{reset}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(today_utc().len(), 10);
    }

    #[test]
    fn links_are_relative_and_encoded() {
        assert_eq!(
            relative_link(
                Path::new("/home/a/docs/My File.pdf"),
                Path::new("/home/a/out")
            ),
            "../docs/My%20File.pdf"
        );
        assert_eq!(
            relative_link(Path::new("/home/a/x (1)#.md"), Path::new("/home/a")),
            "x%20%281%29%23.md"
        );
        assert_eq!(
            relative_link(Path::new("/home/a/é.md"), Path::new("/home/a/b/c")),
            "../../%C3%A9.md"
        );
    }
}
