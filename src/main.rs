//! The `docent` binary: command-line glue over the engine. Parses arguments once, resolves
//! settings once, runs one command, and maps the outcome to an exit code:
//!
//! - 0: done, every file indexed or deliberately skipped
//! - 1: nothing could be done (the error says why, with a `hint:`)
//! - 2: invalid command line
//! - 3: done, but some files could not be indexed (listed in the summary)
//! - 101: a bug (docent crashed; the message asks for a report)

mod cli;
mod commands;
mod settings;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    private_by_default();
    install_panic_hook();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = match cli.command {
        Some(c) => c,
        // On a terminal, `docent` alone opens the interface; elsewhere it prints the help.
        None if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() => {
            Command::Tui(cli::TuiArgs::default())
        }
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    // Commands that need no settings, index or runtime.
    match &command {
        Command::PdfWorker => {
            return Ok(ExitCode::from(docent_parse::pdf::worker_main() as u8));
        }
        Command::Completions(args) => return commands::completions::run(args),
        Command::Man(args) => return commands::man::run(args),
        _ => {}
    }
    let ctx = settings::resolve(&cli.global)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("docent-rt")
        .build()?;
    match command {
        Command::Index(args) => rt.block_on(commands::index::run(&ctx, &cli.global, &args)),
        Command::Search(args) => rt.block_on(commands::search::run(&ctx, &args)),
        Command::Ask(args) => rt.block_on(commands::ask::run(&ctx, &cli.global, &args)),
        Command::Tui(args) => commands::tui::run(&ctx, rt.handle(), &args),
        Command::Watch(args) => rt.block_on(commands::daemon::watch(&ctx, &args)),
        Command::Daemon(cmd) => commands::daemon::run(&ctx, &cli.global, &cmd),
        Command::Folders(cmd) => rt.block_on(commands::folders::run(&ctx, &cmd)),
        Command::Status(args) => commands::status::run(&ctx, &args),
        Command::Inspect(args) => commands::inspect::run(&ctx, &args),
        Command::Files(args) => commands::files::run(&ctx, &args),
        Command::Config(args) => commands::config::run(&ctx, &args),
        Command::Reindex(args) => rt.block_on(commands::reindex::run(&ctx, &cli.global, &args)),
        Command::Models(cmd) => commands::models::run(&ctx, &cmd),
        Command::Eval(cmd) => rt.block_on(commands::eval::run(&ctx, &cli.global, &cmd)),
        Command::PdfWorker | Command::Completions(_) | Command::Man(_) => {
            unreachable!("handled above")
        }
    }
}

/// Everything docent writes (the index, the manifest, conversations, exports, logs, models) is
/// for its owner alone, whatever umask docent was started with: files come out `0600` and
/// folders `0700`. This also covers the files LanceDB and tantivy create, whose modes docent
/// cannot set one by one. The store sets explicit modes on what it creates itself as well, so
/// that library users get private data directories too.
fn private_by_default() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Prints an error and its causes; `hint:` lines inside messages are kept on their own lines.
/// Messages name files, so each line has its control characters escaped.
fn report(err: &anyhow::Error) {
    let mut msg = format!("error: {err}");
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(&format!("\n  caused by: {c}"));
        }
    }
    let msg: Vec<String> = msg.lines().map(commands::shown).collect();
    eprintln!("{}", msg.join("\n"));
}

/// A panic is a bug: say so plainly, without a backtrace dump, and exit with 101.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Worker threads that contain panics (the PDF extractor) name themselves; leave their
        // messages to the code that catches them.
        if std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("docent-pdf"))
        {
            return;
        }
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            default(info);
            return;
        }
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: docent crashed{location}; this is a bug.\nhint: please report it with the command you ran; RUST_BACKTRACE=1 shows details"
        );
    }));
}
