//! One stored chunk, as the index keeps it.

use std::fmt;
use std::ops::Range;

use docent_core::{ChunkId, ContentHash, DocId, DocKind, Hit, LineRange};

/// A chunk with everything needed to search, show and cite it, and its vector.
///
/// `Debug` prints identifiers and locations only: never the text, the header fields or the
/// vector.
#[derive(Clone, PartialEq)]
pub struct ChunkRecord {
    pub id: ChunkId,
    pub doc_id: DocId,
    /// The file (absolute path, as indexed).
    pub path: String,
    /// Locator inside the file (`message 3`, `message 3/attachment 1 report.pdf`).
    pub part: Option<String>,
    pub kind: DocKind,
    pub ordinal: u32,
    pub text: String,
    /// Context line embedded and indexed with the chunk (heading path, subject or title).
    pub context: Option<String>,
    pub page: Option<u32>,
    pub lines: LineRange,
    /// Byte range of the chunk in its document's text.
    pub bytes: Range<usize>,
    /// Heading path joined with ` > `.
    pub heading: Option<String>,
    pub title: Option<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    /// RFC 3339 (or at least `YYYY-MM-DD`); other forms are kept but cannot be filtered on.
    pub date: Option<String>,
    pub thread_id: Option<String>,
    pub message_id: Option<String>,
    /// Hash of what was embedded: chunks with equal hashes share a vector.
    pub content_hash: ContentHash,
    /// L2-normalised embedding, of the index's dimension.
    pub vector: Vec<f32>,
}

impl ChunkRecord {
    /// The search hit for this chunk, with `score` from the retriever that found it.
    pub fn to_hit(&self, score: f32) -> Hit {
        Hit {
            chunk_id: self.id.clone(),
            doc_id: self.doc_id.clone(),
            path: self.path.clone(),
            part: self.part.clone(),
            kind: self.kind,
            ordinal: self.ordinal,
            text: self.text.clone(),
            page: self.page,
            lines: self.lines,
            bytes: self.bytes.clone(),
            heading: self.heading.clone(),
            title: self.title.clone(),
            subject: self.subject.clone(),
            from: self.from.clone(),
            date: self.date.clone(),
            thread_id: self.thread_id.clone(),
            message_id: self.message_id.clone(),
            content_hash: self.content_hash.clone(),
            score,
        }
    }

    /// What the keyword index analyses as the chunk's body: the context line, a blank line,
    /// then the text (the same text the embedding model sees).
    pub(crate) fn body(&self) -> String {
        docent_core::embedding_text(self.context.as_deref(), &self.text)
    }
}

impl fmt::Debug for ChunkRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkRecord")
            .field("id", &self.id)
            .field("doc_id", &self.doc_id)
            .field("kind", &self.kind)
            .field("ordinal", &self.ordinal)
            .field("text_len", &self.text.len())
            .field("page", &self.page)
            .field("lines", &self.lines)
            .field("bytes", &self.bytes)
            .field("content_hash", &self.content_hash)
            .field("dim", &self.vector.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn parse_kind(s: &str) -> Option<DocKind> {
    match s {
        "pdf" => Some(DocKind::Pdf),
        "note" => Some(DocKind::Note),
        "email" => Some(DocKind::Email),
        _ => None,
    }
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp or a bare `YYYY-MM-DD` (midnight UTC);
/// `None` for anything else.
pub(crate) fn date_seconds(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    let day = s.get(..10)?;
    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> ChunkRecord {
        let doc_id = DocId::for_source("/d/a.md", None);
        ChunkRecord {
            id: ChunkId::derive(&doc_id, "secret text", 0),
            doc_id,
            path: "/d/a.md".into(),
            part: None,
            kind: DocKind::Note,
            ordinal: 0,
            text: "secret text".into(),
            context: Some("Heading".into()),
            page: None,
            lines: LineRange::new(1, 2),
            bytes: 0..11,
            heading: Some("Heading".into()),
            title: Some("private title".into()),
            subject: None,
            from: Some("alice@example.com".into()),
            date: Some("2024-03-01T10:00:00Z".into()),
            thread_id: None,
            message_id: None,
            content_hash: ContentHash::of(b"secret text"),
            vector: vec![0.5; 4],
        }
    }

    #[test]
    fn debug_prints_no_text() {
        let r = sample();
        let s = format!("{r:?}");
        assert!(!s.contains("secret"), "{s}");
        assert!(!s.contains("private"), "{s}");
        assert!(!s.contains("alice"), "{s}");
        assert!(!s.contains("0.5"), "{s}");
    }

    #[test]
    fn hit_carries_the_record() {
        let r = sample();
        let h = r.to_hit(0.25);
        assert_eq!(h.chunk_id, r.id);
        assert_eq!(h.text, r.text);
        assert_eq!(h.from, r.from);
        assert_eq!(h.score, 0.25);
        assert_eq!(r.body(), "Heading\n\nsecret text");
    }

    #[test]
    fn dates() {
        assert_eq!(date_seconds("1970-01-02"), Some(86_400));
        assert_eq!(date_seconds("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(date_seconds("1970-01-02T02:00:00+02:00"), Some(86_400));
        assert_eq!(date_seconds("1970-01-02T10:11:12"), Some(86_400));
        assert_eq!(date_seconds("yesterday"), None);
        assert_eq!(date_seconds("2024-02-30"), None);
        assert_eq!(date_seconds("日本語の日付です"), None);
    }
}
