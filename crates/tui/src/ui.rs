//! Drawing: a pure function of the [`App`] state and the [`Theme`]. Every string that came from
//! a document, the model or the backend goes through [`clean`] first, so that nothing drawn
//! can carry a terminal control sequence.

use std::ops::Range;
use std::path::Path;

use docent_core::DocKind;
use docent_core::text::sanitize;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap};
use unicode_width::UnicodeWidthStr;

use crate::app::{App, ConversationList, Mode, Overlay, Pane, SourceView};
use crate::clock;
use crate::conversation::{Turn, TurnState};
use crate::filter::{FIELDS, FilterForm};
use crate::keys::HELP;
use crate::theme::Theme;

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// Text from a document, the model or the backend, made safe to draw: terminal control
/// sequences and characters removed ([`sanitize`]), tabs as spaces.
pub fn clean(s: &str) -> String {
    sanitize(s).replace('\t', "    ")
}

/// [`clean`] on one line: line breaks become spaces.
pub fn clean_line(s: &str) -> String {
    clean(s).replace('\n', " ")
}

/// Where each part of the screen is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    pub answer: Rect,
    pub sources: Rect,
    pub preview: Rect,
    pub question: Rect,
    pub status: Rect,
}

/// The screen's layout for the state's terminal size: the answer on the left, sources over the
/// preview on the right, the question box under them and the status bar at the bottom.
pub fn layout(area: Rect, app: &App) -> Areas {
    let input_rows = app.input.lines().len().clamp(1, 4) as u16;
    let [main, question, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(input_rows + 2),
        Constraint::Length(1),
    ])
    .areas(area);
    let [answer, right] =
        Layout::horizontal([Constraint::Percentage(56), Constraint::Percentage(44)]).areas(main);
    let [sources, preview] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(right);
    Areas {
        answer,
        sources,
        preview,
        question,
        status,
    }
}

fn screen(app: &App) -> Rect {
    Rect::new(0, 0, app.size.0, app.size.1)
}

/// The pane under a screen position (for the mouse).
pub fn pane_at(app: &App, column: u16, row: u16) -> Option<Pane> {
    let a = layout(screen(app), app);
    let p = Position::new(column, row);
    [
        (a.answer, Pane::Answer),
        (a.sources, Pane::Sources),
        (a.preview, Pane::Preview),
        (a.question, Pane::Question),
    ]
    .into_iter()
    .find(|(r, _)| r.contains(p))
    .map(|(_, pane)| pane)
}

fn inner(r: Rect) -> Rect {
    Block::default().borders(Borders::ALL).inner(r)
}

/// Rows of text a pane shows.
pub fn pane_height(app: &App, pane: Pane) -> usize {
    let a = layout(screen(app), app);
    let r = match pane {
        Pane::Answer => a.answer,
        Pane::Sources => a.sources,
        Pane::Preview => a.preview,
        Pane::Question => a.question,
    };
    usize::from(inner(r).height)
}

fn wrapped_rows(lines: Vec<Line<'static>>, width: u16) -> usize {
    if width == 0 {
        return 0;
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .line_count(width)
}

/// The furthest the answer pane can scroll.
pub fn answer_max_scroll(app: &App) -> usize {
    let r = inner(layout(screen(app), app).answer);
    wrapped_rows(answer_lines(app, &Theme::plain()), r.width).saturating_sub(usize::from(r.height))
}

/// The furthest the preview can scroll.
pub fn preview_max_scroll(app: &App) -> usize {
    let r = inner(layout(screen(app), app).preview);
    match preview_lines(app, &Theme::plain()) {
        Some((lines, _)) => wrapped_rows(lines, r.width).saturating_sub(usize::from(r.height)),
        None => 0,
    }
}

/// Where the preview starts when a source is opened in it: a line above the first highlight.
pub fn preview_initial_scroll(app: &App) -> usize {
    let r = inner(layout(screen(app), app).preview);
    match preview_lines(app, &Theme::plain()) {
        Some((lines, Some(first))) => {
            let before = wrapped_rows(lines[..first].to_vec(), r.width);
            before.saturating_sub(1).min(preview_max_scroll(app))
        }
        _ => 0,
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App, theme: &Theme) {
    let area = frame.area();
    if area.width < 40 || area.height < 12 {
        let msg = Paragraph::new(format!(
            "The terminal is {}x{}; docent needs at least 80x24.",
            area.width, area.height
        ))
        .wrap(Wrap { trim: true });
        frame.render_widget(msg, area);
        return;
    }
    let a = layout(area, app);
    draw_answer(frame, app, theme, a.answer);
    draw_sources(frame, app, theme, a.sources);
    draw_preview(frame, app, theme, a.preview);
    draw_question(frame, app, theme, a.question);
    frame.render_widget(
        Paragraph::new(status_line(app, theme, a.status.width)),
        a.status,
    );
    match &app.overlay {
        None => {}
        Some(Overlay::Help) => draw_help(frame, theme, area),
        Some(Overlay::Export(p)) => {
            let lines = vec![
                Line::from("Export the answer as Markdown, with its sources as footnotes."),
                Line::from(Span::styled(
                    format!(
                        "Relative names are saved in {}",
                        clean_line(&app.config.export_dir.display().to_string())
                    ),
                    theme.dim,
                )),
            ];
            draw_prompt(
                frame,
                theme,
                area,
                "Export",
                lines,
                &[("file", &p.input)],
                0,
                p.error.as_deref(),
                "Enter writes the file · Esc cancels",
            );
        }
        Some(Overlay::Filters(form)) => draw_filters(frame, theme, area, form),
        Some(Overlay::Conversations(list)) => draw_conversations(frame, app, theme, area, list),
    }
}

fn pane_block<'a>(app: &App, theme: &Theme, pane: Pane, title: Line<'a>) -> Block<'a> {
    let focused = app.focus == pane && app.overlay.is_none();
    Block::default()
        .borders(Borders::ALL)
        .border_style(if focused { theme.focused } else { theme.border })
        .title(title)
}

fn title(text: &str, theme: &Theme) -> Line<'static> {
    Line::from(Span::styled(format!(" {text} "), theme.title))
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The status bar. When it does not fit, the help hint goes first, then the word "updated",
/// then the time of the last update.
fn status_line(app: &App, theme: &Theme, width: u16) -> Line<'static> {
    let mut parts: Vec<(String, Style)> = Vec::new();
    let mut update: Option<String> = None;
    match &app.status {
        None => parts.push(("connecting to docent…".into(), theme.status)),
        Some(s) => {
            parts.push(if s.daemon_connected {
                ("● daemon".into(), theme.status.patch(theme.ok))
            } else {
                ("○ no daemon".into(), theme.status)
            });
            parts.push((
                match &s.index {
                    Some(i) => format!(
                        "{} docs · {} chunks",
                        thousands(i.documents),
                        thousands(i.chunks)
                    ),
                    None => "no index".into(),
                },
                theme.status,
            ));
            parts.push((format!("queue {}", s.queue), theme.status));
            parts.push((
                match &s.model {
                    Some(m) => format!("{} · {}", clean_line(&m.name), clean_line(&m.device)),
                    None => "no model".into(),
                },
                theme.status,
            ));
            update = s.last_update.as_deref().map(clean_line);
        }
    }
    let right = match app.mode {
        Mode::Ask => "? help ",
        Mode::Search => "SEARCH · ? help ",
    };
    let width = usize::from(width);
    let candidates = [
        (update.as_ref().map(|u| format!("updated {u}")), true),
        (update.as_ref().map(|u| format!("updated {u}")), false),
        (update.clone(), false),
        (None, false),
    ];
    let mut chosen = None;
    for (upd, with_right) in candidates {
        let mut texts: Vec<(String, Style)> = parts.clone();
        if let Some(u) = upd {
            texts.push((u, theme.status));
        }
        // A leading space, ` │ ` between parts, and at least 3 spaces before the hint.
        let used: usize = texts.iter().map(|(t, _)| t.width() + 3).sum::<usize>() + 1;
        let right_w = if with_right { right.width() } else { 0 };
        chosen = Some((texts, with_right, used + right_w));
        if used + right_w <= width {
            break;
        }
    }
    let Some((texts, with_right, used)) = chosen else {
        return Line::default();
    };
    let mut spans: Vec<Span<'static>> = vec![Span::styled(" ", theme.status)];
    for (k, (t, st)) in texts.into_iter().enumerate() {
        if k > 0 {
            spans.push(Span::styled(" │ ", theme.status));
        }
        spans.push(Span::styled(t, st));
    }
    spans.push(Span::styled(
        " ".repeat(width.saturating_sub(used) + 3),
        theme.status,
    ));
    if with_right {
        spans.push(Span::styled(right, theme.status));
    }
    Line::from(spans)
}

// ---------------------------------------------------------------------------------------------
// The answer pane

/// Byte ranges of citation marks (`[1]`, `[2, 3]`) in `text`.
pub fn marker_ranges(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            let mut j = i + 1;
            let mut digits = false;
            while j < b.len() && (b[j].is_ascii_digit() || matches!(b[j], b',' | b' ' | b';')) {
                digits |= b[j].is_ascii_digit();
                j += 1;
            }
            if digits && j < b.len() && b[j] == b']' && j - i <= 32 {
                out.push(i..j + 1);
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// `raw` as lines, each character styled by the last of `ranges` (byte ranges of `raw`) that
/// holds it, on top of `base`. Cleaned run by run, after styling, so that the ranges still
/// point at the right characters.
pub fn styled_lines(
    raw: &str,
    ranges: &[(Range<usize>, Style)],
    base: Style,
) -> Vec<Line<'static>> {
    let style_at = |i: usize| {
        ranges
            .iter()
            .filter(|(r, _)| r.contains(&i))
            .fold(base, |s, (_, st)| s.patch(*st))
    };
    let mut runs: Vec<(Style, String)> = Vec::new();
    for (i, c) in raw.char_indices() {
        let st = style_at(i);
        match runs.last_mut() {
            Some((s, text)) if *s == st => text.push(c),
            _ => runs.push((st, c.to_string())),
        }
    }
    let mut lines = vec![Line::default()];
    for (st, text) in runs {
        for (k, piece) in clean(&text).split('\n').enumerate() {
            if k > 0 {
                lines.push(Line::default());
            }
            if !piece.is_empty()
                && let Some(l) = lines.last_mut()
            {
                l.spans.push(Span::styled(piece.to_string(), st));
            }
        }
    }
    lines
}

fn command_line(cmd: &str, theme: &Theme) -> Line<'static> {
    Line::from(vec![
        Span::raw("    "),
        Span::styled(cmd.to_string(), theme.command),
    ])
}

/// What the answer pane says before the first question: how to get started when something is
/// missing, how to ask otherwise.
fn intro_lines(app: &App, theme: &Theme) -> Vec<Line<'static>> {
    let mut l: Vec<Line<'static>> = Vec::new();
    let Some(s) = &app.status else {
        l.push(Line::styled(
            format!(
                "{} Connecting to docent…",
                SPINNER[app.spinner % SPINNER.len()]
            ),
            theme.dim,
        ));
        return l;
    };
    if !s.has_documents() {
        l.push(Line::styled("Nothing is indexed yet.", theme.title));
        l.push(Line::default());
        l.push(Line::from(
            "docent answers from documents you index. Index a folder:",
        ));
        l.push(Line::default());
        l.push(command_line("docent index <FOLDER>", theme));
        l.push(Line::default());
        l.push(Line::from(
            "PDFs, Markdown and text notes, and email (eml, mbox, Maildir) are read. This screen updates once documents are indexed.",
        ));
        l.push(Line::default());
    }
    if s.model.is_none() {
        l.push(Line::styled("No language model yet.", theme.title));
        l.push(Line::default());
        l.push(Line::from(
            "To answer questions, add a model in GGUF format:",
        ));
        l.push(Line::default());
        l.push(command_line("docent models import <FILE.gguf>", theme));
        l.push(Line::default());
        l.push(Line::from("or fetch the recommended one:"));
        l.push(Line::default());
        l.push(command_line("bash scripts/fetch-models.sh", theme));
        l.push(Line::default());
        if s.has_documents() {
            l.push(Line::from(
                "Searching needs no model: Esc, then / for search mode.",
            ));
        }
        return l;
    }
    if !s.has_documents() {
        return l;
    }
    match app.mode {
        Mode::Ask => {
            l.push(Line::styled("Ask about your documents.", theme.title));
            l.push(Line::default());
            l.push(Line::from(
                "Type a question below and press Enter. The answer cites its sources as [n]; Tab to the sources to read the cited passages.",
            ));
            l.push(Line::default());
            l.push(Line::styled(
                "Esc leaves the question box; then f adds filters, / searches without the model, c lists past conversations, ? shows every key.",
                theme.dim,
            ));
        }
        Mode::Search => {
            l.push(Line::styled("Search mode: no model is asked.", theme.title));
            l.push(Line::default());
            l.push(Line::from(
                "Type words and press Enter for the best matching passages. Filters work here too: kind:pdf, from:alice, after:2024-01-01.",
            ));
        }
    }
    l
}

fn turn_lines(turn: &Turn, app: &App, theme: &Theme, l: &mut Vec<Line<'static>>) {
    for (i, q) in clean(&turn.question).lines().enumerate() {
        let lead = if i == 0 { "› " } else { "  " };
        l.push(Line::styled(format!("{lead}{q}"), theme.question));
    }
    if !turn.filters.is_empty() {
        l.push(Line::styled(
            format!("  filters: {}", clean_line(&turn.filters)),
            theme.dim,
        ));
    }
    if let Some(c) = &turn.condensed {
        l.push(Line::styled(
            format!("  searching for: {}", clean_line(c)),
            theme.dim,
        ));
    }
    let spin = SPINNER[app.spinner % SPINNER.len()];
    let text = turn
        .answer
        .as_ref()
        .map_or(turn.text.as_str(), |a| a.text.as_str());
    if turn.state == TurnState::Waiting && text.is_empty() {
        let what = match &turn.retrieved {
            None => "searching your documents…".to_string(),
            Some(r) => format!(
                "{} sources found in {} ms; the model is reading them…",
                r.sources, r.retrieval_ms
            ),
        };
        l.push(Line::styled(format!("{spin} {what}"), theme.dim));
    } else if !text.is_empty() {
        let mut ranges: Vec<(Range<usize>, Style)> = Vec::new();
        if let Some(a) = &turn.answer {
            for s in a.sentences.iter().filter(|s| s.weak) {
                ranges.push((s.bytes.clone(), theme.warning));
            }
        }
        for r in marker_ranges(text) {
            ranges.push((r, theme.marker));
        }
        let mut body = styled_lines(text.trim_end(), &ranges, theme.text);
        if turn.state == TurnState::Streaming
            && let Some(last) = body.last_mut()
        {
            last.spans.push(Span::styled(format!(" {spin}"), theme.dim));
        }
        l.extend(body);
    }
    match turn.state {
        TurnState::Cancelled => l.push(Line::styled("  (stopped)", theme.warning)),
        TurnState::Failed => {
            let e = turn
                .error
                .as_deref()
                .unwrap_or("the question could not be answered");
            for (i, line) in clean(e).lines().enumerate() {
                let lead = if i == 0 { "  error: " } else { "  " };
                l.push(Line::styled(format!("{lead}{line}"), theme.error));
            }
        }
        _ => {}
    }
    if let Some(a) = &turn.answer {
        let mut facts: Vec<String> = Vec::new();
        if a.refused {
            facts.push("nothing relevant enough was found; no model was asked".into());
        } else {
            let cited = {
                let mut n: Vec<usize> = a.citations.iter().map(|c| c.n).collect();
                n.sort_unstable();
                n.dedup();
                n.len()
            };
            facts.push(format!("{} sources, {cited} cited", a.sources.len()));
            if let Some(r) = a.relevance {
                facts.push(format!("relevance {r:.2}"));
            }
            facts.push(format!("{} ms retrieval", a.retrieval_ms));
            if let Some(t) = a.tokens_per_s {
                facts.push(format!("{t:.1} tok/s"));
            }
        }
        l.push(Line::styled(format!("  {}", facts.join(" · ")), theme.dim));
        let weak = a.weak_sentences().count();
        if weak > 0 {
            let s = if weak == 1 { "" } else { "s" };
            l.push(Line::styled(
                format!("  {weak} sentence{s} weakly supported by the sources"),
                theme.warning,
            ));
        }
        if !a.removed_citations.is_empty() {
            let list: Vec<String> = a
                .removed_citations
                .iter()
                .map(|n| format!("[{n}]"))
                .collect();
            l.push(Line::styled(
                format!(
                    "  removed citations of sources not given: {}",
                    list.join(", ")
                ),
                theme.warning,
            ));
        }
        for w in &a.warnings {
            l.push(Line::styled(
                format!("  note: {}", clean_line(w)),
                theme.warning,
            ));
        }
    }
    l.push(Line::default());
}

fn search_lines(app: &App, theme: &Theme) -> Vec<Line<'static>> {
    let Some(s) = &app.search else {
        return intro_lines(app, theme);
    };
    let mut l = Vec::new();
    let q = clean_line(&s.query);
    if s.running {
        l.push(Line::styled(
            format!(
                "{} searching for “{q}”…",
                SPINNER[app.spinner % SPINNER.len()]
            ),
            theme.dim,
        ));
        return l;
    }
    if let Some(e) = &s.error {
        for line in clean(e).lines() {
            l.push(Line::styled(line.to_string(), theme.error));
        }
        return l;
    }
    if s.hits.is_empty() {
        l.push(Line::from(format!("No hits for “{q}”.")));
        l.push(Line::styled(
            "Try other words, or fewer filters (f).",
            theme.dim,
        ));
        return l;
    }
    let plural = if s.hits.len() == 1 { "" } else { "s" };
    l.push(Line::styled(
        format!("{} hit{plural} for “{q}” (no model asked)", s.hits.len()),
        theme.dim,
    ));
    l.push(Line::default());
    for (i, (h, v)) in s.hits.iter().zip(app.sources()).enumerate() {
        l.push(Line::from(vec![
            Span::styled(format!("{}. ", i + 1), theme.marker),
            Span::styled(location(&v), theme.title),
            Span::styled(format!(" · score {:.3}", h.hit.score), theme.dim),
        ]));
        let ranges: Vec<(Range<usize>, Style)> = h
            .snippet
            .highlights
            .iter()
            .map(|r| (r.clone(), theme.highlight))
            .collect();
        for mut line in styled_lines(&h.snippet.text, &ranges, theme.text) {
            line.spans.insert(0, Span::raw("   "));
            l.push(line);
        }
        l.push(Line::default());
    }
    l
}

/// Everything the answer pane holds, unscrolled.
pub fn answer_lines(app: &App, theme: &Theme) -> Vec<Line<'static>> {
    match app.mode {
        Mode::Search => search_lines(app, theme),
        Mode::Ask if app.conversation.turns.is_empty() => intro_lines(app, theme),
        Mode::Ask => {
            let mut l = Vec::new();
            for t in &app.conversation.turns {
                turn_lines(t, app, theme, &mut l);
            }
            l
        }
    }
}

fn draw_answer(frame: &mut Frame<'_>, app: &App, theme: &Theme, area: Rect) {
    let name = match app.mode {
        Mode::Ask if !app.conversation.title.is_empty() => {
            format!("Answer · {}", clean_line(&app.conversation.title))
        }
        Mode::Ask => "Answer".to_string(),
        Mode::Search => "Search results".to_string(),
    };
    let block = pane_block(app, theme, Pane::Answer, title(&name, theme));
    let r = block.inner(area);
    let lines = answer_lines(app, theme);
    let max = wrapped_rows(lines.clone(), r.width).saturating_sub(usize::from(r.height));
    let offset = if app.follow {
        max
    } else {
        app.answer_scroll.min(max)
    };
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((offset.min(u16::MAX as usize) as u16, 0))
        .block(block);
    frame.render_widget(p, area);
}

// ---------------------------------------------------------------------------------------------
// Sources and preview

/// Where a source is, in words: `contract.pdf, page 2`, `notes.md, lines 3-9`,
/// `inbox.mbox, message 3`.
pub fn location(v: &SourceView<'_>) -> String {
    let name = Path::new(v.path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| v.path.to_string());
    let mut out = name;
    if let Some(p) = v.part {
        out.push_str(", ");
        out.push_str(p);
    }
    match v.page {
        Some(p) => out.push_str(&format!(", page {p}")),
        None if v.kind != DocKind::Email => {
            out.push_str(&format!(", lines {}-{}", v.lines.0, v.lines.1));
        }
        None => {}
    }
    clean_line(&out)
}

/// `“Subject” · Sender · 2024-11-12` for sources from email.
fn email_line(v: &SourceView<'_>) -> Option<String> {
    if v.subject.is_none() && v.from.is_none() {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(s) = v.subject {
        parts.push(format!("“{}”", s.trim()));
    }
    if let Some(f) = v.from {
        parts.push(f.trim().to_string());
    }
    if let Some(d) = v.date {
        parts.push(d.get(..10).unwrap_or(d).to_string());
    }
    Some(clean_line(&parts.join(" · ")))
}

fn draw_sources(frame: &mut Frame<'_>, app: &App, theme: &Theme, area: Rect) {
    let items = app.sources();
    let name = match app.mode {
        Mode::Ask => {
            let cited = items.iter().filter(|v| v.support.is_some()).count();
            if items.is_empty() {
                "Sources".to_string()
            } else {
                format!("Sources · {} · {cited} cited", items.len())
            }
        }
        Mode::Search => format!("Hits · {}", items.len()),
    };
    let block = pane_block(app, theme, Pane::Sources, title(&name, theme));
    if items.is_empty() {
        let hint = match (app.mode, app.active_turn()) {
            (Mode::Ask, Some(t)) => match &t.retrieved {
                Some(r) => format!(
                    "{} sources retrieved; listed when the answer is done.",
                    r.sources
                ),
                None => "Retrieving…".into(),
            },
            (Mode::Ask, None) => "The sources of the answer are listed here.".into(),
            (Mode::Search, _) => "Search hits are listed here.".into(),
        };
        let p = Paragraph::new(Line::styled(hint, theme.dim))
            .wrap(Wrap { trim: true })
            .block(block);
        frame.render_widget(p, area);
        return;
    }
    let rows: Vec<ListItem<'static>> = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let label = match v.n {
                Some(n) => format!("[{n}] "),
                None => format!("{}. ", i + 1),
            };
            let cited = v.n.is_none() || v.support.is_some();
            let name_style = if cited { theme.text } else { theme.dim };
            let first = Line::from(vec![
                Span::styled(label, theme.marker),
                Span::styled(location(v), name_style),
            ]);
            let mut facts: Vec<String> = Vec::new();
            match (v.n, v.score) {
                (Some(_), Some(s)) => facts.push(format!("sim {s:.2}")),
                (None, Some(s)) => facts.push(format!("score {s:.3}")),
                _ => {}
            }
            match (v.n, v.support) {
                (Some(_), Some(s)) => facts.push(format!("support {s:.2}")),
                (Some(_), None) => facts.push("not cited".into()),
                _ => {}
            }
            let mut lines = vec![first];
            if !facts.is_empty() {
                lines.push(Line::styled(
                    format!("    {}", facts.join(" · ")),
                    theme.dim,
                ));
            }
            if let Some(e) = email_line(v) {
                lines.push(Line::styled(format!("    {e}"), theme.dim));
            }
            ListItem::new(lines)
        })
        .collect();
    let focused = app.focus == Pane::Sources && app.overlay.is_none();
    let list = List::new(rows).block(block).highlight_style(if focused {
        theme.selected
    } else {
        theme.title
    });
    let mut state = ListState::default().with_selected(Some(app.selected.min(items.len() - 1)));
    frame.render_stateful_widget(list, area, &mut state);
}

/// The preview's lines for the source it shows, and the index of the first line holding a
/// highlight.
pub fn preview_lines(app: &App, theme: &Theme) -> Option<(Vec<Line<'static>>, Option<usize>)> {
    let items = app.sources();
    let v = items.get(app.preview?)?;
    let mut l: Vec<Line<'static>> = vec![Line::styled(clean_line(v.path), theme.dim)];
    if let Some(e) = email_line(v) {
        l.push(Line::styled(e, theme.dim));
    }
    if v.n.is_some() && v.highlights.is_empty() {
        l.push(Line::styled("not cited by the answer", theme.dim));
    }
    l.push(Line::default());
    let head = l.len();
    let ranges: Vec<(Range<usize>, Style)> = v
        .highlights
        .iter()
        .map(|r| (r.clone(), theme.highlight))
        .collect();
    let body = styled_lines(v.text, &ranges, theme.text);
    let first = v.highlights.first().map(|r| {
        // Lines of the body before the one the highlight starts on.
        head + v.text[..r.start.min(v.text.len())].matches('\n').count()
    });
    l.extend(body);
    Some((l, first))
}

fn draw_preview(frame: &mut Frame<'_>, app: &App, theme: &Theme, area: Rect) {
    let items = app.sources();
    let name = match app.preview.and_then(|i| items.get(i)) {
        Some(v) => match v.n {
            Some(n) => format!("Preview · [{n}] {}", location(v)),
            None => format!("Preview · {}", location(v)),
        },
        None => "Preview".to_string(),
    };
    let block = pane_block(app, theme, Pane::Preview, title(&name, theme));
    let p = match preview_lines(app, theme) {
        Some((lines, _)) => {
            let r = block.inner(area);
            let max = wrapped_rows(lines.clone(), r.width).saturating_sub(usize::from(r.height));
            let offset = app.preview_scroll.min(max).min(u16::MAX as usize) as u16;
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .scroll((offset, 0))
        }
        None => Paragraph::new(Line::styled(
            "Enter on a source shows its passage here, the cited part highlighted; o opens the file.",
            theme.dim,
        ))
        .wrap(Wrap { trim: true }),
    };
    frame.render_widget(p.block(block), area);
}

// ---------------------------------------------------------------------------------------------
// The question box

/// Renders a text input in `area` (no border), scrolled so that the cursor shows; returns the
/// cursor's screen position.
fn draw_input(
    frame: &mut Frame<'_>,
    input: &crate::editor::TextInput,
    area: Rect,
    style: Style,
) -> Position {
    let (row, col) = input.cursor();
    let line = &input.lines()[row];
    let before: String = line.chars().take(col).collect();
    let x = before.width();
    let w = usize::from(area.width.max(1));
    let h = usize::from(area.height.max(1));
    let xoff = (x + 1).saturating_sub(w);
    let yoff = (row + 1).saturating_sub(h);
    let lines: Vec<Line<'static>> = input
        .lines()
        .iter()
        .map(|l| Line::styled(l.clone(), style))
        .collect();
    frame.render_widget(
        Paragraph::new(lines).scroll((yoff as u16, xoff as u16)),
        area,
    );
    Position::new(area.x + (x - xoff) as u16, area.y + (row - yoff) as u16)
}

fn draw_question(frame: &mut Frame<'_>, app: &App, theme: &Theme, area: Rect) {
    let name = match app.mode {
        Mode::Ask if app.conversation.turns.is_empty() => "Ask".to_string(),
        Mode::Ask => "Ask a follow-up".to_string(),
        Mode::Search => "Search".to_string(),
    };
    let mut block = pane_block(app, theme, Pane::Question, title(&name, theme));
    let filters = app.filters.to_query();
    if !filters.is_empty() {
        block = block.title(
            Line::styled(
                format!(" filters: {} ", clean_line(&filters)),
                theme.warning,
            )
            .right_aligned(),
        );
    }
    let bottom = match &app.notice {
        Some(n) => Line::styled(
            format!(" {} ", clean_line(&n.text)),
            if n.error { theme.error } else { theme.ok },
        ),
        None => {
            let hint = match (app.mode, app.active_turn().is_some(), app.focus) {
                (_, true, _) => " Esc stops the answer · Tab panes · ? help ",
                (_, false, Pane::Question) => match app.mode {
                    Mode::Ask => " Enter asks · Alt-Enter new line · Esc leaves · ? F1 help ",
                    Mode::Search => " Enter searches · Esc leaves · F1 help ",
                },
                _ => " i types · Tab panes · / search · f filters · e export · q quits · ? help ",
            };
            Line::styled(hint, theme.dim)
        }
    };
    block = block.title_bottom(bottom);
    let r = block.inner(area);
    frame.render_widget(block, area);
    let focused = app.focus == Pane::Question && app.overlay.is_none();
    if app.input.text().is_empty() {
        let placeholder = match app.mode {
            Mode::Ask => "Ask a question about your documents…",
            Mode::Search => "Words to search for, filters too (kind:pdf from:alice)…",
        };
        frame.render_widget(Paragraph::new(Line::styled(placeholder, theme.dim)), r);
        if focused {
            frame.set_cursor_position(Position::new(r.x, r.y));
        }
        return;
    }
    let pos = draw_input(frame, &app.input, r, theme.text);
    if focused {
        frame.set_cursor_position(pos);
    }
}

// ---------------------------------------------------------------------------------------------
// Windows over the screen

fn popup(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width.saturating_sub(2));
    let h = height.min(area.height.saturating_sub(2));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn window<'a>(theme: &Theme, name: &str) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.focused)
        .title(title(name, theme))
}

fn draw_help(frame: &mut Frame<'_>, theme: &Theme, area: Rect) {
    let mut lines: Vec<Line<'static>> = Vec::new();
    for (keys, what) in HELP {
        if keys.is_empty() {
            lines.push(Line::styled(what.to_string(), theme.title));
            continue;
        }
        lines.push(Line::from(vec![
            Span::styled(format!(" {keys:<17}"), theme.command),
            Span::raw(what.to_string()),
        ]));
    }
    let r = popup(area, 74, lines.len() as u16 + 2);
    let block = window(theme, "Keys").title_bottom(Line::styled(" any key closes ", theme.dim));
    frame.render_widget(Clear, r);
    frame.render_widget(Paragraph::new(lines).block(block), r);
}

/// A window with some text, labelled one-line fields (the one at `focus` has the cursor), an
/// error and a hint.
#[allow(clippy::too_many_arguments)]
fn draw_prompt(
    frame: &mut Frame<'_>,
    theme: &Theme,
    area: Rect,
    name: &str,
    text: Vec<Line<'static>>,
    fields: &[(&str, &crate::editor::TextInput)],
    focus: usize,
    error: Option<&str>,
    hint: &str,
) {
    let label_w = fields.iter().map(|(l, _)| l.width()).max().unwrap_or(0) as u16 + 2;
    let height = text.len() as u16 + 1 + fields.len() as u16 + 2 + 2;
    let r = popup(area, 72, height);
    let block = window(theme, name).title_bottom(Line::styled(format!(" {hint} "), theme.dim));
    let inner = block.inner(r);
    frame.render_widget(Clear, r);
    frame.render_widget(block, r);
    let n_text = text.len() as u16;
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: true }),
        Rect::new(inner.x, inner.y, inner.width, n_text.min(inner.height)),
    );
    let mut y = inner.y + n_text + 1;
    for (i, (label, input)) in fields.iter().enumerate() {
        if y >= inner.bottom() {
            break;
        }
        let style = if i == focus { theme.focused } else { theme.dim };
        frame.render_widget(
            Paragraph::new(Line::styled(format!("{label}:"), style)),
            Rect::new(inner.x, y, label_w, 1),
        );
        let field = Rect::new(inner.x + label_w, y, inner.width.saturating_sub(label_w), 1);
        let pos = draw_input(frame, input, field, theme.text.patch(theme.selected));
        if i == focus {
            frame.set_cursor_position(pos);
        }
        y += 1;
    }
    if let Some(e) = error
        && y < inner.bottom()
    {
        frame.render_widget(
            Paragraph::new(Line::styled(clean_line(e), theme.error)),
            Rect::new(inner.x, y + 1, inner.width, 1).intersection(inner),
        );
    }
}

fn draw_filters(frame: &mut Frame<'_>, theme: &Theme, area: Rect, form: &FilterForm) {
    let focused_hint = FIELDS[form.focus].1;
    let text = vec![
        Line::from("Questions and searches look only at documents matching all of these."),
        Line::styled(
            format!("{}: {focused_hint}", FIELDS[form.focus].0),
            theme.dim,
        ),
    ];
    let fields: Vec<(&str, &crate::editor::TextInput)> = FIELDS
        .iter()
        .zip(form.fields.iter())
        .map(|((name, _), input)| (*name, input))
        .collect();
    draw_prompt(
        frame,
        theme,
        area,
        "Filters",
        text,
        &fields,
        form.focus,
        form.error.as_deref(),
        "Tab next field · Enter applies · empty fields clear · Esc cancels",
    );
}

fn draw_conversations(
    frame: &mut Frame<'_>,
    app: &App,
    theme: &Theme,
    area: Rect,
    list: &ConversationList,
) {
    let rows = list.items.as_ref().map_or(1, Vec::len) + list.problems.len();
    let r = popup(
        area,
        76,
        (rows as u16 + 2).clamp(6, area.height.saturating_sub(4).max(6)),
    );
    let block = window(theme, "Conversations").title_bottom(Line::styled(
        " Enter opens · d deletes · Esc closes ",
        theme.dim,
    ));
    frame.render_widget(Clear, r);
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let problems: Vec<Line<'static>> = list
        .problems
        .iter()
        .map(|p| Line::styled(format!("skipped: {}", clean_line(p)), theme.warning))
        .collect();
    let n_problems = (problems.len() as u16).min(inner.height / 2);
    let [items_area, problems_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(n_problems)]).areas(inner);
    frame.render_widget(Paragraph::new(problems), problems_area);
    let Some(items) = &list.items else {
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!("{} reading…", SPINNER[app.spinner % SPINNER.len()]),
                theme.dim,
            )),
            items_area,
        );
        return;
    };
    if items.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "No saved conversations yet: each question you ask is saved here.",
                theme.dim,
            )),
            items_area,
        );
        return;
    }
    let rows: Vec<ListItem<'static>> = items
        .iter()
        .map(|s| {
            let open = if s.id == app.conversation.id {
                " (open)"
            } else {
                ""
            };
            let plural = if s.turns == 1 { "" } else { "s" };
            ListItem::new(Line::from(vec![
                Span::styled(format!("{}  ", clock::date_time(s.updated)), theme.dim),
                Span::raw(clean_line(&s.title)),
                Span::styled(format!("  {} question{plural}{open}", s.turns), theme.dim),
            ]))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(list.selected.min(items.len() - 1)));
    frame.render_stateful_widget(
        List::new(rows).highlight_style(theme.selected),
        items_area,
        &mut state,
    );
}
