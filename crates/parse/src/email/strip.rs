//! Separates what a message says from what it repeats: quoted reply blocks (lines starting with
//! `>`) with the attribution line that introduces them ("On …, Tom wrote:", "Am … schrieb …:"),
//! Outlook-style tails ("-----Original Message-----" and everything after it), and a signature
//! after a `-- ` line.
//!
//! The stripped text is kept apart so it can be shown, but it is not indexed: a thread would
//! otherwise index every message many times over.

/// A message body split into the part to index and the part stripped from it.
pub(crate) struct Split {
    /// The body without quotes and signature (or the whole body, when nothing else would be
    /// left).
    pub kept: String,
    /// The stripped lines, runs separated by a blank line; empty when nothing was stripped.
    pub stripped: String,
}

/// Splits `body` (LF line endings) into the text to index and the quoted/signature text.
pub(crate) fn split_body(body: &str) -> Split {
    let lines: Vec<&str> = body.split('\n').collect();
    let n = lines.len();
    let mut removed = vec![false; n];

    // A signature separator or an Outlook "original message" marker ends what the sender wrote:
    // everything from there on is stripped.
    let tail = (0..n).find(|&i| {
        let line = lines[i];
        !is_quote(line) && (is_signature_separator(line) || is_outlook_marker(&lines[i..]))
    });
    let end = tail.unwrap_or(n);
    for r in removed.iter_mut().skip(end) {
        *r = true;
    }

    // Quoted blocks, with the blank lines inside them and the attribution line before them.
    let mut i = 0;
    while i < end {
        if !is_quote(lines[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < end {
            if is_quote(lines[i]) {
                removed[i] = true;
                i += 1;
            } else if lines[i].trim().is_empty() {
                // A blank line belongs to the block when more quoted lines follow it.
                let next = (i..end).find(|&k| !lines[k].trim().is_empty());
                match next {
                    Some(k) if is_quote(lines[k]) => {
                        for r in removed.iter_mut().take(k).skip(i) {
                            *r = true;
                        }
                        i = k;
                    }
                    _ => break,
                }
            } else {
                break;
            }
        }
        mark_attribution(&lines, &mut removed, start);
    }

    let kept = join_lines(&lines, &removed, false);
    if kept.trim().is_empty() {
        return Split {
            kept: body.to_string(),
            stripped: String::new(),
        };
    }
    let stripped = join_lines(&lines, &removed, true);
    Split {
        kept,
        stripped: stripped.trim().to_string(),
    }
}

/// Marks the attribution line before the quoted block that starts at `start` (blank lines
/// between them allowed), including a first half wrapped onto the line above.
fn mark_attribution(lines: &[&str], removed: &mut [bool], start: usize) {
    let mut j = start;
    while j > 0 && lines[j - 1].trim().is_empty() && !removed[j - 1] {
        j -= 1;
    }
    if j == 0 || removed[j - 1] {
        return;
    }
    let candidate = lines[j - 1];
    let wrapped_head = j >= 2
        && !removed[j - 2]
        && starts_attribution(lines[j - 2])
        && lines[j - 2].chars().any(|c| c.is_ascii_digit())
        && !starts_attribution(candidate)
        && is_attribution(&format!("{} {}", lines[j - 2].trim(), candidate.trim()));
    if !is_attribution(candidate) && !wrapped_head {
        return;
    }
    for r in removed.iter_mut().take(start).skip(j - 1) {
        *r = true;
    }
    if wrapped_head {
        removed[j - 2] = true;
    }
}

/// The lines that are (`want == true`) or are not removed, joined; runs of removed lines are
/// separated by a blank line.
fn join_lines(lines: &[&str], removed: &[bool], want: bool) -> String {
    let mut out = String::new();
    let mut gap = false;
    let mut any = false;
    for (line, &r) in lines.iter().zip(removed) {
        if r != want {
            gap = true;
            continue;
        }
        if any {
            out.push('\n');
            if want && gap {
                out.push('\n');
            }
        }
        out.push_str(line);
        any = true;
        gap = false;
    }
    out
}

fn is_quote(line: &str) -> bool {
    line.trim_start_matches([' ', '\t']).starts_with('>')
}

fn is_signature_separator(line: &str) -> bool {
    line == "-- " || line.trim_end() == "--"
}

/// `-----Original Message-----` and its translations, or an Outlook separator rule followed by
/// a `From:` line, or an Outlook header block (`From:` directly followed by `Sent:`).
fn is_outlook_marker(rest: &[&str]) -> bool {
    let Some(line) = rest.first() else {
        return false;
    };
    let t = line.trim();
    let next = rest.get(1).map(|l| l.trim()).unwrap_or("");
    if t.starts_with("-----") && t.ends_with("-----") {
        let inner = t.trim_matches('-').trim().to_lowercase();
        const MARKERS: [&str; 6] = [
            "original message",
            "ursprüngliche nachricht",
            "originalnachricht",
            "message d'origine",
            "mensaje original",
            "messaggio originale",
        ];
        return MARKERS.iter().any(|m| inner == *m);
    }
    if t.len() >= 20 && t.chars().all(|c| c == '_') {
        return starts_with_field(next, &["From:", "Von:", "De:"]);
    }
    starts_with_field(t, &["From:", "Von:"]) && starts_with_field(next, &["Sent:", "Gesendet:"])
}

fn starts_with_field(line: &str, fields: &[&str]) -> bool {
    fields.iter().any(|f| {
        line.get(..f.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(f))
    })
}

/// A line that introduces a quote: ends with a colon and says someone wrote.
fn is_attribution(line: &str) -> bool {
    let t = line.trim();
    if !t.ends_with(':') {
        return false;
    }
    let lower = t.to_lowercase();
    const VERBS: [&str; 12] = [
        "wrote",
        "writes",
        "schrieb",
        "a écrit",
        "escribió",
        "ha scritto",
        "scrisse",
        "schreef",
        "skrev",
        "kirjoitti",
        "napisał",
        "написал",
    ];
    VERBS.iter().any(|v| lower.contains(v))
}

/// The first half of an attribution wrapped over two lines ("On Tue, 5 Nov 2024 at 09:14, Tom").
fn starts_attribution(line: &str) -> bool {
    let t = line.trim_start();
    ["On ", "Am ", "Le ", "El ", "Il ", "Op ", "Den "]
        .iter()
        .any(|p| t.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(body: &str) -> (String, String) {
        let s = split_body(body);
        (s.kept, s.stripped)
    }

    #[test]
    fn english_quote_and_attribution_are_stripped() {
        let body = "Thanks, see below.\n\nOn Tue, 5 Nov 2024, Tom Beckett wrote:\n> old line 1\n>\n> old line 2\n\nBest,\nPriya";
        let (kept, stripped) = split(body);
        assert_eq!(kept, "Thanks, see below.\n\n\nBest,\nPriya");
        assert_eq!(
            stripped,
            "On Tue, 5 Nov 2024, Tom Beckett wrote:\n> old line 1\n>\n> old line 2"
        );
    }

    #[test]
    fn wrapped_attribution_is_stripped() {
        let body = "Agreed.\n\nOn Tue, 5 Nov 2024 at 09:14, Tom Beckett\n<tom@mossgrove.example> wrote:\n> quoted";
        let (kept, stripped) = split(body);
        assert_eq!(kept, "Agreed.\n");
        assert!(stripped.starts_with("On Tue, 5 Nov 2024 at 09:14, Tom Beckett\n<tom@"));
    }

    #[test]
    fn german_attribution_is_stripped() {
        let body = "Die Rahmen kommen am Montag.\n\nAm 05.11.2024 um 09:14 schrieb Tom Beckett <tom@mossgrove.example>:\n> Wann kommen die Rahmen?";
        let (kept, stripped) = split(body);
        assert_eq!(kept.trim(), "Die Rahmen kommen am Montag.");
        assert!(stripped.starts_with("Am 05.11.2024 um 09:14 schrieb"));
        assert!(stripped.ends_with("> Wann kommen die Rahmen?"));
    }

    #[test]
    fn outlook_original_message_tail_is_stripped() {
        let body = "Approved.\n\nMarcus\n\n-----Original Message-----\nFrom: Priya\nSent: Monday\nSubject: Invoice\n\nPlease approve.";
        let (kept, stripped) = split(body);
        assert_eq!(kept.trim(), "Approved.\n\nMarcus");
        assert!(stripped.starts_with("-----Original Message-----"));
        assert!(stripped.ends_with("Please approve."));
    }

    #[test]
    fn outlook_header_block_without_marker_is_stripped() {
        let body = "Fine by me.\n\nFrom: Priya Natarajan\nSent: Monday, 4 November 2024 10:00\nTo: Marcus\n\nOld text";
        let (kept, stripped) = split(body);
        assert_eq!(kept.trim(), "Fine by me.");
        assert!(stripped.starts_with("From: Priya"));
    }

    #[test]
    fn signature_is_stripped() {
        let body = "The units are late.\n\n-- \nTom Beckett\nSite lead";
        let (kept, stripped) = split(body);
        assert_eq!(kept.trim(), "The units are late.");
        assert_eq!(stripped, "-- \nTom Beckett\nSite lead");

        let (kept, _) = split("Body\n--\nSig");
        assert_eq!(kept, "Body");
    }

    #[test]
    fn a_line_that_merely_starts_with_dashes_is_kept() {
        let body = "-- not a separator\nBody";
        let (kept, stripped) = split(body);
        assert_eq!(kept, body);
        assert!(stripped.is_empty());
    }

    #[test]
    fn colon_line_without_a_verb_is_not_an_attribution() {
        let body = "Here is the schedule:\n> quoted\nafter";
        let (kept, stripped) = split(body);
        assert_eq!(kept, "Here is the schedule:\nafter");
        assert_eq!(stripped, "> quoted");
    }

    #[test]
    fn a_message_that_is_only_a_quote_is_kept_whole() {
        let body = "> just a quote\n> nothing else";
        let (kept, stripped) = split(body);
        assert_eq!(kept, body);
        assert!(stripped.is_empty());
    }

    #[test]
    fn interleaved_replies_keep_the_new_text() {
        let body = "> question one\nanswer one\n> question two\nanswer two";
        let (kept, stripped) = split(body);
        assert_eq!(kept, "answer one\nanswer two");
        assert_eq!(stripped, "> question one\n\n> question two");
    }

    #[test]
    fn nothing_to_strip() {
        let (kept, stripped) = split("Plain text.\nMore.");
        assert_eq!(kept, "Plain text.\nMore.");
        assert!(stripped.is_empty());
    }
}
