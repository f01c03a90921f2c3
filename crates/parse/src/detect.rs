use std::path::Path;

use serde::Serialize;

/// A file format docent parses. `name()` is what the manifest records as the parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Pdf,
    Markdown,
    Text,
    Eml,
    Mbox,
    Maildir,
    /// A scanned page or photograph (PNG, JPEG, TIFF), read with OCR.
    Image,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Markdown => "markdown",
            Format::Text => "text",
            Format::Eml => "eml",
            Format::Mbox => "mbox",
            Format::Maildir => "maildir",
            Format::Image => "image",
        }
    }

    /// Formats whose content is text (a binary file behind their extension is skipped).
    pub fn is_text(self) -> bool {
        !matches!(self, Format::Pdf | Format::Image)
    }
}

/// Chooses the format of a file from its path and its first bytes (up to 8 KiB). `None` means
/// docent does not read this kind of file.
///
/// - `.pdf`, or content starting with `%PDF-` → PDF
/// - `.md`, `.markdown` → Markdown; `.txt`, `.text`, `.rst`, `.org` → plain text
/// - `.eml` → one message; `.mbox`, or any file whose first line starts with `From ` → mbox
/// - a file in a folder named `cur` or `new` whose parent also has `cur`/`new`/`tmp` → Maildir
///   message
/// - `.png`, `.jpg`/`.jpeg`, `.tif`/`.tiff`, or content starting with a PNG, JPEG or TIFF
///   signature → image (read with OCR)
pub fn detect(path: &Path, head: &[u8]) -> Option<Format> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("pdf") => return Some(Format::Pdf),
        Some("md" | "markdown" | "mdown" | "mkd") => return Some(Format::Markdown),
        Some("eml") => return Some(Format::Eml),
        Some("mbox" | "mbx") => return Some(Format::Mbox),
        Some("png" | "jpg" | "jpeg" | "tif" | "tiff") => return Some(Format::Image),
        _ => {}
    }
    if head.starts_with(b"%PDF-") {
        return Some(Format::Pdf);
    }
    if head.starts_with(b"From ") {
        return Some(Format::Mbox);
    }
    if in_maildir(path) {
        return Some(Format::Maildir);
    }
    match ext.as_deref() {
        // A text extension wins over image content (which is then skipped as binary).
        Some("txt" | "text" | "rst" | "org" | "adoc" | "asciidoc") => Some(Format::Text),
        _ if crate::image::ImageType::sniff(head).is_some() => Some(Format::Image),
        _ => None,
    }
}

fn in_maildir(path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if name != "cur" && name != "new" {
        return false;
    }
    let Some(maildir) = dir.parent() else {
        return false;
    };
    ["cur", "new", "tmp"]
        .iter()
        .filter(|d| maildir.join(d).is_dir())
        .count()
        >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_extension_and_content() {
        assert_eq!(detect(Path::new("a.PDF"), b""), Some(Format::Pdf));
        assert_eq!(detect(Path::new("a.bin"), b"%PDF-1.7"), Some(Format::Pdf));
        assert_eq!(detect(Path::new("n.md"), b"# x"), Some(Format::Markdown));
        assert_eq!(detect(Path::new("n.org"), b"* x"), Some(Format::Text));
        assert_eq!(detect(Path::new("m.eml"), b""), Some(Format::Eml));
        assert_eq!(
            detect(Path::new("inbox"), b"From a@b Mon Jan  1 00:00:00 2024\n"),
            Some(Format::Mbox)
        );
        assert_eq!(detect(Path::new("photo.jpg"), b""), Some(Format::Image));
        assert_eq!(detect(Path::new("scan.TIFF"), b""), Some(Format::Image));
        assert_eq!(
            detect(Path::new("noext"), b"\x89PNG\r\n\x1a\n...."),
            Some(Format::Image)
        );
        assert_eq!(detect(Path::new("photo.gif"), b"GIF89a"), None);
        assert_eq!(detect(Path::new("README"), b"hello"), None);
    }
}
