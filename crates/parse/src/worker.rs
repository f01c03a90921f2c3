//! The isolated worker: PDF extraction and OCR in a child process with limits.
//!
//! [`PdfIsolation::Subprocess`](crate::PdfIsolation) runs `<exe> __pdf-worker`, whose `main`
//! calls [`worker_main`]. The parent writes one JSON line describing the job ([`Job`]: what the
//! bytes are, the limits, OCR settings) and then the file's bytes to the worker's stdin; the
//! worker sets its own resource limits first (`RLIMIT_AS` for memory, `RLIMIT_CPU` a little
//! above the time left), does the work, and writes one JSON reply to its stdout. OCR programs
//! the worker starts (`pdftoppm`, `tesseract`) inherit those limits.
//!
//! The parent bounds what it gets back: the worker runs in a process group of its own that is
//! killed, whole, at the file's deadline; at most [`WorkerLimits::output_bytes`] of its stdout
//! are read (a longer reply is cut and the file fails); a worker that dies of its limits is
//! reported as such (out of memory, out of CPU time).
//!
//! [`run_tool`] runs one external program (an OCR step) under the same deadline, with a cap on
//! its output.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::human_bytes;
use crate::ocr::OcrJob;
use crate::pdf::{self, Extraction};
use crate::{Deadline, ParseError, Result, WorkerLimits};

/// The argument that makes the docent binary a worker.
pub const WORKER_ARG: &str = "__pdf-worker";
/// Longest job line a worker accepts.
const MAX_JOB_LINE: u64 = 64 * 1024;
/// How much of a worker's or tool's stderr is kept (to explain a failure).
const STDERR_KEEP: u64 = 8 * 1024;
/// Seconds of CPU time the worker gets beyond the wall-clock time it has left.
const CPU_SLACK_SECS: u64 = 2;

/// What a worker is asked to do: the first line of its stdin, as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    pub kind: JobKind,
    /// `RLIMIT_AS` in bytes; 0 leaves it alone.
    pub memory_bytes: u64,
    /// `RLIMIT_CPU` in seconds; 0 leaves it alone.
    pub cpu_secs: u64,
    /// Milliseconds the job has (the worker stops starting OCR steps after that).
    pub time_ms: u64,
    /// OCR settings, when OCR can run.
    pub ocr: Option<OcrJob>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum JobKind {
    Pdf,
    Image,
}

/// Does one job in this process (the worker's body, also used in-process).
pub(crate) fn run_job(
    kind: JobKind,
    bytes: &[u8],
    ocr: Option<&OcrJob>,
    until: Instant,
) -> Extraction {
    match kind {
        JobKind::Pdf => pdf::extract(bytes, ocr, until),
        JobKind::Image => crate::image::recognise(bytes, ocr, until),
    }
}

/// The entry point of the `__pdf-worker` subcommand: reads a job line and the file's bytes from
/// stdin, limits itself, does the job and writes one JSON reply to stdout. Returns the process
/// exit code: 0 when a reply was written (whatever it says), 2 when stdin could not be read, 3
/// when stdout could not be written.
pub fn worker_main() -> i32 {
    let mut stdin = std::io::stdin().lock();
    let mut line = Vec::new();
    if (&mut stdin)
        .take(MAX_JOB_LINE)
        .read_until(b'\n', &mut line)
        .is_err()
    {
        return 2;
    }
    let Ok(job) = serde_json::from_slice::<Job>(&line) else {
        return 2;
    };
    let started = Instant::now();
    let limited = apply_limits(job.memory_bytes, job.cpu_secs);
    let mut bytes = Vec::new();
    if stdin.read_to_end(&mut bytes).is_err() {
        return 2;
    }
    let reply = match limited {
        Err(detail) => Extraction::Crashed {
            detail: format!("could not limit the worker: {detail}"),
        },
        Ok(()) => {
            pdf::quiet_extraction_panics();
            let until = started + Duration::from_millis(job.time_ms);
            std::thread::Builder::new()
                .name(pdf::THREAD_NAME.to_string())
                .stack_size(pdf::STACK_SIZE)
                .spawn(move || run_job(job.kind, &bytes, job.ocr.as_ref(), until))
                .map_err(|e| format!("could not start the extraction thread: {e}"))
                .and_then(|handle| {
                    handle
                        .join()
                        .map_err(|_| "the text extractor panicked".to_string())
                })
                .unwrap_or_else(|detail| Extraction::Crashed { detail })
        }
    };
    let mut out = std::io::stdout().lock();
    match serde_json::to_writer(&mut out, &reply) {
        Ok(()) if out.write_all(b"\n").and_then(|()| out.flush()).is_ok() => 0,
        _ => 3,
    }
}

/// Sets `RLIMIT_AS` and `RLIMIT_CPU` on this process (never above the current hard limits).
#[cfg(unix)]
pub(crate) fn apply_limits(memory_bytes: u64, cpu_secs: u64) -> std::result::Result<(), String> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    for (resource, soft, hard, name) in [
        (Resource::As, memory_bytes, memory_bytes, "memory"),
        (
            Resource::Cpu,
            cpu_secs,
            cpu_secs.saturating_add(1),
            "CPU time",
        ),
    ] {
        if soft == 0 {
            continue;
        }
        let max = getrlimit(resource).maximum;
        let cap = |v: u64| max.map_or(v, |m| v.min(m));
        setrlimit(
            resource,
            Rlimit {
                current: Some(cap(soft)),
                maximum: Some(cap(hard)),
            },
        )
        .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn apply_limits(_memory_bytes: u64, _cpu_secs: u64) -> std::result::Result<(), String> {
    Ok(())
}

/// Runs `exe __pdf-worker` on `bytes` and reads its reply, within `deadline` and `limits`.
pub(crate) fn run_worker(
    path: &Path,
    exe: &Path,
    kind: JobKind,
    bytes: &[u8],
    ocr: Option<OcrJob>,
    limits: &WorkerLimits,
    deadline: Deadline,
) -> Result<Extraction> {
    let what = match kind {
        JobKind::Pdf => "PDF",
        JobKind::Image => "image",
    };
    let crashed = |detail: String| ParseError::Crashed {
        path: path.to_path_buf(),
        format: what,
        detail,
    };
    if deadline.passed() {
        return Err(deadline.timeout(path));
    }
    let remaining = deadline.remaining();
    let job = Job {
        kind,
        memory_bytes: limits.memory_bytes,
        cpu_secs: remaining.as_secs() + CPU_SLACK_SECS,
        time_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
        ocr,
    };
    let mut line = serde_json::to_vec(&job).map_err(|e| crashed(format!("bad job: {e}")))?;
    line.push(b'\n');
    let mut cmd = Command::new(exe);
    cmd.arg(WORKER_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // A group of its own, so that OCR programs it started die with it.
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(|e| {
        crashed(format!(
            "could not start the PDF worker {}: {e}",
            exe.display()
        ))
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        let owned = bytes.to_vec();
        std::thread::spawn(move || {
            // A worker that exits early closes the pipe; its reply says why.
            let _ = stdin
                .write_all(&line)
                .and_then(|()| stdin.write_all(&owned));
        });
    }
    let pipes = Pipes::start(&mut child, limits.output_bytes);
    let output = match pipes.stdout.recv_timeout(deadline.remaining()) {
        Ok(out) => out,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            kill_tree(&mut child);
            return Err(deadline.timeout(path));
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Vec::new(),
    };
    if output.len() as u64 > limits.output_bytes {
        kill_tree(&mut child);
        return Err(crashed(format!(
            "its reply passed the limit of {} and was cut",
            human_bytes(limits.output_bytes)
        )));
    }
    let Some(status) = wait_until(&mut child, deadline.at()) else {
        kill_tree(&mut child);
        return Err(deadline.timeout(path));
    };
    if let Ok(reply) = serde_json::from_slice::<Extraction>(&output) {
        return Ok(reply);
    }
    let stderr = pipes.stderr_text();
    Err(crashed(explain_exit(status, &stderr, limits, job.cpu_secs)))
}

/// Why a worker that gave no reply died, for people.
fn explain_exit(status: ExitStatus, stderr: &str, limits: &WorkerLimits, cpu_secs: u64) -> String {
    let memory = human_bytes(limits.memory_bytes);
    if stderr.contains("memory allocation of") || stderr.contains("out of memory") {
        return format!("it ran out of memory (limit {memory})");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        match status.signal() {
            // SIGXCPU
            Some(24) => return format!("it used up its CPU time ({cpu_secs} s)"),
            // SIGABRT: Rust aborts when an allocation fails under the memory limit.
            Some(6) => return format!("it aborted (most likely out of memory, limit {memory})"),
            Some(9) => return "it was killed (SIGKILL)".to_string(),
            Some(sig) => return format!("the PDF worker died of signal {sig}"),
            None => {}
        }
    }
    let _ = cpu_secs;
    if status.success() {
        "the PDF worker gave no answer".to_string()
    } else {
        format!("the PDF worker exited with {status}")
    }
}

/// Threads draining a child's stdout (up to a cap) and stderr (its start kept).
struct Pipes {
    stdout: mpsc::Receiver<Vec<u8>>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Pipes {
    /// Reads at most `cap + 1` bytes of stdout (so that a reply over the cap is seen as such)
    /// and keeps the first [`STDERR_KEEP`] bytes of stderr, discarding the rest.
    fn start(child: &mut Child, cap: u64) -> Pipes {
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let _ = stdout.take(cap.saturating_add(1)).read_to_end(&mut out);
                let _ = tx.send(out);
            });
        } else {
            drop(tx);
        }
        let stderr = child.stderr.take().map(|mut stderr| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let _ = (&mut stderr).take(STDERR_KEEP).read_to_end(&mut kept);
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
                kept
            })
        });
        Pipes { stdout: rx, stderr }
    }

    /// The kept start of stderr (once the child has exited).
    fn stderr_text(self) -> String {
        self.stderr
            .and_then(|h| h.join().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

/// Waits for `child` to exit until `until`; `None` when it is still running then.
fn wait_until(child: &mut Child, until: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Kills a worker and everything in its process group, and reaps it.
fn kill_tree(child: &mut Child) {
    #[cfg(unix)]
    {
        let pid = rustix::process::Pid::from_child(child);
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// How running an external program went wrong.
#[derive(Debug)]
pub(crate) enum ToolError {
    /// It could not be started.
    Start(String),
    /// It ran past the deadline and was killed.
    Timeout,
    /// It wrote more than the cap and was killed.
    TooMuchOutput(u64),
    /// It exited with a failure; the start of its stderr.
    Failed(String),
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolError::Start(e) => write!(f, "could not be started: {e}"),
            ToolError::Timeout => f.write_str("ran out of time"),
            ToolError::TooMuchOutput(cap) => {
                write!(f, "wrote more than {} and was stopped", human_bytes(*cap))
            }
            ToolError::Failed(why) => f.write_str(why),
        }
    }
}

/// Runs `cmd` (stdin closed) until it exits or `until` passes, keeping at most `cap` bytes of
/// its stdout. Returns its stdout.
pub(crate) fn run_tool(
    cmd: &mut Command,
    until: Instant,
    cap: u64,
) -> std::result::Result<Vec<u8>, ToolError> {
    if Instant::now() >= until {
        return Err(ToolError::Timeout);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ToolError::Start(e.to_string()))?;
    let pipes = Pipes::start(&mut child, cap);
    let wait = until.saturating_duration_since(Instant::now());
    let output = match pipes.stdout.recv_timeout(wait) {
        Ok(out) => out,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            kill_tree_of_tool(&mut child);
            return Err(ToolError::Timeout);
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Vec::new(),
    };
    if output.len() as u64 > cap {
        kill_tree_of_tool(&mut child);
        return Err(ToolError::TooMuchOutput(cap));
    }
    let Some(status) = wait_until(&mut child, until) else {
        kill_tree_of_tool(&mut child);
        return Err(ToolError::Timeout);
    };
    if status.success() {
        return Ok(output);
    }
    let stderr = pipes.stderr_text();
    let last = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .to_string();
    let why = if last.is_empty() {
        format!("exited with {status}")
    } else {
        format!("exited with {status}: {}", truncate(&last, 160))
    };
    Err(ToolError::Failed(why))
}

/// Tools run in their caller's process group; only the tool itself is killed.
fn kill_tree_of_tool(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}
