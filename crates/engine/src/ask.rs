//! Answering: a question (and the conversation so far) → a standalone query → hybrid retrieval
//! → a relevance gate → numbered sources packed into the model's budget → a streamed answer →
//! citations cleaned and checked.
//!
//! The gate: fused scores only rank (the best hit of any query scores high), so the pipeline
//! asks an absolute question instead: does any retrieved chunk, or any sentence of the best
//! chunks, come close enough to the query in the embedding model (`ask.min_relevance`, a cosine
//! similarity; sentences count because a long chunk dilutes its vector)? When none does, the answer says "not found in your
//! documents" and names what was searched, and the language model is never called, so it cannot
//! answer from memory.
//!
//! Model compute is synchronous: condensing and generation run on a blocking thread that locks
//! the generator; text comes back over a channel and is handed to the caller's event callback as
//! it arrives. Cancelling sets the flag the generator checks between tokens; what was generated
//! so far is still checked and returned.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use docent_core::{
    Answer, AnswerSentence, ChatMessage, Citation, GenerationStats, Generator, Hit, SamplingParams,
    SeamError, Source,
};
use docent_retrieve::Mode;
use docent_retrieve::cite::check_answer;
use docent_retrieve::prompt::{condense_messages, pack_prompt, parse_condensed};

use crate::search::Retrieval;
use crate::{Context, EngineError, Result, Searcher};

/// Tokens a condensed query may take.
const CONDENSE_TOKENS: usize = 64;

/// One question, with the conversation before it (user and assistant turns, oldest first).
#[derive(Clone, Debug, Default)]
pub struct AskRequest {
    pub question: String,
    pub history: Vec<ChatMessage>,
    /// Chunks to retrieve; `None` takes `ask.k`.
    pub k: Option<usize>,
}

/// What happens while an answer is made, in order.
#[derive(Clone)]
pub enum AskEvent {
    /// A follow-up was rewritten into this standalone query.
    Condensed(String),
    /// Retrieval is done.
    Retrieved {
        /// Sources that will be given to the model (0 when refused).
        sources: usize,
        /// The best cosine similarity of any candidate.
        relevance: Option<f32>,
        retrieval_ms: u64,
    },
    /// A piece of the answer as the model wrote it (citations not yet checked).
    Text(String),
    /// The checked answer (also the return value of [`Asker::ask`]).
    Done(Box<Answer>),
}

impl std::fmt::Debug for AskEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AskEvent::Condensed(q) => write!(f, "Condensed(len {})", q.len()),
            AskEvent::Retrieved {
                sources,
                relevance,
                retrieval_ms,
            } => f
                .debug_struct("Retrieved")
                .field("sources", sources)
                .field("relevance", relevance)
                .field("retrieval_ms", retrieval_ms)
                .finish(),
            AskEvent::Text(t) => write!(f, "Text(len {})", t.len()),
            AskEvent::Done(a) => write!(f, "Done({a:?})"),
        }
    }
}

/// Settings of the ask pipeline, taken from `[ask]` and `[llm]`.
#[derive(Clone, Debug)]
pub struct AskOptions {
    pub k: usize,
    pub min_relevance: f32,
    pub weak_support: f32,
    /// Capped at the model's own context length.
    pub context_length: usize,
    pub sampling: SamplingParams,
}

impl AskOptions {
    pub fn from_context(ctx: &Context) -> Self {
        let (a, l) = (&ctx.settings.ask, &ctx.settings.llm);
        AskOptions {
            k: a.k,
            min_relevance: a.min_relevance,
            weak_support: a.weak_support,
            context_length: l.context_length,
            sampling: SamplingParams {
                temperature: l.temperature,
                top_p: (l.top_p < 1.0).then_some(l.top_p),
                top_k: (l.top_k > 0).then_some(l.top_k),
                repeat_penalty: l.repeat_penalty,
                repeat_last_n: 64,
                seed: l.seed,
                max_tokens: l.max_tokens,
            },
        }
    }
}

/// Builds the language model when it is first needed (a refusal never loads it).
pub type GeneratorLoader =
    Box<dyn FnOnce() -> std::result::Result<Box<dyn Generator>, SeamError> + Send>;

/// The language model, loaded or still to load.
struct Slot {
    generator: Option<Box<dyn Generator>>,
    loader: Option<GeneratorLoader>,
}

impl Slot {
    fn get(&mut self) -> Result<&mut Box<dyn Generator>> {
        if self.generator.is_none() {
            let load = self.loader.take().ok_or_else(|| {
                EngineError::Generation(SeamError::new("the language model failed to load earlier"))
            })?;
            self.generator = Some(load().map_err(EngineError::Generation)?);
        }
        self.generator.as_mut().ok_or_else(|| {
            EngineError::Generation(SeamError::new("the language model failed to load"))
        })
    }
}

/// Holds the index, the embedding model and the language model, so that a session of questions
/// pays the loading costs once.
pub struct Asker {
    searcher: Searcher,
    slot: Arc<Mutex<Slot>>,
    options: AskOptions,
    index_label: String,
}

impl Asker {
    /// Opens the index of `ctx`'s data directory for hybrid search and takes `generator` as the
    /// model that answers.
    pub async fn open(ctx: &Context, generator: Box<dyn Generator>) -> Result<Self> {
        let searcher = Searcher::open(ctx, Mode::Hybrid).await?;
        Ok(Self::new(
            searcher,
            generator,
            AskOptions::from_context(ctx),
        ))
    }

    /// Opens the index of `ctx`'s data directory for hybrid search; the language model `ctx`
    /// describes ([`Context::generator`]) is loaded when a question first needs it, so a
    /// refusal never loads it.
    pub async fn open_lazy(ctx: &Context) -> Result<Self> {
        let searcher = Searcher::open(ctx, Mode::Hybrid).await?;
        let loader_ctx = ctx.clone();
        Ok(Self::with_loader(
            searcher,
            Box::new(move || loader_ctx.generator()),
            AskOptions::from_context(ctx),
        ))
    }

    pub fn new(searcher: Searcher, generator: Box<dyn Generator>, options: AskOptions) -> Self {
        Self::build(searcher, Some(generator), None, options)
    }

    /// Like [`Asker::new`], with a model that is loaded only when a question needs it (on the
    /// calling thread: loading is slow and synchronous).
    pub fn with_loader(searcher: Searcher, loader: GeneratorLoader, options: AskOptions) -> Self {
        Self::build(searcher, None, Some(loader), options)
    }

    fn build(
        searcher: Searcher,
        generator: Option<Box<dyn Generator>>,
        loader: Option<GeneratorLoader>,
        options: AskOptions,
    ) -> Self {
        let identity = searcher.index().identity();
        let index_label = format!(
            "docent index format {}, embeddings {}",
            docent_store::FORMAT_VERSION,
            identity.model
        );
        Asker {
            slot: Arc::new(Mutex::new(Slot { generator, loader })),
            searcher,
            options,
            index_label,
        }
    }

    /// The searcher questions are answered from (for a plain search in the same session).
    pub fn searcher(&self) -> &Searcher {
        &self.searcher
    }

    pub fn options(&self) -> &AskOptions {
        &self.options
    }

    pub fn options_mut(&mut self) -> &mut AskOptions {
        &mut self.options
    }

    /// The context length prompts are packed into: `llm.context_length`, capped at the model's.
    fn context_length(&self, g: &dyn Generator) -> usize {
        match g.context_length() {
            0 => self.options.context_length,
            n => n.min(self.options.context_length),
        }
    }

    /// Answers one question. `cwd` resolves relative `path:` filters; `cancel` stops generation
    /// between tokens; `on_event` sees progress and the answer's text as it is generated.
    pub async fn ask(
        &self,
        req: &AskRequest,
        cwd: &Path,
        cancel: Arc<AtomicBool>,
        on_event: &mut (dyn FnMut(AskEvent) + Send),
    ) -> Result<Answer> {
        let question = req.question.trim().to_string();
        if question.is_empty() {
            return Err(EngineError::Invalid(
                "empty question\nhint: ask something, e.g. `docent ask \"when is the roof due?\"`"
                    .into(),
            ));
        }
        let history: Vec<ChatMessage> = req.history.clone();

        // 1. A follow-up becomes a standalone query.
        let query = if history.is_empty() {
            question.clone()
        } else {
            let q = self.condense(&history, &question, cancel.clone()).await?;
            on_event(AskEvent::Condensed(q.clone()));
            q
        };

        // 2. Retrieval and the relevance gate.
        let k = req.k.unwrap_or(self.options.k).max(1);
        let retrieval = self.searcher.retrieve(&query, k, cwd).await?;
        let mut answer = Answer {
            question: question.clone(),
            query: query.clone(),
            text: String::new(),
            refused: false,
            sentences: Vec::new(),
            citations: Vec::new(),
            removed_citations: Vec::new(),
            sources: Vec::new(),
            model: String::new(),
            index: self.index_label.clone(),
            relevance: retrieval.relevance(),
            retrieval_ms: retrieval.took_ms,
            ttft_ms: None,
            tokens_per_s: None,
            prompt_tokens: None,
            generated_tokens: None,
            stop: None,
            warnings: retrieval.warnings.clone(),
        };
        let relevant = retrieval
            .relevance()
            .is_some_and(|s| s >= self.options.min_relevance)
            && !retrieval.hits.is_empty();
        if !relevant {
            answer.refused = true;
            answer.text = self.not_found(&retrieval).await;
            on_event(AskEvent::Retrieved {
                sources: 0,
                relevance: retrieval.relevance(),
                retrieval_ms: retrieval.took_ms,
            });
            on_event(AskEvent::Done(Box::new(answer.clone())));
            return Ok(answer);
        }

        // 3. Sources packed into the budget.
        let (packed, model) = {
            let mut slot = lock(&self.slot)?;
            let g = slot.get()?;
            let packed = pack_prompt(
                &question,
                &history,
                &retrieval.hits,
                &**g,
                self.context_length(&**g),
                self.options.sampling.max_tokens,
            )?;
            (packed, g.model_id().to_string())
        };
        if packed.dropped_history > 0 {
            answer.warnings.push(format!(
                "the {} oldest turns of the conversation were left out to fit the model's context",
                packed.dropped_history
            ));
        }
        for (n, &(i, given)) in packed.sources.iter().enumerate() {
            let hit = &retrieval.hits[i];
            answer
                .sources
                .push(source(n + 1, hit, retrieval.similarity[i], given));
        }
        on_event(AskEvent::Retrieved {
            sources: answer.sources.len(),
            relevance: retrieval.best_similarity,
            retrieval_ms: retrieval.took_ms,
        });

        // 4. Generation, streamed.
        let mut raw = String::new();
        let stats = self
            .generate(
                packed.messages,
                self.options.sampling.clone(),
                cancel,
                &mut |t: &str| {
                    raw.push_str(t);
                    on_event(AskEvent::Text(t.to_string()));
                },
            )
            .await?;
        answer.model = model;
        answer.ttft_ms = Some(stats.ttft_ms);
        answer.tokens_per_s = Some(stats.decode_tokens_per_s());
        answer.prompt_tokens = Some(stats.prompt_tokens);
        answer.generated_tokens = Some(stats.generated_tokens);
        answer.stop = Some(stats.stop);

        // 5. Citations checked against what the model was given.
        let given: Vec<&str> = answer
            .sources
            .iter()
            .zip(&packed.sources)
            .map(|(s, &(_, len))| s.text.get(..len).unwrap_or(&s.text))
            .collect();
        let embedder = self.searcher.embedder();
        let checked = check_answer(&raw, &given, embedder, self.options.weak_support)
            .map_err(EngineError::Embedding)?;
        answer.text = checked.text;
        answer.removed_citations = checked.removed;
        answer.sentences = checked
            .sentences
            .into_iter()
            .map(|s| AnswerSentence {
                bytes: s.bytes,
                cites: s.cites,
                support: s.support,
                weak: s.weak,
            })
            .collect();
        answer.citations = checked
            .citations
            .into_iter()
            .filter_map(|c| {
                let s = answer.source(c.n)?;
                Some(Citation {
                    n: c.n,
                    sentence: c.sentence,
                    chunk_id: s.chunk_id.clone(),
                    path: s.path.clone(),
                    part: s.part.clone(),
                    page: s.page,
                    lines: s.lines,
                    quote: s.text.get(c.quote.clone())?.to_string(),
                    quote_bytes: c.quote,
                    lexical: c.lexical,
                    semantic: c.semantic,
                    support: c.support,
                    weak: c.weak,
                })
            })
            .collect();
        on_event(AskEvent::Done(Box::new(answer.clone())));
        Ok(answer)
    }

    /// The follow-up rewritten as a standalone query by the model (greedy, short), or the
    /// follow-up itself when the conversation does not fit the model's context.
    async fn condense(
        &self,
        history: &[ChatMessage],
        follow_up: &str,
        cancel: Arc<AtomicBool>,
    ) -> Result<String> {
        let messages = condense_messages(history, follow_up);
        let fits = {
            let mut slot = lock(&self.slot)?;
            let g = slot.get()?;
            g.prompt_tokens(&messages)
                .map_err(EngineError::Generation)?
                .saturating_add(CONDENSE_TOKENS)
                <= self.context_length(&**g)
        };
        if !fits {
            return Ok(follow_up.to_string());
        }
        let mut reply = String::new();
        self.generate(
            messages,
            SamplingParams::greedy(CONDENSE_TOKENS),
            cancel,
            &mut |t: &str| reply.push_str(t),
        )
        .await?;
        Ok(parse_condensed(&reply, follow_up))
    }

    /// Runs the generator on a blocking thread; text pieces come back over a channel.
    async fn generate(
        &self,
        messages: Vec<ChatMessage>,
        params: SamplingParams,
        cancel: Arc<AtomicBool>,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<GenerationStats> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let slot = self.slot.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut slot = slot
                .lock()
                .map_err(|_| SeamError::new("the language model crashed earlier"))?;
            let g = slot
                .generator
                .as_mut()
                .ok_or_else(|| SeamError::new("the language model is not loaded"))?;
            g.generate(&messages, &params, &cancel, &mut |t: &str| {
                // A closed channel means the caller went away: nothing to do but finish.
                let _ = tx.send(t.to_string());
            })
        });
        while let Some(piece) = rx.recv().await {
            on_text(&piece);
        }
        match task.await {
            Ok(r) => r.map_err(EngineError::Generation),
            Err(e) => Err(EngineError::Generation(SeamError::new(format!(
                "the language model stopped unexpectedly: {e}"
            )))),
        }
    }

    /// The plain "not found" answer, naming what was searched.
    async fn not_found(&self, r: &Retrieval) -> String {
        let query = docent_core::text::sanitize(r.text.trim());
        if query.is_empty() {
            return "Nothing to look for: the question has no words besides filters.".into();
        }
        let mut scope = match self.searcher.index().stats().await {
            Ok(s) => format!("{} passages of {} indexed files", s.chunks, s.paths),
            Err(_) => "the indexed files".into(),
        };
        let f = &r.filter;
        let mut limits: Vec<String> = Vec::new();
        if !f.kinds.is_empty() {
            let k: Vec<&str> = f.kinds.iter().map(|k| k.as_str()).collect();
            limits.push(format!("kind {}", k.join(" or ")));
        }
        if let Some(p) = &f.path_prefix {
            limits.push(format!("under {p}"));
        }
        if let Some(x) = &f.from {
            limits.push(format!("from {x}"));
        }
        if let Some(x) = &f.subject {
            limits.push(format!("subject {x}"));
        }
        if let Some(x) = &f.after {
            limits.push(format!("after {x}"));
        }
        if let Some(x) = &f.before {
            limits.push(format!("before {x}"));
        }
        if !limits.is_empty() {
            scope.push_str(&format!(" (limited to {})", limits.join(", ")));
        }
        let closest = match r.relevance() {
            Some(s) => format!(
                "the closest passage has a similarity of {s:.2}, below the {:.2} needed",
                self.options.min_relevance
            ),
            None => "no passage matched at all".into(),
        };
        format!(
            "Not found in your documents. I searched {scope} for \"{query}\": {closest}, so I \
will not answer from general knowledge. Try other words, or index the documents that hold the \
answer (`docent index <folder>`)."
        )
    }
}

fn lock(slot: &Mutex<Slot>) -> Result<std::sync::MutexGuard<'_, Slot>> {
    slot.lock()
        .map_err(|_| EngineError::Generation(SeamError::new("the language model crashed earlier")))
}

fn source(n: usize, hit: &Hit, similarity: Option<f32>, given: usize) -> Source {
    Source {
        n,
        chunk_id: hit.chunk_id.clone(),
        path: hit.path.clone(),
        part: hit.part.clone(),
        kind: hit.kind,
        page: hit.page,
        lines: hit.lines,
        heading: hit.heading.clone(),
        title: hit.title.clone(),
        subject: hit.subject.clone(),
        from: hit.from.clone(),
        date: hit.date.clone(),
        text: hit.text.clone(),
        truncated: given < hit.text.len(),
        similarity,
    }
}
