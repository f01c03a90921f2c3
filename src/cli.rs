//! The command line, parsed once (the only clap code in docent).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// docent: a private document assistant that runs entirely on your machine.
///
/// Point it at folders of PDFs, notes and email; it keeps an index of them on this machine.
/// Nothing leaves the machine.
#[derive(Debug, Parser)]
#[command(name = "docent", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where docent keeps its index [default: the per-user data directory]
    #[arg(long, global = true, env = "DOCENT_HOME", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Read settings from this file instead of `<data dir>/docent.toml`
    #[arg(long, global = true, env = "DOCENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print only errors and the final result
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Index files and folders once, then exit
    ///
    /// New and changed files are parsed and chunked; unchanged files are not read again; moved
    /// files are recognised by their content; files that are gone leave the index.
    Index(IndexArgs),

    /// Show how one file parses and chunks, without indexing it
    Inspect(InspectArgs),

    /// List the files the index knows, with their status
    Files(FilesArgs),

    /// Show the effective configuration and where docent keeps things
    Config(ConfigArgs),

    /// Internal: extract one PDF from standard input (used to isolate the PDF parser)
    #[command(name = "__pdf-worker", hide = true)]
    PdfWorker,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Files or folders to index
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Print the summary as JSON on standard output
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The file to inspect
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Print as JSON (documents with their blocks, chunks with their spans)
    #[arg(long)]
    pub json: bool,

    /// Print each chunk's full text instead of a preview
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct FilesArgs {
    /// Only files with this status
    #[arg(long, value_parser = ["indexed", "skipped", "failed"])]
    pub status: Option<String>,

    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print the commented default configuration instead
    #[arg(long)]
    pub default: bool,
}
