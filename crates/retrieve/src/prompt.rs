//! The prompts of the ask pipeline, and numbered sources packed into the model's budget.
//!
//! [`pack_prompt`] builds `system, history…, user(sources + question)` and adds sources best
//! first while the whole prompt, measured with the model's own chat template
//! ([`TokenBudget::prompt_tokens`]), stays within `context_length − max_answer_tokens`. The
//! source that no longer fits whole is cut (at a word boundary, marked `…`) when a useful part
//! of it fits; history turns are dropped oldest first when even the bare question does not fit.
//! The budget is never exceeded: the final prompt is measured, and sources come off until it
//! fits.
//!
//! [`condense_messages`] asks the model to turn a follow-up question into a standalone search
//! query; [`parse_condensed`] cleans up what it says.

use docent_core::{ChatMessage, DocKind, Hit, Role, SeamError};

use crate::cite::strip_citations;

/// What the packer needs to know about the model: its token counts.
pub trait TokenBudget {
    /// Tokens of `text` alone (no special tokens).
    fn count_tokens(&self, text: &str) -> usize;
    /// Tokens of the whole rendered prompt, chat template included.
    fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize, SeamError>;
}

/// Every language model knows its own token counts.
impl<G: docent_core::Generator + ?Sized> TokenBudget for G {
    fn count_tokens(&self, text: &str) -> usize {
        docent_core::Generator::count_tokens(self, text)
    }
    fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize, SeamError> {
        docent_core::Generator::prompt_tokens(self, messages)
    }
}

/// The instructions the model answers under.
pub const SYSTEM_PROMPT: &str = "You answer questions about the user's own documents. \
Use only the numbered sources given with the question; never use outside knowledge. \
After every claim, cite the source it comes from by its number in square brackets, like [1] or [2][3]. \
If the sources do not contain the answer, say that the documents do not say, and stop. \
Be brief and precise; quote figures and dates exactly as the sources give them.";

/// A cut source keeps at least this many tokens of text, or is left out.
pub const MIN_PARTIAL_TOKENS: usize = 48;

/// Why no prompt could be built.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error(
        "the question alone needs {needed} tokens but the model's budget for a prompt is {budget}\nhint: ask a shorter question, or raise `llm.context_length` / lower `llm.max_tokens`"
    )]
    QuestionTooLong { needed: usize, budget: usize },
    #[error(
        "no source fits in the model's prompt budget ({budget} tokens)\nhint: raise `llm.context_length` or lower `llm.max_tokens`"
    )]
    NoRoom { budget: usize },
    #[error("could not measure the prompt: {0}")]
    Measure(#[from] SeamError),
}

/// A prompt ready for the model.
#[derive(Clone, PartialEq)]
pub struct PackedPrompt {
    pub messages: Vec<ChatMessage>,
    /// For each source given, in number order: the index of its hit and how many bytes of its
    /// text were given (`text.len()` when whole).
    pub sources: Vec<(usize, usize)>,
    /// The prompt's size in the model's tokens.
    pub tokens: usize,
    /// The most the prompt could have used.
    pub budget: usize,
    /// History turns dropped to make room.
    pub dropped_history: usize,
}

impl std::fmt::Debug for PackedPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedPrompt")
            .field("messages", &self.messages)
            .field("sources", &self.sources)
            .field("tokens", &self.tokens)
            .field("budget", &self.budget)
            .field("dropped_history", &self.dropped_history)
            .finish()
    }
}

/// The one-line header of a source: `[n] file name, page 2` or `[n] email "subject" from X,
/// 2024-11-12`.
pub fn source_header(n: usize, hit: &Hit) -> String {
    let name = hit.path.rsplit(['/', '\\']).next().unwrap_or(&hit.path);
    let mut h = format!("[{n}] ");
    match hit.kind {
        DocKind::Email if hit.subject.is_some() => {
            h.push_str(&format!(
                "email \"{}\"",
                hit.subject.as_deref().unwrap_or("")
            ));
            if let Some(f) = &hit.from {
                h.push_str(&format!(" from {f}"));
            }
            if let Some(d) = &hit.date {
                h.push_str(&format!(", {}", d.get(..10).unwrap_or(d)));
            }
        }
        _ => {
            h.push_str(name);
            if let Some(p) = &hit.part {
                h.push_str(&format!(" ({p})"));
            }
            match hit.page {
                Some(p) => h.push_str(&format!(", page {p}")),
                None => h.push_str(&format!(", lines {}-{}", hit.lines.start, hit.lines.end)),
            }
            if let Some(head) = &hit.heading {
                h.push_str(&format!(", section \"{head}\""));
            }
        }
    }
    // Headers are one line whatever the metadata holds.
    h.replace(['\n', '\r'], " ")
}

fn source_block(n: usize, hit: &Hit, text: &str) -> String {
    format!("{}\n{}", source_header(n, hit), text.trim_end())
}

fn user_message(blocks: &[String], question: &str) -> String {
    if blocks.is_empty() {
        return format!("Sources: none.\n\nQuestion: {question}");
    }
    format!(
        "Sources:\n\n{}\n\nQuestion: {question}\n\nAnswer from the sources above, citing them as [n].",
        blocks.join("\n\n")
    )
}

fn messages(history: &[ChatMessage], blocks: &[String], question: &str) -> Vec<ChatMessage> {
    let mut m = Vec::with_capacity(history.len() + 2);
    m.push(ChatMessage::system(SYSTEM_PROMPT));
    for h in history {
        let content = match h.role {
            // Old answers' numbers refer to old sources: leave them out.
            Role::Assistant => strip_citations(&h.content),
            _ => h.content.clone(),
        };
        if h.role != Role::System {
            m.push(ChatMessage::new(h.role, content));
        }
    }
    m.push(ChatMessage::user(user_message(blocks, question)));
    m
}

/// The longest prefix of `text`, ending at a word boundary, for which `fits` holds (monotone
/// in the length), or `None`.
fn longest_prefix(text: &str, fits: impl Fn(&str) -> bool) -> Option<usize> {
    let mut cuts: Vec<usize> = text
        .char_indices()
        .filter(|&(_, c)| c.is_whitespace())
        .map(|(i, _)| i)
        .collect();
    cuts.dedup();
    let (mut lo, mut hi) = (0usize, cuts.len());
    let mut best = None;
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fits(&text[..cuts[mid]]) {
            best = Some(cuts[mid]);
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    best
}

/// Packs `hits` (best first) as numbered sources after `history` and before `question`, so
/// that the prompt takes at most `context_length − max_answer_tokens` tokens.
pub fn pack_prompt<M: TokenBudget + ?Sized>(
    question: &str,
    history: &[ChatMessage],
    hits: &[Hit],
    model: &M,
    context_length: usize,
    max_answer_tokens: usize,
) -> Result<PackedPrompt, PromptError> {
    let budget = context_length.saturating_sub(max_answer_tokens);
    // History: drop the oldest turns until the bare question fits.
    let mut skip = 0;
    let base = loop {
        let t = model.prompt_tokens(&messages(&history[skip..], &[], question))?;
        if t <= budget {
            break t;
        }
        if skip >= history.len() {
            return Err(PromptError::QuestionTooLong { needed: t, budget });
        }
        skip += 1;
    };
    let history = &history[skip..];

    // Sources, estimated block by block, then measured as a whole.
    let sep = model.count_tokens("\n\n").max(1);
    let frame = model
        .prompt_tokens(&messages(history, &["x".into()], question))?
        .saturating_sub(base);
    let mut used = base + frame;
    let mut blocks: Vec<String> = Vec::new();
    let mut given: Vec<(usize, usize)> = Vec::new();
    for (i, hit) in hits.iter().enumerate() {
        let n = blocks.len() + 1;
        let block = source_block(n, hit, &hit.text);
        let cost = model.count_tokens(&block) + sep;
        if used + cost <= budget {
            used += cost;
            blocks.push(block);
            given.push((i, hit.text.len()));
            continue;
        }
        let room = budget.saturating_sub(used + sep);
        let header = model.count_tokens(&source_header(n, hit)) + 2;
        if room >= header + MIN_PARTIAL_TOKENS
            && let Some(cut) = longest_prefix(&hit.text, |t| {
                model.count_tokens(&source_block(n, hit, &format!("{t} …"))) <= room
            })
        {
            blocks.push(source_block(n, hit, &format!("{} …", &hit.text[..cut])));
            given.push((i, cut));
        }
        break;
    }
    loop {
        let m = messages(history, &blocks, question);
        let tokens = model.prompt_tokens(&m)?;
        if tokens <= budget {
            if blocks.is_empty() && !hits.is_empty() {
                return Err(PromptError::NoRoom { budget });
            }
            return Ok(PackedPrompt {
                messages: m,
                sources: given,
                tokens,
                budget,
                dropped_history: skip,
            });
        }
        if blocks.pop().is_none() {
            return Err(PromptError::NoRoom { budget });
        }
        given.pop();
    }
}

/// Messages that ask the model to rewrite `follow_up` as a standalone search query, given the
/// conversation so far (long turns shortened, citations removed).
pub fn condense_messages(history: &[ChatMessage], follow_up: &str) -> Vec<ChatMessage> {
    const TURN_CHARS: usize = 600;
    const TURNS: usize = 6;
    let mut convo = String::new();
    let start = history.len().saturating_sub(TURNS);
    for h in &history[start..] {
        let who = match h.role {
            Role::User => "User",
            Role::Assistant => "Assistant",
            Role::System => continue,
        };
        let text = strip_citations(&h.content);
        let short: String = text.chars().take(TURN_CHARS).collect();
        let ell = if short.len() < text.len() { " …" } else { "" };
        convo.push_str(&format!("{who}: {}{ell}\n", short.trim()));
    }
    vec![
        ChatMessage::system(
            "Rewrite the user's follow-up question as one standalone question that can be \
understood without the conversation: replace pronouns and references with what they refer to. \
Reply with the rewritten question only, on one line, with no explanation.",
        ),
        ChatMessage::user(format!(
            "Conversation:\n{convo}\nFollow-up question: {follow_up}\n\nStandalone question:"
        )),
    ]
}

/// The standalone query out of the model's reply to [`condense_messages`]: its first non-empty
/// line, less a `Standalone question:` style label and surrounding quotes. Falls back to
/// `follow_up` when the reply is empty or runs far too long.
pub fn parse_condensed(reply: &str, follow_up: &str) -> String {
    let line = reply
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut q = line;
    if let Some((label, rest)) = q.split_once(':') {
        let l = label.to_ascii_lowercase();
        if l.contains("question") || l.contains("query") {
            q = rest.trim();
        }
    }
    let q = q.trim_matches(|c| matches!(c, '"' | '\'' | '“' | '”' | '`' | '*'));
    let q = q.trim();
    if q.is_empty() || q.chars().count() > 400 {
        follow_up.to_string()
    } else {
        q.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hit;
    use proptest::prelude::*;

    /// Whitespace words, plus 4 tokens per message and 3 for the assistant's opening.
    struct Words;
    impl TokenBudget for Words {
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
        fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize, SeamError> {
            Ok(messages
                .iter()
                .map(|m| self.count_tokens(&m.content) + 4)
                .sum::<usize>()
                + 3)
        }
    }

    fn hits(n: usize, words: usize) -> Vec<Hit> {
        (0..n)
            .map(|i| {
                let text = (0..words)
                    .map(|w| format!("w{i}x{w}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                test_hit(&format!("c{i}"), &format!("d{i}"), 0, 1.0, &text)
            })
            .collect()
    }

    #[test]
    fn everything_fits_in_a_large_budget() {
        let hs = hits(3, 20);
        let p = pack_prompt("what?", &[], &hs, &Words, 4096, 512).unwrap();
        assert_eq!(
            p.sources,
            vec![
                (0, hs[0].text.len()),
                (1, hs[1].text.len()),
                (2, hs[2].text.len())
            ]
        );
        assert_eq!(p.messages.len(), 2);
        let user = &p.messages[1].content;
        assert!(user.contains("[1] d0.md, lines 1-1\nw0x0"), "{user}");
        assert!(user.contains("[3] d2.md"));
        assert!(user.ends_with("citing them as [n]."));
        assert!(p.tokens <= p.budget);
    }

    #[test]
    fn a_small_budget_cuts_the_last_source() {
        let hs = hits(3, 100);
        let p = pack_prompt("what?", &[], &hs, &Words, 400, 100).unwrap();
        assert!(p.tokens <= 300, "{p:?}");
        assert_eq!(p.sources[0], (0, hs[0].text.len()));
        let (i, cut) = *p.sources.last().unwrap();
        assert!(i == 1 && cut < hs[1].text.len(), "{p:?}");
        assert!(p.messages[1].content.contains(" …"));
    }

    #[test]
    fn history_goes_before_the_question_is_refused() {
        let long = "word ".repeat(200);
        let history = vec![
            ChatMessage::user(long.clone()),
            ChatMessage::assistant(format!("{long} [1]")),
            ChatMessage::user("short"),
            ChatMessage::assistant("short answer [2]"),
        ];
        let hs = hits(1, 10);
        let p = pack_prompt("and then?", &history, &hs, &Words, 300, 100).unwrap();
        assert_eq!(p.dropped_history, 2);
        assert_eq!(p.messages.len(), 4);
        assert_eq!(p.messages[2].content, "short answer");
        let err = pack_prompt(&"q ".repeat(500), &[], &hs, &Words, 300, 100).unwrap_err();
        assert!(matches!(err, PromptError::QuestionTooLong { .. }), "{err}");
        let err = pack_prompt("q", &[], &hits(1, 100), &Words, 150, 50).unwrap_err();
        assert!(matches!(err, PromptError::NoRoom { .. }), "{err}");
    }

    #[test]
    fn condensing() {
        let h = vec![
            ChatMessage::user("What is the contract fee?"),
            ChatMessage::assistant("It is $184,500 [1]."),
        ];
        let m = condense_messages(&h, "When is it due?");
        assert!(m[1].content.contains("Assistant: It is $184,500.\n"));
        assert!(m[1].content.contains("Follow-up question: When is it due?"));
        assert_eq!(
            parse_condensed(
                "Standalone question: \"When is the contract fee due?\"\nextra",
                "x"
            ),
            "When is the contract fee due?"
        );
        assert_eq!(parse_condensed("  \n", "fallback"), "fallback");
        assert_eq!(
            parse_condensed("Fee due date: 45 days", "x"),
            "Fee due date: 45 days"
        );
    }

    proptest! {
        #[test]
        fn packed_prompt_never_exceeds_budget(
            n in 0usize..8,
            words in 1usize..200,
            ctx in 32usize..3000,
            max in 0usize..600,
            q in "[a-z ]{1,40}",
        ) {
            let hs = hits(n, words);
            match pack_prompt(&q, &[], &hs, &Words, ctx, max) {
                Ok(p) => {
                    prop_assert!(p.tokens <= ctx.saturating_sub(max));
                    prop_assert_eq!(Words.prompt_tokens(&p.messages).unwrap(), p.tokens);
                    prop_assert!(p.sources.len() <= n);
                }
                Err(PromptError::Measure(e)) => prop_assert!(false, "{}", e),
                Err(_) => {}
            }
        }
    }
}
