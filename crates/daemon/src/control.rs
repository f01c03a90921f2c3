//! The control socket: one JSON request and one JSON reply per connection, each a single line.
//! The socket lives in `<data dir>/daemon/` (a folder only its owner can enter) and is itself
//! owner-only.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{DaemonError, Result};

/// What a client may ask.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// The live state.
    Status,
    /// Index these files or folders now (what `docent index` does on its own); the reply
    /// comes when it is done.
    Index {
        paths: Vec<PathBuf>,
    },
    /// Stop reading new files until `resume`.
    Pause,
    Resume,
    /// Read the watched folders again (after `docent folders add|remove`).
    Reload,
    /// Finish the current batch and exit.
    Stop,
}

/// The daemon's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Status {
        state: LiveState,
    },
    /// The summary of an index request (an `IngestSummary` as JSON).
    Indexed {
        summary: serde_json::Value,
    },
    Ok,
    Error {
        message: String,
    },
}

/// What only the running daemon knows (counts of files and chunks come from the manifest).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LiveState {
    pub pid: u32,
    /// Unix seconds.
    pub started_at: i64,
    /// Watched folders, each with how it is watched ("events" or "poll").
    pub folders: Vec<WatchedFolder>,
    /// "starting", "reconciling", "indexing" or "idle".
    pub phase: String,
    pub paused: bool,
    /// Files waiting: changed paths not yet applied plus files of the current run not yet read.
    pub queue: usize,
    /// The file read most recently in the current run.
    pub current: Option<String>,
    /// Unix seconds of the last change written to the index.
    pub last_update: Option<i64>,
    /// Index updates applied since start (each a batch of changed paths or a walk).
    pub updates: u64,
    pub embedder: String,
    /// Problems of the daemon itself (a folder that cannot be watched, a failed update).
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WatchedFolder {
    pub path: String,
    pub mode: String,
}

/// Sends one request and waits for the reply. `timeout` bounds each read and write; `None`
/// waits as long as the daemon works (an index request).
pub fn request(socket: &Path, req: &Request, timeout: Option<Duration>) -> Result<Reply> {
    let fail = |e: std::io::Error| DaemonError::Control(format!("{}: {e}", socket.display()));
    let mut stream = UnixStream::connect(socket).map_err(fail)?;
    stream.set_read_timeout(timeout).map_err(fail)?;
    stream.set_write_timeout(timeout).map_err(fail)?;
    let mut line = serde_json::to_string(req).map_err(|e| DaemonError::Control(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(fail)?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).map_err(fail)?;
    if reply.trim().is_empty() {
        return Err(DaemonError::Control(
            "the connection closed without a reply".into(),
        ));
    }
    serde_json::from_str(&reply).map_err(|e| DaemonError::Control(format!("bad reply: {e}")))
}

/// Binds the socket. A socket file left by a dead daemon is replaced; one that answers belongs
/// to a running daemon, which is an error.
pub fn bind(socket: &Path) -> Result<UnixListener> {
    let io = |source| DaemonError::Io {
        path: socket.to_path_buf(),
        source,
    };
    if socket.exists() {
        if UnixStream::connect(socket).is_ok() {
            return Err(DaemonError::Control(format!(
                "{}: another daemon is listening\nhint: `docent daemon status`",
                socket.display()
            )));
        }
        std::fs::remove_file(socket).map_err(io)?;
    }
    let listener = UnixListener::bind(socket).map_err(io)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(listener)
}

/// Reads one request from an accepted connection.
pub fn read_request(stream: &UnixStream) -> std::result::Result<Request, String> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    let mut reader = BufReader::new(stream);
    // Bounded: a request is small; a client sending megabytes is refused.
    let mut limited = (&mut reader).take(1 << 20);
    limited
        .read_line(&mut line)
        .map_err(|e| format!("reading the request: {e}"))?;
    serde_json::from_str(&line).map_err(|e| format!("not a request: {e}"))
}

/// Writes one reply; a client that went away is not an error worth reporting.
pub fn write_reply(mut stream: &UnixStream, reply: &Reply) {
    if let Ok(mut line) = serde_json::to_string(reply) {
        line.push('\n');
        let _ = stream.write_all(line.as_bytes());
    }
}

use std::io::Read as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_and_a_stale_socket_is_replaced() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("c.sock");
        std::fs::write(&sock, "").unwrap(); // stale leftover (not a socket)
        let listener = bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let req = read_request(&s).unwrap();
            assert_eq!(
                req,
                Request::Index {
                    paths: vec!["/x".into()]
                }
            );
            write_reply(&s, &Reply::Ok);
            listener
        });
        let reply = request(
            &sock,
            &Request::Index {
                paths: vec!["/x".into()],
            },
            Some(Duration::from_secs(5)),
        )
        .unwrap();
        assert!(matches!(reply, Reply::Ok));
        let _listener = server.join().unwrap();
        let err = bind(&sock).unwrap_err().to_string();
        assert!(err.contains("another daemon"), "{err}");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
