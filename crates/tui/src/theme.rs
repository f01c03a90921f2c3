//! Colours and emphasis, chosen once at start. With `NO_COLOR` set (to anything non-empty, see
//! <https://no-color.org>) the interface uses bold, underline and reverse video only.

use ratatui::style::{Color, Modifier, Style};

/// The styles the views draw with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub text: Style,
    pub dim: Style,
    pub title: Style,
    /// The border of the pane that has the keyboard.
    pub focused: Style,
    pub border: Style,
    /// `[n]` markers in the answer.
    pub marker: Style,
    /// The cited passage in the preview, and query words in search hits.
    pub highlight: Style,
    /// The selected row of a list.
    pub selected: Style,
    /// The user's questions in the answer pane.
    pub question: Style,
    pub warning: Style,
    pub error: Style,
    /// Commands the user is told to run.
    pub command: Style,
    pub status: Style,
    pub ok: Style,
}

impl Theme {
    /// The colour theme.
    pub fn color() -> Self {
        let s = Style::default();
        Theme {
            text: s,
            dim: s.fg(Color::DarkGray),
            title: s.add_modifier(Modifier::BOLD),
            focused: s.fg(Color::Cyan),
            border: s.fg(Color::DarkGray),
            marker: s.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            highlight: s.fg(Color::Black).bg(Color::Yellow),
            selected: s.add_modifier(Modifier::REVERSED),
            question: s.fg(Color::Green).add_modifier(Modifier::BOLD),
            warning: s.fg(Color::Yellow),
            error: s.fg(Color::Red).add_modifier(Modifier::BOLD),
            command: s.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            status: s.fg(Color::White).bg(Color::DarkGray),
            ok: s.fg(Color::Green),
        }
    }

    /// No colour at all: emphasis by bold, underline and reverse video.
    pub fn plain() -> Self {
        let s = Style::default();
        Theme {
            text: s,
            dim: s,
            title: s.add_modifier(Modifier::BOLD),
            focused: s.add_modifier(Modifier::BOLD),
            border: s,
            marker: s.add_modifier(Modifier::BOLD),
            highlight: s.add_modifier(Modifier::REVERSED),
            selected: s.add_modifier(Modifier::REVERSED),
            question: s.add_modifier(Modifier::BOLD),
            warning: s.add_modifier(Modifier::BOLD),
            error: s.add_modifier(Modifier::BOLD),
            command: s.add_modifier(Modifier::BOLD),
            status: s.add_modifier(Modifier::REVERSED),
            ok: s,
        }
    }

    /// [`Theme::plain`] when `no_color` holds a non-empty value (the `NO_COLOR` variable),
    /// [`Theme::color`] otherwise.
    pub fn choose(no_color: Option<&str>) -> Self {
        match no_color {
            Some(v) if !v.is_empty() => Theme::plain(),
            _ => Theme::color(),
        }
    }

    /// The theme for this process's environment.
    pub fn from_env() -> Self {
        Theme::choose(std::env::var("NO_COLOR").ok().as_deref())
    }
}

impl Default for Theme {
    fn default() -> Self {
        Theme::color()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_means_no_colour() {
        assert_eq!(Theme::choose(Some("1")), Theme::plain());
        assert_eq!(Theme::choose(Some("")), Theme::color());
        assert_eq!(Theme::choose(None), Theme::color());
        let p = Theme::plain();
        for s in [
            p.text,
            p.dim,
            p.title,
            p.focused,
            p.border,
            p.marker,
            p.highlight,
            p.selected,
            p.question,
            p.warning,
            p.error,
            p.command,
            p.status,
            p.ok,
        ] {
            assert_eq!((s.fg, s.bg), (None, None), "{s:?}");
        }
    }
}
