//! # docent-parse
//!
//! Turns the bytes of one file into [`Document`]s: normalised text, structural blocks with page
//! and line locations, and metadata. One module per format:
//!
//! - [`pdf`]: text per page with `pdf-extract`, panics caught and time bounded; encrypted and
//!   image-only PDFs are skipped with a reason.
//! - [`markdown`]: heading structure and front matter; [`text`]: `.txt`, `.rst`, `.org` and
//!   other plain text, legacy encodings decoded.
//! - [`email`]: `.eml`, mbox and Maildir messages with their headers, thread id, stripped
//!   quotes and signatures, and parsed attachments.
//!
//! It owns format detection ([`detect`]) and the reasons a file is skipped ([`SkipReason`]). It
//! refuses anything beyond one file: walking folders, hashing, and remembering what was indexed
//! belong to the engine and the store. Every error names the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use docent_core::Document;

mod detect;
pub mod email;
mod error;
pub mod markdown;
pub mod pdf;
pub mod text;

pub use detect::{Format, detect};
pub use error::{ParseError, Result, SkipReason};

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
    /// Longest time one PDF (or PDF attachment) may take to extract.
    pub pdf_timeout: Duration,
    pub pdf_isolation: PdfIsolation,
    /// Parse PDF and text attachments of email messages into documents of their own.
    pub parse_attachments: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_file_bytes: 64 * 1024 * 1024,
            pdf_timeout: Duration::from_secs(60),
            pdf_isolation: PdfIsolation::InProcess,
            parse_attachments: true,
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
/// two checks, for a caller that made them before reading the whole file.
pub fn parse_detected(
    path: &Path,
    bytes: &[u8],
    format: Format,
    opts: &ParseOptions,
) -> Result<Outcome> {
    let head = &bytes[..bytes.len().min(8192)];
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Outcome::Skipped {
            format: Some(format),
            reason: SkipReason::Empty,
        });
    }
    if format != Format::Pdf && docent_core::text::looks_binary(head) {
        return Ok(Outcome::Skipped {
            format: Some(format),
            reason: SkipReason::Binary,
        });
    }
    let result = match format {
        Format::Pdf => pdf::parse(path, bytes, opts),
        Format::Markdown => markdown::parse(path, bytes),
        Format::Text => text::parse(path, bytes),
        Format::Eml | Format::Maildir => email::parse_message_file(path, format, bytes, opts),
        Format::Mbox => email::parse_mbox(path, bytes, opts),
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
