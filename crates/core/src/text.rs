//! Text hygiene shared by every stage that handles document text.

/// Removes terminal control characters from document text so that it can be shown on a terminal
/// safely: C0 controls other than `\n` and `\t`, DEL, C1 controls (which include the 8-bit CSI),
/// and whole ANSI escape sequences (`ESC [ ... final`, `ESC ] ... BEL/ST`, and two-byte `ESC x`).
/// Form feeds become newlines, carriage returns are dropped (CRLF becomes LF), and Unicode
/// bidirectional overrides, which can disguise text, are removed.
pub fn sanitize(input: &str) -> String {
    if !input.chars().any(needs_work) {
        return input.to_string();
    }
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\u{c}' => out.push('\n'),
            '\u{1b}' => skip_escape(&mut chars),
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' => skip_osc(&mut chars),
            c if is_dropped(c) => {}
            c => out.push(c),
        }
    }
    out
}

fn needs_work(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || is_bidi_override(c)
}

fn is_dropped(c: char) -> bool {
    c.is_control() || is_bidi_override(c)
}

fn is_bidi_override(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.peek() {
        Some('[') => {
            chars.next();
            skip_csi(chars);
        }
        Some(']') | Some('P') | Some('_') | Some('^') => {
            chars.next();
            skip_osc(chars);
        }
        Some(_) => {
            chars.next();
        }
        None => {}
    }
}

/// CSI: parameter and intermediate bytes, then one final byte in `@`..=`~`.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            break;
        }
        if !(' '..='?').contains(&c) {
            break;
        }
    }
}

/// OSC/DCS/APC/PM strings end with BEL or ST (`ESC \`); a bounded length keeps a missing
/// terminator from swallowing a document.
fn skip_osc(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    let mut n = 0;
    while let Some(&c) = chars.peek() {
        n += 1;
        if n > 512 || c == '\n' {
            return;
        }
        chars.next();
        if c == '\u{7}' || c == '\u{9c}' {
            return;
        }
        if c == '\u{1b}' {
            if chars.peek() == Some(&'\\') {
                chars.next();
            }
            return;
        }
    }
}

/// A name (a file path, a folder, a reason, a log line) in a form safe to print on one terminal
/// line: every control character (newline and tab included), DEL, C1 control and bidirectional
/// override is written as a visible escape (`\u{1b}`), so a hostile file name can neither send
/// the terminal commands nor forge a line of output, and two names that differ only there still
/// look different. Text without such characters is returned as it is.
pub fn escape_controls(input: &str) -> std::borrow::Cow<'_, str> {
    if !input.chars().any(|c| c.is_control() || is_bidi_override(c)) {
        return std::borrow::Cow::Borrowed(input);
    }
    let mut out = String::with_capacity(input.len() + 8);
    for c in input.chars() {
        if c.is_control() || is_bidi_override(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// True when bytes look like binary data rather than text in some encoding: a NUL byte, or more
/// than 10% of the sample being control bytes other than whitespace.
pub fn looks_binary(sample: &[u8]) -> bool {
    if sample.contains(&0) {
        return true;
    }
    if sample.is_empty() {
        return false;
    }
    let controls = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c | 0x1b))
        .count();
    controls * 10 > sample.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched() {
        assert_eq!(sanitize("héllo\n\tworld"), "héllo\n\tworld");
    }

    #[test]
    fn escapes_and_controls_are_removed() {
        assert_eq!(sanitize("a\u{1b}[31mred\u{1b}[0m b"), "ared b");
        assert_eq!(sanitize("x\u{1b}]0;title\u{7}y"), "xy");
        assert_eq!(sanitize("x\u{1b}]8;;http://e\u{1b}\\link"), "xlink");
        assert_eq!(sanitize("a\r\nb\u{0}c\u{8}d"), "a\nbcd");
        assert_eq!(sanitize("p1\u{c}p2"), "p1\np2");
        assert_eq!(sanitize("\u{9b}2Jhi"), "hi");
        assert_eq!(sanitize("a\u{202e}b"), "ab");
        assert_eq!(sanitize("end\u{1b}"), "end");
    }

    #[test]
    fn names_show_their_controls_as_escapes() {
        assert_eq!(escape_controls("notes/plan.md"), "notes/plan.md");
        assert_eq!(
            escape_controls("evil\u{1b}[31mred.md"),
            "evil\\u{1b}[31mred.md"
        );
        assert_eq!(
            escape_controls("a\nb\tc\u{7f}\u{9b}"),
            "a\\u{a}b\\u{9}c\\u{7f}\\u{9b}"
        );
        assert_eq!(escape_controls("x\u{202e}y"), "x\\u{202e}y");
        assert!(!escape_controls("\u{1b}]0;t\u{7}").contains('\u{1b}'));
    }

    #[test]
    fn binary_detection() {
        assert!(looks_binary(b"PK\x03\x04\x00\x00"));
        assert!(!looks_binary("plain text, caf\u{e9}".as_bytes()));
        assert!(!looks_binary(b"latin1 caf\xe9\r\n"));
        assert!(looks_binary(&[1, 2, 3, 4, 5, 6, 7, b'a']));
    }
}
