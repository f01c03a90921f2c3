//! Opening a source outside the interface: which program, with which arguments, so that the
//! user lands on the cited page or line. [`open_command`] is pure; the spawn itself is the
//! [`Backend`](crate::Backend)'s.

use std::path::{Path, PathBuf};

use docent_core::DocKind;

/// What to open: a file, and where in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenTarget {
    pub path: PathBuf,
    pub kind: DocKind,
    /// 1-based page, for PDFs.
    pub page: Option<u32>,
    /// 1-based line, for notes (for emails, lines count in the message body, not the file).
    pub line: Option<u32>,
    /// Set when the source is a part of the file (a message of a mailbox, an attachment).
    pub part: Option<String>,
}

/// The operating system's way of opening a file with its default application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// `xdg-open` (Linux, the BSDs).
    Unix,
    /// `open`.
    MacOs,
    /// `cmd /C start "" <file>`.
    Windows,
}

impl Platform {
    /// The platform this program was built for.
    pub fn current() -> Self {
        if cfg!(target_os = "macos") {
            Platform::MacOs
        } else if cfg!(windows) {
            Platform::Windows
        } else {
            Platform::Unix
        }
    }
}

/// The user's choices of programs, read once at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenEnv {
    /// `$VISUAL` or `$EDITOR`, with its arguments (`code --wait`).
    pub editor: Option<String>,
    /// A PDF viewer that can open at a page (`zathura`, `evince`, `okular`, `mupdf`, `sioyek`,
    /// `qpdfview`); `None` uses the system's default application.
    pub pdf_viewer: Option<String>,
    pub platform: Platform,
}

impl OpenEnv {
    /// `$VISUAL`, else `$EDITOR`; the current platform; no PDF viewer.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        OpenEnv {
            editor: var("VISUAL").or_else(|| var("EDITOR")),
            pdf_viewer: None,
            platform: Platform::current(),
        }
    }
}

/// A program to run, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenCommand {
    pub program: String,
    pub args: Vec<String>,
    /// True when the program runs in the terminal (a terminal editor): the interface hands the
    /// terminal over and waits for it to exit.
    pub terminal: bool,
    /// The file being opened (for messages to the user).
    pub path: PathBuf,
}

/// Editors that open a window of their own rather than using the terminal.
const GUI_EDITORS: &[&str] = &[
    "code",
    "codium",
    "code-insiders",
    "subl",
    "sublime_text",
    "gedit",
    "gnome-text-editor",
    "kate",
    "kwrite",
    "mate",
    "zed",
    "gvim",
    "mvim",
    "notepad++",
    "bbedit",
];

/// The command that opens `target`: a note at its line in the user's editor when one is set,
/// a PDF at its page in the configured viewer when one is set, anything else with the system's
/// default application.
pub fn open_command(target: &OpenTarget, env: &OpenEnv) -> OpenCommand {
    let path = target.path.clone();
    let file = path.to_string_lossy().into_owned();
    let whole_file = target.part.is_none();
    match target.kind {
        DocKind::Note | DocKind::Email if whole_file => {
            if let Some(editor) = env.editor.as_deref().and_then(split_command) {
                let line = if target.kind == DocKind::Note {
                    target.line
                } else {
                    None
                };
                return editor_command(editor, &file, line, path);
            }
        }
        DocKind::Pdf if whole_file => {
            if let Some(viewer) = env.pdf_viewer.as_deref().and_then(split_command) {
                return pdf_command(viewer, &file, target.page, path);
            }
        }
        _ => {}
    }
    system_command(env.platform, &file, path)
}

fn system_command(platform: Platform, file: &str, path: PathBuf) -> OpenCommand {
    let (program, args) = match platform {
        Platform::Unix => ("xdg-open", vec![file.to_string()]),
        Platform::MacOs => ("open", vec![file.to_string()]),
        Platform::Windows => (
            "cmd",
            vec!["/C".into(), "start".into(), String::new(), file.to_string()],
        ),
    };
    OpenCommand {
        program: program.into(),
        args,
        terminal: false,
        path,
    }
}

/// Splits a command line on whitespace (no shell quoting); `None` when empty.
fn split_command(s: &str) -> Option<(String, Vec<String>)> {
    let mut parts = s.split_whitespace().map(str::to_string);
    let program = parts.next()?;
    Some((program, parts.collect()))
}

/// The program's file name without directory or `.exe`, lowercased.
fn program_name(program: &str) -> String {
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    name.strip_suffix(".exe")
        .map(str::to_string)
        .unwrap_or(name)
}

fn editor_command(
    (program, mut args): (String, Vec<String>),
    file: &str,
    line: Option<u32>,
    path: PathBuf,
) -> OpenCommand {
    let name = program_name(&program);
    match (name.as_str(), line) {
        ("code" | "codium" | "code-insiders", Some(n)) => {
            args.push("--goto".into());
            args.push(format!("{file}:{n}"));
        }
        ("subl" | "sublime_text" | "hx" | "helix" | "zed", Some(n)) => {
            args.push(format!("{file}:{n}"));
        }
        ("kate" | "kwrite", Some(n)) => {
            args.extend(["--line".into(), n.to_string(), file.to_string()]);
        }
        ("gedit" | "gnome-text-editor", Some(n)) => {
            args.extend([format!("+{n}"), file.to_string()]);
        }
        // vi, vim, nvim, nano, emacs, micro, kak, ne, joe and most others take `+N`.
        (_, Some(n)) => {
            args.extend([format!("+{n}"), file.to_string()]);
        }
        (_, None) => args.push(file.to_string()),
    }
    OpenCommand {
        terminal: !GUI_EDITORS.contains(&name.as_str()),
        program,
        args,
        path,
    }
}

fn pdf_command(
    (program, mut args): (String, Vec<String>),
    file: &str,
    page: Option<u32>,
    path: PathBuf,
) -> OpenCommand {
    let name = program_name(&program);
    if let Some(p) = page {
        match name.as_str() {
            "zathura" | "okular" => args.extend(["--page".into(), p.to_string()]),
            "evince" => args.extend(["--page-index".into(), p.to_string()]),
            "sioyek" => args.extend(["--page".into(), p.to_string()]),
            "qpdfview" => {
                args.push(format!("{file}#{p}"));
                return OpenCommand {
                    program,
                    args,
                    terminal: false,
                    path,
                };
            }
            "mupdf" | "mupdf-gl" => {
                args.extend([file.to_string(), p.to_string()]);
                return OpenCommand {
                    program,
                    args,
                    terminal: false,
                    path,
                };
            }
            _ => {}
        }
    }
    args.push(file.to_string());
    OpenCommand {
        program,
        args,
        terminal: false,
        path,
    }
}

/// Runs an [`OpenCommand`]: waits for it when it needs the terminal, otherwise starts it and
/// lets it run on. A helper for [`Backend::open`](crate::Backend::open) implementations.
pub fn spawn(command: &OpenCommand) -> std::io::Result<()> {
    use std::process::{Command, Stdio};
    let mut c = Command::new(&command.program);
    c.args(&command.args);
    if command.terminal {
        let status = c.status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "`{}` exited with {status}",
                command.program
            )));
        }
    } else {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // The viewer outlives this call; its exit status is of no interest.
        let _child = c.spawn()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: DocKind, page: Option<u32>, line: Option<u32>) -> OpenTarget {
        OpenTarget {
            path: PathBuf::from("/home/a/My Docs/file.md"),
            kind,
            page,
            line,
            part: None,
        }
    }

    fn env(editor: Option<&str>, pdf: Option<&str>, platform: Platform) -> OpenEnv {
        OpenEnv {
            editor: editor.map(str::to_string),
            pdf_viewer: pdf.map(str::to_string),
            platform,
        }
    }

    fn argv(c: &OpenCommand) -> Vec<&str> {
        std::iter::once(c.program.as_str())
            .chain(c.args.iter().map(String::as_str))
            .collect()
    }

    #[test]
    fn notes_open_at_their_line_in_the_editor() {
        let t = target(DocKind::Note, None, Some(12));
        let c = open_command(&t, &env(Some("nvim"), None, Platform::Unix));
        assert_eq!(argv(&c), ["nvim", "+12", "/home/a/My Docs/file.md"]);
        assert!(c.terminal);

        let c = open_command(&t, &env(Some("code --wait"), None, Platform::Unix));
        assert_eq!(
            argv(&c),
            ["code", "--wait", "--goto", "/home/a/My Docs/file.md:12"]
        );
        assert!(!c.terminal);

        let c = open_command(&t, &env(Some("/usr/bin/hx"), None, Platform::Unix));
        assert_eq!(argv(&c), ["/usr/bin/hx", "/home/a/My Docs/file.md:12"]);
        assert!(c.terminal);

        let c = open_command(&t, &env(Some("kate"), None, Platform::Unix));
        assert_eq!(
            argv(&c),
            ["kate", "--line", "12", "/home/a/My Docs/file.md"]
        );
    }

    #[test]
    fn without_an_editor_the_system_opens_it() {
        let t = target(DocKind::Note, None, Some(3));
        let c = open_command(&t, &env(None, None, Platform::Unix));
        assert_eq!(argv(&c), ["xdg-open", "/home/a/My Docs/file.md"]);
        assert!(!c.terminal);
        let c = open_command(&t, &env(Some("  "), None, Platform::MacOs));
        assert_eq!(argv(&c), ["open", "/home/a/My Docs/file.md"]);
        let c = open_command(&t, &env(None, None, Platform::Windows));
        assert_eq!(
            argv(&c),
            ["cmd", "/C", "start", "", "/home/a/My Docs/file.md"]
        );
    }

    #[test]
    fn pdfs_open_at_their_page_in_a_known_viewer() {
        let t = target(DocKind::Pdf, Some(4), None);
        let c = open_command(&t, &env(Some("vim"), Some("zathura"), Platform::Unix));
        assert_eq!(
            argv(&c),
            ["zathura", "--page", "4", "/home/a/My Docs/file.md"]
        );
        let c = open_command(&t, &env(None, Some("evince"), Platform::Unix));
        assert_eq!(
            argv(&c),
            ["evince", "--page-index", "4", "/home/a/My Docs/file.md"]
        );
        let c = open_command(&t, &env(None, Some("mupdf"), Platform::Unix));
        assert_eq!(argv(&c), ["mupdf", "/home/a/My Docs/file.md", "4"]);
        // The editor never opens a PDF; without a viewer the system does.
        let c = open_command(&t, &env(Some("vim"), None, Platform::MacOs));
        assert_eq!(argv(&c), ["open", "/home/a/My Docs/file.md"]);
    }

    #[test]
    fn emails_and_parts() {
        // A mailbox opens in the editor, but body lines are not file lines: no `+N`.
        let t = target(DocKind::Email, None, Some(7));
        let c = open_command(&t, &env(Some("vim"), None, Platform::Unix));
        assert_eq!(argv(&c), ["vim", "/home/a/My Docs/file.md"]);
        // An attachment inside a message opens its container with the system.
        let mut t = target(DocKind::Pdf, Some(2), None);
        t.part = Some("message 1/attachment 1 a.pdf".into());
        let c = open_command(&t, &env(Some("vim"), Some("zathura"), Platform::Unix));
        assert_eq!(argv(&c), ["xdg-open", "/home/a/My Docs/file.md"]);
    }
}
