//! Terminal events to [`Action`]s. Which action a key means depends on where the focus is: in
//! the question box letters are letters, elsewhere they are commands.

use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use crate::app::{Action, App, Overlay, Pane};

/// The keys, as the help window lists them (an empty key column starts a section).
pub const HELP: &[(&str, &str)] = &[
    ("", "Question box"),
    ("Enter", "ask (in search mode: search)"),
    ("Alt/Shift-Enter", "new line (also Ctrl-J)"),
    (
        "Up / Down",
        "earlier / later questions, on the first / last line",
    ),
    ("Ctrl-U, Ctrl-W", "clear the box, delete a word"),
    ("Esc", "stop the answer being written; else leave the box"),
    ("", "Everywhere else"),
    (
        "Tab, Shift-Tab",
        "next / previous pane (i: back to the question box)",
    ),
    ("j k, arrows", "scroll; in the sources, choose one"),
    ("PgUp PgDn g G", "scroll by pages, to the start, to the end"),
    ("Enter", "on a source: show its passage in the preview"),
    ("o", "open the source's file at its page or line"),
    ("e", "export the answer to Markdown"),
    ("/", "search mode on or off (hits without the model)"),
    ("f", "filters: kind, path, sender, dates"),
    ("n  c", "new conversation, list of past conversations"),
    ("?  F1", "this help"),
    ("q, Ctrl-C", "quit (Ctrl-C also from the question box)"),
];

/// The action for a terminal event, if any.
pub fn action_for(app: &App, event: &Event) -> Option<Action> {
    match event {
        Event::Key(k) => key_action(app, k),
        Event::Mouse(m) => mouse_action(app, m),
        Event::Paste(s) => Some(Action::Paste(s.clone())),
        Event::Resize(w, h) => Some(Action::Resize(*w, *h)),
        _ => None,
    }
}

fn mouse_action(app: &App, m: &MouseEvent) -> Option<Action> {
    let pane = crate::ui::pane_at(app, m.column, m.row);
    match m.kind {
        MouseEventKind::ScrollUp => Some(Action::Scroll {
            pane: pane.or(Some(app.focus)),
            delta: -3,
        }),
        MouseEventKind::ScrollDown => Some(Action::Scroll {
            pane: pane.or(Some(app.focus)),
            delta: 3,
        }),
        MouseEventKind::Down(MouseButton::Left) if app.overlay.is_none() => pane.map(Action::Focus),
        _ => None,
    }
}

/// The action for a key press.
pub fn key_action(app: &App, k: &KeyEvent) -> Option<Action> {
    if k.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    let alt = k.modifiers.contains(KeyModifiers::ALT);
    let shift = k.modifiers.contains(KeyModifiers::SHIFT);
    if ctrl && matches!(k.code, KeyCode::Char('c' | 'C')) {
        return Some(Action::Quit);
    }
    match &app.overlay {
        Some(Overlay::Help) => return Some(Action::ToggleHelp),
        Some(Overlay::Export(_) | Overlay::Filters(_)) => return field_key(k, ctrl, alt),
        Some(Overlay::Conversations(_)) => {
            return match k.code {
                KeyCode::Esc | KeyCode::Char('q' | 'c') => Some(Action::Cancel),
                KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
                KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
                KeyCode::Enter => Some(Action::Submit),
                KeyCode::Char('d') | KeyCode::Delete => Some(Action::DeleteConversation),
                _ => None,
            };
        }
        None => {}
    }
    match k.code {
        KeyCode::F(1) => return Some(Action::ToggleHelp),
        KeyCode::Tab => return Some(Action::FocusNext),
        KeyCode::BackTab => return Some(Action::FocusPrev),
        KeyCode::Esc => return Some(Action::Cancel),
        KeyCode::PageUp => return Some(Action::Page(-1)),
        KeyCode::PageDown => return Some(Action::Page(1)),
        _ => {}
    }
    if app.focus == Pane::Question {
        return match k.code {
            KeyCode::Enter if alt || shift => Some(Action::Newline),
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Char('j' | 'J') if ctrl => Some(Action::Newline),
            KeyCode::Up => Some(Action::Up),
            KeyCode::Down => Some(Action::Down),
            _ => edit_key(k, ctrl, alt),
        };
    }
    if ctrl || alt {
        return None;
    }
    match k.code {
        KeyCode::Char('q') => Some(Action::Quit),
        KeyCode::Char('?') => Some(Action::ToggleHelp),
        KeyCode::Char('j') | KeyCode::Down => Some(Action::Down),
        KeyCode::Char('k') | KeyCode::Up => Some(Action::Up),
        KeyCode::Char(' ') => Some(Action::Page(1)),
        KeyCode::Char('g') | KeyCode::Home => Some(Action::Jump(false)),
        KeyCode::Char('G') | KeyCode::End => Some(Action::Jump(true)),
        KeyCode::Enter => Some(Action::Submit),
        KeyCode::Char('o') => Some(Action::OpenExternal),
        KeyCode::Char('e') => Some(Action::StartExport),
        KeyCode::Char('/') => Some(Action::ToggleSearch),
        KeyCode::Char('f') => Some(Action::EditFilters),
        KeyCode::Char('n') => Some(Action::NewConversation),
        KeyCode::Char('c') => Some(Action::ShowConversations),
        KeyCode::Char('i') => Some(Action::Focus(Pane::Question)),
        _ => None,
    }
}

/// Keys in a window's text field.
fn field_key(k: &KeyEvent, ctrl: bool, alt: bool) -> Option<Action> {
    match k.code {
        KeyCode::Esc => Some(Action::Cancel),
        KeyCode::Enter => Some(Action::Submit),
        KeyCode::Tab => Some(Action::FocusNext),
        KeyCode::BackTab => Some(Action::FocusPrev),
        KeyCode::Up => Some(Action::Up),
        KeyCode::Down => Some(Action::Down),
        _ => edit_key(k, ctrl, alt),
    }
}

/// Editing keys shared by the question box and the windows' text fields.
fn edit_key(k: &KeyEvent, ctrl: bool, alt: bool) -> Option<Action> {
    match k.code {
        KeyCode::Char('u' | 'U') if ctrl => Some(Action::ClearInput),
        KeyCode::Char('w' | 'W') if ctrl => Some(Action::DeleteWord),
        KeyCode::Char('a' | 'A') if ctrl => Some(Action::Home),
        KeyCode::Char('e' | 'E') if ctrl => Some(Action::End),
        KeyCode::Backspace if alt || ctrl => Some(Action::DeleteWord),
        KeyCode::Char(c) if !ctrl => Some(Action::Insert(c)),
        KeyCode::Backspace => Some(Action::Backspace),
        KeyCode::Delete => Some(Action::Delete),
        KeyCode::Left => Some(Action::Left),
        KeyCode::Right => Some(Action::Right),
        KeyCode::Home => Some(Action::Home),
        KeyCode::End => Some(Action::End),
        _ => None,
    }
}
