//! Folders and files private to their owner.
//!
//! The data directory holds the full text of the user's documents and mail (in the manifest's
//! paths, LanceDB's table and tantivy's index), so it is created `0700` and the files docent
//! opens itself (`manifest.sqlite3`, from which SQLite copies the mode to its `-wal` and `-shm`
//! files, and `write.lock`) are created `0600`, whatever the caller's umask. An existing data
//! directory that others can read or enter is tightened to `0700` when it is opened.
//!
//! The files LanceDB and tantivy write are created by those libraries with the process's
//! umask; nothing here can set their mode. They are covered twice instead: the `docent` binary
//! sets its umask to `077` before it does anything, and the `0700` directory above them keeps
//! every other user out even where a library user's umask is looser.

use std::io;
use std::path::Path;

/// The mode of a private folder.
pub const DIR_MODE: u32 = 0o700;
/// The mode of a private file.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and any missing parents) as a private folder, or tightens an existing one.
/// Returns the old permission bits when an existing folder was open to its group or others and
/// has been tightened to `0700`, so that the caller can warn.
pub fn private_dir(dir: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match std::fs::metadata(dir) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o7777;
                if meta.is_dir() && mode & 0o077 != 0 {
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
                    return Ok(Some(mode));
                }
                Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(dir)?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)?;
        Ok(None)
    }
}

/// Tightens an existing folder as [`private_dir`] does, creating nothing: `None` when it does
/// not exist or was private already.
pub fn tighten_dir(dir: &Path) -> io::Result<Option<u32>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    private_dir(dir)
}

/// Options that create a file `0600` (on Unix), whatever the umask.
pub(crate) fn private_file() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut o = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    o
}

/// Makes an existing file `0600` if others could read it; a missing file is no error.
pub(crate) fn tighten_file(file: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(FILE_MODE))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn an_open_data_directory_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(private_dir(&dir).unwrap(), Some(0o755));
        assert_eq!(mode(&dir), 0o700);
        // Once private, nothing more to say.
        assert_eq!(private_dir(&dir).unwrap(), None);
        assert_eq!(tighten_dir(&tmp.path().join("missing")).unwrap(), None);
        assert!(!tmp.path().join("missing").exists());
    }

    #[test]
    fn new_folders_and_files_are_private_whatever_the_umask() {
        // The test process's umask is usually 022; the modes are set explicitly regardless.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/data");
        assert_eq!(private_dir(&dir).unwrap(), None);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        let f = dir.join("f");
        private_file().write(true).create(true).open(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        let open = dir.join("open");
        std::fs::write(&open, "x").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        tighten_file(&open).unwrap();
        assert_eq!(mode(&open), 0o600);
    }

    #[test]
    fn the_manifest_and_the_lock_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _lock = crate::WriteLock::acquire(&data).unwrap();
        let m = crate::Manifest::open(&data).unwrap();
        drop(m);
        assert_eq!(mode(&data), 0o700);
        for entry in std::fs::read_dir(&data).unwrap() {
            let p = entry.unwrap().path();
            assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
        }
    }
}
