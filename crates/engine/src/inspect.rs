//! One file, parsed and chunked, for `docent inspect`.

use std::path::Path;

use docent_core::{Chunk, Document};
use docent_parse::{Format, Outcome};
use serde::Serialize;

use crate::{Context, EngineError, Result};

/// How one file parses and chunks.
#[derive(Debug, Serialize)]
pub struct Inspection {
    pub path: String,
    pub format: Option<Format>,
    /// Set when the file would be skipped.
    pub skipped: Option<String>,
    pub warnings: Vec<String>,
    pub documents: Vec<InspectedDocument>,
    /// The tokenizer that measured the chunks.
    pub tokenizer: String,
}

#[derive(Debug, Serialize)]
pub struct InspectedDocument {
    pub document: Document,
    pub chunks: Vec<Chunk>,
}

/// Parses and chunks one file without touching the index. A file that cannot be parsed is an
/// error naming it; a file that would be skipped says why.
pub fn inspect(ctx: &Context, path: &Path) -> Result<Inspection> {
    let abs = std::fs::canonicalize(path).map_err(|_| EngineError::MissingRoot {
        path: path.to_path_buf(),
    })?;
    let counter = ctx.token_counter()?;
    let mut out = Inspection {
        path: abs.display().to_string(),
        format: None,
        skipped: None,
        warnings: Vec::new(),
        documents: Vec::new(),
        tokenizer: counter.id().to_string(),
    };
    match docent_parse::parse_file(&abs, &ctx.parse_options())? {
        Outcome::Skipped { format, reason } => {
            out.format = format;
            out.skipped = Some(reason.to_string());
        }
        Outcome::Parsed {
            format,
            documents,
            warnings,
        } => {
            out.format = Some(format);
            out.warnings = warnings;
            let cfg = ctx.chunk_config();
            for document in documents {
                let chunks = docent_chunk::chunk_document(&document, counter.as_ref(), &cfg)
                    .map_err(|source| EngineError::Chunk {
                        path: abs.clone(),
                        source,
                    })?;
                out.documents.push(InspectedDocument { document, chunks });
            }
        }
    }
    Ok(out)
}
