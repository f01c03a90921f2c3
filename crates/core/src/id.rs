//! Stable identifiers, all derived with BLAKE3 so they are the same on every machine and run.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Hex of the first 16 bytes of a BLAKE3 hash: short enough to read, long enough never to collide
/// in one person's documents.
fn short_hex(hash: &blake3::Hash) -> String {
    let bytes = hash.as_bytes();
    let mut out = String::with_capacity(32);
    for b in &bytes[..16] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Identity of one document: a file, or one part of a file (a message in an mbox, an attachment
/// of a message). Derived from the file's absolute path and the part's locator.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocId(pub String);

impl DocId {
    /// The id of the document found at `path` (absolute, as indexed), part `part` if the file
    /// holds several documents.
    pub fn for_source(path: &str, part: Option<&str>) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(b"docent.doc.v1\0");
        h.update(path.as_bytes());
        h.update(b"\0");
        if let Some(part) = part {
            h.update(part.as_bytes());
        }
        DocId(short_hex(&h.finalize()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Identity of one chunk: derived from its document's identity and its own text, plus the
/// occurrence number when the same text appears more than once in one document. Re-chunking an
/// unchanged document yields the same ids.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChunkId(pub String);

impl ChunkId {
    pub fn derive(doc: &DocId, text: &str, occurrence: u32) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(b"docent.chunk.v1\0");
        h.update(doc.0.as_bytes());
        h.update(b"\0");
        h.update(&occurrence.to_le_bytes());
        h.update(text.as_bytes());
        ChunkId(short_hex(&h.finalize()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// BLAKE3 of some bytes (a whole file, or one chunk's text), as full-length hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContentHash(pub String);

impl ContentHash {
    pub fn of(bytes: &[u8]) -> Self {
        ContentHash(blake3::hash(bytes).to_hex().to_string())
    }

    pub fn from_hasher(h: &blake3::Hasher) -> Self {
        ContentHash(h.finalize().to_hex().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), &self.0)
            }
        }
    )*};
}
display_as_str!(DocId, ChunkId, ContentHash);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = DocId::for_source("/notes/a.md", None);
        assert_eq!(a, DocId::for_source("/notes/a.md", None));
        assert_ne!(a, DocId::for_source("/notes/a.md", Some("message 1")));
        assert_ne!(a, DocId::for_source("/notes/b.md", None));
        assert_eq!(a.as_str().len(), 32);

        let c = ChunkId::derive(&a, "hello", 0);
        assert_eq!(c, ChunkId::derive(&a, "hello", 0));
        assert_ne!(c, ChunkId::derive(&a, "hello", 1));
        assert_ne!(c, ChunkId::derive(&a, "hello!", 0));
    }

    #[test]
    fn content_hash_is_blake3() {
        assert_eq!(
            ContentHash::of(b"").as_str(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}
