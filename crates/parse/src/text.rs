//! Plain-text notes (`.txt`, `.rst`, `.org`, `.adoc` and the like), and the pieces every text
//! format shares: decoding of legacy encodings ([`decode`]), line numbering, paragraph splitting
//! and the assembly of heading and text blocks.
//!
//! A plain-text document keeps its source's line structure: [`Document::text`] is the decoded
//! file, and each block is a blank-line separated paragraph with its first source line. Headings
//! are recognised where the format makes them unambiguous: `* Heading` lines in Org,
//! underlined (and overlined) titles in reStructuredText, `== Heading` lines in AsciiDoc.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use docent_core::{Block, BlockKind, DocId, DocKind, Document};

use crate::{Parsed, Result, SkipReason};

/// Longest title taken from a line of text, in characters.
const MAX_TITLE_CHARS: usize = 100;

/// Decodes the bytes of a text file to sanitised text: a byte-order mark is honoured and
/// removed; valid UTF-8 is taken as is; anything else is decoded in the encoding `chardetng`
/// guesses (Windows-1252, which covers Latin-1, for most Western text). Terminal control
/// characters are removed and CRLF becomes LF ([`docent_core::text::sanitize`]).
pub fn decode(bytes: &[u8]) -> String {
    let decoded: Cow<'_, str> = if let Some((encoding, bom_len)) =
        encoding_rs::Encoding::for_bom(bytes)
    {
        encoding.decode_without_bom_handling(&bytes[bom_len..]).0
    } else if let Ok(s) = std::str::from_utf8(bytes) {
        Cow::Borrowed(s)
    } else {
        let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
        detector.feed(bytes, true);
        let guess = detector.guess(None, chardetng::Utf8Detection::Deny);
        // UTF-8 was ruled out above; a guess of a multi-byte or UTF-16 encoding for bytes that
        // are not that is worse than reading them as Western text.
        let encoding = if guess == encoding_rs::UTF_8
            || guess == encoding_rs::UTF_16LE
            || guess == encoding_rs::UTF_16BE
        {
            encoding_rs::WINDOWS_1252
        } else {
            guess
        };
        encoding.decode_without_bom_handling(bytes).0
    };
    docent_core::text::sanitize(&decoded)
}

/// Parses a plain-text file into one document.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Parsed> {
    parse_part(path, None, bytes)
}

/// Parses plain text that is the whole file at `path` (`part` is `None`) or one part of it (an
/// email attachment: `part` is its locator, such as `message 3/attachment 1 notes.txt`, whose
/// extension chooses the flavour of text).
pub(crate) fn parse_part(path: &Path, part: Option<&str>, bytes: &[u8]) -> Result<Parsed> {
    let text = decode(bytes);
    let name_ext = match part {
        Some(part) => extension_of(Path::new(part)),
        None => extension_of(path),
    };
    let lines = LineIndex::new(&text);
    let mut meta = BTreeMap::new();
    let headings = match name_ext.as_deref() {
        Some("org") => {
            org_keywords(&text, &mut meta);
            org_headings(&text)
        }
        Some("rst") => rst_headings(&text),
        Some("adoc" | "asciidoc") => adoc_headings(&text),
        _ => Vec::new(),
    };
    let blocks = assemble(&text, 0..text.len(), &headings, &[], &lines);
    if blocks.is_empty() {
        return Ok(Parsed::Skipped(SkipReason::Empty));
    }
    let title = meta
        .get("title")
        .and_then(|t| title_from_line(t))
        .or_else(|| headings.iter().find_map(|h| title_from_line(&h.title)))
        .or_else(|| text.lines().find_map(title_from_line))
        .or_else(|| fallback_title(path, part));
    let doc = Document {
        id: DocId::for_source(&path.to_string_lossy(), part),
        path: path.to_path_buf(),
        part: part.map(str::to_string),
        kind: DocKind::Note,
        parser: "text".to_string(),
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

fn extension_of(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
}

/// The title of a document that has no better one: its file name without the extension (for a
/// part of a file, the part's name).
pub(crate) fn fallback_title(path: &Path, part: Option<&str>) -> Option<String> {
    let name = match part {
        Some(part) => Path::new(part)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| part.to_string()),
        None => path.file_stem()?.to_string_lossy().into_owned(),
    };
    title_from_line(&docent_core::text::sanitize(&name))
}

/// A title made from one line of text: trimmed, inner whitespace collapsed, and cut at a word
/// boundary (with an ellipsis) when longer than 100 characters. `None` for a blank line.
pub(crate) fn title_from_line(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.is_empty() {
        return None;
    }
    let mut title = String::new();
    for word in words {
        let len = title.chars().count() + usize::from(!title.is_empty()) + word.chars().count();
        if len > MAX_TITLE_CHARS {
            if title.is_empty() {
                title.extend(word.chars().take(MAX_TITLE_CHARS));
            }
            title.push('…');
            return Some(title);
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(word);
    }
    Some(title)
}

/// Maps byte offsets of a text to 1-based line numbers.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// The 1-based line that holds byte `offset`.
    pub(crate) fn line_of(&self, offset: usize) -> u32 {
        let line = self.starts.partition_point(|&s| s <= offset);
        u32::try_from(line).unwrap_or(u32::MAX)
    }
}

/// A heading found in a text: the byte range of its line(s), trailing whitespace excluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeadingSpan {
    pub(crate) range: Range<usize>,
    pub(crate) level: u8,
    /// The heading as plain text (markup removed).
    pub(crate) title: String,
}

/// Splits `region` of `text` into paragraphs: maximal runs of non-blank lines. A blank line
/// inside one of the `keep_whole` ranges (a fenced code block, a list) does not split. Each
/// paragraph starts at the start of its first line and ends after its last non-whitespace
/// character.
pub(crate) fn paragraphs(
    text: &str,
    region: Range<usize>,
    keep_whole: &[Range<usize>],
) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut current: Option<Range<usize>> = None;
    let mut pos = region.start;
    for line in text[region].split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        let content = line.trim_end();
        if content.trim_start().is_empty() {
            let protected = keep_whole.iter().any(|r| r.start < start && start < r.end);
            if !protected && let Some(p) = current.take() {
                out.push(p);
            }
        } else {
            let end = start + content.len();
            match &mut current {
                Some(p) => p.end = end,
                None => current = Some(start..end),
            }
        }
    }
    out.extend(current);
    out
}

/// Builds the blocks of `region` of `text`: a heading block for each of `headings` (in text
/// order, inside the region) and a text block for each paragraph between them, every block
/// carrying the path of the headings that enclose it.
pub(crate) fn assemble(
    text: &str,
    region: Range<usize>,
    headings: &[HeadingSpan],
    keep_whole: &[Range<usize>],
    lines: &LineIndex,
) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut stack: Vec<(u8, String)> = Vec::new();
    let mut pos = region.start;
    let path_of = |stack: &[(u8, String)]| stack.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>();
    for h in headings {
        if h.range.start < pos || h.range.end > region.end {
            continue;
        }
        let heading_path = path_of(&stack);
        push_paragraphs(
            &mut blocks,
            text,
            pos..h.range.start,
            keep_whole,
            lines,
            &heading_path,
        );
        while stack.last().is_some_and(|(level, _)| *level >= h.level) {
            stack.pop();
        }
        stack.push((h.level, h.title.clone()));
        blocks.push(Block {
            kind: BlockKind::Heading { level: h.level },
            range: h.range.clone(),
            first_line: lines.line_of(h.range.start),
            page: None,
            heading_path: path_of(&stack),
        });
        pos = h.range.end;
    }
    let heading_path = path_of(&stack);
    push_paragraphs(
        &mut blocks,
        text,
        pos..region.end,
        keep_whole,
        lines,
        &heading_path,
    );
    blocks
}

fn push_paragraphs(
    blocks: &mut Vec<Block>,
    text: &str,
    region: Range<usize>,
    keep_whole: &[Range<usize>],
    lines: &LineIndex,
    heading_path: &[String],
) {
    for range in paragraphs(text, region, keep_whole) {
        blocks.push(Block {
            kind: BlockKind::Text,
            first_line: lines.line_of(range.start),
            range,
            page: None,
            heading_path: heading_path.to_vec(),
        });
    }
}

/// Lines of `text` with their byte offsets, line terminators excluded.
fn lines_with_offsets(text: &str) -> Vec<(usize, &str)> {
    let mut pos = 0;
    text.split_inclusive('\n')
        .map(|l| {
            let start = pos;
            pos += l.len();
            (start, l.strip_suffix('\n').unwrap_or(l))
        })
        .collect()
}

/// Org headings: lines of one or more `*` then a space. Trailing `:tags:` are left out of the
/// title.
fn org_headings(text: &str) -> Vec<HeadingSpan> {
    let mut out = Vec::new();
    for (start, line) in lines_with_offsets(text) {
        let stars = line.bytes().take_while(|&b| b == b'*').count();
        if stars == 0 || !line[stars..].starts_with([' ', '\t']) {
            continue;
        }
        let mut title = line[stars..].trim();
        if let Some((head, last)) = title.rsplit_once(char::is_whitespace)
            && last.len() > 1
            && last.starts_with(':')
            && last.ends_with(':')
        {
            title = head.trim_end();
        }
        if title.is_empty() {
            continue;
        }
        out.push(HeadingSpan {
            range: start..start + line.trim_end().len(),
            level: u8::try_from(stars).unwrap_or(u8::MAX),
            title: collapse_whitespace(title),
        });
    }
    out
}

/// `#+TITLE:`, `#+AUTHOR:` and `#+DATE:` lines of an Org file, into `meta` (lower-case keys).
fn org_keywords(text: &str, meta: &mut BTreeMap<String, String>) {
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("#+") else {
            continue;
        };
        let Some((key, value)) = rest.split_once(':') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        if matches!(key.as_str(), "title" | "author" | "date") && !value.is_empty() {
            meta.entry(key).or_insert_with(|| value.to_string());
        }
    }
}

/// AsciiDoc headings: `= Title`, `== Section` and so on.
fn adoc_headings(text: &str) -> Vec<HeadingSpan> {
    let mut out = Vec::new();
    for (start, line) in lines_with_offsets(text) {
        let marks = line.bytes().take_while(|&b| b == b'=').count();
        if marks == 0 || marks > 6 || !line[marks..].starts_with(' ') {
            continue;
        }
        let title = line[marks..].trim();
        if title.is_empty() {
            continue;
        }
        out.push(HeadingSpan {
            range: start..start + line.trim_end().len(),
            level: u8::try_from(marks).unwrap_or(u8::MAX),
            title: collapse_whitespace(title),
        });
    }
    out
}

/// The punctuation character a reStructuredText adornment line repeats, if `line` is one.
fn rst_adornment(line: &str) -> Option<char> {
    let line = line.trim_end();
    let mut chars = line.chars();
    let c = chars.next()?;
    if !"=-~^\"'`#*+:._".contains(c) || line.len() < 2 || !chars.all(|x| x == c) {
        return None;
    }
    Some(c)
}

/// reStructuredText section titles: a line underlined (and optionally overlined) with a
/// repeated punctuation character at least as long as the title. Levels follow the order in
/// which adornment styles first appear, as in reStructuredText itself.
fn rst_headings(text: &str) -> Vec<HeadingSpan> {
    let lines = lines_with_offsets(text);
    let blank = |i: usize| lines.get(i).is_none_or(|(_, l)| l.trim().is_empty());
    let mut styles: Vec<(char, bool)> = Vec::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        let (start, line) = lines[i];
        let title = line.trim();
        let under = rst_adornment(lines[i + 1].1);
        let is_title = !title.is_empty()
            && rst_adornment(line).is_none()
            && under.is_some()
            && lines[i + 1].1.trim_end().chars().count() >= title.chars().count();
        if !is_title {
            i += 1;
            continue;
        }
        let Some(c) = under else {
            i += 1;
            continue;
        };
        let overlined =
            i > 0 && rst_adornment(lines[i - 1].1) == Some(c) && blank(i.wrapping_sub(2));
        let plain = !line.starts_with(char::is_whitespace) && (i == 0 || blank(i - 1));
        if !overlined && !plain {
            i += 1;
            continue;
        }
        let style = (c, overlined);
        let level = match styles.iter().position(|s| *s == style) {
            Some(p) => p + 1,
            None => {
                styles.push(style);
                styles.len()
            }
        };
        let first = if overlined { lines[i - 1].0 } else { start };
        let (under_start, under_line) = lines[i + 1];
        out.push(HeadingSpan {
            range: first..under_start + under_line.trim_end().len(),
            level: u8::try_from(level).unwrap_or(u8::MAX),
            title: collapse_whitespace(title),
        });
        i += 2;
    }
    out
}

pub(crate) fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn doc_of(name: &str, bytes: &[u8]) -> Document {
        match parse(Path::new(name), bytes).unwrap() {
            Parsed::Documents { mut documents, .. } => documents.remove(0),
            Parsed::Skipped(r) => panic!("skipped: {r}"),
        }
    }

    /// Blocks in order, not overlapping, covering every non-whitespace character.
    pub(crate) fn assert_covers(text: &str, blocks: &[Block], skip: Range<usize>) {
        let mut pos = 0;
        for b in blocks {
            assert!(b.range.start >= pos, "blocks overlap or are out of order");
            assert!(text.is_char_boundary(b.range.start) && text.is_char_boundary(b.range.end));
            for (i, c) in text[pos..b.range.start].char_indices() {
                let at = pos + i;
                assert!(
                    c.is_whitespace() || skip.contains(&at),
                    "uncovered {c:?} at {at}"
                );
            }
            pos = b.range.end;
        }
        assert!(text[pos..].trim().is_empty(), "uncovered tail");
    }

    fn block_texts(doc: &Document) -> Vec<&str> {
        doc.blocks
            .iter()
            .map(|b| &doc.text[b.range.clone()])
            .collect()
    }

    #[test]
    fn decode_utf8_and_bom() {
        assert_eq!(decode("café".as_bytes()), "café");
        assert_eq!(decode(b"\xEF\xBB\xBFcaf\xC3\xA9\r\nx"), "café\nx");
        assert_eq!(decode(b"\xFF\xFEh\x00i\x00"), "hi");
    }

    #[test]
    fn decode_latin1_and_windows_1252() {
        let latin1 =
            b"Jos\xe9 Pe\xf1a, Fran\xe7oise Lef\xe8vre and Zo\xeb M\xfcller met in the caf\xe9.";
        assert_eq!(
            decode(latin1),
            "José Peña, Françoise Lefèvre and Zoë Müller met in the café."
        );
        // 0x80 and 0x93/0x94 are the euro sign and curly quotes in Windows-1252.
        let cp1252 = b"The fee is \x80120 \x96 \x93firm\x94, said the caf\xe9 owner.";
        assert_eq!(
            decode(cp1252),
            "The fee is €120 – “firm”, said the café owner."
        );
    }

    #[test]
    fn decode_removes_control_sequences() {
        assert_eq!(decode(b"a\x1b[31mred\x1b[0m\r\n"), "ared\n");
    }

    #[test]
    fn paragraphs_with_lines() {
        let text = "Title line\n\nFirst para\ncontinues here\n\n\n  Second para  \n\nlast";
        let doc = doc_of("/n/a.txt", text.as_bytes());
        assert_eq!(
            block_texts(&doc),
            [
                "Title line",
                "First para\ncontinues here",
                "  Second para",
                "last"
            ]
        );
        let lines: Vec<u32> = doc.blocks.iter().map(|b| b.first_line).collect();
        assert_eq!(lines, [1, 3, 7, 9]);
        assert!(
            doc.blocks.iter().all(|b| b.kind == BlockKind::Text
                && b.page.is_none()
                && b.heading_path.is_empty())
        );
        assert_eq!(doc.title.as_deref(), Some("Title line"));
        assert_eq!(doc.kind, DocKind::Note);
        assert_eq!(doc.parser, "text");
        assert_covers(&doc.text, &doc.blocks, 0..0);
    }

    #[test]
    fn title_falls_back_to_stem_and_is_cut() {
        let long = "word ".repeat(40);
        let doc = doc_of("/n/long.txt", long.as_bytes());
        let title = doc.title.unwrap();
        assert!(
            title.ends_with('…') && title.chars().count() <= 101,
            "{title}"
        );
        assert_eq!(
            fallback_title(Path::new("/n/x.y.txt"), None).as_deref(),
            Some("x.y")
        );
        assert_eq!(
            fallback_title(
                Path::new("/m/inbox"),
                Some("message 2/attachment 1 plan.txt")
            )
            .as_deref(),
            Some("attachment 1 plan")
        );
    }

    #[test]
    fn whitespace_only_after_decoding_is_skipped() {
        let r = parse(Path::new("/n/e.txt"), b"\x1b[0m \n \n").unwrap();
        assert!(matches!(r, Parsed::Skipped(SkipReason::Empty)));
    }

    #[test]
    fn org_headings_and_keywords() {
        let text = "#+TITLE: Reading list\n#+AUTHOR: Priya\n\n* Books :reading:\nSome text.\n\n** Old\nMore.\n* Articles\nx\n";
        let doc = doc_of("/n/r.org", text.as_bytes());
        assert_eq!(doc.title.as_deref(), Some("Reading list"));
        assert_eq!(doc.meta.get("author").map(String::as_str), Some("Priya"));
        let summary: Vec<(BlockKind, u32, Vec<String>)> = doc
            .blocks
            .iter()
            .map(|b| (b.kind, b.first_line, b.heading_path.clone()))
            .collect();
        let h = |l| BlockKind::Heading { level: l };
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            summary,
            [
                (BlockKind::Text, 1, p(&[])),
                (h(1), 4, p(&["Books"])),
                (BlockKind::Text, 5, p(&["Books"])),
                (h(2), 7, p(&["Books", "Old"])),
                (BlockKind::Text, 8, p(&["Books", "Old"])),
                (h(1), 9, p(&["Articles"])),
                (BlockKind::Text, 10, p(&["Articles"])),
            ]
        );
        assert_covers(&doc.text, &doc.blocks, 0..0);
    }

    #[test]
    fn rst_underlined_and_overlined_titles() {
        let text = "=========\nThe Guide\n=========\n\nIntro.\n\nInstall\n-------\n\nRun it.\nNot a title\n----------\n\nUsage\n-----\nx\n\n----\n\nend\n";
        let doc = doc_of("/n/g.rst", text.as_bytes());
        assert_eq!(doc.title.as_deref(), Some("The Guide"));
        let headings: Vec<(u8, u32, Vec<String>)> = doc
            .blocks
            .iter()
            .filter_map(|b| match b.kind {
                BlockKind::Heading { level } => Some((level, b.first_line, b.heading_path.clone())),
                BlockKind::Text => None,
            })
            .collect();
        assert_eq!(
            headings,
            [
                (1, 1, vec!["The Guide".to_string()]),
                (2, 7, vec!["The Guide".into(), "Install".into()]),
                (2, 14, vec!["The Guide".into(), "Usage".into()]),
            ]
        );
        assert_eq!(
            &doc.text[doc.blocks[0].range.clone()],
            "=========\nThe Guide\n========="
        );
        assert_covers(&doc.text, &doc.blocks, 0..0);
    }

    #[test]
    fn adoc_headings() {
        let doc = doc_of("/n/a.adoc", b"= Manual\n\nText\n\n== Part\nMore\n");
        assert_eq!(doc.title.as_deref(), Some("Manual"));
        assert_eq!(doc.blocks[2].kind, BlockKind::Heading { level: 2 });
        assert_eq!(doc.blocks[2].heading_path, ["Manual", "Part"]);
        assert_eq!(doc.blocks[3].heading_path, ["Manual", "Part"]);
    }

    #[test]
    fn plain_txt_has_no_headings() {
        let doc = doc_of("/n/p.txt", b"* not a heading\n=====\n");
        assert!(doc.blocks.iter().all(|b| b.kind == BlockKind::Text));
    }

    #[test]
    fn attachment_part_id_and_flavour() {
        let r = parse_part(
            Path::new("/mail/inbox.mbox"),
            Some("message 1/attachment 1 list.org"),
            b"* Heading\nbody\n",
        )
        .unwrap();
        let Parsed::Documents { documents, .. } = r else {
            panic!("skipped")
        };
        let d = &documents[0];
        assert_eq!(d.part.as_deref(), Some("message 1/attachment 1 list.org"));
        assert_eq!(
            d.id,
            DocId::for_source("/mail/inbox.mbox", Some("message 1/attachment 1 list.org"))
        );
        assert_eq!(d.blocks[0].kind, BlockKind::Heading { level: 1 });
    }

    #[test]
    fn line_index() {
        let idx = LineIndex::new("a\nbc\n\nd");
        assert_eq!(
            [0, 1, 2, 4, 5, 6].map(|o| idx.line_of(o)),
            [1, 1, 2, 2, 3, 4]
        );
    }
}
