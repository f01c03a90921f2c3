//! `docent watch` (the watcher in the foreground) and `docent daemon …` (the same, detached).

use std::io::{BufRead, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use docent_daemon::control::{self, LiveState, Reply, Request};
use docent_daemon::{DaemonPaths, Folders};
use docent_engine::Context;

use crate::cli::{DaemonCommand, GlobalArgs, WatchArgs};

/// The live state of the daemon for this data directory, if one is running and answers.
pub fn live(ctx: &Context) -> Option<LiveState> {
    let paths = DaemonPaths::new(&ctx.paths.data_dir);
    if !paths.socket.exists() {
        return None;
    }
    match control::request(
        &paths.socket,
        &Request::Status,
        Some(Duration::from_secs(5)),
    ) {
        Ok(Reply::Status { state }) => Some(state),
        _ => None,
    }
}

/// Sends a request to the running daemon; `None` when there is none.
pub fn ask_daemon(ctx: &Context, req: &Request) -> anyhow::Result<Option<Reply>> {
    if live(ctx).is_none() {
        return Ok(None);
    }
    let paths = DaemonPaths::new(&ctx.paths.data_dir);
    Ok(Some(control::request(&paths.socket, req, None)?))
}

pub async fn watch(ctx: &Context, args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let roots = if args.paths.is_empty() {
        let folders = Folders::load(&ctx.paths.data_dir)?;
        if folders.list.is_empty() {
            bail!(
                "no folders to watch\nhint: `docent folders add <DIR>` saves one, or name folders: `docent watch <DIR>`"
            );
        }
        None
    } else {
        Some(args.paths.clone())
    };
    // Log lines name files, whose names anyone could choose: escaped when written, and again
    // when shown (the log also holds whatever else the process wrote to stderr).
    let log: docent_daemon::service::Log = Arc::new(|line: &str| {
        eprintln!(
            "{} {}",
            docent_core::date::now_iso_utc(),
            super::shown(line)
        );
    });
    docent_daemon::service::serve(ctx, roots, log).await?;
    Ok(ExitCode::SUCCESS)
}

pub fn run(ctx: &Context, global: &GlobalArgs, cmd: &DaemonCommand) -> anyhow::Result<ExitCode> {
    let paths = DaemonPaths::new(&ctx.paths.data_dir);
    match cmd {
        DaemonCommand::Start => start(ctx, global, &paths),
        DaemonCommand::Stop => stop(ctx, &paths),
        DaemonCommand::Status { json } => {
            let state = live(ctx);
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "daemon": if state.is_some() { "running" } else { "stopped" },
                        "state": state,
                    }))?
                );
            } else {
                match &state {
                    Some(s) => println!(
                        "running (pid {}), {}{}; {} folder(s); {} waiting",
                        s.pid,
                        s.phase,
                        if s.paused { ", paused" } else { "" },
                        s.folders.len(),
                        s.queue
                    ),
                    None => println!("stopped"),
                }
            }
            Ok(if state.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        DaemonCommand::Logs { lines, follow } => logs(&paths.log, *lines, *follow),
        DaemonCommand::Pause | DaemonCommand::Resume => {
            let req = if matches!(cmd, DaemonCommand::Pause) {
                Request::Pause
            } else {
                Request::Resume
            };
            match ask_daemon(ctx, &req)? {
                Some(Reply::Error { message }) => bail!("{message}"),
                Some(_) => {
                    println!(
                        "{}",
                        if req == Request::Pause {
                            "paused: no new files are read until `docent daemon resume`"
                        } else {
                            "resumed"
                        }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                None => bail!("the daemon is not running\nhint: `docent daemon start`"),
            }
        }
        DaemonCommand::Install { print } => install(ctx, &paths, *print),
    }
}

fn start(ctx: &Context, global: &GlobalArgs, paths: &DaemonPaths) -> anyhow::Result<ExitCode> {
    if let Some(s) = live(ctx) {
        println!("already running (pid {})", s.pid);
        return Ok(ExitCode::SUCCESS);
    }
    if Folders::load(&ctx.paths.data_dir)?.list.is_empty() {
        bail!("no folders to watch\nhint: `docent folders add <DIR>` first");
    }
    paths
        .create()
        .with_context(|| format!("{}: cannot create", paths.dir.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&paths.log)
        .with_context(|| format!("{}: cannot open the log", paths.log.display()))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = std::env::current_exe().context("cannot find the docent executable")?;
    let data_dir = std::path::absolute(&ctx.paths.data_dir)?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--data-dir").arg(&data_dir);
    if let Some(c) = &global.config {
        cmd.arg("--config").arg(std::path::absolute(c)?);
    }
    cmd.arg("watch")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Its own process group: Ctrl-C in this terminal does not reach it.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().context("cannot start the daemon")?;
    // Wait until it answers (the model loads first), or until it gives up.
    let t0 = Instant::now();
    loop {
        if let Some(s) = live(ctx) {
            println!(
                "daemon started (pid {}), watching {} folder(s)\nlog: {}",
                s.pid,
                s.folders.len(),
                paths.log.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(status) = child.try_wait()? {
            let tail = read_from(&paths.log, log_start);
            bail!(
                "the daemon exited at once ({status}):\n{}",
                shown_lines(tail.trim_end())
            );
        }
        if t0.elapsed() > Duration::from_secs(120) {
            bail!(
                "the daemon (pid {}) did not answer within two minutes\nhint: `docent daemon logs`",
                child.id()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(ctx: &Context, paths: &DaemonPaths) -> anyhow::Result<ExitCode> {
    let pid = match live(ctx) {
        Some(s) => {
            let _ = control::request(&paths.socket, &Request::Stop, Some(Duration::from_secs(5)));
            s.pid as i32
        }
        None => match docent_daemon::read_pid(&paths.pid) {
            // Not answering but alive: ask it the classic way, once it is sure the pid is the
            // daemon of this data directory. The daemon holds the write lock for as long as its
            // pid file exists; a pid file left by a crash or from before a reboot can name any
            // process since, which must not be signalled.
            Some(pid) if docent_daemon::alive(pid) => {
                match docent_store::WriteLock::holder(&ctx.paths.data_dir)? {
                    docent_store::LockHolder::Held { pid: Some(holder) }
                        if i64::from(holder) == i64::from(pid) =>
                    {
                        docent_daemon::terminate(pid)
                            .with_context(|| format!("cannot stop pid {pid}"))?;
                        pid
                    }
                    _ => {
                        let _ = std::fs::remove_file(&paths.pid);
                        println!(
                            "not running (removed a stale pid file: pid {pid} is another process, left alone)"
                        );
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            }
            Some(_) => {
                let _ = std::fs::remove_file(&paths.pid);
                println!("not running (removed a stale pid file)");
                return Ok(ExitCode::SUCCESS);
            }
            None => {
                println!("not running");
                return Ok(ExitCode::SUCCESS);
            }
        },
    };
    let t0 = Instant::now();
    while docent_daemon::alive(pid) {
        if t0.elapsed() > Duration::from_secs(120) {
            bail!(
                "the daemon (pid {pid}) is still finishing after two minutes\nhint: `docent daemon logs`"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("daemon stopped (pid {pid})");
    Ok(ExitCode::SUCCESS)
}

fn logs(path: &Path, lines: usize, follow: bool) -> anyhow::Result<ExitCode> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("no log yet ({})", path.display());
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let all: Vec<&str> = text.lines().collect();
    for l in &all[all.len().saturating_sub(lines)..] {
        println!("{}", super::shown(l));
    }
    if follow {
        let mut pos = text.len() as u64;
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let more = read_from(path, pos);
            pos += more.len() as u64;
            if !more.is_empty() {
                println!("{}", shown_lines(more.trim_end_matches('\n')));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Lines of the log made safe to show, line by line ([`super::shown`]).
fn shown_lines(text: &str) -> String {
    text.lines()
        .map(super::shown)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text of a file from byte `pos` on (empty when unreadable).
fn read_from(path: &Path, pos: u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    if f.seek(SeekFrom::Start(pos)).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let mut r = std::io::BufReader::new(f);
    let mut line = String::new();
    while r.read_line(&mut line).unwrap_or(0) > 0 {
        out.push_str(&line);
        line.clear();
    }
    out
}

fn install(ctx: &Context, paths: &DaemonPaths, print: bool) -> anyhow::Result<ExitCode> {
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .context("HOME is not set")?;
    let exe = std::env::current_exe().context("cannot find the docent executable")?;
    let data_dir = std::path::absolute(&ctx.paths.data_dir)?;
    let file = if cfg!(target_os = "macos") {
        docent_daemon::units::launchd_agent(&home, &exe, &data_dir, &paths.log)
    } else {
        docent_daemon::units::systemd_unit(&home, &exe, &data_dir)
    };
    if print {
        print!("{}", file.contents);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(parent) = file.path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    std::fs::write(&file.path, &file.contents)
        .with_context(|| format!("{}: cannot write", file.path.display()))?;
    println!("wrote {}", file.path.display());
    println!("nothing is enabled yet; to start docent at login:");
    for c in &file.enable {
        println!("  {c}");
    }
    println!("to remove it:");
    for c in &file.remove {
        println!("  {c}");
    }
    Ok(ExitCode::SUCCESS)
}
