//! The searchable index: a LanceDB table of chunks with their vectors and a tantivy index over
//! the same chunks, kept consistent with each other and with the manifest.

mod keyword;
mod meta;
mod record;
mod vectors;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use docent_core::{ContentHash, EmbedderIdentity, Hit, SearchFilter};
use serde::Serialize;

pub use record::ChunkRecord;

use crate::{Result, StoreError};
use keyword::KeywordStore;
use meta::{INDEX_DIR, IndexMeta};
use vectors::VectorStore;

/// Rows from which [`Index::optimize`] builds an approximate vector index. Below it an exact
/// (brute-force) search is fast enough and has perfect recall; see `docs/benchmarks.md` and
/// `crates/store/benches/search.rs` for the measurements behind the figure.
pub const DEFAULT_VECTOR_INDEX_THRESHOLD: usize = 150_000;

/// Whether an [`Index`] may be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// The one writer (it holds the data directory's [`crate::WriteLock`]). Creates a missing
    /// index and finishes an interrupted promotion.
    ReadWrite,
    /// Searches only; changes nothing on disk and sees a writer's commits within about a second.
    ReadOnly,
}

/// The approximate vector index [`Index::optimize_with`] builds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum VectorIndexKind {
    /// IVF partitions with an HNSW graph in each, vectors quantised to 8 bits.
    #[default]
    IvfHnswSq,
    /// IVF partitions with product-quantised vectors (smaller, lower recall before re-ranking).
    IvfPq,
}

impl VectorIndexKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VectorIndexKind::IvfHnswSq => "IVF_HNSW_SQ",
            VectorIndexKind::IvfPq => "IVF_PQ",
        }
    }
}

/// Sizes of an index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IndexStats {
    pub chunks: u64,
    /// Distinct files with at least one chunk.
    pub paths: u64,
    /// Both stores and the metadata, as files on disk.
    pub bytes_on_disk: u64,
}

/// What [`Index::reconcile`] found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Chunks removed because the manifest does not list their file as indexed.
    pub orphans_removed: u64,
    /// Files whose chunks disagreed between the two stores and the manifest. Their chunks were
    /// removed from both stores; the caller drops their manifest records so that they are
    /// indexed again.
    pub stale_paths: Vec<String>,
}

/// What [`Index::optimize`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OptimizeReport {
    pub rows: u64,
    /// Small table fragments merged into larger ones.
    pub fragments_compacted: u64,
    /// The vector index on the table after optimising (`IVF_HNSW_SQ`, `IVF_PQ`), if any.
    pub vector_index: Option<String>,
    /// Whether this call built the vector index.
    pub vector_index_built: bool,
    /// Scalar (BTREE) indexes this call built.
    pub scalar_indexes_built: Vec<String>,
    /// Rows the vector index does not cover yet (searched exactly).
    pub unindexed_rows: u64,
    /// Bytes of old table versions removed.
    pub bytes_pruned: u64,
}

/// The searchable index of a data directory (`<data dir>/index/`):
///
/// - `lance/`: LanceDB table `chunks`, every field of a chunk and its vector
///   (`FixedSizeList<Float32, dim>`), searched by cosine distance;
/// - `tantivy/`: BM25 over the chunk's context line and text (English stemming), its heading,
///   title and subject, with every field of a [`Hit`] stored;
/// - `meta.json`: format version, embedder identity, creation time.
///
/// Writes go to LanceDB first, then tantivy; the engine records the file in the manifest only
/// after both. [`Index::reconcile`] repairs whatever a crash in between left behind.
pub struct Index {
    root: PathBuf,
    mode: OpenMode,
    identity: EmbedderIdentity,
    vectors: VectorStore,
    keywords: KeywordStore,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("root", &self.root)
            .field("mode", &self.mode)
            .field("model", &self.identity.model)
            .field("dim", &self.identity.dim)
            .finish_non_exhaustive()
    }
}

impl Index {
    /// Opens the index of `data_dir` for vectors of `identity`.
    ///
    /// `ReadWrite` creates a missing index and finishes (or rolls back) a promotion that a crash
    /// interrupted; `ReadOnly` changes nothing and fails with [`StoreError::NoIndex`] when there
    /// is no index. An index written by a newer docent fails with
    /// [`StoreError::FormatVersion`]; one built with another embedding model fails with
    /// [`StoreError::EmbedderMismatch`] (to read such an index, e.g. to reindex it, open it
    /// with [`Index::stored_identity`]).
    pub async fn open(
        data_dir: &Path,
        identity: &EmbedderIdentity,
        mode: OpenMode,
    ) -> Result<Index> {
        let root = match mode {
            OpenMode::ReadWrite => {
                meta::recover(data_dir)?;
                data_dir.join(INDEX_DIR)
            }
            OpenMode::ReadOnly => meta::resolve_for_reading(data_dir)?,
        };
        Self::open_at(root, identity, mode, false).await
    }

    async fn open_at(
        root: PathBuf,
        identity: &EmbedderIdentity,
        mode: OpenMode,
        staging: bool,
    ) -> Result<Index> {
        match meta::read_meta(&root)? {
            Some(m) => {
                if m.embedder != *identity {
                    return Err(StoreError::EmbedderMismatch {
                        path: root,
                        index_model: m.embedder.model.clone(),
                        current_model: identity.model.clone(),
                        index: Box::new(m.embedder),
                        current: Box::new(identity.clone()),
                    });
                }
                Self::open_stores(root, identity, mode).await
            }
            None if mode == OpenMode::ReadOnly => Err(StoreError::NoIndex { path: root }),
            None => {
                // No meta.json: nothing, or a creation that did not finish. Start afresh; the
                // metadata is written last, so its presence means both stores exist.
                meta::remove_partial(&root)?;
                crate::private::private_dir(&root).map_err(meta::io_err(&root))?;
                let index = Self::open_stores(root, identity, mode).await?;
                meta::write_meta(&index.root, &IndexMeta::new(identity, !staging))?;
                Ok(index)
            }
        }
    }

    /// Opens (creating when missing) the two stores under `root`.
    async fn open_stores(
        root: PathBuf,
        identity: &EmbedderIdentity,
        mode: OpenMode,
    ) -> Result<Index> {
        let vectors = VectorStore::open(&root.join("lance"), identity.dim, mode).await?;
        let keywords = KeywordStore::open(&root.join("tantivy"), mode)?;
        Ok(Index {
            root,
            mode,
            identity: identity.clone(),
            vectors,
            keywords,
        })
    }

    /// The embedder identity recorded in the index of `data_dir` (`None`: no index yet).
    pub fn stored_identity(data_dir: &Path) -> Result<Option<EmbedderIdentity>> {
        let root = match meta::resolve_for_reading(data_dir) {
            Ok(root) => root,
            Err(StoreError::NoIndex { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(meta::read_meta(&root)?.map(|m| m.embedder))
    }

    /// A fresh, empty index in `<data dir>/index.staging` (any leftover of an interrupted
    /// reindex is removed first), to be filled and then swapped in by
    /// [`Index::promote_staging`]. Until then it is marked incomplete and is never promoted.
    pub async fn create_staging(data_dir: &Path, identity: &EmbedderIdentity) -> Result<Index> {
        let root = meta::clear_staging(data_dir)?;
        Self::open_at(root, identity, OpenMode::ReadWrite, true).await
    }

    /// Makes the staging index the live one: marks it complete, renames `index` to
    /// `index.old` and `index.staging` to `index`, removes `index.old`. Drop every open
    /// [`Index`] of `data_dir` first. A crash at any step is finished by the next
    /// [`OpenMode::ReadWrite`] open.
    pub fn promote_staging(data_dir: &Path) -> Result<()> {
        meta::promote(data_dir)
    }

    /// The directory of this index.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn identity(&self) -> &EmbedderIdentity {
        &self.identity
    }

    fn require_writer(&self) -> Result<()> {
        match self.mode {
            OpenMode::ReadWrite => Ok(()),
            OpenMode::ReadOnly => Err(StoreError::ReadOnly {
                path: self.root.clone(),
            }),
        }
    }

    fn check_dim(&self, found: usize) -> Result<()> {
        if found == self.identity.dim {
            Ok(())
        } else {
            Err(StoreError::VectorDim {
                path: self.root.clone(),
                expected: self.identity.dim,
                found,
            })
        }
    }

    /// One batch of files: removes every chunk of `replace_paths` from both stores, then adds
    /// `add` to both (LanceDB first, then tantivy, one commit each). Paths of `add` that are
    /// not in `replace_paths` are appended to, not replaced. Repeating a call has the same
    /// effect as making it once, which is what makes a crashed batch safe to redo.
    pub async fn write(&mut self, replace_paths: &[String], add: Vec<ChunkRecord>) -> Result<()> {
        self.require_writer()?;
        for r in &add {
            self.check_dim(r.vector.len())?;
        }
        self.vectors.delete_paths(replace_paths).await?;
        self.vectors.add(&add).await?;
        self.keywords.write(replace_paths, &add).await
    }

    /// The `k` chunks nearest to `v` by cosine distance among those `filter` admits; the score
    /// is the cosine similarity (1 − distance). The filter is applied before the search, so a
    /// selective filter still yields `k` hits when `k` chunks match it.
    pub async fn vector_search(
        &self,
        v: &[f32],
        k: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<Hit>> {
        self.check_dim(v.len())?;
        if k == 0 {
            return Ok(Vec::new());
        }
        self.vectors.search(v, k, filter).await
    }

    /// The `k` best chunks for `query` by BM25, from the keyword index alone.
    ///
    /// The query is never parsed as a query language: it is cut into words by the index's own
    /// analyser (lowercased, English stop words dropped, stemmed), and a chunk matches if any
    /// word occurs in its body, heading, title or subject (the last three weigh more). So any
    /// input is safe, and one with no indexable word returns no hits, not an error.
    pub fn keyword_search(&self, query: &str, k: usize, filter: &SearchFilter) -> Result<Vec<Hit>> {
        self.keywords.search(query, k, filter)
    }

    /// Every chunk of a file, vectors included, in document order.
    pub async fn chunks_by_path(&self, path: &str) -> Result<Vec<ChunkRecord>> {
        self.vectors.by_path(path).await
    }

    /// Stored vectors of chunks with these content hashes (the embedding cache): hashes not in
    /// the index are absent from the map.
    pub async fn vectors_for(
        &self,
        hashes: &[ContentHash],
    ) -> Result<HashMap<ContentHash, Vec<f32>>> {
        if hashes.is_empty() {
            return Ok(HashMap::new());
        }
        self.vectors.vectors_for(hashes).await
    }

    /// The stored chunks at positions `offset..offset + limit`, vectors included (fewer at the
    /// end, none past it). Positions are stable while the index is not written, so paging
    /// through with increasing offsets visits every chunk once; within a page the order is
    /// unspecified.
    pub async fn scan(&self, offset: usize, limit: usize) -> Result<Vec<ChunkRecord>> {
        self.vectors.scan(offset, limit).await
    }

    pub async fn stats(&self) -> Result<IndexStats> {
        Ok(IndexStats {
            chunks: self.vectors.count().await? as u64,
            paths: self.vectors.distinct_paths().await? as u64,
            bytes_on_disk: dir_size(&self.root).map_err(meta::io_err(&self.root))?,
        })
    }

    /// Brings both stores in line with the manifest. `indexed` maps every file the manifest
    /// records as indexed to its chunk count.
    ///
    /// Chunks of files not in `indexed` are deleted from both stores. Files whose chunk ids
    /// differ between the two stores, or whose count differs from the manifest's, are deleted
    /// from both and returned in [`ReconcileReport::stale_paths`]. Reads only the id and path
    /// of each chunk, so it is cheap enough for every writer start.
    pub async fn reconcile(&mut self, indexed: &HashMap<String, u32>) -> Result<ReconcileReport> {
        self.require_writer()?;
        let group = |pairs: Vec<(String, String)>| {
            let mut by_path: HashMap<String, Vec<String>> = HashMap::new();
            for (id, path) in pairs {
                by_path.entry(path).or_default().push(id);
            }
            for ids in by_path.values_mut() {
                ids.sort_unstable();
            }
            by_path
        };
        let lance = group(self.vectors.ids_and_paths().await?);
        let tantivy = group(self.keywords.ids_and_paths()?);

        let mut orphans: BTreeSet<&str> = BTreeSet::new();
        let mut stale: BTreeSet<&str> = BTreeSet::new();
        let empty = Vec::new();
        for path in lance.keys().chain(tantivy.keys()) {
            let Some(&expected) = indexed.get(path) else {
                orphans.insert(path);
                continue;
            };
            let a = lance.get(path).unwrap_or(&empty);
            let b = tantivy.get(path).unwrap_or(&empty);
            if a != b || a.len() != expected as usize {
                stale.insert(path);
            }
        }
        for (path, &n) in indexed {
            if n > 0 && !lance.contains_key(path) && !tantivy.contains_key(path) {
                stale.insert(path);
            }
        }
        let mut orphan_ids: HashSet<&str> = HashSet::new();
        for path in &orphans {
            for store in [&lance, &tantivy] {
                if let Some(ids) = store.get(*path) {
                    orphan_ids.extend(ids.iter().map(String::as_str));
                }
            }
        }
        let remove: Vec<String> = orphans
            .iter()
            .chain(stale.iter())
            .map(|p| p.to_string())
            .collect();
        let report = ReconcileReport {
            orphans_removed: orphan_ids.len() as u64,
            stale_paths: stale.iter().map(|p| p.to_string()).collect(),
        };
        if !remove.is_empty() {
            self.vectors.delete_paths(&remove).await?;
            self.keywords.write(&remove, &[]).await?;
        }
        Ok(report)
    }

    /// [`Index::optimize_with`] the default vector index kind.
    pub async fn optimize(&mut self, threshold_rows: usize) -> Result<OptimizeReport> {
        self.optimize_with(threshold_rows, VectorIndexKind::default())
            .await
    }

    /// Compacts the vector table, builds its approximate vector index once it has
    /// `threshold_rows` rows (and BTREE indexes on `path` and `content_hash` on large tables),
    /// folds newly added rows into existing indexes, and removes old table versions.
    pub async fn optimize_with(
        &mut self,
        threshold_rows: usize,
        kind: VectorIndexKind,
    ) -> Result<OptimizeReport> {
        self.require_writer()?;
        let r = self.vectors.optimize(threshold_rows, kind).await?;
        Ok(OptimizeReport {
            rows: r.rows as u64,
            fragments_compacted: r.fragments_removed as u64,
            vector_index: r.vector_index,
            vector_index_built: r.vector_index_built,
            scalar_indexes_built: r.scalar_indexes_built,
            unindexed_rows: r.unindexed_rows,
            bytes_pruned: r.bytes_pruned,
        })
    }

    /// Number of chunks in the keyword index (for consistency checks).
    pub fn keyword_count(&self) -> u64 {
        self.keywords.count()
    }

    #[cfg(test)]
    pub(crate) async fn write_vectors_only(&mut self, add: Vec<ChunkRecord>) -> Result<()> {
        self.vectors.add(&add).await
    }

    #[cfg(test)]
    pub(crate) async fn delete_keyword_ids(&mut self, ids: &[String]) -> Result<()> {
        self.keywords.delete_ids(ids).await
    }
}

fn dir_size(path: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            total += dir_size(&entry.path())?;
        } else if let Ok(m) = entry.metadata() {
            total += m.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use docent_core::ChunkId;

    fn ident() -> EmbedderIdentity {
        EmbedderIdentity {
            model: "fake".into(),
            checksum: "x".into(),
            dim: 4,
        }
    }

    fn chunk(path: &str, n: u32) -> ChunkRecord {
        let mut r = record::tests::sample();
        r.path = path.into();
        r.ordinal = n;
        r.id = ChunkId(format!("{path}#{n}"));
        r
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconcile_finds_chunks_missing_from_one_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::open(dir.path(), &ident(), OpenMode::ReadWrite)
            .await
            .unwrap();
        let (a0, a1, b0) = (
            chunk("/d/a.md", 0),
            chunk("/d/a.md", 1),
            chunk("/d/b.md", 0),
        );
        index
            .write(&["/d/a.md".into()], vec![a0, a1.clone()])
            .await
            .unwrap();
        // A crash between the two stores: b.md reached LanceDB only.
        index.write_vectors_only(vec![b0]).await.unwrap();
        // And one chunk of a.md is missing from tantivy only.
        index
            .delete_keyword_ids(&[a1.id.to_string()])
            .await
            .unwrap();
        assert_eq!(index.stats().await.unwrap().chunks, 3);
        assert_eq!(index.keyword_count(), 1);

        let indexed: HashMap<String, u32> = [("/d/a.md".to_string(), 2)].into();
        let report = index.reconcile(&indexed).await.unwrap();
        assert_eq!(report.orphans_removed, 1, "b.md was never recorded");
        assert_eq!(report.stale_paths, vec!["/d/a.md"]);
        assert_eq!(index.stats().await.unwrap().chunks, 0);
        assert_eq!(index.keyword_count(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chunk_in_the_vector_store_only_makes_its_file_stale() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::open(dir.path(), &ident(), OpenMode::ReadWrite)
            .await
            .unwrap();
        index
            .write(&["/d/a.md".into()], vec![chunk("/d/a.md", 0)])
            .await
            .unwrap();
        index
            .write_vectors_only(vec![chunk("/d/a.md", 1)])
            .await
            .unwrap();
        let indexed: HashMap<String, u32> = [("/d/a.md".to_string(), 2)].into();
        let report = index.reconcile(&indexed).await.unwrap();
        assert_eq!(report.stale_paths, vec!["/d/a.md"]);
        assert_eq!(report.orphans_removed, 0);
    }
}
