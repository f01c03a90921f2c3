//! PDF files: text per page with `pdf-extract`, contained; OCR for pages without a text layer.
//!
//! `pdf-extract` can panic or spin on unusual files, so extraction never runs on the caller's
//! thread: with [`PdfIsolation::InProcess`] it runs on a worker thread whose panics are caught
//! and which is abandoned when it passes the time limit; with [`PdfIsolation::Subprocess`] it
//! runs in a child process (`<exe> __pdf-worker`, see [`crate::worker`]) that limits its own
//! memory and CPU time and is killed when it passes the file's deadline. Both run the same
//! `extract` function and hand back the same `Extraction`, which is also what the worker writes
//! to its stdout as JSON.
//!
//! A page whose text layer is empty or garbage ([`crate::ocr::page_needs_ocr`]) is rendered and
//! recognised with OCR when it is available, inside the same isolation; pages with a good text
//! layer never are. Encrypted files are skipped ([`SkipReason::Encrypted`]); files whose pages
//! carry (almost) no text are skipped as [`SkipReason::NoTextLayer`] when OCR is turned off and
//! as [`SkipReason::NeedsOcr`] when its programs are missing. The document's text is the pages'
//! texts, lightly normalised and joined with blank lines; each page gives one text block per
//! paragraph, with its page number and its line within the page.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use docent_core::{Block, BlockKind, DocId, DocKind, Document};
use serde::{Deserialize, Serialize};

use crate::error::OcrUnavailable;
use crate::ocr::{self, OcrJob};
use crate::text::{self, LineIndex};
use crate::worker::{self, JobKind};
use crate::{Deadline, ParseError, ParseOptions, Parsed, PdfIsolation, Result, SkipReason};

pub use crate::worker::{WORKER_ARG, worker_main};

/// Name of the threads that run extraction; their panics are not printed.
pub(crate) const THREAD_NAME: &str = "docent-pdf";
/// Extraction recurses through nested content; a generous stack keeps odd files from
/// overflowing it.
pub(crate) const STACK_SIZE: usize = 64 * 1024 * 1024;
/// A PDF with fewer non-whitespace characters than this in all its pages has no text layer
/// worth indexing.
const MIN_TEXT_CHARS: usize = 16;

/// What extracting a PDF gave. Also the PDF worker's reply, as one JSON object on its stdout:
/// `{"result":"text","pages":[...],"info":{...},"failed_pages":[...]}`,
/// `{"result":"encrypted"}`, `{"result":"corrupt","detail":"..."}` or
/// `{"result":"crashed","detail":"..."}`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub(crate) enum Extraction {
    Text {
        /// Raw text of each page, in page order.
        pages: Vec<String>,
        /// Info dictionary entries (`Title`, `Author`, ...), decoded.
        info: BTreeMap<String, String>,
        /// Pages (1-based) whose text could not be extracted, with a short reason.
        #[serde(default)]
        failed_pages: Vec<(u32, String)>,
        /// Pages (1-based) whose text was recognised with OCR.
        #[serde(default)]
        ocr_pages: Vec<u32>,
        /// Pages (1-based) without a usable text layer that were not recognised (OCR was not
        /// available, or failed: then they are in `failed_pages` too).
        #[serde(default)]
        needs_ocr: Vec<u32>,
    },
    Encrypted,
    Corrupt {
        detail: String,
    },
    Crashed {
        detail: String,
    },
}

impl std::fmt::Debug for Extraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Extraction::Text {
                pages,
                failed_pages,
                ocr_pages,
                needs_ocr,
                ..
            } => f
                .debug_struct("Text")
                .field("pages", &pages.len())
                .field("failed_pages", &failed_pages.len())
                .field("ocr_pages", ocr_pages)
                .field("needs_ocr", needs_ocr)
                .finish_non_exhaustive(),
            Extraction::Encrypted => f.write_str("Encrypted"),
            Extraction::Corrupt { detail } => {
                f.debug_struct("Corrupt").field("detail", detail).finish()
            }
            Extraction::Crashed { detail } => {
                f.debug_struct("Crashed").field("detail", detail).finish()
            }
        }
    }
}

/// Parses a PDF file into one document.
pub(crate) fn parse(
    path: &Path,
    bytes: &[u8],
    opts: &ParseOptions,
    deadline: Deadline,
) -> Result<Parsed> {
    parse_part(path, None, bytes, opts, deadline)
}

/// Parses a PDF that is the whole file at `path` (`part` is `None`) or one part of it (an email
/// attachment: `part` is its locator, such as `message 3/attachment 1 report.pdf`; the
/// document's id is derived from `path` and `part`). Extraction and OCR end by `deadline`, the
/// whole file's.
pub(crate) fn parse_part(
    path: &Path,
    part: Option<&str>,
    bytes: &[u8],
    opts: &ParseOptions,
    deadline: Deadline,
) -> Result<Parsed> {
    let ocr = opts.ocr.job(true);
    let extraction = match &opts.pdf_isolation {
        PdfIsolation::InProcess => extract_on_thread(path, bytes, ocr.clone().ok(), deadline)?,
        PdfIsolation::Subprocess { exe } => worker::run_worker(
            path,
            exe,
            JobKind::Pdf,
            bytes,
            ocr.clone().ok(),
            &opts.worker_limits,
            deadline,
        )?,
    };
    match extraction {
        Extraction::Text {
            pages,
            info,
            failed_pages,
            ocr_pages,
            needs_ocr,
        } => Ok(build(
            path,
            part,
            &pages,
            &info,
            &failed_pages,
            &Ocr {
                pages: &ocr_pages,
                missing: &needs_ocr,
                unavailable: ocr.err(),
            },
        )),
        Extraction::Encrypted => Ok(Parsed::Skipped(SkipReason::Encrypted)),
        Extraction::Corrupt { detail } => Err(ParseError::Corrupt {
            path: path.to_path_buf(),
            format: "PDF",
            detail,
        }),
        Extraction::Crashed { detail } => Err(crashed(path, detail)),
    }
}

fn crashed(path: &Path, detail: impl Into<String>) -> ParseError {
    ParseError::Crashed {
        path: path.to_path_buf(),
        format: "PDF",
        detail: detail.into(),
    }
}

/// Installs, once per process, a panic hook that stays silent for extraction threads (their
/// panics are caught and reported as [`ParseError::Crashed`]) and hands every other panic to the
/// hook that was there before.
pub(crate) fn quiet_extraction_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(THREAD_NAME) {
                previous(info);
            }
        }));
    });
}

/// Runs `extract` on a worker thread, waiting until `deadline`. A thread that passes it is left
/// to finish on its own (OCR programs it started are stopped at the deadline); its result is
/// dropped.
fn extract_on_thread(
    path: &Path,
    bytes: &[u8],
    ocr: Option<OcrJob>,
    deadline: Deadline,
) -> Result<Extraction> {
    if deadline.passed() {
        return Err(deadline.timeout(path));
    }
    quiet_extraction_panics();
    let (tx, rx) = mpsc::channel();
    let owned = bytes.to_vec();
    let until = deadline.at();
    std::thread::Builder::new()
        .name(THREAD_NAME.to_string())
        .stack_size(STACK_SIZE)
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| {
                worker::run_job(JobKind::Pdf, &owned, ocr.as_ref(), until)
            }))
            .unwrap_or_else(|_| Extraction::Crashed {
                detail: "the text extractor panicked".to_string(),
            });
            // The receiver is gone when the caller gave up waiting.
            let _ = tx.send(result);
        })
        .map_err(|e| crashed(path, format!("could not start the extraction thread: {e}")))?;
    match rx.recv_timeout(deadline.remaining()) {
        Ok(extraction) => Ok(extraction),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(deadline.timeout(path)),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(crashed(path, "the extraction thread died"))
        }
    }
}

/// Extracts the text of each page and the Info dictionary of a PDF, recognising pages without a
/// usable text layer with OCR when `ocr` is given (until `until`). Panics inside the text
/// extractor are caught page by page, so one bad page does not lose the others.
pub(crate) fn extract(bytes: &[u8], ocr: Option<&OcrJob>, until: Instant) -> Extraction {
    let doc = match lopdf::Document::load_mem(bytes) {
        Ok(doc) => doc,
        Err(lopdf::Error::InvalidPassword) => return Extraction::Encrypted,
        Err(e) => {
            return Extraction::Corrupt {
                detail: describe_error(&e),
            };
        }
    };
    // A file that opens without a password has had its encryption removed on load; one that
    // needs a password keeps its Encrypt entry (and its objects stay unreadable).
    if doc.trailer.get(b"Encrypt").is_ok() {
        return Extraction::Encrypted;
    }
    let page_ids = doc.get_pages();
    if page_ids.is_empty() {
        return Extraction::Corrupt {
            detail: "the document has no pages".to_string(),
        };
    }
    let info = read_info(&doc);
    let mut pages = Vec::with_capacity(page_ids.len());
    let mut failed_pages = Vec::new();
    for &number in page_ids.keys() {
        let mut page = String::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut output = pdf_extract::PlainTextOutput::new(&mut page);
            pdf_extract::output_doc_page(&doc, &mut output, number)
        }));
        match result {
            Ok(Ok(())) => pages.push(page),
            Ok(Err(e)) => {
                pages.push(String::new());
                failed_pages.push((number, describe_output_error(&e)));
            }
            Err(_) => {
                pages.push(String::new());
                failed_pages.push((number, "the text extractor panicked".to_string()));
            }
        }
    }
    if failed_pages.len() == pages.len() {
        let panicked = failed_pages.iter().any(|(_, why)| why.contains("panicked"));
        let first = failed_pages
            .first()
            .map(|(_, why)| why.clone())
            .unwrap_or_default();
        let detail = format!("no page could be read ({first})");
        return if panicked {
            Extraction::Crashed { detail }
        } else {
            Extraction::Corrupt { detail }
        };
    }
    let failed: Vec<u32> = failed_pages.iter().map(|(n, _)| *n).collect();
    let mut needs_ocr: Vec<u32> = page_ids
        .keys()
        .zip(&pages)
        .filter(|(n, text)| !failed.contains(n) && ocr::page_needs_ocr(text))
        .map(|(n, _)| *n)
        .collect();
    let mut ocr_pages = Vec::new();
    if let (Some(job), false) = (ocr, needs_ocr.is_empty()) {
        recognise_pages(
            bytes,
            &doc,
            &page_ids,
            job,
            until,
            &mut needs_ocr,
            &mut pages,
            &mut ocr_pages,
            &mut failed_pages,
        );
    }
    Extraction::Text {
        pages,
        info,
        failed_pages,
        ocr_pages,
        needs_ocr,
    }
}

/// Renders and recognises the pages in `needs_ocr`, replacing their text in `pages`. Pages
/// recognised move to `ocr_pages`; a page that fails stays in `needs_ocr` and gets a reason in
/// `failed_pages`.
#[allow(clippy::too_many_arguments)]
fn recognise_pages(
    bytes: &[u8],
    doc: &lopdf::Document,
    page_ids: &BTreeMap<u32, lopdf::ObjectId>,
    job: &OcrJob,
    until: Instant,
    needs_ocr: &mut Vec<u32>,
    pages: &mut [String],
    ocr_pages: &mut Vec<u32>,
    failed_pages: &mut Vec<(u32, String)>,
) {
    let dir = match ocr::TempDir::new() {
        Ok(d) => d,
        Err(e) => {
            for &n in needs_ocr.iter() {
                failed_pages.push((n, format!("OCR: no temporary folder ({e})")));
            }
            return;
        }
    };
    let pdf = dir.path().join("in.pdf");
    if let Err(e) = std::fs::write(&pdf, bytes) {
        for &n in needs_ocr.iter() {
            failed_pages.push((n, format!("OCR: could not write a temporary file ({e})")));
        }
        return;
    }
    let mut still = Vec::new();
    for (i, &n) in needs_ocr.iter().enumerate() {
        let index = page_ids.keys().position(|k| *k == n);
        let dpi = page_ids
            .get(&n)
            .and_then(|id| page_size_points(doc, *id))
            .map_or(job.dpi, |(w, h)| render_dpi(w, h, job.dpi, job.max_pixels));
        let result = if dpi < 50 {
            Err("the page is too large to render for OCR".to_string())
        } else {
            ocr::render_page(job, &pdf, n, dpi, &dir.path().join(format!("p{i}")), until).and_then(
                |image| {
                    let text = ocr::recognise_file(job, &image, until);
                    let _ = std::fs::remove_file(&image);
                    text
                },
            )
        };
        match (result, index) {
            (Ok(texts), Some(index)) => {
                pages[index] = texts.into_values().collect::<Vec<_>>().join(
                    "

",
                );
                ocr_pages.push(n);
            }
            (Ok(_), None) => still.push(n),
            (Err(why), _) => {
                failed_pages.push((n, format!("OCR failed: {why}")));
                still.push(n);
            }
        }
    }
    *needs_ocr = still;
}

/// The resolution to render a `w`×`h` points page at: `dpi`, lowered so that the image stays
/// within `max_pixels`.
fn render_dpi(w: f64, h: f64, dpi: u32, max_pixels: u64) -> u32 {
    let (w_in, h_in) = (w.abs() / 72.0, h.abs() / 72.0);
    let area = w_in * h_in;
    if area <= 0.0 || !area.is_finite() {
        return dpi;
    }
    let fits = (max_pixels as f64 / area).sqrt().floor();
    (dpi as f64).min(fits).max(0.0) as u32
}

/// A page's MediaBox size in points (inherited from its parents when the page has none).
fn page_size_points(doc: &lopdf::Document, page: lopdf::ObjectId) -> Option<(f64, f64)> {
    let mut id = page;
    for _ in 0..32 {
        let dict = doc.get_dictionary(id).ok()?;
        if let Ok(obj) = dict.get(b"MediaBox") {
            let obj = match obj {
                lopdf::Object::Reference(r) => doc.get_object(*r).ok()?,
                o => o,
            };
            let nums: Vec<f64> = obj
                .as_array()
                .ok()?
                .iter()
                .filter_map(|o| match o {
                    lopdf::Object::Integer(i) => Some(*i as f64),
                    lopdf::Object::Real(r) => Some(f64::from(*r)),
                    _ => None,
                })
                .collect();
            if nums.len() != 4 {
                return None;
            }
            return Some((nums[2] - nums[0], nums[3] - nums[1]));
        }
        id = dict
            .get(b"Parent")
            .and_then(lopdf::Object::as_reference)
            .ok()?;
    }
    None
}

/// A short explanation of why a PDF could not be read, for people (not a debug dump).
fn describe_error(e: &lopdf::Error) -> String {
    use lopdf::Error as E;
    let truncated = "its cross-reference table is missing or broken (is the file truncated?)";
    let detail = match e {
        E::Xref(_) | E::MissingXrefEntry => truncated.to_string(),
        // lopdf does not export its parse error type; its messages are stable and short.
        E::Parse(p) => match p.to_string().as_str() {
            "invalid file header" => "it does not start with a PDF header".to_string(),
            "unexpected end of input" => {
                "it ends unexpectedly (is the file truncated?)".to_string()
            }
            "invalid file trailer" | "invalid cross reference table" => truncated.to_string(),
            other => other.to_string(),
        },
        E::IndirectObject { .. } | E::InvalidOffset(_) | E::ObjectNotFound(_) => {
            "an object it refers to is missing or damaged".to_string()
        }
        E::Decryption(_) | E::UnsupportedSecurityHandler(_) => {
            "its encryption could not be read".to_string()
        }
        E::Unimplemented(what) => format!("it uses an unsupported feature ({what})"),
        other => other.to_string(),
    };
    truncate(&detail, 160)
}

fn describe_output_error(e: &pdf_extract::OutputError) -> String {
    match e {
        pdf_extract::OutputError::PdfError(e) => describe_error(e),
        other => truncate(&other.to_string(), 160),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// The Info dictionary's text entries, decoded.
fn read_info(doc: &lopdf::Document) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let dict = match doc.trailer.get(b"Info") {
        Ok(lopdf::Object::Reference(id)) => doc.get_dictionary(*id).ok(),
        Ok(lopdf::Object::Dictionary(d)) => Some(d),
        _ => None,
    };
    let Some(dict) = dict else {
        return out;
    };
    for key in ["Title", "Author", "Subject", "Keywords", "CreationDate"] {
        let Ok(obj) = dict.get(key.as_bytes()) else {
            continue;
        };
        let obj = match obj {
            lopdf::Object::Reference(id) => match doc.get_object(*id) {
                Ok(o) => o,
                Err(_) => continue,
            },
            o => o,
        };
        if let Ok(value) = lopdf::decode_text_string(obj) {
            let value = text::collapse_whitespace(&docent_core::text::sanitize(&value));
            // Some producers write a placeholder where the author gave nothing.
            if !value.is_empty() && value != "(unspecified)" {
                out.insert(key.to_string(), value);
            }
        }
    }
    out
}

/// `D:20241002...` → `2024-10-02` (or the year and month, when that is all there is).
fn pdf_date(raw: &str) -> Option<String> {
    let digits: String = raw
        .strip_prefix("D:")
        .unwrap_or(raw)
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match digits.len() {
        n if n >= 8 => Some(format!(
            "{}-{}-{}",
            &digits[..4],
            &digits[4..6],
            &digits[6..8]
        )),
        6 | 7 => Some(format!("{}-{}", &digits[..4], &digits[4..6])),
        4 | 5 => Some(digits[..4].to_string()),
        _ => None,
    }
}

/// Pages joined by blank lines into one text, one block per paragraph, each with its page
/// number (1-based) and first line within the page. Shared by PDFs and OCR'd images.
pub(crate) fn paged_text(pages: &[String]) -> (String, Vec<Block>) {
    let mut text = String::new();
    let mut blocks = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        if i > 0 {
            text.push_str("\n\n");
        }
        let offset = text.len();
        text.push_str(page);
        let lines = LineIndex::new(page);
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        for range in text::paragraphs(page, 0..page.len(), &[]) {
            blocks.push(Block {
                kind: BlockKind::Text,
                first_line: lines.line_of(range.start),
                range: offset + range.start..offset + range.end,
                page: Some(number),
                heading_path: Vec::new(),
            });
        }
    }
    (text, blocks)
}

/// Normalises one page's extracted text: sanitised, ligatures expanded, lines trimmed, a word
/// hyphenated across a line break rejoined, and runs of blank lines collapsed to one.
pub(crate) fn normalise_page(raw: &str) -> String {
    let clean = docent_core::text::sanitize(raw);
    let clean = expand_ligatures(&clean);
    let mut lines: Vec<String> = clean.lines().map(|l| l.trim().to_string()).collect();
    dehyphenate(&mut lines);
    let mut out = String::new();
    let mut blank_before = false;
    for line in &lines {
        if line.is_empty() {
            blank_before = true;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_before {
                out.push('\n');
            }
        }
        out.push_str(line);
        blank_before = false;
    }
    out
}

fn expand_ligatures(s: &str) -> String {
    if !s.chars().any(|c| ('\u{fb00}'..='\u{fb06}').contains(&c)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            c => out.push(c),
        }
    }
    out
}

/// `exam-` at the end of a line followed by `ple ...` becomes `example` on the first line, when
/// both sides are lower-case letters (so `Alder-` / `Creek` and `2024-` / `25` are left alone).
fn dehyphenate(lines: &mut Vec<String>) {
    let mut i = 0;
    while i + 1 < lines.len() {
        let joinable = {
            let (line, next) = (&lines[i], &lines[i + 1]);
            let mut tail = line.chars().rev();
            tail.next() == Some('-')
                && tail.next().is_some_and(char::is_lowercase)
                && next.chars().next().is_some_and(char::is_lowercase)
        };
        if joinable {
            let next = std::mem::take(&mut lines[i + 1]);
            let (word, rest) = match next.find(char::is_whitespace) {
                Some(at) => (&next[..at], next[at..].trim_start()),
                None => (next.as_str(), ""),
            };
            lines[i].pop();
            lines[i].push_str(word);
            if rest.is_empty() {
                lines.remove(i + 1);
            } else {
                lines[i + 1] = rest.to_string();
            }
        }
        i += 1;
    }
}

/// Builds the document from extracted pages, or skips a PDF without a text layer.
/// What OCR did for a PDF.
pub(crate) struct Ocr<'a> {
    /// Pages recognised.
    pub pages: &'a [u32],
    /// Pages that needed OCR and did not get it.
    pub missing: &'a [u32],
    /// Why OCR could not run at all, if it could not.
    pub unavailable: Option<OcrUnavailable>,
}

fn build(
    path: &Path,
    part: Option<&str>,
    raw_pages: &[String],
    info: &BTreeMap<String, String>,
    failed_pages: &[(u32, String)],
    ocr: &Ocr<'_>,
) -> Parsed {
    let pages: Vec<String> = raw_pages.iter().map(|p| normalise_page(p)).collect();
    let visible: usize = pages
        .iter()
        .map(|p| p.chars().filter(|c| !c.is_whitespace()).count())
        .sum();
    if visible < MIN_TEXT_CHARS {
        return Parsed::Skipped(match &ocr.unavailable {
            Some(why @ OcrUnavailable::NotInstalled(_)) if !ocr.missing.is_empty() => {
                SkipReason::NeedsOcr(why.clone())
            }
            _ if !ocr.pages.is_empty() => {
                SkipReason::NothingParsed("OCR found no text".to_string())
            }
            _ => match failed_pages.iter().find(|(_, why)| why.starts_with("OCR")) {
                Some((page, why)) => SkipReason::NothingParsed(format!("page {page}: {why}")),
                None => SkipReason::NoTextLayer,
            },
        });
    }
    let (text, blocks) = paged_text(&pages);
    let title = info
        .get("Title")
        .filter(|t| !t.eq_ignore_ascii_case("untitled"))
        .and_then(|t| text::title_from_line(t))
        .or_else(|| {
            pages
                .iter()
                .find_map(|p| p.lines().find_map(text::title_from_line))
        })
        .or_else(|| text::fallback_title(path, part));
    let mut meta = BTreeMap::new();
    for (key, name) in [
        ("Author", "author"),
        ("Subject", "subject"),
        ("Keywords", "keywords"),
    ] {
        if let Some(v) = info.get(key) {
            meta.insert(name.to_string(), v.clone());
        }
    }
    if let Some(date) = info.get("CreationDate").and_then(|d| pdf_date(d)) {
        meta.insert("created".to_string(), date);
    }
    if !ocr.pages.is_empty() {
        let list: Vec<String> = ocr.pages.iter().map(u32::to_string).collect();
        meta.insert(docent_core::META_OCR_PAGES.to_string(), list.join(","));
    }
    let mut warnings: Vec<String> = failed_pages
        .iter()
        .map(|(page, why)| {
            if why.starts_with("OCR") {
                format!("page {page}: {why}")
            } else {
                format!("page {page}: text could not be extracted ({why})")
            }
        })
        .collect();
    if let (Some(why), false) = (&ocr.unavailable, ocr.missing.is_empty()) {
        let list: Vec<String> = ocr.missing.iter().map(u32::to_string).collect();
        let pages = if list.len() == 1 { "page" } else { "pages" };
        warnings.push(format!("{pages} {} need OCR: {why}", list.join(", ")));
    }
    let doc = Document {
        id: DocId::for_source(&path.to_string_lossy(), part),
        path: path.to_path_buf(),
        part: part.map(str::to_string),
        kind: DocKind::Pdf,
        parser: "pdf".to_string(),
        title,
        text,
        blocks,
        meta,
        email: None,
        parent: None,
        pages: Some(u32::try_from(pages.len()).unwrap_or(u32::MAX)),
    };
    Parsed::Documents {
        documents: vec![doc],
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn extract(bytes: &[u8]) -> Extraction {
        super::extract(bytes, None, Instant::now() + Duration::from_secs(60))
    }

    fn parse(path: &Path, bytes: &[u8], opts: &ParseOptions) -> Result<Parsed> {
        super::parse(path, bytes, opts, Deadline::after(opts.pdf_timeout))
    }

    fn fixture_bytes(rel: &str) -> Vec<u8> {
        std::fs::read(docent_test_support::fixture(rel)).unwrap()
    }

    fn in_process(timeout: Duration) -> ParseOptions {
        ParseOptions {
            pdf_timeout: timeout,
            pdf_isolation: PdfIsolation::InProcess,
            ..ParseOptions::default()
        }
    }

    #[test]
    fn normalise_page_text() {
        let raw = "  Title  \n\n\n\nA line   \nwith an exam-\nple of hyphen-\nation at ends\n\n\nwell-\nKnown \u{fb01}sh\r\n";
        assert_eq!(
            normalise_page(raw),
            "Title\n\nA line\nwith an example\nof hyphenation\nat ends\n\nwell-\nKnown fish"
        );
        assert_eq!(normalise_page(" \n \n"), "");
    }

    #[test]
    fn dehyphenate_drops_a_line_left_empty() {
        let mut lines = vec![
            "a long exam-".to_string(),
            "ple".to_string(),
            "next".to_string(),
        ];
        dehyphenate(&mut lines);
        assert_eq!(lines, ["a long example", "next"]);
    }

    #[test]
    fn pdf_dates() {
        assert_eq!(
            pdf_date("D:20241002120000+00'00'").as_deref(),
            Some("2024-10-02")
        );
        assert_eq!(pdf_date("D:202410").as_deref(), Some("2024-10"));
        assert_eq!(pdf_date("D:2024").as_deref(), Some("2024"));
        assert_eq!(pdf_date("yesterday"), None);
    }

    #[test]
    fn extraction_round_trips_through_json() {
        let extraction = extract(&fixture_bytes("pdf/roof-inspection.pdf"));
        let Extraction::Text {
            pages,
            info,
            failed_pages,
            ..
        } = &extraction
        else {
            panic!("{extraction:?}")
        };
        assert_eq!(pages.len(), 2);
        assert!(failed_pages.is_empty());
        assert_eq!(info["Author"], "Dana Okafor");
        assert!(!info.contains_key("Creator"));
        let json = serde_json::to_string(&extraction).unwrap();
        assert!(
            json.starts_with(r#"{"result":"text","pages":["#),
            "{}",
            &json[..40]
        );
        assert_eq!(
            serde_json::from_str::<Extraction>(&json).unwrap(),
            extraction
        );
        assert_eq!(
            serde_json::to_string(&Extraction::Encrypted).unwrap(),
            r#"{"result":"encrypted"}"#
        );
    }

    /// The threshold for "this page has no text layer", measured on the sample corpus: every
    /// text page has far more visible characters, the scan none.
    #[test]
    fn page_threshold_against_fixtures() {
        let mut sparsest = usize::MAX;
        for rel in ["pdf/linden-contract.pdf", "pdf/roof-inspection.pdf"] {
            let Extraction::Text { pages, .. } = extract(&fixture_bytes(rel)) else {
                panic!("{rel}")
            };
            for (i, page) in pages.iter().enumerate() {
                let visible = page.chars().filter(|c| !c.is_whitespace()).count();
                eprintln!("{rel} page {}: {visible} visible characters", i + 1);
                assert!(!ocr::page_needs_ocr(page), "{rel} page {}", i + 1);
                sparsest = sparsest.min(visible);
            }
        }
        assert!(sparsest > 10 * ocr::MIN_PAGE_CHARS, "{sparsest}");
        let Extraction::Text {
            pages, needs_ocr, ..
        } = extract(&fixture_bytes("invalid/scanned.pdf"))
        else {
            panic!("scanned.pdf")
        };
        assert_eq!(pages.len(), 1);
        assert_eq!(needs_ocr, [1]);
    }

    #[test]
    fn render_resolution_stays_under_the_pixel_limit() {
        // A4 at 300 dpi is 8.7 megapixels.
        assert_eq!(render_dpi(595.0, 842.0, 300, 60_000_000), 300);
        // A 2 m × 2 m poster page.
        let dpi = render_dpi(5669.0, 5669.0, 300, 60_000_000);
        let side = 5669.0 / 72.0 * f64::from(dpi);
        assert!(side * side <= 60e6, "{dpi}");
        assert!(dpi >= 90, "{dpi}");
    }

    #[test]
    fn extract_classifies_bad_input() {
        assert_eq!(
            extract(&fixture_bytes("invalid/encrypted.pdf")),
            Extraction::Encrypted
        );
        let Extraction::Corrupt { detail } = extract(b"not a PDF at all") else {
            panic!("not corrupt")
        };
        assert_eq!(detail, "it does not start with a PDF header");
        let Extraction::Corrupt { detail } = extract(&fixture_bytes("invalid/truncated.pdf"))
        else {
            panic!("not corrupt")
        };
        assert!(detail.contains("truncated"), "{detail}");
    }

    #[test]
    fn a_panicking_page_is_contained() {
        let bytes = fixture_bytes("invalid/no-mediabox.pdf");
        let err = parse(
            Path::new("/docs/bad.pdf"),
            &bytes,
            &in_process(Duration::from_secs(30)),
        )
        .unwrap_err();
        assert!(
            matches!(err, ParseError::Crashed { format: "PDF", .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "/docs/bad.pdf: the PDF parser crashed on this file: no page could be read (the text extractor panicked)"
        );
    }

    #[test]
    fn in_process_timeout() {
        let bytes = fixture_bytes("pdf/linden-contract.pdf");
        let err = parse(
            Path::new("/docs/c.pdf"),
            &bytes,
            &in_process(Duration::from_nanos(1)),
        )
        .unwrap_err();
        assert!(matches!(err, ParseError::Timeout { secs: 1, .. }), "{err}");
    }

    #[test]
    fn attachment_part_sets_id_and_part() {
        let bytes = fixture_bytes("pdf/roof-inspection.pdf");
        let part = "message 2/attachment 1 roof.pdf";
        let parsed = parse_part(
            Path::new("/mail/inbox.mbox"),
            Some(part),
            &bytes,
            &in_process(Duration::from_secs(30)),
            Deadline::after(Duration::from_secs(30)),
        )
        .unwrap();
        let Parsed::Documents { documents, .. } = parsed else {
            panic!("skipped")
        };
        assert_eq!(documents[0].part.as_deref(), Some(part));
        assert_eq!(
            documents[0].id,
            DocId::for_source("/mail/inbox.mbox", Some(part))
        );
        assert_eq!(documents[0].kind, DocKind::Pdf);
    }

    /// A message with `n` copies of `pdf` attached (base64).
    fn email_with_pdfs(pdf: &[u8], n: usize) -> Vec<u8> {
        let mut m = String::from(
            "From: a@example.com\r\nTo: b@example.com\r\nSubject: Reports\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nThe reports.\r\n",
        );
        let encoded = base64(pdf);
        for i in 0..n {
            m.push_str(&format!(
                "--b\r\nContent-Type: application/pdf\r\n\
                 Content-Disposition: attachment; filename=\"r{i}.pdf\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n"
            ));
        }
        m.push_str("--b--\r\n");
        m.into_bytes()
    }

    fn base64(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for (i, chunk) in bytes.chunks(3).enumerate() {
            if i > 0 && i % 19 == 0 {
                out.push_str("\r\n");
            }
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// Every way a worker process can answer, or fail to, using small shell scripts as workers.
    /// One test, so that no other test forks while a script is still open for writing.
    #[cfg(unix)]
    #[test]
    fn subprocess_worker_protocol() {
        use std::os::unix::fs::PermissionsExt;

        let dir = docent_test_support::tempdir();
        let reply =
            serde_json::to_string(&extract(&fixture_bytes("pdf/roof-inspection.pdf"))).unwrap();
        std::fs::write(dir.path().join("reply.json"), reply).unwrap();
        let script = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let good = script(
            "good",
            &format!(
                "[ \"$1\" = __pdf-worker ] || exit 9\ncat > /dev/null\ncat '{}'",
                dir.path().join("reply.json").display()
            ),
        );
        let encrypted = script(
            "encrypted",
            "cat > /dev/null\necho '{\"result\":\"encrypted\"}'",
        );
        let slow = script("slow", "exec sleep 10");
        let dies = script("dies", "exit 3");
        let mute = script("mute", "cat > /dev/null\necho 'not json'");
        let corrupt = script(
            "corrupt",
            "echo '{\"result\":\"corrupt\",\"detail\":\"bad xref\"}'",
        );

        let run = |exe: &Path, timeout: Duration| {
            let opts = ParseOptions {
                pdf_timeout: timeout,
                pdf_isolation: PdfIsolation::Subprocess {
                    exe: exe.to_path_buf(),
                },
                ..ParseOptions::default()
            };
            parse(
                Path::new("/docs/x.pdf"),
                &fixture_bytes("pdf/roof-inspection.pdf"),
                &opts,
            )
        };
        let long = Duration::from_secs(30);

        let Ok(Parsed::Documents { documents, .. }) = run(&good, long) else {
            panic!("no document")
        };
        assert_eq!(documents[0].pages, Some(2));
        assert_eq!(
            documents[0].title.as_deref(),
            Some("Roof Inspection Report - Linden Street Library")
        );

        assert!(matches!(
            run(&encrypted, long),
            Ok(Parsed::Skipped(SkipReason::Encrypted))
        ));

        let started = Instant::now();
        let err = run(&slow, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, ParseError::Timeout { secs: 1, .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));

        let err = run(&dies, long).unwrap_err().to_string();
        assert_eq!(
            err,
            "/docs/x.pdf: the PDF parser crashed on this file: the PDF worker exited with exit status: 3"
        );
        let err = run(&mute, long).unwrap_err().to_string();
        assert!(err.ends_with("the PDF worker gave no answer"), "{err}");
        let err = run(&corrupt, long).unwrap_err().to_string();
        assert_eq!(err, "/docs/x.pdf: damaged PDF file: bad xref");
        let err = run(&dir.path().join("missing"), long).unwrap_err();
        assert!(matches!(err, ParseError::Crashed { .. }), "{err}");
        assert!(err.to_string().contains("could not start the PDF worker"));

        // A reply longer than the output cap is cut, and the worker killed.
        let chatty = script(
            "chatty",
            "cat > /dev/null\nprintf '{\"result\":\"crashed\",\"detail\":\"'\nexec yes xxxxxxxx",
        );
        let opts = ParseOptions {
            pdf_timeout: long,
            pdf_isolation: PdfIsolation::Subprocess { exe: chatty },
            worker_limits: crate::WorkerLimits {
                output_bytes: 1024 * 1024,
                ..crate::WorkerLimits::default()
            },
            ..ParseOptions::default()
        };
        let err = parse(
            Path::new("/docs/x.pdf"),
            &fixture_bytes("pdf/roof-inspection.pdf"),
            &opts,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/docs/x.pdf: the PDF parser crashed on this file: its reply passed the limit of 1.0 MB and was cut"
        );

        // An email with many PDF attachments that each hang: one deadline for the whole file,
        // so one worker is started and the rest are not.
        let runs = dir.path().join("runs");
        let hangs = script(
            "hangs",
            &format!("echo run >> '{}'\nexec sleep 30", runs.display()),
        );
        let attachments = 12;
        let eml = email_with_pdfs(&fixture_bytes("pdf/roof-inspection.pdf"), attachments);
        let opts = ParseOptions {
            pdf_timeout: Duration::from_millis(500),
            pdf_isolation: PdfIsolation::Subprocess { exe: hangs },
            ..ParseOptions::default()
        };
        let Ok(crate::Outcome::Parsed {
            documents,
            warnings,
            ..
        }) = crate::parse_bytes(Path::new("/mail/many.eml"), &eml, &opts)
        else {
            panic!("message not parsed")
        };
        assert_eq!(documents.len(), 1, "only the message itself");
        assert_eq!(warnings.len(), attachments, "{warnings:?}");
        assert!(
            warnings.iter().all(|w| w.ends_with("gave up after 1 s")),
            "{warnings:?}"
        );
        let started = std::fs::read_to_string(&runs).unwrap();
        assert_eq!(started.lines().count(), 1, "workers started: {started:?}");
    }
}
