//! The watched folders (`docent folders add|remove|list`), kept in `<data dir>/folders.json`.

use std::path::{Path, PathBuf};

use crate::{DaemonError, Result};

/// The folders the daemon watches, absolute and without duplicates or nesting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Folders {
    pub list: Vec<PathBuf>,
}

impl Folders {
    pub const FILE: &'static str = "folders.json";

    pub fn file(data_dir: &Path) -> PathBuf {
        data_dir.join(Self::FILE)
    }

    /// The saved list; empty when there is none yet.
    pub fn load(data_dir: &Path) -> Result<Self> {
        let path = Self::file(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let list: Vec<PathBuf> =
                    serde_json::from_slice(&bytes).map_err(|e| DaemonError::Damaged {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                Ok(Folders { list })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Folders::default()),
            Err(source) => Err(DaemonError::Io { path, source }),
        }
    }

    /// Writes the list atomically (temp file, then rename).
    pub fn save(&self, data_dir: &Path) -> Result<()> {
        let path = Self::file(data_dir);
        let io = |source| DaemonError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let bytes = serde_json::to_vec_pretty(&self.list).map_err(|e| DaemonError::Damaged {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Adds an absolute folder. Returns false when it (or a folder containing it) is already
    /// watched; folders inside the new one are dropped from the list (the new one covers them).
    pub fn add(&mut self, dir: PathBuf) -> bool {
        if self.list.iter().any(|f| dir.starts_with(f)) {
            return false;
        }
        self.list.retain(|f| !f.starts_with(&dir));
        self.list.push(dir);
        self.list.sort();
        true
    }

    /// Removes a folder; false when it was not in the list.
    pub fn remove(&mut self, dir: &Path) -> bool {
        let before = self.list.len();
        self.list.retain(|f| f != dir);
        self.list.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_folders_are_covered_once_and_the_list_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let mut f = Folders::load(d.path()).unwrap();
        assert!(f.list.is_empty());
        assert!(f.add("/a/b".into()));
        assert!(!f.add("/a/b/c".into()), "inside a watched folder");
        assert!(f.add("/a".into()));
        assert_eq!(f.list, vec![PathBuf::from("/a")], "/a covers /a/b");
        assert!(f.add("/z".into()));
        f.save(d.path()).unwrap();
        let g = Folders::load(d.path()).unwrap();
        assert_eq!(f, g);
        let mut g = g;
        assert!(g.remove(Path::new("/a")));
        assert!(!g.remove(Path::new("/a")));
        std::fs::write(Folders::file(d.path()), "{not json").unwrap();
        let err = Folders::load(d.path()).unwrap_err().to_string();
        assert!(
            err.contains("folders.json") && err.contains("hint:"),
            "{err}"
        );
    }
}
