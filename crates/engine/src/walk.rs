//! Discovery: the files under the folders a user asked for.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Settings for a walk.
#[derive(Clone, Debug, Default)]
pub struct WalkOptions {
    /// Visit hidden files and folders (names starting with a dot).
    pub include_hidden: bool,
    /// Follow symbolic links (loops are detected and reported, not followed forever).
    pub follow_symlinks: bool,
    /// Folders never to enter (docent's own data directory, when it lies under a root).
    pub exclude: Vec<PathBuf>,
}

/// A file found by the walk, with what its metadata said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch (0 when the OS gives none).
    pub mtime_ns: i128,
}

/// Something the walk could not look at, named by path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkIssue {
    pub path: PathBuf,
    pub message: String,
    /// The issue hides a whole folder (records under it must not be taken as deleted).
    pub is_dir: bool,
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Files, sorted by path.
    pub files: Vec<Found>,
    pub issues: Vec<WalkIssue>,
}

/// Modification time of `meta` in nanoseconds since the Unix epoch.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Walks `roots` (folders or single files, absolute) recursively. Honours `.gitignore` (also
/// outside git repositories), `.ignore` and `.docentignore`; skips hidden entries unless asked.
/// Never fails as a whole: unreadable folders, symlink loops and files that vanish mid-walk are
/// reported per path in [`Walk::issues`].
pub fn walk(roots: &[PathBuf], opts: &WalkOptions) -> Walk {
    let mut out = Walk::default();
    let Some((first, rest)) = roots.split_first() else {
        return out;
    };
    let mut b = builder(first, opts);
    for r in rest {
        b.add(r);
    }
    collect(b, &mut out);
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out.files.dedup_by(|a, b| a.path == b.path);
    out
}

/// Like [`walk`], for paths named by change events: folders are walked whole; a single file is
/// looked at through its parent folder, so that the ignore files above it (`.gitignore`,
/// `.docentignore`) decide about it exactly as a full walk would. Paths that no longer exist are
/// left out (the caller treats them as removed).
pub fn walk_targets(targets: &[PathBuf], opts: &WalkOptions) -> Walk {
    let mut dirs = Vec::new();
    let mut out = Walk::default();
    for t in targets {
        let meta = if opts.follow_symlinks {
            std::fs::metadata(t)
        } else {
            std::fs::symlink_metadata(t)
        };
        let Ok(meta) = meta else { continue };
        if meta.is_dir() {
            dirs.push(t.clone());
            continue;
        }
        let (Some(parent), Some(name)) = (t.parent(), t.file_name()) else {
            continue;
        };
        let name = name.to_os_string();
        let mut b = builder(parent, opts);
        b.max_depth(Some(1));
        b.filter_entry(move |e| e.depth() == 0 || e.file_name() == name.as_os_str());
        collect(b, &mut out);
    }
    let whole = walk(&dirs, opts);
    out.files.extend(whole.files);
    out.issues.extend(whole.issues);
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out.files.dedup_by(|a, b| a.path == b.path);
    out
}

/// Whether `path` lies in a hidden file or folder below `root` (a name starting with a dot),
/// which a walk with default options never visits.
pub fn is_hidden_below(root: &Path, path: &Path) -> bool {
    path.strip_prefix(root).is_ok_and(|rel| {
        rel.components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
    })
}

fn builder(root: &Path, opts: &WalkOptions) -> ignore::WalkBuilder {
    let mut b = ignore::WalkBuilder::new(root);
    let exclude = opts.exclude.clone();
    b.hidden(!opts.include_hidden)
        .ignore(true)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .parents(true)
        .follow_links(opts.follow_symlinks)
        .add_custom_ignore_filename(".docentignore")
        .filter_entry(move |e| !exclude.iter().any(|x| e.path().starts_with(x)));
    b
}

fn collect(b: ignore::WalkBuilder, out: &mut Walk) {
    for entry in b.build() {
        match entry {
            Ok(e) => {
                let is_file = e.file_type().is_some_and(|t| t.is_file())
                    || (e.path_is_symlink() && e.path().is_file());
                if !is_file {
                    continue;
                }
                match e.metadata() {
                    Ok(meta) => out.files.push(Found {
                        path: e.path().to_path_buf(),
                        size: meta.len(),
                        mtime_ns: mtime_ns(&meta),
                    }),
                    Err(err) => out.issues.push(issue(err, Some(e.path()))),
                }
            }
            Err(err) => out.issues.push(issue(err, None)),
        }
    }
}

fn issue(err: ignore::Error, fallback: Option<&Path>) -> WalkIssue {
    let (path, message) = describe(&err);
    let path = path
        .or_else(|| fallback.map(Path::to_path_buf))
        .unwrap_or_default();
    let is_dir = path.is_dir() || matches!(strip_depth(&err), ignore::Error::Loop { .. });
    WalkIssue {
        path,
        message,
        is_dir,
    }
}

fn strip_depth(err: &ignore::Error) -> &ignore::Error {
    match err {
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            strip_depth(err)
        }
        other => other,
    }
}

/// The path an ignore error is about, and a message for people.
fn describe(err: &ignore::Error) -> (Option<PathBuf>, String) {
    match err {
        ignore::Error::WithPath { path, err } => {
            let (_, msg) = describe(err);
            (Some(path.clone()), msg)
        }
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            describe(err)
        }
        ignore::Error::Loop { ancestor, child } => (
            Some(child.clone()),
            format!("symbolic link loop (points back to {})", ancestor.display()),
        ),
        ignore::Error::Io(e) => (None, io_message(e)),
        ignore::Error::Partial(errs) => match errs.first() {
            Some(e) => describe(e),
            None => (None, "unknown error".into()),
        },
        other => (None, other.to_string()),
    }
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::NotFound => "vanished while being read".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn names(w: &Walk, root: &Path) -> Vec<String> {
        w.files
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn honours_ignore_files_and_hidden() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("a/.hidden")).unwrap();
        fs::create_dir_all(root.join("drafts")).unwrap();
        fs::write(root.join("a/x.md"), "x").unwrap();
        fs::write(root.join("a/.hidden/y.md"), "y").unwrap();
        fs::write(root.join("drafts/z.md"), "z").unwrap();
        fs::write(root.join("skip.log"), "l").unwrap();
        fs::write(root.join("private.txt"), "p").unwrap();
        fs::write(root.join(".gitignore"), "*.log\n").unwrap();
        fs::write(root.join(".docentignore"), "drafts/\n").unwrap();
        fs::write(root.join(".ignore"), "private.txt\n").unwrap();
        let w = walk(&[root.to_path_buf()], &WalkOptions::default());
        assert_eq!(names(&w, root), vec!["a/x.md"]);
        assert!(w.issues.is_empty());

        let w = walk(
            &[root.to_path_buf()],
            &WalkOptions {
                include_hidden: true,
                ..Default::default()
            },
        );
        assert!(names(&w, root).contains(&"a/.hidden/y.md".to_string()));
    }

    #[cfg(unix)]
    #[test]
    fn survives_symlink_loops() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("a")).unwrap();
        fs::write(root.join("a/x.md"), "x").unwrap();
        std::os::unix::fs::symlink(root, root.join("a/loop")).unwrap();
        let w = walk(
            &[root.to_path_buf()],
            &WalkOptions {
                follow_symlinks: true,
                ..Default::default()
            },
        );
        assert_eq!(names(&w, root), vec!["a/x.md"]);
        assert_eq!(w.issues.len(), 1, "{:?}", w.issues);
        assert!(w.issues[0].message.contains("loop"));
    }

    #[test]
    fn excluded_folders_and_single_files() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("data")).unwrap();
        fs::write(root.join("data/m.md"), "m").unwrap();
        fs::write(root.join("n.md"), "n").unwrap();
        let w = walk(
            &[root.to_path_buf()],
            &WalkOptions {
                exclude: vec![root.join("data")],
                ..Default::default()
            },
        );
        assert_eq!(names(&w, root), vec!["n.md"]);
        let w = walk(&[root.join("n.md")], &WalkOptions::default());
        assert_eq!(w.files.len(), 1);
    }

    #[test]
    fn targets_follow_the_same_rules_as_a_walk() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join(".gitignore"), "*.log\n").unwrap();
        fs::write(root.join("sub/a.md"), "a").unwrap();
        fs::write(root.join("sub/b.log"), "b").unwrap();
        fs::write(root.join("sub/c.md"), "c").unwrap();
        let targets = vec![
            root.join("sub/a.md"),
            root.join("sub/b.log"),
            root.join("gone.md"),
        ];
        let w = walk_targets(&targets, &WalkOptions::default());
        assert_eq!(names(&w, root), vec!["sub/a.md"]);
        let w = walk_targets(&[root.join("sub")], &WalkOptions::default());
        assert_eq!(names(&w, root), vec!["sub/a.md", "sub/c.md"]);
        assert!(is_hidden_below(root, &root.join("sub/.a.md.swp")));
        assert!(is_hidden_below(root, &root.join(".git/x")));
        assert!(!is_hidden_below(root, &root.join("sub/a.md")));
    }
}
