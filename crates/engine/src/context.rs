//! Settings resolved once and the resources built from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use docent_chunk::ChunkConfig;
use docent_config::{Paths, Settings};
use docent_core::{Embedder, Generator, ModelSource, SeamError, TokenCounter};
use docent_embed::{BertEmbedder, EmbedOptions, HfTokenCounter, Precision};
use docent_parse::{OcrOptions, OcrTools, ParseOptions, PdfIsolation, WorkerLimits};

use crate::Result;

/// Everything an operation needs to know, resolved once by the caller and passed down.
#[derive(Clone)]
pub struct Context {
    pub paths: Paths,
    pub settings: Settings,
    /// The executable that serves `__pdf-worker` (the docent binary itself), used when
    /// `ingest.pdf_subprocess` is on. `None` extracts PDFs in-process.
    pub pdf_worker: Option<PathBuf>,
    /// Models given by the caller instead of loaded from `paths.models_dir`.
    models: Option<Arc<dyn ModelSource>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("paths", &self.paths)
            .field("settings", &self.settings)
            .field("pdf_worker", &self.pdf_worker)
            .field("models", &self.models.as_ref().map(|_| "given"))
            .finish()
    }
}

impl Context {
    pub fn new(paths: Paths, settings: Settings) -> Self {
        Context {
            paths,
            settings,
            pdf_worker: None,
            models: None,
        }
    }

    /// This context with its models taken from `models` rather than the models directory.
    pub fn with_models(mut self, models: Arc<dyn ModelSource>) -> Self {
        self.models = Some(models);
        self
    }

    /// This context with the language model named on the command line (`--model`), for
    /// whichever backend `[llm]` uses: the remote server's model name or the local GGUF.
    pub fn with_model(mut self, model: Option<&str>) -> Self {
        if let Some(m) = model {
            if self.settings.llm.backend == "remote" {
                self.settings.llm.remote_model = m.to_string();
            } else {
                self.settings.llm.model = m.to_string();
            }
        }
        self
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
    pub fn token_counter(&self) -> Result<Arc<dyn TokenCounter>> {
        if let Some(m) = &self.models {
            return m.token_counter().map_err(crate::EngineError::Embedding);
        }
        Ok(Arc::new(HfTokenCounter::from_model_dir(
            &self.embed_model_dir(),
        )?))
    }

    /// The embedding model, loaded from the models directory.
    pub fn embedder(&self) -> Result<Arc<dyn Embedder>> {
        if let Some(m) = &self.models {
            return m.embedder().map_err(crate::EngineError::Embedding);
        }
        let e = &self.settings.embed;
        Ok(Arc::new(BertEmbedder::load(
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
        )?))
    }

    /// The language model that answers, as `[llm]` describes it: a GGUF file run in-process,
    /// or an OpenAI-compatible server on the user's network. Slow (it reads the weights); the
    /// error's text is the whole chain of causes.
    pub fn generator(&self) -> std::result::Result<Box<dyn Generator>, SeamError> {
        if let Some(m) = &self.models {
            return m.generator();
        }
        let llm = &self.settings.llm;
        if llm.backend == "remote" {
            let mut opts = docent_remote::RemoteOptions::new(&llm.url, &llm.remote_model);
            opts.context_length = llm.context_length;
            opts.allow_private_network = llm.allow_private_network;
            opts.deadline = std::time::Duration::from_secs(llm.request_timeout_secs);
            opts.idle_timeout = std::time::Duration::from_secs(llm.idle_timeout_secs);
            if !llm.api_key_env.is_empty() {
                opts.api_key = Some(std::env::var(&llm.api_key_env).map_err(|e| {
                    SeamError::new(format!(
                        "`[llm] api_key_env` names {}, which is not set: {e}",
                        llm.api_key_env
                    ))
                })?);
            }
            let g = docent_remote::RemoteGenerator::new(opts)
                .map_err(|e| SeamError::new(error_chain(&e)))?;
            return Ok(Box::new(g));
        }
        let path = self.llm_model_path().map_err(SeamError::new)?;
        let device: docent_llm::DeviceChoice = llm
            .device
            .parse()
            .map_err(|e: String| SeamError::new(format!("[llm] device: {e}")))?;
        let generator = docent_llm::GgufGenerator::load(
            &path,
            &docent_llm::LoadOptions {
                device,
                context_length: Some(llm.context_length),
                allow_low_memory: false,
                ..Default::default()
            },
        )
        .map_err(|e| {
            SeamError::new(format!(
                "cannot load the language model `{}`: {}",
                llm.model,
                error_chain(&e)
            ))
        })?;
        Ok(Box::new(generator))
    }

    /// The language model as the interface names it: its name and where it runs (the local
    /// file's stem and device, or the remote model and its server). `None` when the local
    /// model is not installed.
    pub fn model_label(&self) -> Option<(String, String)> {
        let llm = &self.settings.llm;
        if llm.backend == "remote" {
            return Some((llm.remote_model.clone(), llm.url.clone()));
        }
        let path = self.llm_model_path().ok()?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| llm.model.clone());
        Some((name, llm.device.clone()))
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

/// An error and its causes, joined by `: ` (as `anyhow` shows them with `{:#}`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_override_goes_to_the_backend_in_use() {
        let paths = Paths {
            data_dir: "/d".into(),
            models_dir: "/m".into(),
        };
        let ctx = Context::new(paths, Settings::default());
        let local = ctx.clone().with_model(Some("gemma"));
        assert_eq!(local.settings.llm.model, "gemma");
        assert_eq!(
            local.settings.llm.remote_model,
            ctx.settings.llm.remote_model
        );
        let mut remote = ctx.clone();
        remote.settings.llm.backend = "remote".into();
        let remote = remote.with_model(Some("qwen3:14b"));
        assert_eq!(remote.settings.llm.remote_model, "qwen3:14b");
        assert_eq!(remote.settings.llm.model, ctx.settings.llm.model);
        assert_eq!(
            ctx.clone().with_model(None).settings.llm.model,
            ctx.settings.llm.model
        );
    }

    #[test]
    fn error_chains_read_like_anyhow() {
        let inner = std::io::Error::other("disk gone");
        let outer = SeamError::with_source("cannot read", inner);
        assert_eq!(error_chain(&outer), "cannot read: disk gone");
    }
}
