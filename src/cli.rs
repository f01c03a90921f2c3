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

    /// Search the index: hybrid (keywords and meaning), keyword-only or vector-only
    ///
    /// Filters can be written in the query: kind:pdf|note|email, path:<prefix>, from:<text>,
    /// subject:<text>, after:YYYY-MM-DD, before:YYYY-MM-DD.
    Search(SearchArgs),

    /// Answer a question from your documents, citing them
    ///
    /// Finds the passages closest to the question (hybrid search; filters such as kind:pdf work
    /// as in `docent search`), gives them to the local language model as numbered sources, and
    /// streams its answer. Every citation is checked against its source; citations to sources
    /// that were not given are removed, weakly supported sentences are flagged. When nothing in
    /// the index is relevant enough, it says so instead of answering.
    Ask(AskArgs),

    /// The terminal interface: ask, read answers with their sources, search, export
    ///
    /// Also what `docent` with no arguments opens on a terminal. Keys: F1 or `?` for help, Tab
    /// between panes, Enter to ask, `/` to search, `e` to export the answer as Markdown, `o` to
    /// open a source, `q` to quit.
    Tui(TuiArgs),

    /// Keep folders indexed: watch them and apply every change, in the foreground
    ///
    /// Walks the folders once (catching what changed since the last run), then indexes files
    /// as they are created, changed, moved or deleted, until Ctrl-C. Without PATHs, watches the
    /// folders saved with `docent folders add`.
    Watch(WatchArgs),

    /// Run the watcher in the background: start, stop, status, logs, install
    #[command(subcommand)]
    Daemon(DaemonCommand),

    /// The folders the daemon keeps indexed
    #[command(subcommand)]
    Folders(FoldersCommand),

    /// What is indexed, and what the daemon is doing
    Status(StatusArgs),

    /// Show how one file parses and chunks, without indexing it
    Inspect(InspectArgs),

    /// Rebuild every vector with the configured embedding model (after changing `embed.model`)
    ///
    /// Files are not parsed again; searches keep using the old index until the new one is
    /// complete.
    Reindex(ReindexArgs),

    /// List, import and verify models
    #[command(subcommand)]
    Models(ModelsCommand),

    /// Measure retrieval quality
    #[command(subcommand)]
    Eval(EvalCommand),

    /// List the files the index knows, with their status
    Files(FilesArgs),

    /// Show the effective configuration and where docent keeps things
    Config(ConfigArgs),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    ///
    /// For example `docent completions bash > ~/.local/share/bash-completion/completions/docent`;
    /// `scripts/install.sh` installs them for the shells it finds.
    Completions(CompletionsArgs),

    /// Print the manual page (roff), or write one page per subcommand into a folder
    ///
    /// For example `docent man | man -l -`, or `docent man --dir ~/.local/share/man/man1`.
    Man(ManArgs),

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
pub struct WatchArgs {
    /// Folders to watch [default: the saved folders, `docent folders list`]
    #[arg(value_name = "PATH")]
    pub paths: Vec<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Start watching the saved folders in the background
    Start,
    /// Stop the background watcher (it finishes the batch it is writing)
    Stop,
    /// Whether it runs, and what it is doing (exit status 0 when running, 3 when stopped)
    Status {
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the end of its log
    Logs {
        /// Lines to print
        #[arg(short = 'n', long, default_value_t = 40)]
        lines: usize,
        /// Keep printing new lines as they come (Ctrl-C to end)
        #[arg(short, long)]
        follow: bool,
    },
    /// Stop reading new files until `docent daemon resume`
    Pause,
    /// Continue after `docent daemon pause`
    Resume,
    /// Write a systemd user unit (Linux) or launchd agent (macOS) that starts it at login;
    /// nothing is enabled, the commands to do so are printed
    Install {
        /// Print the file instead of writing it
        #[arg(long)]
        print: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum FoldersCommand {
    /// Watch these folders (the daemon, if running, starts indexing them at once)
    Add {
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<std::path::PathBuf>,
    },
    /// Stop watching these folders; their files leave the index
    Remove {
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<std::path::PathBuf>,
    },
    /// The watched folders
    List {
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for, with optional filters (e.g. `roof budget kind:pdf after:2024-06-01`);
    /// several words need no quotes
    #[arg(value_name = "QUERY", required = true, num_args = 1..)]
    pub query: Vec<String>,

    /// Number of results
    #[arg(short, long, value_name = "N")]
    pub k: Option<usize>,

    /// hybrid, bm25 or vector [default: from config, hybrid]
    #[arg(long, value_parser = ["hybrid", "bm25", "vector"])]
    pub mode: Option<String>,

    /// Print results as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question, with optional filters (e.g. `when is the roof due? kind:pdf`); several
    /// words need no quotes
    #[arg(value_name = "QUESTION", required = true, num_args = 1..)]
    pub question: Vec<String>,

    /// Passages to retrieve [default: from config, ask.k]
    #[arg(short, long, value_name = "N")]
    pub k: Option<usize>,

    /// The language model: a name in the models directory or a path to a .gguf file
    /// [default: from config, llm.model]
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,

    /// Print the answer, its citations and timings as JSON
    #[arg(long)]
    pub json: bool,

    /// Also write the answer as Markdown with footnote citations to this file
    #[arg(long, value_name = "FILE.md")]
    pub export: Option<PathBuf>,

    /// Continue the previous conversation: a follow-up question that may refer to it
    #[arg(short = 'c', long = "continue")]
    pub continue_conversation: bool,
}

#[derive(Debug, Args, Default)]
pub struct TuiArgs {
    /// Passages to retrieve per question [default: from config, ask.k]
    #[arg(short, long, value_name = "N")]
    pub k: Option<usize>,

    /// The language model: a name in the models directory or a path to a .gguf file
    /// [default: from config, llm.model]
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,

    /// Where exported answers are written [default: the current folder]
    #[arg(long, value_name = "DIR")]
    pub export_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Show installed models with sizes and checksums, and GGUF models found in Ollama,
    /// LM Studio and the Hugging Face cache (usable where they are with --model PATH)
    List {
        /// Recompute every file's checksum and compare it with the recorded one
        #[arg(long)]
        verify: bool,
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Install a model you already have: a sentence-transformers folder or a .gguf file
    Import {
        /// The folder (config.json, tokenizer.json, model.safetensors) or .gguf file
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Name to install it under [default: the folder or file name]
        #[arg(long)]
        name: Option<String>,
    },
    /// What language models fit this machine's memory, with the GGUF files to look for
    Recommend {
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Recompute and check the checksums of installed models
    Verify {
        /// Only this model
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// nDCG@10, Recall@100 and MRR@10 on a BEIR-format dataset (corpus.jsonl, queries.jsonl,
    /// qrels/<split>.tsv), indexed into a temporary index
    Retrieval(EvalRetrievalArgs),
}

#[derive(Debug, Args)]
pub struct EvalRetrievalArgs {
    /// The dataset folder
    #[arg(value_name = "BEIR_DIR")]
    pub dir: PathBuf,

    /// hybrid, bm25, vector, or all
    #[arg(long, default_value = "all", value_parser = ["all", "hybrid", "bm25", "vector"])]
    pub mode: String,

    /// Fusion for hybrid: rrf, score, or both [default: from config]
    #[arg(long, value_parser = ["rrf", "score", "both"])]
    pub fusion: Option<String>,

    /// Which qrels file to use
    #[arg(long, default_value = "test")]
    pub split: String,

    /// Print results as JSON
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

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_name = "SHELL", value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write docent.1 and a page per subcommand (docent-index.1, …) into this folder instead
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
