//! The tantivy half of the index: BM25 over the chunk body and its headings, with every field a
//! [`Hit`] needs stored, so a keyword search never touches the vector table.

use std::collections::HashSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use docent_core::{ChunkId, ContentHash, DocId, Hit, LineRange, SearchFilter};
use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Occur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, STORED, STRING, Schema, TantivyDocument,
    TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{DocSet, IndexReader, IndexWriter, ReloadPolicy, TERMINATED, Term};

use super::OpenMode;
use super::record::{ChunkRecord, date_seconds, parse_kind};
use super::vectors::filter_dates;
use crate::{Result, StoreError};

/// Name of the English analyser in the index's tokenizer registry.
const ANALYZER: &str = "docent_en";

/// Query terms beyond this many distinct ones are ignored: a pasted page of text still costs a
/// bounded query.
const MAX_QUERY_TERMS: usize = 64;

/// Tokens longer than this (in bytes) are dropped, at index and at query time.
const MAX_TOKEN_BYTES: usize = 40;

/// Boost of the `labels` field (heading path, title and subject, each once): a word there says
/// more about the chunk than one in its body, which already holds the same words once as its
/// context line. The three are one field, not three, so that an email whose heading, title and
/// subject are the same line does not count its words three more times.
///
/// The field is short, so BM25's length normalisation already weighs its words heavily; a full
/// boost counts a title about twice as much as the body. Chosen on SciFact's *train* queries
/// (809; nDCG@10 0.693 at 0, 0.692 at 0.2, 0.685 at 0.5, 0.656 at 1.0): the largest boost that
/// costs nothing there. On the test queries it gives 0.679 (1.0 gave 0.649); see
/// docs/benchmarks.md.
const BOOST_LABELS: f32 = 0.2;

/// Memory the single indexing thread may buffer before it flushes a segment.
const WRITER_MEMORY: usize = 64 * 1024 * 1024;

/// English analysis: split on non-alphanumerics, drop over-long tokens, lowercase, drop English
/// stop words, stem. Fixed: nothing in the environment changes it (the same text must give the
/// same terms at index and at query time, in every process).
pub(crate) fn analyzer() -> TextAnalyzer {
    let stop = StopWordFilter::new(Language::English)
        .unwrap_or_else(|| StopWordFilter::remove(Vec::<String>::new()));
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(stop)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The sender's analysis: words, lowercased, no stemming (`from:alice`).
fn sender_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .build()
}

/// Distinct tokens of `text`, in order of first appearance, at most `max`.
fn tokens(analyzer: &mut TextAnalyzer, text: &str, max: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while out.len() < max && stream.advance() {
        let t = &stream.token().text;
        if !t.is_empty() && seen.insert(t.clone()) {
            out.push(t.clone());
        }
    }
    out
}

#[derive(Clone, Copy)]
struct Fields {
    chunk_id: Field,
    doc_id: Field,
    path: Field,
    part: Field,
    kind: Field,
    ordinal: Field,
    body: Field,
    text: Field,
    page: Field,
    line_start: Field,
    line_end: Field,
    byte_start: Field,
    byte_end: Field,
    heading: Field,
    /// Heading path, title and subject, each once (searched, not stored).
    labels: Field,
    title: Field,
    subject: Field,
    sender: Field,
    date: Field,
    date_text: Field,
    thread_id: Field,
    message_id: Field,
    content_hash: Field,
}

fn build_schema() -> Schema {
    let english = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let stored_text = TextOptions::default().set_stored();
    let stored_u64 = NumericOptions::default().set_stored();
    let mut b = Schema::builder();
    b.add_text_field("chunk_id", STRING | STORED);
    b.add_text_field("doc_id", STRING | STORED);
    b.add_text_field("path", STRING | STORED);
    b.add_text_field("part", stored_text.clone());
    b.add_text_field("kind", STRING | STORED);
    b.add_u64_field("ordinal", stored_u64.clone());
    b.add_text_field("body", english.clone());
    b.add_text_field("text", stored_text.clone());
    b.add_u64_field("page", stored_u64.clone());
    b.add_u64_field("line_start", stored_u64.clone());
    b.add_u64_field("line_end", stored_u64.clone());
    b.add_u64_field("byte_start", stored_u64.clone());
    b.add_u64_field("byte_end", stored_u64);
    b.add_text_field("heading", english.clone().set_stored());
    b.add_text_field("title", english.clone().set_stored());
    b.add_text_field("subject", english.clone().set_stored());
    b.add_text_field("labels", english);
    b.add_text_field(
        "sender",
        TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("default")
                    .set_index_option(IndexRecordOption::Basic),
            )
            .set_stored(),
    );
    b.add_i64_field("date", NumericOptions::default().set_indexed().set_fast());
    b.add_text_field("date_text", stored_text.clone());
    b.add_text_field("thread_id", stored_text.clone());
    b.add_text_field("message_id", stored_text);
    b.add_text_field("content_hash", STRING | STORED);
    b.build()
}

impl Fields {
    fn of(schema: &Schema) -> std::result::Result<Self, String> {
        let f = |name: &str| {
            schema
                .get_field(name)
                .map_err(|_| format!("the keyword index has no field `{name}`"))
        };
        Ok(Fields {
            chunk_id: f("chunk_id")?,
            doc_id: f("doc_id")?,
            path: f("path")?,
            part: f("part")?,
            kind: f("kind")?,
            ordinal: f("ordinal")?,
            body: f("body")?,
            text: f("text")?,
            page: f("page")?,
            line_start: f("line_start")?,
            line_end: f("line_end")?,
            byte_start: f("byte_start")?,
            byte_end: f("byte_end")?,
            heading: f("heading")?,
            labels: f("labels")?,
            title: f("title")?,
            subject: f("subject")?,
            sender: f("sender")?,
            date: f("date")?,
            date_text: f("date_text")?,
            thread_id: f("thread_id")?,
            message_id: f("message_id")?,
            content_hash: f("content_hash")?,
        })
    }
}

pub(crate) struct KeywordStore {
    path: PathBuf,
    reader: IndexReader,
    writer: Option<Arc<Mutex<IndexWriter<TantivyDocument>>>>,
    f: Fields,
    analyzer: TextAnalyzer,
}

impl KeywordStore {
    /// Opens the index in `path`; a writer creates it when it is missing (an empty keyword
    /// index beside a full vector table is then repaired by reconcile).
    pub fn open(path: &Path, mode: OpenMode) -> Result<Self> {
        let tv = |source| StoreError::Tantivy {
            path: path.to_path_buf(),
            source,
        };
        let exists = path.join("meta.json").exists();
        let index = if exists {
            tantivy::Index::open_in_dir(path).map_err(tv)?
        } else if mode == OpenMode::ReadWrite {
            super::meta::remove_partial(path)?;
            crate::private::private_dir(path).map_err(super::meta::io_err(path))?;
            tantivy::Index::create_in_dir(path, build_schema()).map_err(tv)?
        } else {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: "the keyword index is missing".into(),
            });
        };
        index.tokenizers().register(ANALYZER, analyzer());
        let f = Fields::of(&index.schema()).map_err(|detail| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail,
        })?;
        let policy = match mode {
            OpenMode::ReadWrite => ReloadPolicy::Manual,
            OpenMode::ReadOnly => ReloadPolicy::OnCommitWithDelay,
        };
        let reader = index
            .reader_builder()
            .reload_policy(policy)
            .try_into()
            .map_err(tv)?;
        let writer = match mode {
            OpenMode::ReadWrite => Some(Arc::new(Mutex::new(
                index
                    .writer_with_num_threads(1, WRITER_MEMORY)
                    .map_err(tv)?,
            ))),
            OpenMode::ReadOnly => None,
        };
        Ok(KeywordStore {
            path: path.to_path_buf(),
            reader,
            writer,
            f,
            analyzer: analyzer(),
        })
    }

    fn tv(&self) -> impl Fn(tantivy::TantivyError) -> StoreError + '_ {
        move |source| StoreError::Tantivy {
            path: self.path.clone(),
            source,
        }
    }

    fn document(&self, r: &ChunkRecord) -> TantivyDocument {
        let f = &self.f;
        let mut d = TantivyDocument::new();
        d.add_text(f.chunk_id, r.id.as_str());
        d.add_text(f.doc_id, r.doc_id.as_str());
        d.add_text(f.path, &r.path);
        if let Some(p) = &r.part {
            d.add_text(f.part, p);
        }
        d.add_text(f.kind, r.kind.as_str());
        d.add_u64(f.ordinal, u64::from(r.ordinal));
        d.add_text(f.body, r.body());
        d.add_text(f.text, &r.text);
        if let Some(p) = r.page {
            d.add_u64(f.page, u64::from(p));
        }
        d.add_u64(f.line_start, u64::from(r.lines.start));
        d.add_u64(f.line_end, u64::from(r.lines.end));
        d.add_u64(f.byte_start, r.bytes.start as u64);
        d.add_u64(f.byte_end, r.bytes.end as u64);
        let opt = |d: &mut TantivyDocument, field, v: &Option<String>| {
            if let Some(v) = v {
                d.add_text(field, v);
            }
        };
        opt(&mut d, f.heading, &r.heading);
        opt(&mut d, f.title, &r.title);
        opt(&mut d, f.subject, &r.subject);
        d.add_text(f.labels, labels(r));
        opt(&mut d, f.sender, &r.from);
        if let Some(date) = &r.date {
            d.add_text(f.date_text, date);
            if let Some(s) = date_seconds(date) {
                d.add_i64(f.date, s);
            }
        }
        opt(&mut d, f.thread_id, &r.thread_id);
        opt(&mut d, f.message_id, &r.message_id);
        d.add_text(f.content_hash, r.content_hash.as_str());
        d
    }

    /// Deletes the documents of `delete_terms`' paths and ids, adds `records`, and commits: one
    /// commit per call.
    async fn apply(&self, delete: Vec<Term>, records: &[ChunkRecord]) -> Result<()> {
        let writer = self.writer.clone().ok_or_else(|| StoreError::ReadOnly {
            path: self.path.clone(),
        })?;
        if delete.is_empty() && records.is_empty() {
            return Ok(());
        }
        let docs: Vec<TantivyDocument> = records.iter().map(|r| self.document(r)).collect();
        let reader = self.reader.clone();
        let path = self.path.clone();
        let task = tokio::task::spawn_blocking(move || -> tantivy::Result<()> {
            let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
            let run = |w: &mut IndexWriter<TantivyDocument>| -> tantivy::Result<()> {
                for t in delete {
                    w.delete_term(t);
                }
                for d in docs {
                    w.add_document(d)?;
                }
                w.commit()?;
                Ok(())
            };
            if let Err(e) = run(&mut w) {
                // Pending operations must not ride along with the next commit.
                let _ = w.rollback();
                return Err(e);
            }
            reader.reload()
        });
        match task.await {
            Ok(r) => r.map_err(self.tv()),
            Err(e) => Err(StoreError::Io {
                path,
                source: std::io::Error::other(format!("keyword index writer stopped: {e}")),
            }),
        }
    }

    pub async fn write(&self, replace_paths: &[String], records: &[ChunkRecord]) -> Result<()> {
        let delete = replace_paths
            .iter()
            .map(|p| Term::from_field_text(self.f.path, p))
            .collect();
        self.apply(delete, records).await
    }

    #[cfg(test)]
    pub async fn delete_ids(&self, ids: &[String]) -> Result<()> {
        let delete = ids
            .iter()
            .map(|id| Term::from_field_text(self.f.chunk_id, id))
            .collect();
        self.apply(delete, &[]).await
    }

    pub fn count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// BM25 search; see [`crate::Index::keyword_search`].
    pub fn search(&self, query: &str, k: usize, filter: &SearchFilter) -> Result<Vec<Hit>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut analyzer = self.analyzer.clone();
        let words = tokens(&mut analyzer, query, MAX_QUERY_TERMS);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let f = &self.f;
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for w in &words {
            for (field, boost) in [(f.body, 1.0), (f.labels, BOOST_LABELS)] {
                let q = TermQuery::new(
                    Term::from_field_text(field, w),
                    IndexRecordOption::WithFreqs,
                );
                let q: Box<dyn Query> = if boost == 1.0 {
                    Box::new(q)
                } else {
                    Box::new(BoostQuery::new(Box::new(q), boost))
                };
                should.push((Occur::Should, q));
            }
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, Box::new(BooleanQuery::new(should)))];
        for q in self.filter_queries(filter)? {
            clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0))));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(k).order_by_score())
            .map_err(self.tv())?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr).map_err(self.tv())?;
            hits.push(self.hit(&doc, score)?);
        }
        Ok(hits)
    }

    /// One required query per restriction of the filter.
    fn filter_queries(&self, filter: &SearchFilter) -> Result<Vec<Box<dyn Query>>> {
        let f = &self.f;
        let mut out: Vec<Box<dyn Query>> = Vec::new();
        if !filter.kinds.is_empty() {
            let kinds = filter
                .kinds
                .iter()
                .map(|k| -> (Occur, Box<dyn Query>) {
                    let t = Term::from_field_text(f.kind, k.as_str());
                    (
                        Occur::Should,
                        Box::new(TermQuery::new(t, IndexRecordOption::Basic)),
                    )
                })
                .collect();
            out.push(Box::new(BooleanQuery::new(kinds)));
        }
        if let Some(prefix) = filter.path_prefix.as_deref().filter(|p| !p.is_empty()) {
            let upper = format!("{prefix}\u{10FFFF}");
            out.push(Box::new(RangeQuery::new(
                Bound::Included(Term::from_field_text(f.path, prefix)),
                Bound::Excluded(Term::from_field_text(f.path, &upper)),
            )));
        }
        if let Some(from) = filter
            .from
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let words = tokens(&mut sender_analyzer(), from, MAX_QUERY_TERMS);
            if words.is_empty() {
                // Nothing in it could ever match a sender's words.
                out.push(Box::new(EmptyQuery));
            }
            for w in words {
                let t = Term::from_field_text(f.sender, &w);
                out.push(Box::new(TermQuery::new(t, IndexRecordOption::Basic)));
            }
        }
        if let Some(subject) = filter
            .subject
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let mut analyzer = self.analyzer.clone();
            for w in tokens(&mut analyzer, subject, MAX_QUERY_TERMS) {
                let either: Vec<(Occur, Box<dyn Query>)> = [f.subject, f.title]
                    .into_iter()
                    .map(|field| -> (Occur, Box<dyn Query>) {
                        let t = Term::from_field_text(field, &w);
                        (
                            Occur::Should,
                            Box::new(TermQuery::new(t, IndexRecordOption::Basic)),
                        )
                    })
                    .collect();
                out.push(Box::new(BooleanQuery::new(either)));
            }
        }
        let (after, before) = filter_dates(filter)?;
        if after.is_some() || before.is_some() {
            let lower = after.map_or(Bound::Unbounded, |a| {
                Bound::Included(Term::from_field_i64(f.date, a))
            });
            let upper = before.map_or(Bound::Unbounded, |b| {
                Bound::Excluded(Term::from_field_i64(f.date, b))
            });
            out.push(Box::new(RangeQuery::new(lower, upper)));
        }
        Ok(out)
    }

    fn hit(&self, d: &TantivyDocument, score: f32) -> Result<Hit> {
        let f = &self.f;
        let s = |field| {
            d.get_first(field)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let u = |field| d.get_first(field).and_then(|v| v.as_u64());
        let corrupt = |what: &str| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("a keyword index document has no {what}"),
        };
        let req = |field, what: &str| s(field).ok_or_else(|| corrupt(what));
        let kind_s = req(f.kind, "kind")?;
        let small = |v: Option<u64>| v.and_then(|v| u32::try_from(v).ok());
        Ok(Hit {
            chunk_id: ChunkId(req(f.chunk_id, "chunk id")?),
            doc_id: DocId(req(f.doc_id, "document id")?),
            path: req(f.path, "path")?,
            part: s(f.part),
            kind: parse_kind(&kind_s).ok_or_else(|| corrupt("known kind"))?,
            ordinal: small(u(f.ordinal)).unwrap_or(0),
            text: req(f.text, "text")?,
            page: small(u(f.page)),
            lines: LineRange::new(
                small(u(f.line_start)).unwrap_or(0),
                small(u(f.line_end)).unwrap_or(0),
            ),
            bytes: u(f.byte_start).unwrap_or(0) as usize..u(f.byte_end).unwrap_or(0) as usize,
            heading: s(f.heading),
            title: s(f.title),
            subject: s(f.subject),
            from: s(f.sender),
            date: s(f.date_text),
            thread_id: s(f.thread_id),
            message_id: s(f.message_id),
            content_hash: ContentHash(req(f.content_hash, "content hash")?),
            score,
        })
    }

    /// Every live (chunk id, path) pair, read from the term dictionaries and postings of the
    /// two fields (the stored documents are not decompressed).
    pub fn ids_and_paths(&self) -> Result<Vec<(String, String)>> {
        self.reader.reload().map_err(self.tv())?;
        let io = super::meta::io_err(&self.path);
        let searcher = self.reader.searcher();
        let mut out = Vec::new();
        for seg in searcher.segment_readers() {
            let alive = seg.alive_bitset();
            let is_alive = |d: u32| alive.is_none_or(|a| a.is_alive(d));
            let mut doc_path: Vec<u32> = vec![u32::MAX; seg.max_doc() as usize];
            let mut paths: Vec<String> = Vec::new();
            let inv = seg.inverted_index(self.f.path).map_err(self.tv())?;
            let mut terms = inv.terms().stream().map_err(&io)?;
            while terms.advance() {
                let idx = paths.len() as u32;
                paths.push(String::from_utf8_lossy(terms.key()).into_owned());
                let mut postings = inv
                    .read_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)
                    .map_err(&io)?;
                let mut d = postings.doc();
                while d != TERMINATED {
                    if is_alive(d)
                        && let Some(slot) = doc_path.get_mut(d as usize)
                    {
                        *slot = idx;
                    }
                    d = postings.advance();
                }
            }
            let inv = seg.inverted_index(self.f.chunk_id).map_err(self.tv())?;
            let mut terms = inv.terms().stream().map_err(&io)?;
            while terms.advance() {
                let id = String::from_utf8_lossy(terms.key()).into_owned();
                let mut postings = inv
                    .read_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)
                    .map_err(&io)?;
                let mut d = postings.doc();
                while d != TERMINATED {
                    if is_alive(d) {
                        let path = doc_path
                            .get(d as usize)
                            .and_then(|&i| paths.get(i as usize))
                            .cloned()
                            .unwrap_or_default();
                        out.push((id.clone(), path));
                    }
                    d = postings.advance();
                }
            }
        }
        Ok(out)
    }
}

/// The distinct labels of a chunk, for the `labels` field: the heading path, then the title and
/// the subject unless an earlier label already contains them (a note's heading path starts
/// with its title; an email's heading and title are its subject).
fn labels(r: &ChunkRecord) -> String {
    let mut out: Vec<&str> = Vec::new();
    for label in [&r.heading, &r.title, &r.subject].into_iter().flatten() {
        let label = label.trim();
        let lower = label.to_lowercase();
        if !label.is_empty() && !out.iter().any(|o| o.to_lowercase().contains(&lower)) {
            out.push(label);
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyser_stems_lowercases_and_drops_stop_words() {
        let mut a = analyzer();
        assert_eq!(
            tokens(&mut a, "The Libraries are RUNNING the libraries", 64),
            vec!["librari", "run"]
        );
        assert!(tokens(&mut a, "the and of", 64).is_empty());
        assert!(tokens(&mut a, "", 64).is_empty());
        assert!(tokens(&mut a, "((:]]~^ --- !!!", 64).is_empty());
        assert_eq!(tokens(&mut a, "a b c d e f g h", 3).len(), 3);
        let long = "x".repeat(100);
        assert!(tokens(&mut a, &long, 64).is_empty());
    }

    /// The analysis and the label boost once read experiment switches from the environment
    /// (`EXP_NOSTOP`, `EXP_LB`), so the same index could answer differently in two processes.
    /// This test runs itself again in a child process with those variables set (the test
    /// harness cannot set variables in its own process safely) and checks nothing changes.
    #[test]
    fn the_environment_does_not_change_the_analysis() {
        const CHILD: &str = "DOCENT_TEST_KEYWORD_ENV_CHILD";
        if std::env::var_os(CHILD).is_some() {
            let mut a = analyzer();
            assert!(
                tokens(&mut a, "the and of", 64).is_empty(),
                "stop words kept"
            );
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "index::keyword::tests::the_environment_does_not_change_the_analysis",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .env("EXP_NOSTOP", "1")
            .env("EXP_LB", "5.0")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn sender_words() {
        assert_eq!(
            tokens(
                &mut sender_analyzer(),
                "Alice <Alice.Smith@Example.com>",
                64
            ),
            vec!["alice", "smith", "example", "com"]
        );
    }
}
