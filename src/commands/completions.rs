//! `docent completions <SHELL>`: a completion script generated from the command line's
//! definition, so it always matches the installed binary.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

pub fn run(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = visible(&Cli::command());
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut out);
    write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The command line as a user sees it: the same arguments and subcommands, less the hidden
/// ones (the internal PDF worker), which the completion generators would otherwise offer. Only
/// the top level has hidden subcommands.
fn visible(cmd: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new("docent")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    out
}

/// Writes everything to standard output; a reader that stops early (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
