//! Settings resolved once and the resources built from them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use docent_chunk::ChunkConfig;
use docent_config::{Paths, Settings};
use docent_embed::{BertEmbedder, EmbedOptions, HfTokenCounter, Precision};
use docent_parse::{OcrOptions, OcrTools, ParseOptions, PdfIsolation, WorkerLimits};

use crate::Result;

/// Everything an operation needs to know, resolved once by the caller and passed down.
#[derive(Clone, Debug)]
pub struct Context {
    pub paths: Paths,
    pub settings: Settings,
    /// The executable that serves `__pdf-worker` (the docent binary itself), used when
    /// `ingest.pdf_subprocess` is on. `None` extracts PDFs in-process.
    pub pdf_worker: Option<PathBuf>,
}

impl Context {
    pub fn new(paths: Paths, settings: Settings) -> Self {
        Context {
            paths,
            settings,
            pdf_worker: None,
        }
    }

    pub fn parse_options(&self) -> ParseOptions {
        let i = &self.settings.ingest;
        ParseOptions {
            max_file_bytes: i.max_file_mb.saturating_mul(1024 * 1024),
            pdf_timeout: Duration::from_secs(i.pdf_timeout_secs.max(1)),
            pdf_isolation: match (&self.pdf_worker, i.pdf_subprocess) {
                (Some(exe), true) => PdfIsolation::Subprocess { exe: exe.clone() },
                _ => PdfIsolation::InProcess,
            },
            worker_limits: WorkerLimits {
                memory_bytes: i.worker_memory_mb.saturating_mul(1024 * 1024),
                // A PDF's text can be several times its compressed size; more than that is a bomb.
                output_bytes: i
                    .max_file_mb
                    .saturating_mul(4 * 1024 * 1024)
                    .max(64 * 1024 * 1024),
            },
            parse_attachments: i.email_attachments,
            ocr: OcrOptions {
                enabled: self.settings.ocr.enabled,
                languages: self.settings.ocr.languages.clone(),
                min_confidence: f32::from(self.settings.ocr.min_confidence),
                dpi: self.settings.ocr.dpi,
                tools: OcrTools::OnPath,
                ..OcrOptions::default()
            },
        }
    }

    pub fn chunk_config(&self) -> ChunkConfig {
        ChunkConfig {
            max_tokens: self.settings.chunk.max_tokens,
            overlap: self.settings.chunk.overlap,
        }
    }

    /// The embedding model's folder: `embed.model` is a name in the models directory or a path.
    pub fn embed_model_dir(&self) -> PathBuf {
        model_dir(&self.paths.models_dir, &self.settings.embed.model)
    }

    /// The language model's GGUF file: `[llm] model` as a path to a `.gguf`, or the name of a
    /// folder in the models directory holding one.
    pub fn llm_model_path(&self) -> std::result::Result<PathBuf, String> {
        let name = &self.settings.llm.model;
        let p = model_dir(&self.paths.models_dir, name);
        let install = "hint: run `scripts/fetch-models.sh --only llm` for the starter models, or `docent models import <file.gguf>`, and name it in `[llm] model` or with --model";
        if p.is_file() {
            return Ok(p);
        }
        if p.is_dir() {
            let mut ggufs: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.extension()
                        .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))
                })
                .collect();
            ggufs.sort();
            return match ggufs.len() {
                1 => Ok(ggufs.remove(0)),
                0 => Err(format!(
                    "the model folder {} holds no .gguf file\n{install}",
                    p.display()
                )),
                _ => Err(format!(
                    "the model folder {} holds several .gguf files ({}); name one in `[llm] model`",
                    p.display(),
                    ggufs
                        .iter()
                        .filter_map(|f| f.file_name())
                        .map(|f| f.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
        }
        Err(format!(
            "language model `{name}` is not installed (looked for {})\n{install}",
            p.display()
        ))
    }

    /// The embedding model's tokenizer, which measures chunks.
    pub fn token_counter(&self) -> Result<HfTokenCounter> {
        Ok(HfTokenCounter::from_model_dir(&self.embed_model_dir())?)
    }

    /// The embedding model, loaded from the models directory.
    pub fn embedder(&self) -> Result<BertEmbedder> {
        let e = &self.settings.embed;
        Ok(BertEmbedder::load(
            &self.embed_model_dir(),
            EmbedOptions {
                max_tokens: None,
                query_prefix: e.query_prefix.clone(),
                document_prefix: e.document_prefix.clone(),
                batch_size: e.batch_size,
                // Validated when the settings were loaded.
                precision: Precision::parse(&e.precision).unwrap_or_default(),
                threads: e.threads,
            },
        )?)
    }

    pub fn threads(&self) -> usize {
        match self.settings.ingest.threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        }
    }
}

fn model_dir(models_dir: &Path, model: &str) -> PathBuf {
    let p = Path::new(model);
    if p.is_absolute() || model.contains('/') || model.starts_with('.') {
        p.to_path_buf()
    } else {
        models_dir.join(model)
    }
}
