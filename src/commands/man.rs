//! `docent man [--dir DIR]`: the manual page in roff, generated from the command line's
//! definition; with `--dir`, one page per subcommand as `man` expects them in a `man1` folder.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};

pub fn run(args: &ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = Cli::command();
    match &args.dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            write_stdout(&out)?;
        }
        Some(dir) => {
            write_pages(cmd, dir)?;
            eprintln!("manual pages written to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `docent.1` and `docent-<sub>.1` for every visible subcommand (recursively).
fn write_pages(cmd: clap::Command, dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!(
            "{}: no such folder\nhint: create it first (mkdir -p {})",
            dir.display(),
            dir.display()
        );
    }
    clap_mangen::generate_to(cmd, dir).with_context(|| {
        format!(
            "{}: could not write the manual pages\nhint: check that the folder is writable",
            dir.display()
        )
    })
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
