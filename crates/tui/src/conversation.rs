//! Conversations: the turns of questions and answers, the history a follow-up question is
//! asked with, and their files (one JSON file per conversation in a folder the caller names).

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use docent_core::text::sanitize;
use docent_core::{Answer, ChatMessage};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// The version of the conversation file format; files of another version are refused.
pub const FORMAT_VERSION: u32 = 1;

/// Errors reading or writing conversation files; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a docent conversation: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path} has conversation format {found}, this docent reads format {expected}\nhint: it was written by another version of docent; move it out of the folder"
    )]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("`{0}` is not a conversation id (letters, digits, `-` and `_` only)")]
    BadId(String),
}

pub type Result<T, E = ConversationError> = std::result::Result<T, E>;

/// Where a turn stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnState {
    /// Asked; nothing back yet (condensing, retrieving, or the model loading).
    Waiting,
    /// The answer is arriving.
    Streaming,
    Done,
    /// Stopped by the user; the text is what had arrived.
    Cancelled,
    Failed,
}

impl TurnState {
    /// True while the backend is still working on the turn.
    pub fn is_active(self) -> bool {
        matches!(self, TurnState::Waiting | TurnState::Streaming)
    }
}

/// What retrieval reported for a turn.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Retrieved {
    pub sources: usize,
    pub relevance: Option<f32>,
    pub retrieval_ms: u64,
}

/// One question and its answer.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// The question as typed.
    pub question: String,
    /// The filters it was asked with, in query syntax (empty: none).
    #[serde(default)]
    pub filters: String,
    pub state: TurnState,
    /// The standalone query a follow-up was rewritten into.
    #[serde(default)]
    pub condensed: Option<String>,
    #[serde(default)]
    pub retrieved: Option<Retrieved>,
    /// The answer's text as it streamed (the checked text once done).
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub answer: Option<Answer>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
}

impl Turn {
    /// A turn just asked.
    pub fn asked(question: &str, filters: &str) -> Self {
        Turn {
            question: question.to_string(),
            filters: filters.to_string(),
            state: TurnState::Waiting,
            condensed: None,
            retrieved: None,
            text: String::new(),
            answer: None,
            error: None,
        }
    }
}

impl fmt::Debug for Turn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Turn")
            .field("question_len", &self.question.len())
            .field("state", &self.state)
            .field("text_len", &self.text.len())
            .field("answer", &self.answer)
            .finish_non_exhaustive()
    }
}

/// A conversation: its turns, oldest first.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub format: u32,
    /// Also the file's name (`<id>.json`).
    pub id: String,
    pub title: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub turns: Vec<Turn>,
}

impl fmt::Debug for Conversation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conversation")
            .field("id", &self.id)
            .field("turns", &self.turns)
            .finish_non_exhaustive()
    }
}

/// A title from a question: its first line, cleaned, at most 60 characters.
pub fn title_of(question: &str) -> String {
    let clean = sanitize(question);
    let line = clean.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 60 {
        let cut: String = line.chars().take(59).collect();
        format!("{}…", cut.trim_end())
    } else {
        line
    }
}

impl Conversation {
    /// An empty conversation.
    pub fn new(id: String, now: Timestamp) -> Self {
        Conversation {
            format: FORMAT_VERSION,
            id,
            title: String::new(),
            created: now,
            updated: now,
            turns: Vec::new(),
        }
    }

    /// The turns a follow-up question is asked after: the question and the answer of every
    /// finished turn, oldest first. Failed and cancelled turns are left out.
    pub fn history(&self) -> Vec<ChatMessage> {
        let mut out = Vec::new();
        for t in self.turns.iter().filter(|t| t.state == TurnState::Done) {
            let text = t
                .answer
                .as_ref()
                .map_or(t.text.as_str(), |a| a.text.as_str());
            out.push(ChatMessage::user(t.question.clone()));
            out.push(ChatMessage::assistant(text.to_string()));
        }
        out
    }
}

/// What the list of past conversations shows of one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub id: String,
    pub title: String,
    pub updated: Timestamp,
    pub turns: usize,
}

/// The conversations in a folder, and the files that could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Most recently updated first.
    pub conversations: Vec<Summary>,
    pub problems: Vec<String>,
}

fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ConversationError::BadId(id.to_string()))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConversationError + '_ {
    move |source| ConversationError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file of conversation `id` in `dir`.
pub fn path_of(dir: &Path, id: &str) -> Result<PathBuf> {
    check_id(id)?;
    Ok(dir.join(format!("{id}.json")))
}

/// Writes a conversation to `dir/<id>.json` (creating `dir`, readable by the user only), through
/// a temporary file so that a crash never leaves half a file.
pub fn save(dir: &Path, conversation: &Conversation) -> Result<PathBuf> {
    let path = path_of(dir, &conversation.id)?;
    create_private_dir(dir)?;
    let json =
        serde_json::to_vec_pretty(conversation).map_err(|source| ConversationError::Json {
            path: path.clone(),
            source,
        })?;
    let tmp = dir.join(format!(".{}.json.tmp", conversation.id));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io(&tmp))?;
        f.write_all(&json).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(path)
}

fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io(dir))
}

/// Reads one conversation file.
pub fn load_file(path: &Path) -> Result<Conversation> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    #[derive(Deserialize)]
    struct Head {
        format: u32,
    }
    let head: Head = serde_json::from_slice(&bytes).map_err(|source| ConversationError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    if head.format != FORMAT_VERSION {
        return Err(ConversationError::Version {
            path: path.to_path_buf(),
            found: head.format,
            expected: FORMAT_VERSION,
        });
    }
    serde_json::from_slice(&bytes).map_err(|source| ConversationError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads conversation `id` from `dir`.
pub fn load(dir: &Path, id: &str) -> Result<Conversation> {
    load_file(&path_of(dir, id)?)
}

/// Deletes conversation `id` from `dir`.
pub fn delete(dir: &Path, id: &str) -> Result<()> {
    let path = path_of(dir, id)?;
    std::fs::remove_file(&path).map_err(io(&path))
}

/// The conversations in `dir`, most recent first. A missing folder is an empty list; a file that
/// cannot be read is reported in [`Listing::problems`] and does not stop the others.
pub fn list(dir: &Path) -> Result<Listing> {
    let mut listing = Listing::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        match load_file(&path) {
            Ok(c) => listing.conversations.push(Summary {
                id: c.id,
                title: c.title,
                updated: c.updated,
                turns: c.turns.len(),
            }),
            Err(e) => listing.problems.push(e.to_string()),
        }
    }
    listing
        .conversations
        .sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.id.cmp(&b.id)));
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use docent_core::Role;

    fn conv(id: &str, updated: Timestamp) -> Conversation {
        let mut c = Conversation::new(id.into(), 100);
        c.updated = updated;
        c.title = format!("title {id}");
        let mut t = Turn::asked("what is due?", "kind:pdf");
        t.state = TurnState::Done;
        t.text = "The roof [1].".into();
        c.turns.push(t);
        let mut failed = Turn::asked("and then?", "");
        failed.state = TurnState::Failed;
        failed.error = Some("no model".into());
        c.turns.push(failed);
        c
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("conversations");
        let c = conv("20251122-130509", 200);
        let path = save(&sub, &c).unwrap();
        assert_eq!(path, sub.join("20251122-130509.json"));
        assert_eq!(load(&sub, "20251122-130509").unwrap(), c);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&sub).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn list_is_newest_first_and_survives_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &conv("a", 10)).unwrap();
        save(dir.path(), &conv("b", 30)).unwrap();
        save(dir.path(), &conv("c", 20)).unwrap();
        std::fs::write(dir.path().join("broken.json"), "{not json").unwrap();
        let mut old = conv("old", 5);
        old.format = 99;
        std::fs::write(
            dir.path().join("old.json"),
            serde_json::to_string(&old).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();

        let l = list(dir.path()).unwrap();
        let ids: Vec<&str> = l.conversations.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["b", "c", "a"]);
        assert_eq!(l.conversations[0].turns, 2);
        assert_eq!(l.problems.len(), 2, "{:?}", l.problems);
        assert!(l.problems.iter().any(|p| p.contains("broken.json")));
        assert!(l.problems.iter().any(|p| p.contains("format 99")));

        delete(dir.path(), "b").unwrap();
        assert_eq!(list(dir.path()).unwrap().conversations.len(), 2);
        assert!(
            list(&dir.path().join("missing"))
                .unwrap()
                .conversations
                .is_empty()
        );
    }

    #[test]
    fn ids_cannot_leave_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(dir.path(), "../etc/passwd"),
            Err(ConversationError::BadId(_))
        ));
        let mut c = conv("x", 1);
        c.id = "a/b".into();
        assert!(save(dir.path(), &c).is_err());
    }

    #[test]
    fn history_holds_finished_turns_only() {
        let c = conv("h", 1);
        let h = c.history();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].role, Role::User);
        assert_eq!(h[0].content, "what is due?");
        assert_eq!(h[1].role, Role::Assistant);
        assert_eq!(h[1].content, "The roof [1].");
    }

    #[test]
    fn titles_are_clean_and_short() {
        assert_eq!(
            title_of("\n  when is\tthe \u{1b}[2Jroof due?\nmore"),
            "when is the roof due?"
        );
        let long = "word ".repeat(30);
        let t = title_of(&long);
        assert_eq!(t.chars().count(), 60);
        assert!(t.ends_with('…'));
    }
}
