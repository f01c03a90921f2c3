//! # docent-parse
//!
//! Turns the bytes of one file into [`Document`]s: normalised text, structural blocks with page
//! and line locations, and metadata. One module per format:
//!
//! - [`pdf`]: text per page with `pdf-extract`, panics caught, time and memory bounded
//!   ([`worker`]); encrypted PDFs are skipped with a reason; pages without a usable text layer
//!   are recognised with OCR ([`ocr`]) when Tesseract is installed.
//! - [`image`]: scanned pages and photographs (`.png`, `.jpg`, `.tif`), recognised with OCR.
//! - [`markdown`]: heading structure and front matter; [`text`]: `.txt`, `.rst`, `.org` and
//!   other plain text, legacy encodings decoded.
//! - [`email`]: `.eml`, mbox and Maildir messages with their headers, thread id, stripped
//!   quotes and signatures, and parsed attachments.
//!
//! It owns format detection ([`detect`]) and the reasons a file is skipped ([`SkipReason`]). It
//! refuses anything beyond one file: walking folders, hashing, and remembering what was indexed
//! belong to the engine and the store. Every error names the file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use docent_core::Document;

mod detect;
pub mod email;
mod error;
pub mod image;
pub mod markdown;
pub mod ocr;
pub mod pdf;
pub mod text;
pub mod worker;

pub use detect::{Format, detect};
pub use error::{OCR_INSTALL_HINT, OcrUnavailable, ParseError, Result, SkipReason};
pub use ocr::{OcrOptions, OcrTools};

/// How PDF text extraction is isolated from the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PdfIsolation {
    /// On a worker thread in this process: panics are caught, and a file that runs past the
    /// time limit is abandoned (its thread is left to finish on its own).
    InProcess,
    /// In a child process (`<exe> __pdf-worker`, which calls [`pdf::worker_main`]), killed when
    /// it runs past the time limit. Nothing a PDF does can harm the caller.
    Subprocess { exe: PathBuf },
}

/// Settings for parsing, resolved once by the caller.
#[derive(Clone, Debug)]
pub struct ParseOptions {
    /// Files larger than this are skipped ([`SkipReason::TooLarge`]).
    pub max_file_bytes: u64,
    /// Longest time the isolated work on one file may take: PDF extraction and OCR, for all of
    /// an email's PDF attachments together (one deadline per file, not per part).
    pub pdf_timeout: Duration,
    pub pdf_isolation: PdfIsolation,
    /// Limits the worker process sets on itself (and so on the OCR programs it starts).
    pub worker_limits: WorkerLimits,
    /// Parse PDF and text attachments of email messages into documents of their own.
    pub parse_attachments: bool,
    /// Optical character recognition of scanned pages and images; off by default here (the
    /// engine turns it on from `[ocr]`).
    pub ocr: OcrOptions,
}

/// Resource limits of the PDF/OCR worker process ([`PdfIsolation::Subprocess`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerLimits {
    /// Address space of the worker (`RLIMIT_AS`); OCR programs it starts inherit it.
    pub memory_bytes: u64,
    /// Most bytes read back from the worker's stdout; a longer reply is cut and the file fails.
    pub output_bytes: u64,
}

impl Default for WorkerLimits {
    fn default() -> Self {
        WorkerLimits {
            memory_bytes: 2 * 1024 * 1024 * 1024,
            output_bytes: 256 * 1024 * 1024,
        }
    }
}

/// The one deadline of one file: every isolated step (each PDF attachment, each OCR page) takes
/// from the same budget.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    pub(crate) fn after(limit: Duration) -> Self {
        Deadline {
            at: Instant::now() + limit,
            limit,
        }
    }

    pub(crate) fn at(self) -> Instant {
        self.at
    }

    pub(crate) fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub(crate) fn passed(self) -> bool {
        Instant::now() >= self.at
    }

    /// The error of a file that ran past this deadline.
    pub(crate) fn timeout(self, path: &Path) -> ParseError {
        ParseError::Timeout {
            path: path.to_path_buf(),
            secs: self.limit.as_secs_f64().ceil() as u64,
        }
    }
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_file_bytes: 64 * 1024 * 1024,
            pdf_timeout: Duration::from_secs(60),
            pdf_isolation: PdfIsolation::InProcess,
            worker_limits: WorkerLimits::default(),
            parse_attachments: true,
            ocr: OcrOptions::default(),
        }
    }
}

/// What parsing one file gave.
#[derive(Debug)]
pub enum Outcome {
    /// One or more documents (an mbox gives one per message, attachments one each).
    /// `warnings` name parts of the file that could not be parsed (a broken message in an mbox)
    /// while the rest was.
    Parsed {
        format: Format,
        documents: Vec<Document>,
        warnings: Vec<String>,
    },
    /// Nothing to index, for a reason a user understands.
    Skipped {
        format: Option<Format>,
        reason: SkipReason,
    },
}

/// Parses one file from its bytes. `path` is the absolute path that identifies the document
/// (ids are derived from it) and that errors name; it is not read (except for Maildir detection,
/// which looks at its parent folder's name).
///
/// Isolated work (PDF extraction, OCR) shares one deadline, `opts.pdf_timeout` from now.
pub fn parse_bytes(path: &Path, bytes: &[u8], opts: &ParseOptions) -> Result<Outcome> {
    if bytes.len() as u64 > opts.max_file_bytes {
        return Ok(Outcome::Skipped {
            format: None,
            reason: SkipReason::TooLarge {
                size: bytes.len() as u64,
                limit: opts.max_file_bytes,
            },
        });
    }
    let head = &bytes[..bytes.len().min(8192)];
    let Some(format) = detect(path, head) else {
        return Ok(Outcome::Skipped {
            format: None,
            reason: SkipReason::Unsupported,
        });
    };
    parse_detected(path, bytes, format, opts)
}

/// Parses one file whose size the caller checked against `opts.max_file_bytes` and whose
/// format it detected ([`detect`]) from the same bytes: what [`parse_bytes`] does after those
/// two checks, for a caller that made them before reading the whole file. Isolated work (PDF
/// extraction, OCR) shares one deadline, `opts.pdf_timeout` from now.
pub fn parse_detected(
    path: &Path,
    bytes: &[u8],
    format: Format,
    opts: &ParseOptions,
) -> Result<Outcome> {
    let deadline = Deadline::after(opts.pdf_timeout);
    let head = &bytes[..bytes.len().min(8192)];
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Outcome::Skipped {
            format: Some(format),
            reason: SkipReason::Empty,
        });
    }
    if format.is_text() && docent_core::text::looks_binary(head) {
        return Ok(Outcome::Skipped {
            format: Some(format),
            reason: SkipReason::Binary,
        });
    }
    let result = match format {
        Format::Pdf => pdf::parse(path, bytes, opts, deadline),
        Format::Image => image::parse(path, bytes, opts, deadline),
        Format::Markdown => markdown::parse(path, bytes),
        Format::Text => text::parse(path, bytes),
        Format::Eml | Format::Maildir => {
            email::parse_message_file(path, format, bytes, opts, deadline)
        }
        Format::Mbox => email::parse_mbox(path, bytes, opts, deadline),
    };
    match result {
        Ok(Parsed::Documents {
            documents,
            warnings,
        }) if documents.is_empty() => Ok(Outcome::Skipped {
            format: Some(format),
            reason: first_warning_or_empty(warnings),
        }),
        Ok(Parsed::Documents {
            documents,
            warnings,
        }) => Ok(Outcome::Parsed {
            format,
            documents,
            warnings,
        }),
        Ok(Parsed::Skipped(reason)) => Ok(Outcome::Skipped {
            format: Some(format),
            reason,
        }),
        Err(e) => Err(e),
    }
}

/// Whether an unchanged file that was skipped for `reason` (as recorded, the [`SkipReason`]'s
/// text) should be parsed again: it waited for OCR (scanned, OCR off or not installed), and
/// OCR can run now. Installing Tesseract or turning `[ocr]` on then indexes such files on the
/// next run without touching them.
pub fn waits_for_ocr(reason: &str, ocr: &OcrOptions) -> bool {
    let waited = reason.starts_with("needs OCR") || reason == SkipReason::NoTextLayer.to_string();
    waited && ocr.job(true).is_ok()
}

fn first_warning_or_empty(warnings: Vec<String>) -> SkipReason {
    match warnings.into_iter().next() {
        Some(w) => SkipReason::NothingParsed(w),
        None => SkipReason::Empty,
    }
}

/// Reads and parses one file, checking its size before reading it.
pub fn parse_file(path: &Path, opts: &ParseOptions) -> Result<Outcome> {
    let meta = std::fs::metadata(path).map_err(|source| ParseError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() > opts.max_file_bytes {
        return Ok(Outcome::Skipped {
            format: None,
            reason: SkipReason::TooLarge {
                size: meta.len(),
                limit: opts.max_file_bytes,
            },
        });
    }
    let bytes = std::fs::read(path).map_err(|source| ParseError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_bytes(path, &bytes, opts)
}

/// What a format module returns: documents, or a reason to skip the whole file.
#[derive(Debug)]
pub(crate) enum Parsed {
    Documents {
        documents: Vec<Document>,
        warnings: Vec<String>,
    },
    Skipped(SkipReason),
}

impl Parsed {
    pub(crate) fn one(doc: Document) -> Self {
        Parsed::Documents {
            documents: vec![doc],
            warnings: Vec::new(),
        }
    }
}
