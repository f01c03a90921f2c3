//! Where the daemon keeps its pid file, log and socket.

use std::path::{Path, PathBuf};

/// `<data dir>/daemon/`: `docent.pid`, `daemon.log`, `control.sock`.
#[derive(Clone, Debug)]
pub struct DaemonPaths {
    pub dir: PathBuf,
    pub pid: PathBuf,
    pub log: PathBuf,
    pub socket: PathBuf,
}

impl DaemonPaths {
    pub fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("daemon");
        DaemonPaths {
            pid: dir.join("docent.pid"),
            log: dir.join("daemon.log"),
            socket: dir.join("control.sock"),
            dir,
        }
    }

    /// Creates the folder, readable by its owner only (the socket inside accepts commands).
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
}

/// The pid in a pid file, if the file exists and holds one.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether a process with this pid exists (signal 0).
pub fn alive(pid: i32) -> bool {
    match rustix::process::Pid::from_raw(pid) {
        Some(p) => match rustix::process::test_kill_process(p) {
            Ok(()) => true,
            // It exists but belongs to someone else.
            Err(e) => e == rustix::io::Errno::PERM,
        },
        None => false,
    }
}

/// Asks a process to stop (SIGTERM).
pub fn terminate(pid: i32) -> std::io::Result<()> {
    let p = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| std::io::Error::other(format!("invalid pid {pid}")))?;
    rustix::process::kill_process(p, rustix::process::Signal::TERM).map_err(std::io::Error::from)
}
