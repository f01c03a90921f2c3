//! Markdown notes: front matter into metadata, headings into structure.
//!
//! [`Document::text`] is the whole decoded file, front matter included, so byte and line spans
//! point into the real file; the front matter itself is not a block. Headings (ATX `#` and
//! setext underlined) become heading blocks; the content between them becomes text blocks, one
//! per blank-line separated paragraph, except that top-level constructs (fenced code, lists,
//! tables, block quotes) stay whole. A `#` line inside a code block is code, not a heading.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use docent_core::{DocId, DocKind, Document};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::text::{self, HeadingSpan, LineIndex};
use crate::{Parsed, Result, SkipReason};

/// Parses a Markdown file into one document.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Parsed> {
    parse_part(path, None, bytes)
}

/// Parses Markdown that is the whole file at `path` (`part` is `None`) or one part of it (an
/// email attachment).
pub(crate) fn parse_part(path: &Path, part: Option<&str>, bytes: &[u8]) -> Result<Parsed> {
    let text = text::decode(bytes);
    let (body_start, meta) = match front_matter(&text) {
        Some(fm) => (fm.end, fm.meta),
        None => (0, BTreeMap::new()),
    };
    let (headings, keep_whole) = structure(&text, body_start);
    let lines = LineIndex::new(&text);
    let blocks = text::assemble(
        &text,
        body_start..text.len(),
        &headings,
        &keep_whole,
        &lines,
    );
    if blocks.is_empty() {
        let reason = if body_start > 0 {
            SkipReason::NothingParsed("only front matter".to_string())
        } else {
            SkipReason::Empty
        };
        return Ok(Parsed::Skipped(reason));
    }
    let title = ["title", "Title", "TITLE"]
        .iter()
        .find_map(|k| meta.get(*k))
        .and_then(|t| text::title_from_line(t))
        .or_else(|| {
            headings
                .iter()
                .filter(|h| h.level == 1)
                .find_map(|h| text::title_from_line(&h.title))
        })
        .or_else(|| text::fallback_title(path, part));
    let doc = Document {
        id: DocId::for_source(&path.to_string_lossy(), part),
        path: path.to_path_buf(),
        part: part.map(str::to_string),
        kind: DocKind::Note,
        parser: "markdown".to_string(),
        title,
        text,
        blocks,
        meta,
        email: None,
        parent: None,
        pages: None,
    };
    Ok(Parsed::one(doc))
}

/// Front matter at the very start of a text.
#[derive(Debug, PartialEq)]
struct FrontMatter {
    /// Byte offset just past the closing delimiter line.
    end: usize,
    meta: BTreeMap<String, String>,
}

/// Reads YAML front matter (between `---` lines; `...` may close it) or TOML front matter
/// (between `+++` lines). Front matter that does not parse to a mapping is not front matter
/// (a Markdown file may well start with a thematic break).
fn front_matter(text: &str) -> Option<FrontMatter> {
    let first_end = text.find('\n')?;
    let opener = text[..first_end].trim_end();
    let toml = match opener {
        "---" => false,
        "+++" => true,
        _ => return None,
    };
    let content_start = first_end + 1;
    let mut pos = content_start;
    for line in text[content_start..].split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        let l = line.trim_end();
        let closes = if toml {
            l == "+++"
        } else {
            l == "---" || l == "..."
        };
        if !closes {
            continue;
        }
        let content = &text[content_start..start];
        let mut meta = BTreeMap::new();
        if toml {
            let table: toml::Table = toml::from_str(content).ok()?;
            for (k, v) in &table {
                flatten_toml(k, v, &mut meta);
            }
        } else {
            match serde_yaml::from_str::<serde_yaml::Value>(content).ok()? {
                serde_yaml::Value::Null => {}
                serde_yaml::Value::Mapping(m) => flatten_yaml_mapping("", &m, &mut meta),
                _ => return None,
            }
        }
        return Some(FrontMatter { end: pos, meta });
    }
    None
}

fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn yaml_scalar(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Tagged(t) => yaml_scalar(&t.value),
        _ => None,
    }
}

/// Scalars as strings, lists of scalars joined with `, `, nested mappings as `outer.inner`
/// keys; nulls and lists of mappings are left out.
fn flatten_yaml_mapping(prefix: &str, m: &serde_yaml::Mapping, out: &mut BTreeMap<String, String>) {
    for (k, v) in m {
        let Some(key) = yaml_scalar(k) else {
            continue;
        };
        let key = join_key(prefix, &key);
        match v {
            serde_yaml::Value::Mapping(inner) => flatten_yaml_mapping(&key, inner, out),
            serde_yaml::Value::Sequence(items) => {
                let items: Vec<String> = items.iter().filter_map(yaml_scalar).collect();
                if !items.is_empty() {
                    out.insert(key, items.join(", "));
                }
            }
            v => {
                if let Some(s) = yaml_scalar(v) {
                    out.insert(key, s);
                }
            }
        }
    }
}

fn toml_scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

fn flatten_toml(key: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten_toml(&join_key(key, k), v, out);
            }
        }
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().filter_map(toml_scalar).collect();
            if !items.is_empty() {
                out.insert(key.to_string(), items.join(", "));
            }
        }
        v => {
            if let Some(s) = toml_scalar(v) {
                out.insert(key.to_string(), s);
            }
        }
    }
}

fn level_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// The top-level headings of the Markdown in `text[start..]`, and the ranges of the other
/// top-level constructs (which are kept whole), as byte ranges into `text`.
fn structure(text: &str, start: usize) -> (Vec<HeadingSpan>, Vec<Range<usize>>) {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES;
    let body = &text[start..];
    let trimmed_end = |r: Range<usize>| {
        let s = start + r.start;
        s..s + body[r].trim_end().len()
    };
    let mut headings = Vec::new();
    let mut keep_whole = Vec::new();
    let mut depth = 0usize;
    let mut heading: Option<(u8, Range<usize>, String)> = None;
    for (event, range) in Parser::new_ext(body, options).into_offset_iter() {
        match event {
            Event::Start(tag) => {
                if depth == 0 {
                    match tag {
                        Tag::Heading { level, .. } => {
                            heading =
                                Some((level_number(level), trimmed_end(range), String::new()));
                        }
                        _ => keep_whole.push(trimmed_end(range)),
                    }
                }
                depth += 1;
            }
            Event::End(end) => {
                depth = depth.saturating_sub(1);
                if depth == 0
                    && matches!(end, TagEnd::Heading(_))
                    && let Some((level, range, title)) = heading.take()
                {
                    headings.push(HeadingSpan {
                        range,
                        level,
                        title: text::collapse_whitespace(&title),
                    });
                }
            }
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) => {
                if let Some((_, _, title)) = &mut heading {
                    title.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, _, title)) = &mut heading {
                    title.push(' ');
                }
            }
            _ => {}
        }
    }
    (headings, keep_whole)
}

#[cfg(test)]
mod tests {
    use docent_core::{Block, BlockKind};

    use super::*;
    use crate::text::tests::assert_covers;

    fn doc_of(src: &str) -> Document {
        match parse(Path::new("/notes/n.md"), src.as_bytes()).unwrap() {
            Parsed::Documents { mut documents, .. } => documents.remove(0),
            Parsed::Skipped(r) => panic!("skipped: {r}"),
        }
    }

    fn summary(doc: &Document) -> Vec<(String, u32, String, String)> {
        doc.blocks
            .iter()
            .map(|b: &Block| {
                let kind = match b.kind {
                    BlockKind::Heading { level } => format!("h{level}"),
                    BlockKind::Text => "text".to_string(),
                };
                (
                    kind,
                    b.first_line,
                    b.heading_path.join(" > "),
                    doc.text[b.range.clone()].to_string(),
                )
            })
            .collect()
    }

    fn row(kind: &str, line: u32, path: &str, text: &str) -> (String, u32, String, String) {
        (kind.into(), line, path.into(), text.into())
    }

    #[test]
    fn yaml_front_matter_variants() {
        let fm = front_matter(
            "---\ntitle: Site meeting\ndate: 2024-11-05\nattendees:\n  - Priya\n  - Tom\ncount: 3\ndraft: false\nnothing:\nauthor:\n  name: Dana\n---\n# Body\n",
        )
        .unwrap();
        let meta: Vec<(&str, &str)> = fm
            .meta
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            meta,
            [
                ("attendees", "Priya, Tom"),
                ("author.name", "Dana"),
                ("count", "3"),
                ("date", "2024-11-05"),
                ("draft", "false"),
                ("title", "Site meeting"),
            ]
        );
        // `...` closes YAML too; empty front matter is front matter.
        assert_eq!(front_matter("---\na: 1\n...\nx").unwrap().end, 13);
        assert_eq!(front_matter("---\n---\nx").unwrap().end, 8);
        // Not a mapping, not closed, or not at the start: not front matter.
        assert!(front_matter("---\njust text\n---\n").is_none());
        assert!(front_matter("---\na: 1\n").is_none());
        assert!(front_matter("\n---\na: 1\n---\n").is_none());
    }

    #[test]
    fn toml_front_matter() {
        let fm = front_matter(
            "+++\ntitle = \"Plan\"\ntags = [\"a\", \"b\"]\ndate = 2024-11-05\n[extra]\nn = 2\n+++\nBody\n",
        )
        .unwrap();
        assert_eq!(fm.meta["title"], "Plan");
        assert_eq!(fm.meta["tags"], "a, b");
        assert_eq!(fm.meta["date"], "2024-11-05");
        assert_eq!(fm.meta["extra.n"], "2");
    }

    #[test]
    fn front_matter_is_kept_in_text_but_not_a_block() {
        let src = "---\ntitle: From front matter\n---\n\n# Heading\n\nBody text.\n";
        let doc = doc_of(src);
        assert_eq!(doc.text, src);
        assert_eq!(doc.title.as_deref(), Some("From front matter"));
        assert_eq!(
            summary(&doc),
            [
                row("h1", 5, "Heading", "# Heading"),
                row("text", 7, "Heading", "Body text."),
            ]
        );
        assert_covers(&doc.text, &doc.blocks, 0..34);
    }

    #[test]
    fn atx_and_setext_headings_with_paths() {
        let src = "Intro *para*.\n\nTop **bold** `code`\n===\n\n## Sub {#id}\n\nText one\nline two.\n\nText three.\n\n### Deep ###\nx\n\nOther\n-----\ny\n# Second\n";
        let doc = doc_of(src);
        assert_eq!(doc.title.as_deref(), Some("Top bold code"));
        assert_eq!(
            summary(&doc),
            [
                row("text", 1, "", "Intro *para*."),
                row("h1", 3, "Top bold code", "Top **bold** `code`\n==="),
                row("h2", 6, "Top bold code > Sub", "## Sub {#id}"),
                row("text", 8, "Top bold code > Sub", "Text one\nline two."),
                row("text", 11, "Top bold code > Sub", "Text three."),
                row("h3", 13, "Top bold code > Sub > Deep", "### Deep ###"),
                row("text", 14, "Top bold code > Sub > Deep", "x"),
                row("h2", 16, "Top bold code > Other", "Other\n-----"),
                row("text", 18, "Top bold code > Other", "y"),
                row("h1", 19, "Second", "# Second"),
            ]
        );
        assert_covers(&doc.text, &doc.blocks, 0..0);
    }

    #[test]
    fn code_fences_stay_whole_and_hide_headings() {
        let src =
            "# Doc\n\n```sh\n# not a heading\n\necho hi\n```\n\n~~~\n## nor this\n~~~\nafter\n";
        let doc = doc_of(src);
        assert_eq!(
            summary(&doc),
            [
                row("h1", 1, "Doc", "# Doc"),
                row("text", 3, "Doc", "```sh\n# not a heading\n\necho hi\n```"),
                row("text", 9, "Doc", "~~~\n## nor this\n~~~\nafter"),
            ]
        );
        assert_covers(&doc.text, &doc.blocks, 0..0);
    }

    #[test]
    fn lists_tables_and_leftovers_are_covered() {
        let src = "# L\n\n- a\n\n- b\n  continued\n\n[ref]: https://example.org\n\n***\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> # quoted heading\n> more\n";
        let doc = doc_of(src);
        let s = summary(&doc);
        assert_eq!(s[1], row("text", 3, "L", "- a\n\n- b\n  continued"));
        assert_eq!(s[2], row("text", 8, "L", "[ref]: https://example.org"));
        assert_eq!(s[3], row("text", 10, "L", "***"));
        assert_eq!(
            s[4],
            row("text", 12, "L", "| a | b |\n|---|---|\n| 1 | 2 |")
        );
        assert_eq!(s[5], row("text", 16, "L", "> # quoted heading\n> more"));
        assert_eq!(s.len(), 6);
        assert_covers(&doc.text, &doc.blocks, 0..0);
    }

    #[test]
    fn title_falls_back_to_stem() {
        let doc = doc_of("## Only a subheading\n\ntext\n");
        assert_eq!(doc.title.as_deref(), Some("n"));
        assert_eq!(doc.kind, DocKind::Note);
        assert_eq!(doc.parser, "markdown");
    }

    #[test]
    fn crlf_and_bom_are_normalised() {
        let doc = doc_of("\u{feff}# T\r\n\r\nbody\r\n");
        assert_eq!(doc.text, "# T\n\nbody\n");
        assert_eq!(summary(&doc)[1], row("text", 3, "T", "body"));
    }

    #[test]
    fn only_front_matter_is_skipped() {
        let r = parse(Path::new("/n/x.md"), b"---\ntitle: x\n---\n\n").unwrap();
        assert!(matches!(r, Parsed::Skipped(SkipReason::NothingParsed(_))));
    }
}
