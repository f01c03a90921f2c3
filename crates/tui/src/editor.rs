//! A small multi-line text input: the question box and the prompts' fields.

use std::fmt;

/// Text being typed, as lines, with a cursor (line, character). Control characters never get
/// in: typed and pasted text is filtered.
#[derive(Clone, PartialEq, Eq)]
pub struct TextInput {
    lines: Vec<String>,
    row: usize,
    /// In characters, not bytes.
    col: usize,
}

impl Default for TextInput {
    fn default() -> Self {
        TextInput {
            lines: vec![String::new()],
            row: 0,
            col: 0,
        }
    }
}

impl fmt::Debug for TextInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextInput")
            .field("lines", &self.lines.len())
            .field("row", &self.row)
            .field("col", &self.col)
            .finish()
    }
}

/// Byte offset of character `col` in `s` (the end when past it).
fn byte_at(s: &str, col: usize) -> usize {
    s.char_indices().nth(col).map_or(s.len(), |(i, _)| i)
}

impl TextInput {
    /// An input holding `text`, the cursor at its end.
    pub fn from_text(text: &str) -> Self {
        let mut t = TextInput::default();
        t.insert_str(text);
        t
    }

    /// The text, lines joined by `\n`.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// True when nothing but whitespace was typed.
    pub fn is_blank(&self) -> bool {
        self.lines.iter().all(|l| l.trim().is_empty())
    }

    /// The cursor as (line, character), from 0.
    pub fn cursor(&self) -> (usize, usize) {
        (self.row, self.col)
    }

    pub fn on_first_line(&self) -> bool {
        self.row == 0
    }

    pub fn on_last_line(&self) -> bool {
        self.row + 1 == self.lines.len()
    }

    pub fn clear(&mut self) {
        *self = TextInput::default();
    }

    fn line_len(&self) -> usize {
        self.lines[self.row].chars().count()
    }

    /// Types one character (control characters other than a newline are ignored).
    pub fn insert_char(&mut self, c: char) {
        if c == '\n' {
            self.newline();
            return;
        }
        if c.is_control() {
            return;
        }
        let line = &mut self.lines[self.row];
        let at = byte_at(line, self.col);
        line.insert(at, c);
        self.col += 1;
    }

    /// Types a string, as pasted: `\n` breaks lines, `\t` becomes spaces, `\r` and other
    /// control characters are dropped.
    pub fn insert_str(&mut self, s: &str) {
        for c in s.chars() {
            match c {
                '\t' => {
                    for _ in 0..4 {
                        self.insert_char(' ');
                    }
                }
                c => self.insert_char(c),
            }
        }
    }

    /// Splits the line at the cursor.
    pub fn newline(&mut self) {
        let line = &mut self.lines[self.row];
        let at = byte_at(line, self.col);
        let rest = line.split_off(at);
        self.lines.insert(self.row + 1, rest);
        self.row += 1;
        self.col = 0;
    }

    pub fn backspace(&mut self) {
        if self.col > 0 {
            let line = &mut self.lines[self.row];
            let at = byte_at(line, self.col - 1);
            line.remove(at);
            self.col -= 1;
        } else if self.row > 0 {
            let line = self.lines.remove(self.row);
            self.row -= 1;
            self.col = self.line_len();
            self.lines[self.row].push_str(&line);
        }
    }

    pub fn delete(&mut self) {
        if self.col < self.line_len() {
            let line = &mut self.lines[self.row];
            let at = byte_at(line, self.col);
            line.remove(at);
        } else if self.row + 1 < self.lines.len() {
            let next = self.lines.remove(self.row + 1);
            self.lines[self.row].push_str(&next);
        }
    }

    /// Deletes the word before the cursor (and the spaces after it).
    pub fn delete_word(&mut self) {
        if self.col == 0 {
            self.backspace();
            return;
        }
        let chars: Vec<char> = self.lines[self.row].chars().collect();
        let mut start = self.col;
        while start > 0 && chars[start - 1].is_whitespace() {
            start -= 1;
        }
        while start > 0 && !chars[start - 1].is_whitespace() {
            start -= 1;
        }
        let line = &mut self.lines[self.row];
        let (a, b) = (byte_at(line, start), byte_at(line, self.col));
        line.replace_range(a..b, "");
        self.col = start;
    }

    pub fn left(&mut self) {
        if self.col > 0 {
            self.col -= 1;
        } else if self.row > 0 {
            self.row -= 1;
            self.col = self.line_len();
        }
    }

    pub fn right(&mut self) {
        if self.col < self.line_len() {
            self.col += 1;
        } else if self.row + 1 < self.lines.len() {
            self.row += 1;
            self.col = 0;
        }
    }

    pub fn home(&mut self) {
        self.col = 0;
    }

    pub fn end(&mut self) {
        self.col = self.line_len();
    }

    /// Moves up a line; false when already on the first.
    pub fn up(&mut self) -> bool {
        if self.row == 0 {
            return false;
        }
        self.row -= 1;
        self.col = self.col.min(self.line_len());
        true
    }

    /// Moves down a line; false when already on the last.
    pub fn down(&mut self) -> bool {
        if self.row + 1 >= self.lines.len() {
            return false;
        }
        self.row += 1;
        self.col = self.col.min(self.line_len());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editing_across_lines() {
        let mut t = TextInput::default();
        t.insert_str("héllo");
        t.newline();
        t.insert_str("wörld");
        assert_eq!(t.text(), "héllo\nwörld");
        assert_eq!(t.cursor(), (1, 5));
        t.home();
        t.backspace();
        assert_eq!(t.text(), "héllowörld");
        assert_eq!(t.cursor(), (0, 5));
        t.left();
        t.delete();
        assert_eq!(t.text(), "héllwörld");
        t.end();
        t.delete_word();
        assert_eq!(t.text(), "");
        assert!(t.is_blank());
    }

    #[test]
    fn pasted_controls_are_dropped() {
        let t = TextInput::from_text("a\u{1b}[31mb\r\nc\td");
        assert_eq!(t.text(), "a[31mb\nc    d");
        assert!(t.lines().iter().all(|l| !l.chars().any(char::is_control)));
    }

    #[test]
    fn up_and_down_report_the_edges() {
        let mut t = TextInput::from_text("one\ntwo long\nx");
        assert!(t.on_last_line());
        assert!(t.up());
        assert_eq!(t.cursor(), (1, 1));
        assert!(t.up());
        assert!(!t.up());
        assert!(t.on_first_line());
        t.end();
        assert!(t.down());
        assert_eq!(t.cursor(), (1, 3));
        assert!(t.down());
        assert!(!t.down());
    }
}
