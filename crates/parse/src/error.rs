use std::fmt;
use std::path::PathBuf;

/// Why a file was not indexed although nothing went wrong reading it. `Display` is the reason as
/// users see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    Empty,
    TooLarge {
        size: u64,
        limit: u64,
    },
    /// Binary content behind a text extension.
    Binary,
    /// Not a format docent reads.
    Unsupported,
    /// An encrypted PDF.
    Encrypted,
    /// A PDF whose pages have no extractable text (a scan without OCR).
    NoTextLayer,
    /// Scanned pages or an image that need OCR, which is turned off or not installed.
    NeedsOcr(OcrUnavailable),
    /// An image larger than the OCR pixel limit (an image bomb, or a poster-sized scan).
    ImageTooLarge {
        width: u64,
        height: u64,
        limit: u64,
    },
    /// The file parsed but yielded no document; the text says why.
    NothingParsed(String),
}

/// Why OCR could not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OcrUnavailable {
    /// `[ocr] enabled = false`.
    Off,
    /// A program is missing from `PATH` (`tesseract`, or `pdftoppm` for PDF pages).
    NotInstalled(&'static str),
}

/// How to install what OCR needs, for people.
pub const OCR_INSTALL_HINT: &str = "install Tesseract and poppler: `apt install tesseract-ocr tesseract-ocr-eng poppler-utils` (Debian/Ubuntu), `brew install tesseract poppler` (macOS)";

impl fmt::Display for OcrUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OcrUnavailable::Off => {
                f.write_str("OCR is turned off (hint: set `[ocr] enabled = true`)")
            }
            OcrUnavailable::NotInstalled(program) => {
                write!(f, "`{program}` is not installed (hint: {OCR_INSTALL_HINT})")
            }
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Empty => f.write_str("empty file"),
            SkipReason::TooLarge { size, limit } => write!(
                f,
                "too large ({} > limit {})",
                human_bytes(*size),
                human_bytes(*limit)
            ),
            SkipReason::Binary => f.write_str("not text (binary content)"),
            SkipReason::Unsupported => f.write_str("unsupported file type"),
            SkipReason::Encrypted => f.write_str("encrypted"),
            SkipReason::NoTextLayer => f.write_str("no text layer (scanned?)"),
            SkipReason::NeedsOcr(why) => write!(f, "needs OCR: {why}"),
            SkipReason::ImageTooLarge {
                width,
                height,
                limit,
            } => write!(
                f,
                "image too large for OCR ({width}×{height} pixels > limit {:.0} megapixels)",
                *limit as f64 / 1e6
            ),
            SkipReason::NothingParsed(why) => write!(f, "nothing to index ({why})"),
        }
    }
}

/// Formats a byte count for people: `512 B`, `1.5 KB`, `64.0 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A file that could not be parsed. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{}: could not read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is damaged or not what its name says.
    #[error("{}: damaged {format} file: {detail}", path.display())]
    Corrupt {
        path: PathBuf,
        format: &'static str,
        detail: String,
    },
    /// The parser crashed (a panic inside a third-party parser, or a worker that died).
    #[error("{}: the {format} parser crashed on this file: {detail}", path.display())]
    Crashed {
        path: PathBuf,
        format: &'static str,
        detail: String,
    },
    #[error("{}: gave up after {secs} s (file too complex or malformed)", path.display())]
    Timeout { path: PathBuf, secs: u64 },
}

impl ParseError {
    pub fn path(&self) -> &std::path::Path {
        match self {
            ParseError::Io { path, .. }
            | ParseError::Corrupt { path, .. }
            | ParseError::Crashed { path, .. }
            | ParseError::Timeout { path, .. } => path,
        }
    }

    /// The error as a skip reason, without the path (for listings that show the path beside
    /// it).
    pub fn reason(&self) -> String {
        match self {
            ParseError::Io { source, .. } => format!("could not read: {source}"),
            ParseError::Corrupt { format, detail, .. } => {
                format!("damaged {format} file: {detail}")
            }
            ParseError::Crashed { format, detail, .. } => {
                format!("{format} parser crashed: {detail}")
            }
            ParseError::Timeout { secs, .. } => format!("gave up after {secs} s"),
        }
    }
}

pub type Result<T, E = ParseError> = std::result::Result<T, E>;
