//! The single-writer lock of a data directory.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{Result, StoreError};

/// Held while a process writes to a data directory. The lock is an OS advisory lock on
/// `<data dir>/write.lock`, released when this value is dropped or the process dies, so a crash
/// never leaves a stale lock behind. The file holds the holder's pid for error messages.
#[derive(Debug)]
pub struct WriteLock {
    file: File,
    path: PathBuf,
}

impl WriteLock {
    pub const FILE: &'static str = "write.lock";

    /// Takes the lock, or fails at once with [`StoreError::Locked`] naming the holder's pid.
    pub fn acquire(data_dir: &Path) -> Result<Self> {
        crate::private::private_dir(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(Self::FILE);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        crate::private::tighten_file(&path).map_err(io)?;
        let mut file = crate::private::private_file()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim().to_string();
                return Err(StoreError::Locked {
                    path,
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(WriteLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who holds the lock of `data_dir` now, without keeping it: the OS lock is tested (a
    /// shared lock taken and dropped at once, so a writer starting in that instant is refused
    /// once with [`StoreError::Locked`]), and only when it is held is the pid in the file
    /// believed. A pid left in the file by a process that died is never reported.
    pub fn holder(data_dir: &Path) -> Result<LockHolder> {
        let path = data_dir.join(Self::FILE);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockHolder::Free),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                Ok(LockHolder::Free)
            }
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                Ok(LockHolder::Held {
                    pid: pid.trim().parse().ok(),
                })
            }
            Err(TryLockError::Error(source)) => Err(StoreError::Io { path, source }),
        }
    }
}

/// What [`WriteLock::holder`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockHolder {
    /// Nobody writes to the data directory.
    Free,
    /// A live process holds the lock; its pid, once it has written it.
    Held { pid: Option<u32> },
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_refused_until_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let first = WriteLock::acquire(dir.path()).unwrap();
        let err = WriteLock::acquire(dir.path()).unwrap_err();
        match &err {
            StoreError::Locked { pid, .. } => assert_eq!(pid, &std::process::id().to_string()),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("hint:"));
        drop(first);
        WriteLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_leftover_lock_file_is_not_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(WriteLock::FILE), "999999").unwrap();
        assert_eq!(WriteLock::holder(dir.path()).unwrap(), LockHolder::Free);
        WriteLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn the_holder_is_named_only_while_it_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(WriteLock::holder(dir.path()).unwrap(), LockHolder::Free);
        let lock = WriteLock::acquire(dir.path()).unwrap();
        assert_eq!(
            WriteLock::holder(dir.path()).unwrap(),
            LockHolder::Held {
                pid: Some(std::process::id())
            }
        );
        // Testing did not take the lock away from its holder.
        assert!(WriteLock::acquire(dir.path()).is_err());
        drop(lock);
        assert_eq!(WriteLock::holder(dir.path()).unwrap(), LockHolder::Free);
    }
}
