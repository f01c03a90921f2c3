//! # docent-engine
//!
//! The only crate that knows every stage. It wires discovery ([`walk`]), parsing
//! (`docent-parse`), chunking (`docent-chunk`, measured with the embedding model's tokenizer from
//! `docent-embed`) and the manifest (`docent-store`) into the ingest pipeline ([`ingest`]), and
//! offers the single-file view behind `docent inspect` ([`inspect`]).
//!
//! Parsing runs on a bounded pool of worker threads; results flow over a channel to one writer
//! that commits them to the manifest in small transactions, so an interrupted run keeps what it
//! finished. Progress is reported as [`IngestEvent`]s to a callback; the engine never prints.
//! It refuses presentation (no terminal output, no exit codes): that is the binary's job.

mod context;
mod error;
mod ingest;
mod inspect;
pub mod walk;

pub use context::Context;
pub use error::{EngineError, Result};
pub use ingest::{FileOutcome, IngestEvent, IngestSummary, SkippedFile, ingest};
pub use inspect::{Inspection, inspect};
