//! Images of text: scanned pages and photographs (`.png`, `.jpg`/`.jpeg`, `.tif`/`.tiff`,
//! multi-page TIFF included), each a document of its own, read with OCR ([`crate::ocr`]).
//!
//! Before anything decodes the image, its header is read here for its size: an image larger
//! than [`OcrOptions::max_pixels`](crate::OcrOptions) (an image bomb: a small file claiming
//! 100,000 × 100,000 pixels) is skipped with [`SkipReason::ImageTooLarge`], and one whose
//! header cannot be read is [`ParseError::Corrupt`]. Recognition runs in the same isolation as
//! PDF extraction (the worker's time and memory limits). Without OCR the image is skipped as
//! [`SkipReason::NeedsOcr`].
//!
//! The document is of kind `pdf` (a paged document; there is no kind for images yet), parser
//! `image`, one page per TIFF page, every page listed in [`docent_core::META_OCR_PAGES`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use docent_core::{DocId, DocKind, Document};

use crate::ocr::{self, OcrJob};
use crate::pdf::{Extraction, paged_text};
use crate::text;
use crate::worker::{self, JobKind};
use crate::{Deadline, ParseError, ParseOptions, Parsed, PdfIsolation, Result, SkipReason};

/// Most pages read from a TIFF's header chain.
const MAX_TIFF_PAGES: usize = 10_000;

/// The image formats docent reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageType {
    Png,
    Jpeg,
    Tiff,
}

impl ImageType {
    /// The type from the file's first bytes.
    pub fn sniff(head: &[u8]) -> Option<ImageType> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageType::Png)
        } else if head.starts_with(b"\xff\xd8\xff") {
            Some(ImageType::Jpeg)
        } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
            Some(ImageType::Tiff)
        } else {
            None
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ImageType::Png => "png",
            ImageType::Jpeg => "jpg",
            ImageType::Tiff => "tif",
        }
    }
}

/// Width and height of each page of an image, from its header alone.
pub fn dimensions(bytes: &[u8]) -> std::result::Result<Vec<(u64, u64)>, String> {
    match ImageType::sniff(bytes) {
        Some(ImageType::Png) => png_size(bytes).map(|s| vec![s]),
        Some(ImageType::Jpeg) => jpeg_size(bytes).map(|s| vec![s]),
        Some(ImageType::Tiff) => tiff_sizes(bytes),
        None => Err("not a PNG, JPEG or TIFF image".to_string()),
    }
}

fn png_size(b: &[u8]) -> std::result::Result<(u64, u64), String> {
    // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4).
    if b.len() < 24 || &b[12..16] != b"IHDR" {
        return Err("its PNG header is missing".to_string());
    }
    let w = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
    let h = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
    Ok((u64::from(w), u64::from(h)))
}

fn jpeg_size(b: &[u8]) -> std::result::Result<(u64, u64), String> {
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xff {
            i += 1;
            continue;
        }
        let marker = b[i + 1];
        if marker == 0xff {
            i += 1;
            continue;
        }
        if marker == 0xd8 || marker == 0x01 || (0xd0..=0xd7).contains(&marker) {
            i += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        // Start-of-frame markers (not DHT, JPG, DAC).
        if matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            if i + 9 > b.len() {
                break;
            }
            let h = u16::from_be_bytes([b[i + 5], b[i + 6]]);
            let w = u16::from_be_bytes([b[i + 7], b[i + 8]]);
            return Ok((u64::from(w), u64::from(h)));
        }
        if marker == 0xd9 || marker == 0xda || len < 2 {
            break;
        }
        i += 2 + len;
    }
    Err("its JPEG header has no frame size".to_string())
}

fn tiff_sizes(b: &[u8]) -> std::result::Result<Vec<(u64, u64)>, String> {
    let little = b.starts_with(b"II");
    let u16_at = |o: usize| -> Option<u16> {
        let s = b.get(o..o + 2)?;
        Some(if little {
            u16::from_le_bytes([s[0], s[1]])
        } else {
            u16::from_be_bytes([s[0], s[1]])
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let s = b.get(o..o + 4)?;
        Some(if little {
            u32::from_le_bytes([s[0], s[1], s[2], s[3]])
        } else {
            u32::from_be_bytes([s[0], s[1], s[2], s[3]])
        })
    };
    let broken = || "its TIFF header is damaged".to_string();
    let mut sizes = Vec::new();
    let mut ifd = u32_at(4).ok_or_else(broken)? as usize;
    let mut seen = std::collections::HashSet::new();
    while ifd != 0 && sizes.len() < MAX_TIFF_PAGES && seen.insert(ifd) {
        let count = usize::from(u16_at(ifd).ok_or_else(broken)?);
        let (mut w, mut h) = (None, None);
        for e in 0..count {
            let at = ifd + 2 + e * 12;
            let tag = u16_at(at).ok_or_else(broken)?;
            let kind = u16_at(at + 2).ok_or_else(broken)?;
            let value = match kind {
                3 => u64::from(u16_at(at + 8).ok_or_else(broken)?),
                4 => u64::from(u32_at(at + 8).ok_or_else(broken)?),
                _ => continue,
            };
            match tag {
                256 => w = Some(value),
                257 => h = Some(value),
                _ => {}
            }
        }
        match (w, h) {
            (Some(w), Some(h)) => sizes.push((w, h)),
            _ => return Err("a TIFF page has no size".to_string()),
        }
        ifd = u32_at(ifd + 2 + count * 12).ok_or_else(broken)? as usize;
    }
    if sizes.is_empty() {
        return Err(broken());
    }
    Ok(sizes)
}

/// Parses an image file into one document, by OCR.
pub(crate) fn parse(
    path: &Path,
    bytes: &[u8],
    opts: &ParseOptions,
    deadline: Deadline,
) -> Result<Parsed> {
    let corrupt = |detail: String| ParseError::Corrupt {
        path: path.to_path_buf(),
        format: "image",
        detail,
    };
    let sizes = dimensions(bytes).map_err(corrupt)?;
    let limit = opts.ocr.max_pixels;
    if let Some(&(width, height)) = sizes.iter().find(|(w, h)| w.saturating_mul(*h) > limit) {
        return Ok(Parsed::Skipped(SkipReason::ImageTooLarge {
            width,
            height,
            limit,
        }));
    }
    if sizes.iter().any(|(w, h)| *w == 0 || *h == 0) {
        return Err(corrupt("it claims to be 0 pixels wide or high".to_string()));
    }
    let job = match opts.ocr.job(false) {
        Ok(job) => job,
        Err(why) => return Ok(Parsed::Skipped(SkipReason::NeedsOcr(why))),
    };
    let extraction = match &opts.pdf_isolation {
        PdfIsolation::InProcess => {
            if deadline.passed() {
                return Err(deadline.timeout(path));
            }
            recognise(bytes, Some(&job), deadline.at())
        }
        PdfIsolation::Subprocess { exe } => worker::run_worker(
            path,
            exe,
            JobKind::Image,
            bytes,
            Some(job),
            &opts.worker_limits,
            deadline,
        )?,
    };
    match extraction {
        Extraction::Text {
            pages,
            failed_pages,
            ..
        } => Ok(build(path, &pages, &failed_pages)),
        Extraction::Corrupt { detail } => Err(corrupt(detail)),
        Extraction::Crashed { detail } => Err(ParseError::Crashed {
            path: path.to_path_buf(),
            format: "image",
            detail,
        }),
        Extraction::Encrypted => Err(corrupt("unexpected reply".to_string())),
    }
}

/// Recognises an image (every page of a TIFF) with Tesseract, until `until`. The worker's body
/// for image jobs.
pub(crate) fn recognise(bytes: &[u8], ocr: Option<&OcrJob>, until: Instant) -> Extraction {
    let Some(job) = ocr else {
        return Extraction::Crashed {
            detail: "OCR is not available".to_string(),
        };
    };
    let Some(kind) = ImageType::sniff(bytes) else {
        return Extraction::Corrupt {
            detail: "not a PNG, JPEG or TIFF image".to_string(),
        };
    };
    let dir = match ocr::TempDir::new() {
        Ok(d) => d,
        Err(e) => {
            return Extraction::Crashed {
                detail: format!("no temporary folder for OCR: {e}"),
            };
        }
    };
    let file = dir.path().join(format!("in.{}", kind.extension()));
    if let Err(e) = std::fs::write(&file, bytes) {
        return Extraction::Crashed {
            detail: format!("could not write a temporary file for OCR: {e}"),
        };
    }
    match ocr::recognise_file(job, &file, until) {
        Ok(texts) => {
            let count = dimensions(bytes).map(|s| s.len()).unwrap_or(1).max(1);
            let count = count.max(texts.keys().max().map_or(0, |m| *m as usize));
            let pages: Vec<String> = (1..=count)
                .map(|n| {
                    texts
                        .get(&u32::try_from(n).unwrap_or(u32::MAX))
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            let all: Vec<u32> = (1..=u32::try_from(count).unwrap_or(u32::MAX)).collect();
            Extraction::Text {
                pages,
                info: BTreeMap::new(),
                failed_pages: Vec::new(),
                ocr_pages: all,
                needs_ocr: Vec::new(),
            }
        }
        Err(why) if why.starts_with("tesseract could not read") => {
            Extraction::Corrupt { detail: why }
        }
        Err(why) => Extraction::Crashed { detail: why },
    }
}

/// Builds the document of a recognised image.
fn build(path: &Path, raw_pages: &[String], failed_pages: &[(u32, String)]) -> Parsed {
    let pages: Vec<String> = raw_pages
        .iter()
        .map(|p| crate::pdf::normalise_page(p))
        .collect();
    let visible: usize = pages
        .iter()
        .map(|p| p.chars().filter(|c| !c.is_whitespace()).count())
        .sum();
    if visible == 0 {
        return Parsed::Skipped(SkipReason::NothingParsed("OCR found no text".to_string()));
    }
    let (text, blocks) = paged_text(&pages);
    let title = pages
        .iter()
        .find_map(|p| p.lines().find_map(text::title_from_line))
        .or_else(|| text::fallback_title(path, None));
    let mut meta = BTreeMap::new();
    let list: Vec<String> = (1..=pages.len()).map(|n| n.to_string()).collect();
    meta.insert(docent_core::META_OCR_PAGES.to_string(), list.join(","));
    let doc = Document {
        id: DocId::for_source(&path.to_string_lossy(), None),
        path: path.to_path_buf(),
        part: None,
        kind: DocKind::Pdf,
        parser: "image".to_string(),
        title,
        text,
        blocks,
        meta,
        email: None,
        parent: None,
        pages: Some(u32::try_from(pages.len()).unwrap_or(u32::MAX)),
    };
    Parsed::Documents {
        documents: vec![doc],
        warnings: failed_pages
            .iter()
            .map(|(page, why)| format!("page {page}: {why}"))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sizes() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&[8, 0, 0, 0, 0]);
        assert_eq!(dimensions(&png).unwrap(), [(100_000, 100_000)]);
        assert!(dimensions(b"\x89PNG\r\n\x1a\ngarbage").is_err());

        // SOI, APP0 (length 4), SOF0 with height 20, width 30.
        let jpeg = [
            0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00,
            0x14, 0x00, 0x1e, 0x01,
        ];
        assert_eq!(dimensions(&jpeg).unwrap(), [(30, 20)]);
        assert!(dimensions(&jpeg[..8]).is_err());

        // Little-endian TIFF, two pages: 10x20 then 30x40 (SHORT and LONG values).
        let mut tiff = b"II*\0".to_vec();
        tiff.extend_from_slice(&8u32.to_le_bytes());
        let ifd = |w: u16, h: u32, next: u32| {
            let mut v = 2u16.to_le_bytes().to_vec();
            v.extend_from_slice(&256u16.to_le_bytes());
            v.extend_from_slice(&3u16.to_le_bytes());
            v.extend_from_slice(&1u32.to_le_bytes());
            v.extend_from_slice(&u32::from(w).to_le_bytes());
            v.extend_from_slice(&257u16.to_le_bytes());
            v.extend_from_slice(&4u16.to_le_bytes());
            v.extend_from_slice(&1u32.to_le_bytes());
            v.extend_from_slice(&h.to_le_bytes());
            v.extend_from_slice(&next.to_le_bytes());
            v
        };
        tiff.extend(ifd(10, 20, 8 + 30));
        tiff.extend(ifd(30, 40, 0));
        assert_eq!(dimensions(&tiff).unwrap(), [(10, 20), (30, 40)]);
        // A chain that loops back on itself ends.
        let mut looped = b"II*\0".to_vec();
        looped.extend_from_slice(&8u32.to_le_bytes());
        looped.extend(ifd(10, 20, 8));
        assert_eq!(dimensions(&looped).unwrap(), [(10, 20)]);
    }
}
