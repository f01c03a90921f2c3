//! Why a file was not indexed: a typed reason whose text (its `Display`) is what `docent index`,
//! `docent status`, the daemon's log and the manifest show. The manifest keeps the text, so
//! [`RecordedReason`] is the one place that reads a recorded text back.

use std::fmt;

use docent_parse::SkipReason;

/// Why one file was not indexed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileReason {
    /// Skipped on purpose: empty, too large, unsupported, encrypted, no text layer…
    Skipped(SkipReason),
    /// The file could not be read.
    Unreadable(ReadProblem),
    /// The parser failed on it; the text names what was wrong.
    Parser(String),
    /// The chunker failed on it.
    Chunking(String),
    /// docent died this many times while reading it (see `watch.quarantine_after`).
    Quarantined { deaths: u32 },
}

/// Why a file could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadProblem {
    PermissionDenied,
    /// Deleted between the walk and the read.
    Vanished,
    Other(String),
}

/// The start of every recorded "could not read" reason.
const UNREADABLE: &str = "could not read";
/// The start of every recorded quarantine reason; `docent status` lists these apart.
pub const QUARANTINE_REASON: &str = "quarantined";

impl FileReason {
    /// The reason for an I/O error while reading the file.
    pub fn from_io(e: &std::io::Error) -> Self {
        FileReason::Unreadable(match e.kind() {
            std::io::ErrorKind::PermissionDenied => ReadProblem::PermissionDenied,
            std::io::ErrorKind::NotFound => ReadProblem::Vanished,
            _ => ReadProblem::Other(e.to_string()),
        })
    }

    /// True when something went wrong; false when the file was skipped on purpose.
    pub fn is_error(&self) -> bool {
        !matches!(self, FileReason::Skipped(_))
    }
}

impl fmt::Display for FileReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileReason::Skipped(r) => write!(f, "{r}"),
            FileReason::Unreadable(ReadProblem::PermissionDenied) => {
                write!(f, "{UNREADABLE}: permission denied")
            }
            FileReason::Unreadable(ReadProblem::Vanished) => {
                write!(f, "{UNREADABLE}: vanished while being indexed")
            }
            FileReason::Unreadable(ReadProblem::Other(e)) => write!(f, "{UNREADABLE}: {e}"),
            FileReason::Parser(r) => f.write_str(r),
            FileReason::Chunking(e) => write!(f, "chunking failed: {e}"),
            FileReason::Quarantined { deaths } => write!(
                f,
                "{QUARANTINE_REASON}: docent stopped {deaths} times while reading this file; it is tried again when it changes"
            ),
        }
    }
}

/// What a reason recorded in the manifest says, as far as docent acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordedReason {
    /// The file could not be read: worth trying again even when it looks unchanged (it may
    /// have been made readable without its modification time changing).
    Unreadable,
    /// Set aside after crashes: not tried again until it changes.
    Quarantined,
    /// Anything else.
    Other,
}

impl RecordedReason {
    /// Classifies the text of a recorded reason (as [`FileReason`]'s `Display` wrote it).
    pub fn of(text: &str) -> Self {
        if text.starts_with(UNREADABLE) {
            RecordedReason::Unreadable
        } else if text.starts_with(QUARANTINE_REASON) {
            RecordedReason::Quarantined
        } else {
            RecordedReason::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_before_and_are_recognised_when_read_back() {
        let cases = [
            (
                FileReason::Unreadable(ReadProblem::PermissionDenied),
                "could not read: permission denied",
                RecordedReason::Unreadable,
            ),
            (
                FileReason::Unreadable(ReadProblem::Vanished),
                "could not read: vanished while being indexed",
                RecordedReason::Unreadable,
            ),
            (
                FileReason::Unreadable(ReadProblem::Other("disk error".into())),
                "could not read: disk error",
                RecordedReason::Unreadable,
            ),
            (
                FileReason::Quarantined { deaths: 3 },
                "quarantined: docent stopped 3 times while reading this file; it is tried again when it changes",
                RecordedReason::Quarantined,
            ),
            (
                FileReason::Chunking("too small".into()),
                "chunking failed: too small",
                RecordedReason::Other,
            ),
            (
                FileReason::Skipped(SkipReason::Unsupported),
                "unsupported file type",
                RecordedReason::Other,
            ),
            (
                FileReason::Parser("damaged PDF".into()),
                "damaged PDF",
                RecordedReason::Other,
            ),
        ];
        for (reason, text, recorded) in cases {
            assert_eq!(reason.to_string(), text);
            assert_eq!(RecordedReason::of(text), recorded, "{text}");
            assert_eq!(reason.is_error(), !matches!(reason, FileReason::Skipped(_)));
        }
    }

    #[test]
    fn io_errors_become_read_problems() {
        use std::io::{Error, ErrorKind};
        assert_eq!(
            FileReason::from_io(&Error::from(ErrorKind::PermissionDenied)),
            FileReason::Unreadable(ReadProblem::PermissionDenied)
        );
        assert_eq!(
            FileReason::from_io(&Error::from(ErrorKind::NotFound)),
            FileReason::Unreadable(ReadProblem::Vanished)
        );
        assert!(matches!(
            FileReason::from_io(&Error::other("boom")),
            FileReason::Unreadable(ReadProblem::Other(_))
        ));
    }
}
