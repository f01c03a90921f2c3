use std::path::PathBuf;

/// Errors that stop a whole operation. Problems with single files never do: they are reported
/// per file in the summary.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] docent_store::StoreError),
    #[error(transparent)]
    Embed(#[from] docent_embed::EmbedError),
    #[error(transparent)]
    Parse(#[from] docent_parse::ParseError),
    #[error("{}: chunking failed: {source}", path.display())]
    Chunk {
        path: PathBuf,
        #[source]
        source: docent_chunk::ChunkError,
    },
    #[error("{}: no such file or folder", path.display())]
    MissingRoot { path: PathBuf },
    #[error(
        "nothing to index: none of the given paths exist\nhint: check the paths, e.g. `docent index ~/Documents`"
    )]
    NoRoots,
    #[error("could not start worker threads: {0}")]
    Threads(String),
    #[error("embedding failed: {0}")]
    Embedding(#[source] docent_core::SeamError),
    #[error("the language model failed: {0}")]
    Generation(#[source] docent_core::SeamError),
    #[error(transparent)]
    Prompt(#[from] docent_retrieve::PromptError),
    #[error(transparent)]
    Eval(#[from] docent_retrieve::EvalError),
    #[error("{0}")]
    Invalid(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
