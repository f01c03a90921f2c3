//! From parsed documents and chunks to the records the index stores.

use docent_core::{Chunk, ChunkId, ContentHash, DocId, Document, embedding_text};
use docent_store::ChunkRecord;

/// The index record of one chunk, without its vector yet. `content_hash` is the hash of exactly
/// what is embedded (context line and text), so equal inputs share one vector.
pub fn chunk_record(path_key: &str, doc: &Document, chunk: &Chunk) -> ChunkRecord {
    let meta = |k: &str| doc.meta.get(k).cloned().filter(|v| !v.is_empty());
    let email = doc.email.as_ref();
    let heading =
        (!chunk.span.heading_path.is_empty()).then(|| chunk.span.heading_path.join(" > "));
    let date = email
        .and_then(|e| e.date.clone())
        .or_else(|| meta("email_date"))
        .or_else(|| meta("date"))
        .or_else(|| meta("created"))
        .filter(|d| is_iso_date(d));
    ChunkRecord {
        id: chunk.id.clone(),
        doc_id: doc.id.clone(),
        path: path_key.to_string(),
        part: doc.part.clone(),
        kind: doc.kind,
        ordinal: chunk.ordinal,
        text: chunk.text.clone(),
        context: chunk.context.clone(),
        page: chunk.span.page,
        lines: chunk.span.lines,
        bytes: chunk.span.bytes.clone(),
        heading,
        title: doc.title.clone(),
        subject: email
            .and_then(|e| e.subject.clone())
            .or_else(|| meta("email_subject")),
        from: email
            .and_then(|e| e.from.clone())
            .or_else(|| meta("email_from")),
        date,
        thread_id: email.and_then(|e| e.thread_id.clone()),
        message_id: chunk.span.message_id.clone(),
        content_hash: ContentHash::of(
            embedding_text(chunk.context.as_deref(), &chunk.text).as_bytes(),
        ),
        vector: Vec::new(),
    }
}

/// True for `YYYY-MM-DD…`, the only dates the index keeps (they compare as strings).
fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

/// Records of a file that moved: the same chunks and vectors under the new path, with the ids
/// the new path gives them (as a fresh index of the new path would).
pub fn moved_records(old: Vec<ChunkRecord>, new_path: &str) -> Vec<ChunkRecord> {
    let mut old = old;
    old.sort_by(|a, b| (&a.part, a.ordinal).cmp(&(&b.part, b.ordinal)));
    let mut seen: std::collections::HashMap<(Option<String>, String), u32> = Default::default();
    old.into_iter()
        .map(|mut r| {
            r.doc_id = DocId::for_source(new_path, r.part.as_deref());
            let n = seen.entry((r.part.clone(), r.text.clone())).or_insert(0);
            r.id = ChunkId::derive(&r.doc_id, &r.text, *n);
            *n += 1;
            r.path = new_path.to_string();
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert!(is_iso_date("2024-11-12T21:42:00Z"));
        assert!(is_iso_date("2024-11-12"));
        assert!(!is_iso_date("12 Nov 2024"));
        assert!(!is_iso_date("2024-1-12"));
    }
}
