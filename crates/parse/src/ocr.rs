//! Optical character recognition with Tesseract's command-line program.
//!
//! Scanned PDF pages are rendered to greyscale images with poppler's `pdftoppm` (at
//! [`OcrOptions::dpi`], lowered for pages so large that they would pass
//! [`OcrOptions::max_pixels`]) and recognised with `tesseract … tsv`, which gives every word with
//! its confidence. Images are handed to `tesseract` as they are (it reads PNG, JPEG and
//! multi-page TIFF).
//!
//! Why programs and not a library binding: a binding to `libtesseract`/`libpoppler` would add a
//! C toolchain dependency and minutes to every cold build, for a feature that many users never
//! need; the programs are found on `PATH` at run time (and cached), so docent builds and runs
//! without them and says, per file, what to install ([`SkipReason::NeedsOcr`]). Running them as
//! child processes also puts them under the worker's limits (time, memory) for free.
//!
//! Rendered pages are handed to Tesseract without a resolution hint: measured on the skewed,
//! speckled contract page, its own estimate read better (character error rate 4.2%) than
//! `--dpi 300` (5.3%).
//!
//! Words that Tesseract is less than [`OcrOptions::min_confidence`] sure of are left out of the
//! text entirely: the text is what gets indexed, shown and quoted back when citations are
//! checked, and a misread word is worse there than a missing one. The default, 30, was measured
//! on the skewed and speckled scan of the contract: noise specks read as words score 0–10 and
//! go; real words read slightly wrong (`library:building`, 47) stay. At 60 the page's character
//! error rate doubled (2.1% → 4.2%) for lost real words; on the clean page every word scores
//! above 80 and the threshold changes nothing. Pages recognised with OCR are
//! listed in the document's metadata under [`docent_core::META_OCR_PAGES`].
//!
//! [`SkipReason::NeedsOcr`]: crate::SkipReason::NeedsOcr

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::OcrUnavailable;
use crate::worker::{ToolError, run_tool};

/// Most bytes read back from one `tesseract` run (its TSV of one image).
const TSV_CAP: u64 = 64 * 1024 * 1024;

/// OCR settings, resolved once by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct OcrOptions {
    pub enabled: bool,
    /// Tesseract language codes (`eng`, `deu`), tried together.
    pub languages: Vec<String>,
    /// Words recognised with less confidence than this (0–100) are left out of the text.
    pub min_confidence: f32,
    /// Resolution PDF pages are rendered at.
    pub dpi: u32,
    /// Largest image recognised, in pixels (width × height, per page); larger images are
    /// skipped as image bombs, larger PDF pages rendered at a lower resolution.
    pub max_pixels: u64,
    pub tools: OcrTools,
}

impl Default for OcrOptions {
    fn default() -> Self {
        OcrOptions {
            enabled: false,
            languages: vec!["eng".to_string()],
            min_confidence: 30.0,
            dpi: 300,
            max_pixels: 60_000_000,
            tools: OcrTools::OnPath,
        }
    }
}

/// Where the OCR programs are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OcrTools {
    /// Looked up on `PATH` once per process.
    OnPath,
    /// Given explicitly (`None`: not installed).
    Explicit {
        tesseract: Option<PathBuf>,
        pdftoppm: Option<PathBuf>,
    },
}

/// What a worker needs to run OCR: resolved programs and settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OcrJob {
    pub tesseract: PathBuf,
    /// Needed for PDF pages only.
    pub pdftoppm: Option<PathBuf>,
    /// `eng+deu`.
    pub languages: String,
    /// Tesseract's page segmentation mode: 1 (automatic, with orientation detection) when the
    /// `osd` data is installed, else 3.
    pub psm: u8,
    pub min_confidence: f32,
    pub dpi: u32,
    pub max_pixels: u64,
}

impl OcrOptions {
    /// The programs, or why OCR cannot run. `pdf` asks for `pdftoppm` too.
    pub fn job(&self, pdf: bool) -> Result<OcrJob, OcrUnavailable> {
        if !self.enabled {
            return Err(OcrUnavailable::Off);
        }
        let (tesseract, pdftoppm) = match &self.tools {
            OcrTools::OnPath => {
                let found = installed();
                (found.tesseract.clone(), found.pdftoppm.clone())
            }
            OcrTools::Explicit {
                tesseract,
                pdftoppm,
            } => (tesseract.clone(), pdftoppm.clone()),
        };
        let tesseract = tesseract.ok_or(OcrUnavailable::NotInstalled("tesseract"))?;
        if pdf && pdftoppm.is_none() {
            return Err(OcrUnavailable::NotInstalled("pdftoppm"));
        }
        let installed_langs = languages(&tesseract);
        let wanted: Vec<&str> = self
            .languages
            .iter()
            .map(String::as_str)
            .filter(|l| installed_langs.iter().any(|i| i == l))
            .collect();
        if wanted.is_empty() {
            return Err(OcrUnavailable::NotInstalled("tesseract-ocr-eng"));
        }
        let psm = if installed_langs.iter().any(|l| l == "osd") {
            1
        } else {
            3
        };
        Ok(OcrJob {
            tesseract,
            pdftoppm,
            languages: wanted.join("+"),
            psm,
            min_confidence: self.min_confidence,
            dpi: self.dpi,
            max_pixels: self.max_pixels,
        })
    }
}

/// The OCR programs found on `PATH`.
#[derive(Clone, Debug, Default)]
pub struct Installed {
    pub tesseract: Option<PathBuf>,
    pub pdftoppm: Option<PathBuf>,
}

/// Looks up `tesseract` and `pdftoppm` on `PATH`, once per process.
pub fn installed() -> &'static Installed {
    static FOUND: OnceLock<Installed> = OnceLock::new();
    FOUND.get_or_init(|| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        Installed {
            tesseract: find_on_path("tesseract", &path),
            pdftoppm: find_on_path("pdftoppm", &path),
        }
    })
}

/// The first executable file called `name` in the folders of `path` (a `PATH`-style list).
pub fn find_on_path(name: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .flat_map(|dir| {
            let plain = dir.join(name);
            let exe = dir.join(format!("{name}.exe"));
            [plain, exe]
        })
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// The language data installed for `tesseract` (`tesseract --list-langs`), cached per program.
pub fn languages(tesseract: &Path) -> Vec<String> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Vec<String>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Ok(map) = cache.lock()
        && let Some(langs) = map.get(tesseract)
    {
        return langs.clone();
    }
    let until = Instant::now() + std::time::Duration::from_secs(20);
    let langs = run_tool(
        Command::new(tesseract).arg("--list-langs"),
        until,
        1024 * 1024,
    )
    .map(|out| {
        String::from_utf8_lossy(&out)
            .lines()
            .skip_while(|l| !l.starts_with("List of available languages"))
            .skip(1)
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
    })
    .unwrap_or_default();
    if let Ok(mut map) = cache.lock() {
        map.insert(tesseract.to_path_buf(), langs.clone());
    }
    langs
}

/// Recognises the image file at `image` (all its pages, for a multi-page TIFF): page number
/// (from 1) → text.
pub(crate) fn recognise_file(
    job: &OcrJob,
    image: &Path,
    until: Instant,
) -> Result<BTreeMap<u32, String>, String> {
    let mut cmd = Command::new(&job.tesseract);
    cmd.arg(image)
        .arg("stdout")
        .arg("-l")
        .arg(&job.languages)
        .arg("--psm")
        .arg(job.psm.to_string())
        .arg("tsv")
        // One thread per page: parallelism comes from parsing several files at once.
        .env("OMP_THREAD_LIMIT", "1");
    let tsv = run_tool(&mut cmd, until, TSV_CAP).map_err(|e| match e {
        ToolError::Failed(why) => format!("tesseract could not read it ({why})"),
        other => format!("tesseract {other}"),
    })?;
    Ok(words_to_text(
        &String::from_utf8_lossy(&tsv),
        job.min_confidence,
    ))
}

/// Renders page `page` (from 1) of the PDF at `pdf` to a greyscale image `<out>.pgm` at `dpi`.
pub(crate) fn render_page(
    job: &OcrJob,
    pdf: &Path,
    page: u32,
    dpi: u32,
    out: &Path,
    until: Instant,
) -> Result<PathBuf, String> {
    let Some(pdftoppm) = &job.pdftoppm else {
        return Err("pdftoppm is not installed".to_string());
    };
    let mut cmd = Command::new(pdftoppm);
    cmd.arg("-f")
        .arg(page.to_string())
        .arg("-l")
        .arg(page.to_string())
        .arg("-r")
        .arg(dpi.to_string())
        .arg("-gray")
        .arg("-singlefile")
        .arg(pdf)
        .arg(out);
    run_tool(&mut cmd, until, 1024 * 1024).map_err(|e| format!("pdftoppm {e}"))?;
    let image = out.with_extension("pgm");
    if image.is_file() {
        Ok(image)
    } else {
        Err("pdftoppm wrote no image".to_string())
    }
}

/// Tesseract's TSV (level, page, block, paragraph, line, word, box, confidence, text) → text per
/// page: words of a line joined by spaces, lines by newlines, paragraphs by blank lines. Words
/// below `min_confidence` are left out.
pub(crate) fn words_to_text(tsv: &str, min_confidence: f32) -> BTreeMap<u32, String> {
    let mut pages: BTreeMap<u32, String> = BTreeMap::new();
    let mut last: Option<(u32, u32, u32, u32)> = None;
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() < 12 || cols[0] != "5" {
            continue;
        }
        let num = |i: usize| cols[i].trim().parse::<u32>().unwrap_or(0);
        let (page, block, par, line) = (num(1).max(1), num(2), num(3), num(4));
        let conf: f32 = cols[10].trim().parse().unwrap_or(-1.0);
        let word = cols[11..].join("\t");
        let word = word.trim();
        if word.is_empty() || conf < min_confidence {
            continue;
        }
        let text = pages.entry(page).or_default();
        match last {
            Some((p, b, q, l)) if p == page && b == block && q == par && l == line => {
                text.push(' ')
            }
            Some((p, b, q, _)) if p == page && b == block && q == par => text.push('\n'),
            Some((p, ..)) if p == page => text.push_str("\n\n"),
            _ => {}
        }
        text.push_str(word);
        last = Some((page, block, par, line));
    }
    pages
}

/// True when a page's extracted text is too little or too broken to index, so the page should be
/// recognised instead: fewer than [`MIN_PAGE_CHARS`] visible characters, or at least half of
/// them private-use, replacement or control characters (a font without a Unicode map).
pub(crate) fn page_needs_ocr(raw: &str) -> bool {
    let mut visible = 0usize;
    let mut bad = 0usize;
    for c in raw.chars().filter(|c| !c.is_whitespace()) {
        visible += 1;
        let cp = c as u32;
        if c == '\u{fffd}'
            || c.is_control()
            || (0xE000..=0xF8FF).contains(&cp)
            || (0xF0000..=0x10FFFD).contains(&cp)
        {
            bad += 1;
        }
    }
    visible < MIN_PAGE_CHARS || bad * 2 >= visible
}

/// A PDF page with fewer visible characters than this in its text layer is treated as scanned.
/// On the sample corpus the sparsest text page has hundreds (`docent-parse`'s
/// `page_threshold_against_fixtures` test prints them); 16 still counts a page holding only a
/// page number, a Bates stamp or a scanner's footer as scanned, while a short real page
/// ("Intentionally left blank", a one-line heading) keeps its text layer.
pub const MIN_PAGE_CHARS: usize = 16;

/// A private folder for one job's temporary files, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> std::io::Result<TempDir> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut last_err = None;
        for _ in 0..8 {
            let name = format!(
                "docent-ocr-{}-{nanos}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let dir = std::env::temp_dir().join(name);
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                // Page images are document content: owner only.
                builder.mode(0o700);
            }
            match builder.create(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("no temporary folder")))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_to_text_by_line_and_paragraph_dropping_unsure_words() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t\n\
5\t1\t1\t1\t1\t1\t0\t0\t1\t1\t96.5\tThe\n\
5\t1\t1\t1\t1\t2\t0\t0\t1\t1\t91\tfee\n\
5\t1\t1\t1\t2\t1\t0\t0\t1\t1\t88\tis\n\
5\t1\t1\t1\t2\t2\t0\t0\t1\t1\t12\t~%#\n\
5\t1\t1\t2\t1\t1\t0\t0\t1\t1\t90\tNext\n\
5\t2\t1\t1\t1\t1\t0\t0\t1\t1\t90\tPage\n\
5\t2\t1\t1\t1\t2\t0\t0\t1\t1\t90\t \n";
        let pages = words_to_text(tsv, 60.0);
        assert_eq!(pages[&1], "The fee\nis\n\nNext");
        assert_eq!(pages[&2], "Page");
        assert_eq!(words_to_text(tsv, 0.0)[&1], "The fee\nis ~%#\n\nNext");
    }

    #[test]
    fn which_pages_need_ocr() {
        assert!(page_needs_ocr(""));
        assert!(page_needs_ocr("  \n 12 \n"));
        assert!(page_needs_ocr("Page 3 of 12"));
        assert!(!page_needs_ocr("Intentionally left blank"));
        // A font without a Unicode map: private-use code points.
        assert!(page_needs_ocr(&"\u{e001}\u{e002}\u{e003} ".repeat(20)));
        assert!(page_needs_ocr(&"\u{fffd}\u{fffd}ab ".repeat(20)));
        assert!(!page_needs_ocr(&"The fee is $184,500. ".repeat(5)));
    }

    #[test]
    fn lookup_on_a_path_without_the_program() {
        let dir = docent_test_support::tempdir();
        let path = std::env::join_paths([dir.path()]).unwrap();
        assert_eq!(find_on_path("tesseract", &path), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let exe = dir.path().join("tesseract");
            std::fs::write(&exe, "#!/bin/sh\n").unwrap();
            // Not executable: not found.
            assert_eq!(find_on_path("tesseract", &path), None);
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert_eq!(find_on_path("tesseract", &path), Some(exe));
        }
    }

    #[test]
    fn unavailable_reasons() {
        let off = OcrOptions::default();
        assert_eq!(off.job(true), Err(OcrUnavailable::Off));
        let missing = OcrOptions {
            enabled: true,
            tools: OcrTools::Explicit {
                tesseract: None,
                pdftoppm: None,
            },
            ..OcrOptions::default()
        };
        assert_eq!(
            missing.job(false),
            Err(OcrUnavailable::NotInstalled("tesseract"))
        );
        let no_poppler = OcrOptions {
            tools: OcrTools::Explicit {
                tesseract: Some(PathBuf::from("/bin/true")),
                pdftoppm: None,
            },
            ..missing
        };
        assert_eq!(
            no_poppler.job(true),
            Err(OcrUnavailable::NotInstalled("pdftoppm"))
        );
    }
}
