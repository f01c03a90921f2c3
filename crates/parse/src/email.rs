//! Email: one message (`.eml`, a Maildir message file) or a whole mbox.
//!
//! Each message becomes one [`DocKind::Email`] document whose text is a short header block
//! (Subject, From, To, Cc, Date, Attachments) followed by the body, so that chunks can be found
//! by sender and subject as well as by content. The body is the text/plain part, or the HTML
//! part rendered as text; quoted replies, Outlook "original message" tails and signatures are
//! stripped from it (and kept in [`EmailMeta::stripped`]). Blocks: the header block, then one per
//! body paragraph, all carrying the subject as their heading path.
//!
//! PDF, plain-text and Markdown attachments become documents of their own (when
//! [`ParseOptions::parse_attachments`]), parsed by [`crate::pdf`], [`crate::text`] and
//! [`crate::markdown`], with the message as their `parent`; all PDF attachments of a file share
//! its one deadline. An attachment that cannot be parsed, or a message of an mbox that
//! cannot be read, is a warning; the rest of the file is still indexed. A file with no readable
//! message at all is [`ParseError::Corrupt`].

mod mbox;
mod message;
mod strip;

use std::collections::BTreeMap;
use std::path::Path;

use docent_core::text::sanitize;
use docent_core::{Block, BlockKind, DocId, DocKind, Document, EmailMeta};

use crate::{Deadline, Format, ParseError, ParseOptions, Parsed, Result};

use message::{AttachmentKind, Mail};

/// Title of a message without a subject.
const NO_SUBJECT: &str = "(no subject)";

/// Parses a file that holds one message: an `.eml` file or a Maildir message (`format` is
/// [`Format::Eml`] or [`Format::Maildir`] and names the parser). The message's document has no
/// part; its attachments are parts `attachment {i} {name}`.
pub(crate) fn parse_message_file(
    path: &Path,
    format: Format,
    bytes: &[u8],
    opts: &ParseOptions,
    deadline: Deadline,
) -> Result<Parsed> {
    let mail = message::read(without_postmark(bytes), opts.parse_attachments)
        .map_err(|detail| corrupt(path, detail))?;
    let mut out = Output::default();
    build(path, format.name(), None, mail, opts, deadline, &mut out);
    Ok(out.into_parsed())
}

/// Parses an mbox: one document per message, part `message {n}` (from 1), attachments
/// `message {n}/attachment {i} {name}`. A message that cannot be read is a warning naming its
/// number; the others are still parsed.
pub(crate) fn parse_mbox(
    path: &Path,
    bytes: &[u8],
    opts: &ParseOptions,
    deadline: Deadline,
) -> Result<Parsed> {
    let messages = mbox::split(bytes);
    if messages.is_empty() {
        return Err(corrupt(path, "no messages found".to_string()));
    }
    let mut out = Output::default();
    for (i, raw) in messages.iter().enumerate() {
        let n = i + 1;
        match message::read(raw, opts.parse_attachments) {
            Ok(mail) => build(
                path,
                Format::Mbox.name(),
                Some(format!("message {n}")),
                mail,
                opts,
                deadline,
                &mut out,
            ),
            Err(why) => out.warnings.push(format!("message {n}: {why}")),
        }
    }
    if out.documents.is_empty() {
        let first = out.warnings.first().cloned().unwrap_or_default();
        return Err(corrupt(
            path,
            format!(
                "none of its {} messages could be read ({first})",
                messages.len()
            ),
        ));
    }
    Ok(out.into_parsed())
}

/// A single message saved from a mailbox may start with the mbox `From ` separator line (the
/// "postmark"), which is not a header field: it is dropped.
fn without_postmark(bytes: &[u8]) -> &[u8] {
    if !bytes.starts_with(b"From ") {
        return bytes;
    }
    match bytes.iter().position(|&b| b == b'\n') {
        Some(eol) => &bytes[eol + 1..],
        None => &[],
    }
}

fn corrupt(path: &Path, detail: String) -> ParseError {
    ParseError::Corrupt {
        path: path.to_path_buf(),
        format: "email",
        detail,
    }
}

#[derive(Default)]
struct Output {
    documents: Vec<Document>,
    warnings: Vec<String>,
}

impl Output {
    fn into_parsed(self) -> Parsed {
        Parsed::Documents {
            documents: self.documents,
            warnings: self.warnings,
        }
    }
}

/// Adds the documents of one message (itself, then its parsed attachments) to `out`. PDF
/// attachments share the file's `deadline`: once it has passed, the rest are not started.
fn build(
    path: &Path,
    parser: &str,
    part: Option<String>,
    mail: Mail,
    opts: &ParseOptions,
    deadline: Deadline,
    out: &mut Output,
) {
    let path_str = path.to_string_lossy();
    let id = DocId::for_source(&path_str, part.as_deref());
    let Mail {
        mut meta,
        body,
        attachments,
    } = mail;

    let body = sanitize(&body);
    let split = strip::split_body(&body);
    let stripped = tidy(&split.stripped);
    meta.stripped = (!stripped.is_empty()).then_some(stripped);
    let title = meta
        .subject
        .clone()
        .unwrap_or_else(|| NO_SUBJECT.to_string());
    let text = compose(&meta, &tidy(&split.kept));
    let blocks = paragraph_blocks(&text, &title);

    let context: Vec<(&str, Option<&String>)> = vec![
        ("email_subject", meta.subject.as_ref()),
        ("email_from", meta.from.as_ref()),
        ("email_date", meta.date.as_ref()),
    ];
    let mut attachment_meta = BTreeMap::new();
    for (key, value) in context {
        if let Some(v) = value {
            attachment_meta.insert(key.to_string(), v.clone());
        }
    }

    out.documents.push(Document {
        id: id.clone(),
        path: path.to_path_buf(),
        part: part.clone(),
        kind: DocKind::Email,
        parser: parser.to_string(),
        title: Some(title),
        text,
        blocks,
        meta: BTreeMap::new(),
        email: Some(meta),
        parent: None,
        pages: None,
    });

    if !opts.parse_attachments {
        return;
    }
    let prefix = part
        .as_deref()
        .map(|p| format!("{p}: "))
        .unwrap_or_default();
    for att in attachments {
        if att.kind == AttachmentKind::Other {
            continue;
        }
        let label = format!(
            "attachment {} {}",
            att.index,
            att.name.replace(['/', '\\'], "_")
        );
        let att_part = match &part {
            Some(p) => format!("{p}/{label}"),
            None => label.clone(),
        };
        let result = match att.kind {
            AttachmentKind::Pdf => {
                crate::pdf::parse_part(path, Some(&att_part), &att.bytes, opts, deadline)
            }
            AttachmentKind::Markdown => {
                crate::markdown::parse_part(path, Some(&att_part), &att.bytes)
            }
            AttachmentKind::Text | AttachmentKind::Other => {
                crate::text::parse_part(path, Some(&att_part), &att.bytes)
            }
        };
        match result {
            Ok(Parsed::Documents {
                mut documents,
                warnings,
            }) => {
                out.warnings.extend(
                    warnings
                        .into_iter()
                        .map(|w| format!("{prefix}{label}: {w}")),
                );
                if documents.is_empty() {
                    out.warnings
                        .push(format!("{prefix}{label}: nothing to index"));
                }
                let single = documents.len() == 1;
                for doc in &mut documents {
                    if single {
                        doc.id = DocId::for_source(&path_str, Some(&att_part));
                        doc.part = Some(att_part.clone());
                    }
                    doc.path = path.to_path_buf();
                    doc.parent = Some(id.clone());
                    doc.title = Some(att.name.clone());
                    doc.meta.extend(attachment_meta.clone());
                }
                out.documents.extend(documents);
            }
            Ok(Parsed::Skipped(reason)) => out
                .warnings
                .push(format!("{prefix}{label}: skipped: {reason}")),
            Err(e) => out
                .warnings
                .push(format!("{prefix}{label}: {}", e.reason())),
        }
    }
}

/// Trims trailing whitespace from every line, collapses runs of blank lines into one, and drops
/// blank lines at both ends.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank = true;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank {
                out.push('\n');
            }
        }
        out.push_str(line);
        blank = false;
    }
    out
}

/// The document text: one line per known header field, a blank line, the body.
fn compose(meta: &EmailMeta, body: &str) -> String {
    let mut lines = Vec::new();
    if let Some(s) = &meta.subject {
        lines.push(format!("Subject: {s}"));
    }
    if let Some(f) = &meta.from {
        lines.push(format!("From: {f}"));
    }
    if !meta.to.is_empty() {
        lines.push(format!("To: {}", meta.to.join(", ")));
    }
    if !meta.cc.is_empty() {
        lines.push(format!("Cc: {}", meta.cc.join(", ")));
    }
    if let Some(d) = &meta.date {
        lines.push(format!("Date: {d}"));
    }
    if !meta.attachments.is_empty() {
        lines.push(format!("Attachments: {}", meta.attachments.join(", ")));
    }
    let mut text = lines.join("\n");
    if !body.is_empty() {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(body);
    }
    text
}

/// One text block per run of non-blank lines; the header block is the first such run.
fn paragraph_blocks(text: &str, subject: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut start: Option<(usize, u32)> = None;
    let mut end = 0;
    let mut offset = 0;
    for (i, line) in text.split('\n').enumerate() {
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if line.trim().is_empty() {
            if let Some((s, first_line)) = start.take() {
                blocks.push(text_block(s..end, first_line, subject));
            }
        } else {
            if start.is_none() {
                start = Some((offset, line_no));
            }
            end = offset + line.len();
        }
        offset += line.len() + 1;
    }
    if let Some((s, first_line)) = start {
        blocks.push(text_block(s..end, first_line, subject));
    }
    blocks
}

fn text_block(range: std::ops::Range<usize>, first_line: u32, subject: &str) -> Block {
    Block {
        kind: BlockKind::Text,
        range,
        first_line,
        page: None,
        heading_path: vec![subject.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postmark_line_is_dropped() {
        assert_eq!(
            without_postmark(b"From - Mon Nov  4 09:00:00 2024\nSubject: s\n"),
            b"Subject: s\n"
        );
        assert_eq!(
            without_postmark(b"From: a@x.example\n"),
            b"From: a@x.example\n"
        );
        assert_eq!(without_postmark(b"From x"), b"");
    }

    #[test]
    fn tidy_collapses_blank_lines() {
        assert_eq!(tidy("\n\n a  \n\n\n\nb\t\n\n"), " a\n\nb");
        assert_eq!(tidy("  \n "), "");
    }

    #[test]
    fn text_and_blocks_cover_everything() {
        let meta = EmailMeta {
            subject: Some("HVAC".into()),
            from: Some("Tom <tom@x.example>".into()),
            to: vec!["a@x.example".into(), "b@x.example".into()],
            date: Some("2024-11-12T14:30:00Z".into()),
            ..EmailMeta::default()
        };
        let text = compose(&meta, "Para one\nline two\n\nPara two");
        assert_eq!(
            text,
            "Subject: HVAC\nFrom: Tom <tom@x.example>\nTo: a@x.example, b@x.example\nDate: 2024-11-12T14:30:00Z\n\nPara one\nline two\n\nPara two"
        );
        let blocks = paragraph_blocks(&text, "HVAC");
        assert_eq!(blocks.len(), 3);
        assert_eq!(
            &text[blocks[0].range.clone()],
            "Subject: HVAC\nFrom: Tom <tom@x.example>\nTo: a@x.example, b@x.example\nDate: 2024-11-12T14:30:00Z"
        );
        assert_eq!(blocks[0].first_line, 1);
        assert_eq!(&text[blocks[1].range.clone()], "Para one\nline two");
        assert_eq!(blocks[1].first_line, 6);
        assert_eq!(&text[blocks[2].range.clone()], "Para two");
        assert_eq!(blocks[2].first_line, 9);
        assert!(blocks.iter().all(|b| b.heading_path == ["HVAC"]));
    }

    #[test]
    fn message_without_fields_or_body() {
        let text = compose(&EmailMeta::default(), "");
        assert!(text.is_empty());
        assert!(paragraph_blocks(&text, NO_SUBJECT).is_empty());
    }
}
