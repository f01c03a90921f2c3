//! Splitting an mbox file into its messages.
//!
//! A message starts at a `From ` separator line that begins the file or follows an empty line
//! and is itself followed by a header field (so a body paragraph that happens to start with
//! "From " does not split a message). Inside messages, `>From ` lines are un-escaped the mboxrd
//! way: one `>` is removed from any line that matches `>+From `, which also undoes the mboxo
//! escaping of `From ` lines.

/// The messages of an mbox, in file order, with the `From ` separator line removed and `>From`
/// escaping undone. Text before the first separator is treated as a message of its own when it
/// holds anything but whitespace.
pub(crate) fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    let lines = lines_with_ends(bytes);
    let mut messages = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut preamble = Vec::new();
    let mut prev_blank = true;

    for (i, line) in lines.iter().enumerate() {
        let bare = trim_eol(line);
        let is_separator = bare.starts_with(b"From ")
            && (i == 0 || (prev_blank && lines.get(i + 1).is_none_or(|next| is_header(next))));
        prev_blank = bare.iter().all(|b| b.is_ascii_whitespace());
        if is_separator {
            if let Some(done) = current.take() {
                messages.push(done);
            } else if !preamble.iter().all(u8::is_ascii_whitespace) {
                messages.push(std::mem::take(&mut preamble));
            }
            current = Some(Vec::new());
            continue;
        }
        let target = current.as_mut().unwrap_or(&mut preamble);
        target.extend_from_slice(unescape(line));
    }
    match current {
        Some(done) => messages.push(done),
        None if !preamble.iter().all(u8::is_ascii_whitespace) => messages.push(preamble),
        None => {}
    }
    messages
}

/// The lines of `bytes`, each with its `\n` (the last one may have none).
fn lines_with_ends(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|&b| b == b'\n').collect()
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A line that looks like the start of a header field: a field name, then a colon.
fn is_header(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    colon > 0
        && line[..colon]
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b':')
}

/// `>From ` → `From `, `>>From ` → `>From `, and so on; other lines unchanged.
fn unescape(line: &[u8]) -> &[u8] {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    if quotes > 0 && line[quotes..].starts_with(b"From ") {
        &line[1..]
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(bytes: &[u8]) -> Vec<String> {
        split(bytes)
            .into_iter()
            .map(|m| String::from_utf8(m).unwrap())
            .collect()
    }

    #[test]
    fn splits_at_separators_and_unescapes() {
        let mbox = b"From a@x Mon Nov  4 09:00:00 2024\nSubject: one\n\n>From the survey, it is fine.\n>>From here on, quoted.\n\nFrom b@x Tue Nov  5 09:00:00 2024\nSubject: two\n\nBody two\n";
        let msgs = texts(mbox);
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            msgs[0],
            "Subject: one\n\nFrom the survey, it is fine.\n>From here on, quoted.\n\n"
        );
        assert_eq!(msgs[1], "Subject: two\n\nBody two\n");
    }

    #[test]
    fn from_line_in_a_body_does_not_split_without_a_header_after_it() {
        let mbox = b"From a@x Mon Nov  4 09:00:00 2024\nSubject: one\n\nFirst paragraph.\n\nFrom the survey we know more.\nSecond line.\n";
        let msgs = texts(mbox);
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].contains("From the survey we know more."));
    }

    #[test]
    fn separator_needs_a_blank_line_before_it() {
        let mbox = b"From a@x Mon Nov  4 09:00:00 2024\nSubject: one\n\nline\nFrom b@x Tue Nov  5 2024\nSubject: no split\n";
        assert_eq!(texts(mbox).len(), 1);
    }

    #[test]
    fn crlf_mbox_splits() {
        let mbox = b"From a@x Mon Nov  4 09:00:00 2024\r\nSubject: one\r\n\r\nBody\r\n\r\nFrom b@x Tue Nov  5 09:00:00 2024\r\nSubject: two\r\n\r\nBody\r\n";
        let msgs = texts(mbox);
        assert_eq!(msgs.len(), 2);
        assert!(msgs[1].starts_with("Subject: two\r\n"));
    }

    #[test]
    fn text_before_the_first_separator_is_a_message() {
        let mbox =
            b"Subject: stray\n\nBody\n\nFrom b@x Tue Nov  5 09:00:00 2024\nSubject: two\n\nBody\n";
        let msgs = texts(mbox);
        assert_eq!(msgs.len(), 2);
        assert!(msgs[0].starts_with("Subject: stray"));
        assert!(texts(b"\n\n").is_empty());
        assert!(texts(b"").is_empty());
    }
}
