//! # docent-config
//!
//! Typed settings for every stage, resolved once at start-up and passed down as plain structs
//! (no globals). Layers, each overriding the one before: the commented default file shipped in
//! `assets/default-config.toml` (embedded), the user's `docent.toml`, `DOCENT_<SECTION>_<KEY>`
//! environment variables, then command-line flags (applied by the binary).
//!
//! It also owns where things live: the data directory (index, manifest; `--data-dir`,
//! `DOCENT_HOME`) and the models directory (`DOCENT_MODELS`; per user, shared by every data
//! directory). Invalid settings are errors that name the file and the field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The commented default configuration, as shipped.
pub const DEFAULT_CONFIG: &str = include_str!("../../../assets/default-config.toml");

/// File name of the user's configuration inside the data directory.
pub const CONFIG_FILE: &str = "docent.toml";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub ingest: IngestSettings,
    pub ocr: OcrSettings,
    pub chunk: ChunkSettings,
    pub embed: EmbedSettings,
    pub search: SearchSettings,
    pub index: IndexSettings,
    pub llm: LlmSettings,
    pub ask: AskSettings,
    pub watch: WatchSettings,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    pub max_file_mb: u64,
    pub include_hidden: bool,
    pub follow_symlinks: bool,
    pub pdf_timeout_secs: u64,
    pub pdf_subprocess: bool,
    /// Address space of the PDF/OCR worker process, in MiB.
    pub worker_memory_mb: u64,
    pub email_attachments: bool,
    pub threads: usize,
}

/// Recognising scanned pages and images (`[ocr]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcrSettings {
    pub enabled: bool,
    /// Tesseract language codes.
    pub languages: Vec<String>,
    /// Words recognised with less confidence (0–100) are left out of the text.
    pub min_confidence: u8,
    /// Resolution scanned PDF pages are rendered at.
    pub dpi: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkSettings {
    pub max_tokens: usize,
    pub overlap: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedSettings {
    pub model: String,
    pub query_prefix: String,
    pub document_prefix: String,
    pub batch_size: usize,
    /// "f32" or "int8": the arithmetic of the CPU encoder (int8 changes the embedder's
    /// identity, so switching needs a reindex).
    pub precision: String,
    /// Workers in the embedder's thread team; 0: one per physical core.
    pub threads: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    pub mode: String,
    pub fusion: String,
    pub rrf_k: f32,
    pub alpha: f32,
    pub k: usize,
    pub candidates: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSettings {
    pub vector_index_threshold: usize,
}

/// The language model and how it samples (`[llm]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    /// `local` (a GGUF file run in-process) or `remote` (an OpenAI-compatible server).
    pub backend: String,
    /// A name in the models directory or a path to a `.gguf` file.
    pub model: String,
    /// Remote backend: the server's URL (`http://192.168.1.20:11434/v1`).
    pub url: String,
    /// Remote backend: the model name the server knows (`qwen3:14b`).
    pub remote_model: String,
    /// Remote backend: the environment variable holding an API key, if the server wants one.
    pub api_key_env: String,
    /// Remote backend: allow a server on a private network (otherwise only this machine).
    pub allow_private_network: bool,
    /// Remote backend: longest one answer may take, from connecting to its last word (seconds).
    pub request_timeout_secs: u64,
    /// Remote backend: longest the server may stay silent (seconds).
    pub idle_timeout_secs: u64,
    /// `auto`, `cpu`, `cuda` or `metal`.
    pub device: String,
    pub context_length: usize,
    pub max_tokens: usize,
    pub temperature: f64,
    /// 1.0 turns nucleus sampling off.
    pub top_p: f64,
    /// 0 turns top-k sampling off.
    pub top_k: usize,
    pub repeat_penalty: f32,
    pub seed: u64,
}

/// Answering questions (`[ask]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskSettings {
    /// Chunks retrieved for an answer.
    pub k: usize,
    /// The least cosine similarity between the question and some chunk for the documents to
    /// count as holding an answer.
    pub min_relevance: f32,
    /// Citations supported less than this are flagged as weak.
    pub weak_support: f32,
}

/// The watcher daemon (`[watch]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSettings {
    /// "auto" (file-system events, polling where they are unavailable), "events" or "poll".
    pub mode: String,
    /// Seconds between scans when polling.
    pub poll_interval_secs: u64,
    /// Quiet time after the last change before a file is indexed, in milliseconds.
    pub debounce_ms: u64,
    /// Longest a changed file waits while changes keep coming, in milliseconds.
    pub max_delay_ms: u64,
    /// Minutes between full reconciliation walks (0: only at start).
    pub reconcile_minutes: u64,
    /// Scheduling niceness of the daemon (0 to 19; higher yields more to other programs).
    pub nice: i32,
    /// Runs that died while reading the same file before it is quarantined.
    pub quarantine_after: u32,
}

/// A setting that could not be read. Always says which file or variable, and which field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: could not read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("{var}: invalid value {value:?} for `{field}`: {message}")]
    Env {
        var: String,
        field: String,
        value: String,
        message: String,
    },
    #[error(
        "no home directory found to keep docent's data in\nhint: pass --data-dir or set DOCENT_HOME"
    )]
    NoHome,
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

impl Default for Settings {
    fn default() -> Self {
        // The shipped default file is parsed by a test, so this cannot fail in a release.
        toml::from_str(DEFAULT_CONFIG).unwrap_or_else(|e| panic!("bug: default config: {e}"))
    }
}

impl Settings {
    /// Defaults, then the user file at `path` if it exists, then the environment (`vars`, as from
    /// `std::env::vars()`).
    pub fn load(
        user_file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let mut value: toml::Table =
            toml::from_str(DEFAULT_CONFIG).map_err(|e| ConfigError::Invalid {
                origin: "built-in defaults".into(),
                message: e.to_string(),
            })?;
        if let Some(path) = user_file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let user: toml::Table =
                        toml::from_str(&text).map_err(|e| ConfigError::Invalid {
                            origin: path.display().to_string(),
                            message: e.to_string(),
                        })?;
                    merge(&mut value, user);
                    // Check the user's file on its own terms so errors name it.
                    Self::from_table(value.clone(), &path.display().to_string())?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        }
        apply_env(&mut value, vars)?;
        Self::from_table(value, "configuration")
    }

    fn from_table(table: toml::Table, origin: &str) -> Result<Self> {
        let s = Settings::deserialize(table).map_err(|e| ConfigError::Invalid {
            origin: origin.to_string(),
            message: e.to_string().trim().to_string(),
        })?;
        s.validate().map_err(|message| ConfigError::Invalid {
            origin: origin.to_string(),
            message,
        })?;
        Ok(s)
    }

    /// Checks values that parse but make no sense; the message names the field.
    fn validate(&self) -> std::result::Result<(), String> {
        let one_of = |field: &str, value: &str, allowed: &[&str]| {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "`{field}` is {value:?}; expected one of {}",
                    allowed.join(", ")
                ))
            }
        };
        one_of(
            "search.mode",
            &self.search.mode,
            &["hybrid", "bm25", "vector"],
        )?;
        one_of("search.fusion", &self.search.fusion, &["rrf", "score"])?;
        if self.ocr.min_confidence > 100 {
            return Err(format!(
                "`ocr.min_confidence` is {}; expected 0 to 100",
                self.ocr.min_confidence
            ));
        }
        if !(72..=1200).contains(&self.ocr.dpi) {
            return Err(format!(
                "`ocr.dpi` is {}; expected 72 to 1200",
                self.ocr.dpi
            ));
        }
        if self.ocr.enabled && self.ocr.languages.is_empty() {
            return Err("`ocr.languages` is empty; expected at least one, such as \"eng\"".into());
        }
        if !(0.0..=0.5).contains(&self.chunk.overlap) {
            return Err(format!(
                "`chunk.overlap` is {}; expected a fraction from 0 to 0.5",
                self.chunk.overlap
            ));
        }
        if self.chunk.max_tokens < 32 {
            return Err(format!(
                "`chunk.max_tokens` is {}; expected at least 32",
                self.chunk.max_tokens
            ));
        }
        if !(0.0..=1.0).contains(&self.search.alpha) {
            return Err(format!(
                "`search.alpha` is {}; expected 0 to 1",
                self.search.alpha
            ));
        }
        one_of(
            "llm.device",
            &self.llm.device,
            &["auto", "cpu", "cuda", "metal"],
        )?;
        one_of("llm.backend", &self.llm.backend, &["local", "remote"])?;
        one_of("watch.mode", &self.watch.mode, &["auto", "events", "poll"])?;
        one_of("embed.precision", &self.embed.precision, &["f32", "int8"])?;
        if !(0..=19).contains(&self.watch.nice) {
            return Err(format!(
                "`watch.nice` is {}; expected 0 to 19",
                self.watch.nice
            ));
        }
        if self.watch.quarantine_after == 0 {
            return Err("`watch.quarantine_after` is 0; expected at least 1".into());
        }
        let l = &self.llm;
        if l.backend == "remote" && (l.url.trim().is_empty() || l.remote_model.trim().is_empty()) {
            return Err(
                "`llm.backend` is \"remote\" but `llm.url` or `llm.remote_model` is empty; expected e.g. url = \"http://192.168.1.20:11434/v1\" and remote_model = \"qwen3:14b\"".into(),
            );
        }
        if l.request_timeout_secs == 0 || l.idle_timeout_secs == 0 {
            return Err(format!(
                "`llm.request_timeout_secs` ({}) and `llm.idle_timeout_secs` ({}) must be at least 1",
                l.request_timeout_secs, l.idle_timeout_secs
            ));
        }
        if l.model.trim().is_empty() {
            return Err(
                "`llm.model` is empty; expected a model name or a path to a .gguf file".into(),
            );
        }
        if l.context_length < 256 {
            return Err(format!(
                "`llm.context_length` is {}; expected at least 256",
                l.context_length
            ));
        }
        if l.max_tokens == 0 || l.max_tokens * 2 > l.context_length {
            return Err(format!(
                "`llm.max_tokens` is {}; expected 1 to half of `llm.context_length` ({})",
                l.max_tokens,
                l.context_length / 2
            ));
        }
        if !(0.0..=2.0).contains(&l.temperature) {
            return Err(format!(
                "`llm.temperature` is {}; expected 0 to 2",
                l.temperature
            ));
        }
        if !(l.top_p > 0.0 && l.top_p <= 1.0) {
            return Err(format!(
                "`llm.top_p` is {}; expected more than 0, at most 1",
                l.top_p
            ));
        }
        if !(1.0..=2.0).contains(&l.repeat_penalty) {
            return Err(format!(
                "`llm.repeat_penalty` is {}; expected 1 (none) to 2",
                l.repeat_penalty
            ));
        }
        if !(-1.0..=1.0).contains(&self.ask.min_relevance) {
            return Err(format!(
                "`ask.min_relevance` is {}; expected a cosine similarity from -1 to 1 (0.45 suits all-MiniLM-L6-v2)",
                self.ask.min_relevance
            ));
        }
        if !(0.0..=1.0).contains(&self.ask.weak_support) {
            return Err(format!(
                "`ask.weak_support` is {}; expected 0 to 1",
                self.ask.weak_support
            ));
        }
        for (field, v) in [
            ("ask.k", self.ask.k),
            ("embed.batch_size", self.embed.batch_size),
            ("search.k", self.search.k),
            ("search.candidates", self.search.candidates),
        ] {
            if v == 0 {
                return Err(format!("`{field}` must be at least 1"));
            }
        }
        Ok(())
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// `DOCENT_<SECTION>_<KEY>=value` overrides `[section] key`. Variables that name no setting
/// (such as `DOCENT_HOME`) are left alone.
fn apply_env(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<()> {
    let sections: Vec<String> = table.keys().cloned().collect();
    for (var, raw) in vars {
        let Some(rest) = var.strip_prefix("DOCENT_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        for section in &sections {
            let Some(key) = rest
                .strip_prefix(section.as_str())
                .and_then(|k| k.strip_prefix('_'))
            else {
                continue;
            };
            let Some(toml::Value::Table(sec)) = table.get_mut(section) else {
                continue;
            };
            let Some(current) = sec.get(key) else {
                continue;
            };
            let field = format!("{section}.{key}");
            let parsed = parse_like(current, &raw).map_err(|message| ConfigError::Env {
                var: var.clone(),
                field: field.clone(),
                value: raw.clone(),
                message,
            })?;
            sec.insert(key.to_string(), parsed);
        }
    }
    Ok(())
}

fn parse_like(current: &toml::Value, raw: &str) -> std::result::Result<toml::Value, String> {
    let raw = raw.trim();
    Ok(match current {
        toml::Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => toml::Value::Boolean(true),
            "0" | "false" | "no" | "off" => toml::Value::Boolean(false),
            _ => return Err("expected true or false".into()),
        },
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.parse()
                .map_err(|_| "expected a whole number".to_string())?,
        ),
        toml::Value::Float(_) => {
            toml::Value::Float(raw.parse().map_err(|_| "expected a number".to_string())?)
        }
        _ => toml::Value::String(raw.to_string()),
    })
}

/// Where docent keeps an index, and where it finds models.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// Index, manifest, user config, logs.
    pub data_dir: PathBuf,
    /// Installed models, shared by every data directory.
    pub models_dir: PathBuf,
}

impl Paths {
    /// Resolves the data directory (`--data-dir`, else `DOCENT_HOME`, else the OS's per-user data
    /// directory) and the models directory (`DOCENT_MODELS`, else `<per-user data dir>/models`).
    pub fn resolve(
        data_dir_flag: Option<PathBuf>,
        docent_home: Option<PathBuf>,
        docent_models: Option<PathBuf>,
    ) -> Result<Self> {
        let data_dir = match data_dir_flag.or(docent_home) {
            Some(d) => d,
            None => default_data_dir().ok_or(ConfigError::NoHome)?,
        };
        let models_dir = match docent_models {
            Some(d) => d,
            None => default_models_dir().ok_or(ConfigError::NoHome)?,
        };
        Ok(Paths {
            data_dir,
            models_dir,
        })
    }

    pub fn config_file(&self) -> PathBuf {
        self.data_dir.join(CONFIG_FILE)
    }
}

/// The OS's per-user data directory for docent (`~/.local/share/docent` on Linux,
/// `~/Library/Application Support/docent` on macOS).
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "docent").map(|d| d.data_dir().to_path_buf())
}

/// `<per-user data dir>/models`: one set of models serves every index.
pub fn default_models_dir() -> Option<PathBuf> {
    default_data_dir().map(|d| d.join("models"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shipped_default_parses() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.chunk.max_tokens, 256);
        assert!((s.chunk.overlap - 0.15).abs() < 1e-6);
        assert_eq!(s.embed.model, "all-MiniLM-L6-v2");
        assert_eq!(s.embed.precision, "f32");
        assert_eq!(s.embed.threads, 0);
        assert_eq!(s.llm.device, "auto");
        assert!(s.llm.max_tokens < s.llm.context_length);
        assert!(s.ask.min_relevance > 0.0 && s.ask.min_relevance < 1.0);
        assert!(s.ocr.enabled);
        assert_eq!(s.ocr.languages, ["eng"]);
        assert_eq!(s.ocr.dpi, 300);
        assert_eq!(s.ingest.worker_memory_mb, 2048);
        // Private by default: the remote backend talks to this machine only.
        assert!(!s.llm.allow_private_network);
        assert_eq!(s.llm.request_timeout_secs, 600);
    }

    #[test]
    fn user_file_then_env_override() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("docent.toml");
        std::fs::write(
            &f,
            "[chunk]\nmax_tokens = 128\n[ingest]\ninclude_hidden = true\n",
        )
        .unwrap();
        let s = Settings::load(
            Some(&f),
            env(&[("DOCENT_CHUNK_MAX_TOKENS", "200"), ("DOCENT_HOME", "/x")]),
        )
        .unwrap();
        assert_eq!(s.chunk.max_tokens, 200);
        assert!(s.ingest.include_hidden);
        assert_eq!(s.ingest.max_file_mb, 64);
    }

    #[test]
    fn unknown_field_names_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("docent.toml");
        std::fs::write(&f, "[chunk]\nmax_tokenz = 128\n").unwrap();
        let err = Settings::load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(err.contains("docent.toml"), "{err}");
        assert!(err.contains("max_tokenz"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("docent.toml");
        std::fs::write(&f, "[ingest]\nmax_file_mb = \"big\"\n").unwrap();
        let err = Settings::load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(err.contains("max_file_mb"), "{err}");
    }

    #[test]
    fn bad_env_value_names_variable() {
        let err = Settings::load(None, env(&[("DOCENT_INGEST_INCLUDE_HIDDEN", "maybe")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("DOCENT_INGEST_INCLUDE_HIDDEN"), "{err}");
        assert!(err.contains("ingest.include_hidden"), "{err}");
    }

    #[test]
    fn nonsense_values_name_the_field() {
        for (text, field) in [
            ("[search]\nmode = \"magic\"\n", "search.mode"),
            ("[chunk]\noverlap = 0.9\n", "chunk.overlap"),
            ("[chunk]\nmax_tokens = 4\n", "chunk.max_tokens"),
            ("[embed]\nbatch_size = 0\n", "embed.batch_size"),
            ("[embed]\nprecision = \"f16\"\n", "embed.precision"),
            ("[llm]\ndevice = \"tpu\"\n", "llm.device"),
            ("[llm]\ncontext_length = 100\n", "llm.context_length"),
            ("[llm]\nmax_tokens = 4000\n", "llm.max_tokens"),
            ("[llm]\ntemperature = -1.0\n", "llm.temperature"),
            ("[llm]\ntop_p = 0.0\n", "llm.top_p"),
            ("[llm]\nrepeat_penalty = 0.5\n", "llm.repeat_penalty"),
            ("[llm]\nmodel = \" \"\n", "llm.model"),
            ("[llm]\nbackend = \"cloud\"\n", "llm.backend"),
            ("[llm]\nbackend = \"remote\"\n", "llm.url"),
            (
                "[llm]\nrequest_timeout_secs = 0\n",
                "llm.request_timeout_secs",
            ),
            ("[ask]\nk = 0\n", "ask.k"),
            ("[ask]\nmin_relevance = 3.0\n", "ask.min_relevance"),
            ("[ask]\nweak_support = 1.5\n", "ask.weak_support"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("docent.toml");
            std::fs::write(&f, text).unwrap();
            let err = Settings::load(Some(&f), env(&[])).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
            assert!(err.contains("docent.toml"), "{err}");
        }
    }

    #[test]
    fn paths_precedence() {
        let p = Paths::resolve(
            Some("/flag".into()),
            Some("/home-env".into()),
            Some("/models".into()),
        )
        .unwrap();
        assert_eq!(p.data_dir, PathBuf::from("/flag"));
        assert_eq!(p.models_dir, PathBuf::from("/models"));
        let p = Paths::resolve(None, Some("/home-env".into()), None).unwrap();
        assert_eq!(p.data_dir, PathBuf::from("/home-env"));
    }
}
