//! The LanceDB half of the index: table `chunks` with every field of a chunk and its vector.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, UInt32Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Int64Array, LargeStringArray,
    PrimitiveArray, RecordBatch, StringArray, StringViewArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use docent_core::{ChunkId, ContentHash, DocId, Hit, LineRange, SearchFilter};
use futures::TryStreamExt;
use lancedb::DistanceType;
use lancedb::index::Index as LanceIndex;
use lancedb::index::scalar::BTreeIndexBuilder;
use lancedb::index::vector::{IvfHnswSqIndexBuilder, IvfPqIndexBuilder};
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::table::optimize::CompactionOptions;
use lancedb::table::{OptimizeAction, OptimizeOptions};

use super::record::{ChunkRecord, date_seconds, parse_kind};
use super::{OpenMode, VectorIndexKind};
use crate::{Result, StoreError};

pub(crate) const TABLE: &str = "chunks";

/// Paths or hashes per `IN (...)` list: keeps each SQL predicate small.
const IN_BATCH: usize = 256;

/// Candidates fetched per wanted result from a quantised index before re-ranking them by exact
/// distance (ignored when there is no vector index).
const REFINE_FACTOR: u32 = 4;

/// Rows from which the scalar (BTREE) indexes on `path` and `content_hash` are built: below it a
/// scan of those columns is as fast.
pub(crate) const SCALAR_INDEX_MIN_ROWS: usize = 20_000;

/// Columns a [`Hit`] needs (all but the vector and the context line).
const HIT_COLUMNS: &[&str] = &[
    "id",
    "doc_id",
    "path",
    "part",
    "kind",
    "ordinal",
    "text",
    "page",
    "line_start",
    "line_end",
    "byte_start",
    "byte_end",
    "heading",
    "title",
    "subject",
    "sender",
    "date",
    "thread_id",
    "message_id",
    "content_hash",
];

pub(crate) fn schema(dim: usize) -> Schema {
    let s = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Schema::new(vec![
        s("id", false),
        s("doc_id", false),
        s("path", false),
        s("part", true),
        s("kind", false),
        Field::new("ordinal", DataType::UInt32, false),
        s("text", false),
        s("context", true),
        Field::new("page", DataType::UInt32, true),
        Field::new("line_start", DataType::UInt32, false),
        Field::new("line_end", DataType::UInt32, false),
        Field::new("byte_start", DataType::UInt64, false),
        Field::new("byte_end", DataType::UInt64, false),
        s("heading", true),
        s("title", true),
        s("subject", true),
        s("sender", true),
        s("date", true),
        // Seconds since the epoch of `date`, for the after/before filters.
        Field::new("date_ts", DataType::Int64, true),
        s("thread_id", true),
        s("message_id", true),
        s("content_hash", false),
        Field::new(
            "vector",
            DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, true)),
                dim as i32,
            ),
            false,
        ),
    ])
}

/// What the optimiser did to the vector table.
#[derive(Debug, Default)]
pub(crate) struct VectorOptimize {
    pub rows: usize,
    pub fragments_removed: usize,
    pub vector_index: Option<String>,
    pub vector_index_built: bool,
    pub scalar_indexes_built: Vec<String>,
    pub unindexed_rows: u64,
    pub bytes_pruned: u64,
}

/// How long a table version stays readable after a newer one replaced it. Readers (`docent
/// search`, the interface's searcher, the daemon's own queries) hold a version for the length
/// of one query and move to the newest one at most a second later; pruning versions at once
/// made a query that straddled an idle compaction fail. Ten minutes covers any query by far;
/// the disk space of older versions is given back at the next compaction after that.
pub(crate) const PRUNE_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

pub(crate) struct VectorStore {
    path: PathBuf,
    table: lancedb::Table,
    schema: SchemaRef,
    dim: usize,
}

impl VectorStore {
    /// Opens the table in `path`, creating it (writers only) when it is missing.
    pub async fn open(path: &Path, dim: usize, mode: OpenMode) -> Result<Self> {
        let uri = path.to_str().ok_or_else(|| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "the index path is not valid UTF-8".into(),
        })?;
        let lance = |source| StoreError::Lance {
            path: path.to_path_buf(),
            source,
        };
        let mut connect = lancedb::connect(uri);
        if mode == OpenMode::ReadOnly {
            // Another process writes; look for its commits at most once a second.
            connect = connect.read_consistency_interval(std::time::Duration::from_secs(1));
        }
        let db = connect.execute().await.map_err(lance)?;
        let schema: SchemaRef = Arc::new(schema(dim));
        let table = match db.open_table(TABLE).execute().await {
            Ok(t) => t,
            Err(lancedb::Error::TableNotFound { .. }) if mode == OpenMode::ReadWrite => db
                .create_empty_table(TABLE, schema.clone())
                .execute()
                .await
                .map_err(lance)?,
            Err(lancedb::Error::TableNotFound { .. }) => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: "the vector table is missing".into(),
                });
            }
            Err(e) => return Err(lance(e)),
        };
        let found = table.schema().await.map_err(lance)?;
        match found.field_with_name("vector").map(|f| f.data_type()) {
            Ok(DataType::FixedSizeList(_, n)) if *n as usize == dim => {}
            _ => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!("the vector column is not of dimension {dim}"),
                });
            }
        }
        Ok(VectorStore {
            path: path.to_path_buf(),
            table,
            schema,
            dim,
        })
    }

    fn lance(&self) -> impl Fn(lancedb::Error) -> StoreError + '_ {
        move |source| StoreError::Lance {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }

    /// Deletes every row of these paths.
    pub async fn delete_paths(&self, paths: &[String]) -> Result<()> {
        for batch in paths.chunks(IN_BATCH) {
            let list: Vec<String> = batch.iter().map(|p| sql_str(p)).collect();
            let predicate = format!("path IN ({})", list.join(", "));
            self.table
                .delete(predicate.as_str())
                .await
                .map_err(self.lance())?;
        }
        Ok(())
    }

    /// Appends the records as one record batch (one new fragment).
    pub async fn add(&self, records: &[ChunkRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let batch =
            to_batch(&self.schema, self.dim, records).map_err(|source| StoreError::Arrow {
                path: self.path.clone(),
                source,
            })?;
        self.table
            .add(batch)
            .execute()
            .await
            .map_err(self.lance())?;
        Ok(())
    }

    pub async fn count(&self) -> Result<usize> {
        self.table.count_rows(None).await.map_err(self.lance())
    }

    /// Runs a query. A reader whose table version was pruned under it (it held the version
    /// longer than [`PRUNE_GRACE`]) moves to the latest version and tries once more.
    async fn collect(&self, query: impl ExecutableQuery) -> Result<Vec<RecordBatch>> {
        match Self::run_query(&query).await {
            Ok(batches) => Ok(batches),
            Err(first) => {
                if self.table.checkout_latest().await.is_err() {
                    return Err(self.lance()(first));
                }
                Self::run_query(&query).await.map_err(self.lance())
            }
        }
    }

    async fn run_query(query: &impl ExecutableQuery) -> lancedb::Result<Vec<RecordBatch>> {
        query.execute().await?.try_collect().await
    }

    /// The `k` nearest chunks by cosine distance among those the filter admits (pre-filtered,
    /// so a selective filter still yields `k` results when there are that many).
    pub async fn search(&self, v: &[f32], k: usize, filter: &SearchFilter) -> Result<Vec<Hit>> {
        let mut q = self
            .table
            .query()
            .nearest_to(v)
            .map_err(self.lance())?
            .column("vector")
            .distance_type(DistanceType::Cosine)
            .refine_factor(REFINE_FACTOR)
            .limit(k)
            .select(Select::columns(HIT_COLUMNS));
        if let Some(w) = filter_sql(filter)? {
            q = q.only_if(w);
        }
        let batches = self.collect(q).await?;
        let mut hits = Vec::new();
        for b in &batches {
            let distance = b
                .column_by_name("_distance")
                .and_then(|c| c.as_primitive_opt::<Float32Type>())
                .ok_or_else(|| self.corrupt("vector search returned no distances".into()))?
                .clone();
            let records = self.records(b, false)?;
            for (i, r) in records.into_iter().enumerate() {
                let d = if distance.is_null(i) {
                    1.0
                } else {
                    distance.value(i)
                };
                hits.push(r.to_hit(1.0 - d));
            }
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(k);
        Ok(hits)
    }

    pub async fn by_path(&self, path: &str) -> Result<Vec<ChunkRecord>> {
        let q = self
            .table
            .query()
            .only_if(format!("path = {}", sql_str(path)));
        let batches = self.collect(q).await?;
        let mut out = Vec::new();
        for b in &batches {
            out.extend(self.records(b, true)?);
        }
        out.sort_by(|a, b| (&a.part, a.ordinal).cmp(&(&b.part, b.ordinal)));
        Ok(out)
    }

    pub async fn scan(&self, offset: usize, limit: usize) -> Result<Vec<ChunkRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // By position: each page costs its own rows, not a scan of all rows before it.
        let rows = self.count().await?;
        let end = offset.saturating_add(limit).min(rows);
        if offset >= end {
            return Ok(Vec::new());
        }
        let q = self
            .table
            .take_offsets((offset as u64..end as u64).collect());
        let batches = self.collect(q).await?;
        let mut out = Vec::new();
        for b in &batches {
            out.extend(self.records(b, true)?);
        }
        Ok(out)
    }

    pub async fn vectors_for(
        &self,
        hashes: &[ContentHash],
    ) -> Result<HashMap<ContentHash, Vec<f32>>> {
        let mut wanted: Vec<&str> = hashes.iter().map(ContentHash::as_str).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut out = HashMap::new();
        for batch in wanted.chunks(IN_BATCH) {
            let list: Vec<String> = batch.iter().map(|h| sql_str(h)).collect();
            let q = self
                .table
                .query()
                .only_if(format!("content_hash IN ({})", list.join(", ")))
                .select(Select::columns(&["content_hash", "vector"]));
            for b in &self.collect(q).await? {
                let hash = str_col(b, "content_hash").map_err(|d| self.corrupt(d))?;
                let vectors = vector_col(b, self.dim).map_err(|d| self.corrupt(d))?;
                for i in 0..b.num_rows() {
                    let Some(h) = hash.get(i) else { continue };
                    let h = ContentHash(h.to_string());
                    if out.contains_key(&h) {
                        continue;
                    }
                    if let Some(v) = vectors.get(i) {
                        out.insert(h, v);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Every (chunk id, path) pair, reading only those two columns.
    pub async fn ids_and_paths(&self) -> Result<Vec<(String, String)>> {
        let q = self.table.query().select(Select::columns(&["id", "path"]));
        let mut stream = q.execute().await.map_err(self.lance())?;
        let mut out = Vec::new();
        while let Some(b) = stream.try_next().await.map_err(self.lance())? {
            let id = str_col(&b, "id").map_err(|d| self.corrupt(d))?;
            let path = str_col(&b, "path").map_err(|d| self.corrupt(d))?;
            for i in 0..b.num_rows() {
                if let (Some(id), Some(path)) = (id.get(i), path.get(i)) {
                    out.push((id.to_string(), path.to_string()));
                }
            }
        }
        Ok(out)
    }

    /// Distinct paths, reading only the path column.
    pub async fn distinct_paths(&self) -> Result<usize> {
        let q = self.table.query().select(Select::columns(&["path"]));
        let mut stream = q.execute().await.map_err(self.lance())?;
        let mut seen = HashSet::new();
        while let Some(b) = stream.try_next().await.map_err(self.lance())? {
            let path = str_col(&b, "path").map_err(|d| self.corrupt(d))?;
            for i in 0..b.num_rows() {
                if let Some(p) = path.get(i)
                    && !seen.contains(p)
                {
                    seen.insert(p.to_string());
                }
            }
        }
        Ok(seen.len())
    }

    /// Compacts the table, builds or extends its indexes, and prunes old versions.
    pub async fn optimize(
        &self,
        threshold_rows: usize,
        kind: VectorIndexKind,
    ) -> Result<VectorOptimize> {
        let mut report = VectorOptimize::default();
        let stats = self
            .table
            .optimize(OptimizeAction::Compact {
                options: CompactionOptions::default(),
                remap_options: None,
            })
            .await
            .map_err(self.lance())?;
        report.fragments_removed = stats.compaction.map_or(0, |c| c.fragments_removed);
        report.rows = self.count().await?;

        let indices = self.table.list_indices().await.map_err(self.lance())?;
        let on = |col: &str| indices.iter().find(|i| i.columns.iter().any(|c| c == col));
        let mut rebuilt = false;
        match on("vector") {
            None if report.rows >= threshold_rows.max(1) && report.rows >= 256 => {
                let partitions = (report.rows as f64).sqrt().round().max(1.0) as u32;
                let index = match kind {
                    VectorIndexKind::IvfPq => LanceIndex::IvfPq(
                        IvfPqIndexBuilder::default()
                            .distance_type(DistanceType::Cosine)
                            .num_partitions(partitions)
                            .num_sub_vectors(sub_vectors(self.dim)),
                    ),
                    VectorIndexKind::IvfHnswSq => LanceIndex::IvfHnswSq(
                        IvfHnswSqIndexBuilder::default()
                            .distance_type(DistanceType::Cosine)
                            .num_partitions(partitions),
                    ),
                };
                self.table
                    .create_index(&["vector"], index)
                    .replace(true)
                    .execute()
                    .await
                    .map_err(self.lance())?;
                report.vector_index_built = true;
                report.vector_index = Some(kind.as_str().to_string());
                rebuilt = true;
            }
            None => {}
            Some(i) => report.vector_index = Some(i.index_type.to_string()),
        }
        if report.rows >= SCALAR_INDEX_MIN_ROWS {
            for col in ["path", "content_hash"] {
                if on(col).is_none() {
                    self.table
                        .create_index(&[col], LanceIndex::BTree(BTreeIndexBuilder::default()))
                        .execute()
                        .await
                        .map_err(self.lance())?;
                    report.scalar_indexes_built.push(col.to_string());
                    rebuilt = true;
                }
            }
        }
        if !indices.is_empty() || rebuilt {
            // Folds rows added since the indexes were built into them.
            self.table
                .optimize(OptimizeAction::Index(OptimizeOptions::default()))
                .await
                .map_err(self.lance())?;
        }
        let indices = self.table.list_indices().await.map_err(self.lance())?;
        report.unindexed_rows = indices
            .iter()
            .find(|i| i.columns.iter().any(|c| c == "vector"))
            .and_then(|i| i.num_unindexed_rows)
            .unwrap_or(report.rows as u64);
        report.bytes_pruned = self.prune(PRUNE_GRACE).await?;
        Ok(report)
    }

    /// Removes table versions older than `grace` (never the latest) and the files only they
    /// used. The caller holds the write lock, so no other transaction is in flight and files
    /// no version references can go at once; readers are protected by the grace period alone.
    pub(crate) async fn prune(&self, grace: std::time::Duration) -> Result<u64> {
        let older_than =
            lancedb::table::Duration::from_std(grace).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("bad prune grace period: {e}"),
            })?;
        let stats = self
            .table
            .optimize(OptimizeAction::Prune {
                older_than: Some(older_than),
                delete_unverified: Some(true),
                error_if_tagged_old_versions: Some(false),
            })
            .await
            .map_err(self.lance())?;
        Ok(stats.prune.map_or(0, |p| p.bytes_removed))
    }

    /// Rows of a batch as records (`with_vector`: the batch has the vector column).
    fn records(&self, b: &RecordBatch, with_vector: bool) -> Result<Vec<ChunkRecord>> {
        records_from_batch(b, self.dim, with_vector).map_err(|d| self.corrupt(d))
    }
}

fn sub_vectors(dim: usize) -> u32 {
    let dim = dim as u32;
    if dim.is_multiple_of(16) {
        dim / 16
    } else if dim.is_multiple_of(8) {
        dim / 8
    } else {
        1
    }
}

/// A SQL string literal: single quotes doubled (the dialect has no backslash escapes).
pub(crate) fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Escapes the LIKE wildcards (and the escape character `\` itself) of a literal.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The dates of a filter as seconds since the epoch.
pub(crate) fn filter_dates(f: &SearchFilter) -> Result<(Option<i64>, Option<i64>)> {
    let parse = |field: &'static str, v: &Option<String>| -> Result<Option<i64>> {
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => date_seconds(s)
                .map(Some)
                .ok_or_else(|| StoreError::BadFilter {
                    field,
                    value: s.to_string(),
                }),
        }
    };
    Ok((parse("after", &f.after)?, parse("before", &f.before)?))
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The SQL WHERE clause of a filter; `None` when it restricts nothing.
pub(crate) fn filter_sql(f: &SearchFilter) -> Result<Option<String>> {
    let mut parts = Vec::new();
    if !f.kinds.is_empty() {
        let kinds: Vec<String> = f.kinds.iter().map(|k| sql_str(k.as_str())).collect();
        parts.push(format!("kind IN ({})", kinds.join(", ")));
    }
    if let Some(p) = f.path_prefix.as_deref().filter(|p| !p.is_empty()) {
        let pattern = sql_str(&format!("{}%", like_escape(p)));
        parts.push(format!("path LIKE {pattern} ESCAPE '\\'"));
    }
    if let Some(from) = non_empty(&f.from) {
        let pattern = sql_str(&format!("%{}%", like_escape(from)));
        parts.push(format!("sender ILIKE {pattern} ESCAPE '\\'"));
    }
    if let Some(subject) = non_empty(&f.subject) {
        for word in subject.split_whitespace() {
            let pattern = sql_str(&format!("%{}%", like_escape(word)));
            parts.push(format!(
                "(subject ILIKE {pattern} ESCAPE '\\' OR title ILIKE {pattern} ESCAPE '\\')"
            ));
        }
    }
    let (after, before) = filter_dates(f)?;
    if let Some(a) = after {
        parts.push(format!("date_ts >= {a}"));
    }
    if let Some(b) = before {
        parts.push(format!("date_ts < {b}"));
    }
    Ok((!parts.is_empty()).then(|| parts.join(" AND ")))
}

fn to_batch(
    schema: &SchemaRef,
    dim: usize,
    records: &[ChunkRecord],
) -> std::result::Result<RecordBatch, arrow_schema::ArrowError> {
    fn strs<'a>(it: impl Iterator<Item = &'a str>) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(it))
    }
    fn opt<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
        Arc::new(StringArray::from_iter(it))
    }
    let r = records;
    let mut flat = Vec::with_capacity(r.len() * dim);
    for rec in r {
        flat.extend_from_slice(&rec.vector);
    }
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let vectors =
        FixedSizeListArray::try_new(item, dim as i32, Arc::new(Float32Array::from(flat)), None)?;
    let columns: Vec<ArrayRef> = vec![
        strs(r.iter().map(|x| x.id.as_str())),
        strs(r.iter().map(|x| x.doc_id.as_str())),
        strs(r.iter().map(|x| x.path.as_str())),
        opt(r.iter().map(|x| x.part.as_deref())),
        strs(r.iter().map(|x| x.kind.as_str())),
        Arc::new(UInt32Array::from_iter_values(r.iter().map(|x| x.ordinal))),
        strs(r.iter().map(|x| x.text.as_str())),
        opt(r.iter().map(|x| x.context.as_deref())),
        Arc::new(UInt32Array::from_iter(r.iter().map(|x| x.page))),
        Arc::new(UInt32Array::from_iter_values(
            r.iter().map(|x| x.lines.start),
        )),
        Arc::new(UInt32Array::from_iter_values(r.iter().map(|x| x.lines.end))),
        Arc::new(UInt64Array::from_iter_values(
            r.iter().map(|x| x.bytes.start as u64),
        )),
        Arc::new(UInt64Array::from_iter_values(
            r.iter().map(|x| x.bytes.end as u64),
        )),
        opt(r.iter().map(|x| x.heading.as_deref())),
        opt(r.iter().map(|x| x.title.as_deref())),
        opt(r.iter().map(|x| x.subject.as_deref())),
        opt(r.iter().map(|x| x.from.as_deref())),
        opt(r.iter().map(|x| x.date.as_deref())),
        Arc::new(Int64Array::from_iter(
            r.iter().map(|x| x.date.as_deref().and_then(date_seconds)),
        )),
        opt(r.iter().map(|x| x.thread_id.as_deref())),
        opt(r.iter().map(|x| x.message_id.as_deref())),
        strs(r.iter().map(|x| x.content_hash.as_str())),
        Arc::new(vectors),
    ];
    RecordBatch::try_new(schema.clone(), columns)
}

/// A string column of any of Arrow's three string layouts.
enum StrCol<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl StrCol<'_> {
    fn get(&self, i: usize) -> Option<&str> {
        match self {
            StrCol::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrCol::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrCol::View(a) => (!a.is_null(i)).then(|| a.value(i)),
        }
    }
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> std::result::Result<&'a ArrayRef, String> {
    b.column_by_name(name)
        .ok_or_else(|| format!("column `{name}` is missing"))
}

fn str_col<'a>(b: &'a RecordBatch, name: &str) -> std::result::Result<StrCol<'a>, String> {
    let c = column(b, name)?;
    if let Some(a) = c.as_string_opt::<i32>() {
        Ok(StrCol::Utf8(a))
    } else if let Some(a) = c.as_string_opt::<i64>() {
        Ok(StrCol::Large(a))
    } else if let Some(a) = c.as_string_view_opt() {
        Ok(StrCol::View(a))
    } else {
        Err(format!("column `{name}` is not text"))
    }
}

fn prim_col<'a, T: arrow_array::ArrowPrimitiveType>(
    b: &'a RecordBatch,
    name: &str,
) -> std::result::Result<&'a PrimitiveArray<T>, String> {
    column(b, name)?
        .as_primitive_opt::<T>()
        .ok_or_else(|| format!("column `{name}` has an unexpected type"))
}

struct VectorCol<'a> {
    list: &'a FixedSizeListArray,
    values: &'a Float32Array,
    dim: usize,
}

impl VectorCol<'_> {
    fn get(&self, i: usize) -> Option<Vec<f32>> {
        if self.list.is_null(i) {
            return None;
        }
        let start = self.list.value_offset(i) as usize;
        self.values
            .values()
            .get(start..start + self.dim)
            .map(<[f32]>::to_vec)
    }
}

fn vector_col(b: &RecordBatch, dim: usize) -> std::result::Result<VectorCol<'_>, String> {
    let list = column(b, "vector")?
        .as_fixed_size_list_opt()
        .ok_or("column `vector` is not a fixed-size list")?;
    let values = list
        .values()
        .as_primitive_opt::<Float32Type>()
        .ok_or("column `vector` does not hold 32-bit floats")?;
    if list.value_length() as usize != dim {
        return Err(format!("column `vector` is not of dimension {dim}"));
    }
    Ok(VectorCol { list, values, dim })
}

fn records_from_batch(
    b: &RecordBatch,
    dim: usize,
    with_vector: bool,
) -> std::result::Result<Vec<ChunkRecord>, String> {
    let id = str_col(b, "id")?;
    let doc_id = str_col(b, "doc_id")?;
    let path = str_col(b, "path")?;
    let part = str_col(b, "part")?;
    let kind = str_col(b, "kind")?;
    let ordinal = prim_col::<UInt32Type>(b, "ordinal")?;
    let text = str_col(b, "text")?;
    let context = if b.column_by_name("context").is_some() {
        Some(str_col(b, "context")?)
    } else {
        None
    };
    let page = prim_col::<UInt32Type>(b, "page")?;
    let line_start = prim_col::<UInt32Type>(b, "line_start")?;
    let line_end = prim_col::<UInt32Type>(b, "line_end")?;
    let byte_start = prim_col::<UInt64Type>(b, "byte_start")?;
    let byte_end = prim_col::<UInt64Type>(b, "byte_end")?;
    let heading = str_col(b, "heading")?;
    let title = str_col(b, "title")?;
    let subject = str_col(b, "subject")?;
    let sender = str_col(b, "sender")?;
    let date = str_col(b, "date")?;
    let thread_id = str_col(b, "thread_id")?;
    let message_id = str_col(b, "message_id")?;
    let content_hash = str_col(b, "content_hash")?;
    let vectors = if with_vector {
        Some(vector_col(b, dim)?)
    } else {
        None
    };
    let owned = |c: &StrCol<'_>, i: usize| c.get(i).map(str::to_string);
    let required = |c: &StrCol<'_>, name: &str, i: usize| {
        c.get(i)
            .map(str::to_string)
            .ok_or_else(|| format!("column `{name}` is empty in row {i}"))
    };
    let mut out = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        let kind_s = required(&kind, "kind", i)?;
        let vector = match &vectors {
            Some(v) => v.get(i).ok_or_else(|| format!("row {i} has no vector"))?,
            None => Vec::new(),
        };
        out.push(ChunkRecord {
            id: ChunkId(required(&id, "id", i)?),
            doc_id: DocId(required(&doc_id, "doc_id", i)?),
            path: required(&path, "path", i)?,
            part: owned(&part, i),
            kind: parse_kind(&kind_s).ok_or_else(|| format!("unknown kind `{kind_s}`"))?,
            ordinal: ordinal.value(i),
            text: required(&text, "text", i)?,
            context: context.as_ref().and_then(|c| owned(c, i)),
            page: (!page.is_null(i)).then(|| page.value(i)),
            lines: LineRange::new(line_start.value(i), line_end.value(i)),
            bytes: byte_start.value(i) as usize..byte_end.value(i) as usize,
            heading: owned(&heading, i),
            title: owned(&title, i),
            subject: owned(&subject, i),
            from: owned(&sender, i),
            date: owned(&date, i),
            thread_id: owned(&thread_id, i),
            message_id: owned(&message_id, i),
            content_hash: ContentHash(required(&content_hash, "content_hash", i)?),
            vector,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use docent_core::DocKind;

    #[test]
    fn sql_literals_are_escaped() {
        assert_eq!(sql_str("it's"), "'it''s'");
        assert_eq!(sql_str("a\\b"), "'a\\b'");
        assert_eq!(like_escape("50%_a\\b"), "50\\%\\_a\\\\b");
    }

    #[test]
    fn filters_become_sql() {
        assert_eq!(filter_sql(&SearchFilter::default()).unwrap(), None);
        let f = SearchFilter {
            kinds: vec![DocKind::Pdf, DocKind::Email],
            path_prefix: Some("/home/o'neil/50%".into()),
            from: Some("Alice".into()),
            subject: Some("budget  plan".into()),
            after: Some("1970-01-02".into()),
            before: Some("1970-01-03".into()),
        };
        let sql = filter_sql(&f).unwrap().unwrap();
        assert_eq!(
            sql,
            "kind IN ('pdf', 'email') AND path LIKE '/home/o''neil/50\\%%' ESCAPE '\\' \
             AND sender ILIKE '%Alice%' ESCAPE '\\' \
             AND (subject ILIKE '%budget%' ESCAPE '\\' OR title ILIKE '%budget%' ESCAPE '\\') \
             AND (subject ILIKE '%plan%' ESCAPE '\\' OR title ILIKE '%plan%' ESCAPE '\\') \
             AND date_ts >= 86400 AND date_ts < 172800"
        );
        let bad = SearchFilter {
            after: Some("last tuesday".into()),
            ..Default::default()
        };
        let err = filter_sql(&bad).unwrap_err();
        assert!(matches!(err, StoreError::BadFilter { field: "after", .. }));
        assert!(err.to_string().contains("hint:"));
    }

    fn record(n: usize) -> ChunkRecord {
        let mut r = super::super::record::tests::sample();
        let path = format!("/d/{n}.md");
        r.doc_id = DocId::for_source(&path, None);
        r.id = ChunkId::derive(&r.doc_id, "text", 0);
        r.path = path;
        r.vector = vec![0.5, 0.5, n as f32 / 10.0, 0.1];
        r
    }

    /// Writes three versions, the last a compaction, to a table in `dir`; returns the store and
    /// the first version.
    async fn three_versions(dir: &Path) -> (VectorStore, u64) {
        let w = VectorStore::open(dir, 4, OpenMode::ReadWrite)
            .await
            .unwrap();
        w.add(&[record(1)]).await.unwrap();
        let first = w.table.version().await.unwrap();
        w.add(&[record(2)]).await.unwrap();
        w.delete_paths(&["/d/1.md".to_string()]).await.unwrap();
        (w, first)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compaction_keeps_recent_versions_for_readers() {
        let dir = tempfile::tempdir().unwrap();
        let (w, first) = three_versions(dir.path()).await;
        // A reader that still holds the first version, as one in the middle of a query does.
        let r = VectorStore::open(dir.path(), 4, OpenMode::ReadOnly)
            .await
            .unwrap();
        r.table.checkout(first).await.unwrap();
        w.optimize(1_000_000, VectorIndexKind::IvfHnswSq)
            .await
            .unwrap();
        let q = r.table.query().select(Select::columns(&["path"]));
        let batches = VectorStore::run_query(&q)
            .await
            .expect("a version younger than the grace period was pruned");
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_whose_version_was_pruned_reads_the_latest_once_more() {
        let dir = tempfile::tempdir().unwrap();
        let (w, first) = three_versions(dir.path()).await;
        let r = VectorStore::open(dir.path(), 4, OpenMode::ReadOnly)
            .await
            .unwrap();
        r.table.checkout(first).await.unwrap();
        // Compacted, and the grace period over: the first version's files are gone.
        w.optimize(1_000_000, VectorIndexKind::IvfHnswSq)
            .await
            .unwrap();
        w.prune(std::time::Duration::ZERO).await.unwrap();
        let q = r.table.query().select(Select::columns(&["path"]));
        assert!(VectorStore::run_query(&q).await.is_err());
        let hits = r
            .search(&[0.5, 0.5, 0.2, 0.1], 5, &SearchFilter::default())
            .await
            .unwrap();
        let paths: Vec<&str> = hits.iter().map(|h| h.path.as_str()).collect();
        assert_eq!(paths, ["/d/2.md"]);
    }

    #[test]
    fn batch_round_trip() {
        let mut r = super::super::record::tests::sample();
        r.vector = vec![0.1, 0.2, 0.3, 0.4];
        let mut r2 = r.clone();
        r2.part = Some("message 2".into());
        r2.page = Some(3);
        r2.from = None;
        let schema = Arc::new(schema(4));
        let b = to_batch(&schema, 4, &[r.clone(), r2.clone()]).unwrap();
        let back = records_from_batch(&b, 4, true).unwrap();
        assert_eq!(back, vec![r, r2]);
    }
}
