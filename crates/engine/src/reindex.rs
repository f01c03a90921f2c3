//! `docent reindex`: rebuild every vector with the configured embedding model while the old
//! index keeps serving searches, then swap the new index in.

use std::time::Instant;

use docent_store::{Index, OpenMode, WriteLock};
use serde::Serialize;

use crate::vectors::{Reuse, embed_and_write};
use crate::{Context, EngineError, Result};

#[derive(Clone, Debug, Serialize)]
pub struct ReindexSummary {
    pub from_model: String,
    pub to_model: String,
    pub chunks: u64,
    pub elapsed_ms: u64,
}

/// Re-embeds every stored chunk (no file is parsed again) into a staging index, then promotes
/// it. Readers keep using the old index until the swap; a crash before the swap leaves the old
/// index untouched.
pub async fn reindex(
    ctx: &Context,
    on_progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<ReindexSummary> {
    let start = Instant::now();
    let data_dir = &ctx.paths.data_dir;
    let old_identity = Index::stored_identity(data_dir)?.ok_or_else(|| {
        EngineError::Store(docent_store::StoreError::NoIndex {
            path: data_dir.join("index"),
        })
    })?;
    let embedder = ctx.embedder()?;
    let _lock = WriteLock::acquire(data_dir)?;
    let old = Index::open(data_dir, &old_identity, OpenMode::ReadOnly).await?;
    let mut staging = Index::create_staging(data_dir, embedder.identity()).await?;
    let mut offset = 0usize;
    let mut done = 0u64;
    const PAGE: usize = 512;
    loop {
        let rows = old.scan(offset, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        offset += rows.len();
        done += rows.len() as u64;
        embed_and_write(&mut staging, &embedder, Reuse::Nothing, &[], rows).await?;
        on_progress(done);
    }
    staging
        .optimize(ctx.settings.index.vector_index_threshold)
        .await?;
    drop(staging);
    drop(old);
    Index::promote_staging(data_dir)?;
    Ok(ReindexSummary {
        from_model: old_identity.model,
        to_model: embedder.identity().model.clone(),
        chunks: done,
        elapsed_ms: start.elapsed().as_millis() as u64,
    })
}
