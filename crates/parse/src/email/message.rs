//! Reading one RFC 5322 message with `mail-parser` into owned parts: header fields, the body as
//! text, and the attachments.
//!
//! `mail-parser` decodes transfer encodings, RFC 2047 encoded words and declared charsets. On
//! top of it: a text part with no (or an unknown) charset that does not decode as UTF-8 is
//! decoded again by guessing its encoding, and an HTML-only body is rendered as readable text.
//! The parser runs under `catch_unwind`, so a malformed message can never take the caller down.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use docent_core::EmailMeta;
use docent_core::text::sanitize;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{
    Addr, Address, DateTime, Encoding, HeaderName, HeaderValue, Message, MessageParser,
    MessagePart, MimeHeaders, PartType,
};

/// Width that HTML bodies are wrapped to when rendered as text.
const HTML_WIDTH: usize = 100;

/// What an attachment is, as far as indexing goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AttachmentKind {
    Pdf,
    Text,
    Markdown,
    Other,
}

/// One attachment of a message. Only attachments that can be parsed carry their bytes.
pub(crate) struct Attachment {
    /// 1-based position among the message's attachments.
    pub index: usize,
    /// File name, sanitised, on one line.
    pub name: String,
    pub kind: AttachmentKind,
    /// Decoded content (text parts as UTF-8); empty unless requested and parseable.
    pub bytes: Vec<u8>,
}

/// One message, read.
pub(crate) struct Mail {
    /// Header fields; `stripped` is left `None` here.
    pub meta: EmailMeta,
    /// The body as text (not yet sanitised or stripped).
    pub body: String,
    pub attachments: Vec<Attachment>,
}

/// Reads one message. `keep_attachment_bytes`: copy the content of PDF and text attachments so
/// they can be parsed. The error is a short reason, without the message's content.
pub(crate) fn read(raw: &[u8], keep_attachment_bytes: bool) -> Result<Mail, String> {
    match catch_unwind(AssertUnwindSafe(|| read_inner(raw, keep_attachment_bytes))) {
        Ok(result) => result,
        Err(_) => Err("the mail parser crashed on this message".to_string()),
    }
}

fn read_inner(raw: &[u8], keep_attachment_bytes: bool) -> Result<Mail, String> {
    let message = MessageParser::new()
        .parse(raw)
        .ok_or_else(|| "no message headers found".to_string())?;
    let known = message
        .headers()
        .iter()
        .any(|h| !matches!(h.name, HeaderName::Other(_)));
    if !known {
        return Err("no message headers found".to_string());
    }

    let attachments = attachments(&message, keep_attachment_bytes);
    let meta = EmailMeta {
        subject: message.subject().map(one_line).filter(|s| !s.is_empty()),
        from: message.from().and_then(|a| addresses(a).into_iter().next()),
        to: message.all_to().flat_map(addresses).collect(),
        cc: message.all_cc().flat_map(addresses).collect(),
        date: message.date().and_then(rfc3339_utc),
        message_id: message.message_id().map(one_line).filter(|s| !s.is_empty()),
        thread_id: None,
        in_reply_to: first_id(message.in_reply_to()),
        stripped: None,
        attachments: attachments.iter().map(|a| a.name.clone()).collect(),
    };
    let thread_id = thread_id(
        first_id(message.references()),
        meta.in_reply_to.clone(),
        meta.message_id.clone(),
    );
    Ok(Mail {
        meta: EmailMeta { thread_id, ..meta },
        body: body_text(&message),
        attachments,
    })
}

/// The thread a message belongs to: the first of its References (the thread's root), else the
/// message it replies to, else itself.
pub(crate) fn thread_id(
    first_reference: Option<String>,
    in_reply_to: Option<String>,
    message_id: Option<String>,
) -> Option<String> {
    first_reference.or(in_reply_to).or(message_id)
}

/// A header value on one line: sanitised, whitespace runs collapsed, trimmed.
pub(crate) fn one_line(s: &str) -> String {
    sanitize(s).split_whitespace().collect::<Vec<_>>().join(" ")
}

fn addresses(address: &Address<'_>) -> Vec<String> {
    address.iter().filter_map(format_addr).collect()
}

/// `Name <addr>`, or `addr` when there is no name (or the name is the address).
fn format_addr(addr: &Addr<'_>) -> Option<String> {
    let name = addr.name().map(one_line).filter(|s| !s.is_empty());
    let address = addr.address().map(one_line).filter(|s| !s.is_empty());
    match (name, address) {
        (Some(n), Some(a)) if !n.eq_ignore_ascii_case(&a) => Some(format!("{n} <{a}>")),
        (_, Some(a)) => Some(a),
        (Some(n), None) => Some(n),
        (None, None) => None,
    }
}

fn rfc3339_utc(date: &DateTime) -> Option<String> {
    date.is_valid()
        .then(|| DateTime::from_timestamp(date.to_timestamp()).to_rfc3339())
}

/// The first message id of an `In-Reply-To` or `References` header.
fn first_id(value: &HeaderValue<'_>) -> Option<String> {
    let id = match value {
        HeaderValue::Text(t) => Some(t.as_ref()),
        HeaderValue::TextList(list) => list.first().map(|t| t.as_ref()),
        _ => None,
    };
    id.map(one_line).filter(|s| !s.is_empty())
}

/// The body: the text/plain parts when there are any, else the HTML parts rendered as text.
fn body_text(message: &Message<'_>) -> String {
    let parts = |ids: &[u32]| -> Vec<&MessagePart<'_>> {
        ids.iter()
            .filter_map(|&id| message.parts.get(id as usize))
            .collect()
    };
    let plain: Vec<String> = parts(&message.text_body)
        .into_iter()
        .filter_map(|p| match &p.body {
            PartType::Text(t) => Some(redecode_if_garbled(message, p, t)),
            _ => None,
        })
        .collect();
    if !plain.is_empty() {
        return plain.join("\n\n");
    }
    let mut html_ids = message.html_body.clone();
    for id in &message.text_body {
        if !html_ids.contains(id) {
            html_ids.push(*id);
        }
    }
    let html: Vec<String> = parts(&html_ids)
        .into_iter()
        .filter_map(|p| match &p.body {
            PartType::Html(h) => Some(html_to_text(&redecode_if_garbled(message, p, h))),
            _ => None,
        })
        .collect();
    html.join("\n\n")
}

/// Renders HTML as plain, readable text: link text without its address, no emphasis marks, list
/// items bulleted, block quotes prefixed with `> ` (so they are stripped like quoted text).
pub(crate) fn html_to_text(html: &str) -> String {
    html2text::config::with_decorator(MailDecorator)
        .link_footnotes(false)
        .allow_width_overflow()
        .string_from_read(html.as_bytes(), HTML_WIDTH)
        .unwrap_or_else(|_| mail_parser::decoders::html::html_to_text(html))
}

/// The decorations of [`html_to_text`]: only what carries meaning in plain text.
#[derive(Clone, Copy)]
struct MailDecorator;

impl html2text::render::TextDecorator for MailDecorator {
    type Annotation = ();

    fn decorate_link_start(&mut self, _url: &str) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_link_end(&mut self) -> String {
        String::new()
    }
    fn decorate_em_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_em_end(&self) -> String {
        String::new()
    }
    fn decorate_strong_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_strong_end(&self) -> String {
        String::new()
    }
    fn decorate_strikeout_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_strikeout_end(&self) -> String {
        String::new()
    }
    fn decorate_code_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_code_end(&self) -> String {
        String::new()
    }
    fn decorate_preformat_first(&self) {}
    fn decorate_preformat_cont(&self) {}
    fn decorate_image(&mut self, _src: &str, title: &str) -> (String, ()) {
        (title.to_string(), ())
    }
    fn header_prefix(&self, _level: usize) -> String {
        String::new()
    }
    fn quote_prefix(&self) -> String {
        "> ".to_string()
    }
    fn unordered_item_prefix(&self) -> String {
        "* ".to_string()
    }
    fn ordered_item_prefix(&self, i: i64) -> String {
        format!("{i}. ")
    }
    fn make_subblock_decorator(&self) -> Self {
        *self
    }
}

/// A text part that `mail-parser` decoded with replacement characters (no charset declared, or
/// a wrong one) is decoded again from its bytes with a guessed encoding, when that does better.
fn redecode_if_garbled(message: &Message<'_>, part: &MessagePart<'_>, text: &str) -> String {
    let bad = text.matches('\u{fffd}').count();
    if bad == 0 {
        return text.to_string();
    }
    let Some(bytes) = part_bytes(message, part) else {
        return text.to_string();
    };
    let again = crate::text::decode(&bytes);
    if again.matches('\u{fffd}').count() < bad {
        again
    } else {
        text.to_string()
    }
}

/// The transfer-decoded bytes of a part, from the raw message.
fn part_bytes<'a>(message: &'a Message<'_>, part: &MessagePart<'_>) -> Option<Cow<'a, [u8]>> {
    let raw = message
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize)?;
    match part.encoding {
        Encoding::None => Some(Cow::Borrowed(raw)),
        Encoding::Base64 => base64_decode(raw).map(Cow::Owned),
        Encoding::QuotedPrintable => quoted_printable_decode(raw).map(Cow::Owned),
    }
}

fn attachments(message: &Message<'_>, keep_bytes: bool) -> Vec<Attachment> {
    message
        .attachments()
        .enumerate()
        .map(|(i, part)| {
            let index = i + 1;
            let (ctype, subtype) = part
                .content_type()
                .map(|ct| {
                    (
                        ct.ctype().to_ascii_lowercase(),
                        ct.subtype().unwrap_or("").to_ascii_lowercase(),
                    )
                })
                .unwrap_or_default();
            let name = part
                .attachment_name()
                .map(one_line)
                .filter(|s| !s.is_empty())
                .or_else(|| nested_subject(part))
                .unwrap_or_else(|| unnamed(index, &ctype, &subtype));
            let kind = classify(&ctype, &subtype, &name);
            let bytes = if keep_bytes && kind != AttachmentKind::Other {
                attachment_bytes(part)
            } else {
                Vec::new()
            };
            Attachment {
                index,
                name,
                kind,
                bytes,
            }
        })
        .collect()
}

/// The decoded content of an attachment. When `mail-parser` could not decode a part (its
/// boundary never closes, say) it keeps the encoded text; decoding that is tried here, so a
/// truncated attachment still yields what it has.
fn attachment_bytes(part: &MessagePart<'_>) -> Vec<u8> {
    let contents = part.contents();
    if !part.is_encoding_problem {
        return contents.to_vec();
    }
    let declared = part
        .content_transfer_encoding()
        .map(|e| e.trim().to_ascii_lowercase());
    let decoded = match declared.as_deref() {
        Some("base64") => base64_decode(trim_partial_base64(contents)),
        Some("quoted-printable") => quoted_printable_decode(contents),
        _ => None,
    };
    decoded.unwrap_or_else(|| contents.to_vec())
}

/// Base64 text cut off anywhere: whitespace removed at the end and an incomplete final group
/// dropped.
fn trim_partial_base64(text: &[u8]) -> &[u8] {
    let text = text.trim_ascii_end();
    let significant = text.iter().filter(|b| !b.is_ascii_whitespace()).count();
    let mut drop = significant % 4;
    let mut end = text.len();
    while drop > 0 && end > 0 {
        end -= 1;
        if !text[end].is_ascii_whitespace() {
            drop -= 1;
        }
    }
    &text[..end]
}

/// An attached message without a file name is named after its subject.
fn nested_subject(part: &MessagePart<'_>) -> Option<String> {
    let subject = part.message()?.subject().map(one_line)?;
    (!subject.is_empty()).then(|| format!("{subject}.eml"))
}

fn unnamed(index: usize, ctype: &str, subtype: &str) -> String {
    let ext = match (ctype, subtype) {
        ("application", "pdf") => ".pdf",
        ("text", "plain") => ".txt",
        ("text", "html") => ".html",
        ("message", _) => ".eml",
        _ => "",
    };
    format!("attachment-{index}{ext}")
}

/// PDFs, Markdown and plain text, by type or by name; anything else is only listed.
pub(crate) fn classify(ctype: &str, subtype: &str, name: &str) -> AttachmentKind {
    let lower = name.to_lowercase();
    let ends = |exts: &[&str]| exts.iter().any(|e| lower.ends_with(e));
    if (ctype == "application" && subtype == "pdf") || ends(&[".pdf"]) {
        AttachmentKind::Pdf
    } else if (ctype == "text" && subtype == "markdown") || ends(&[".md", ".markdown"]) {
        AttachmentKind::Markdown
    } else if (ctype == "text" && subtype == "plain") || ends(&[".txt", ".text"]) {
        AttachmentKind::Text
    } else {
        AttachmentKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(raw: &str) -> Mail {
        match read(raw.as_bytes(), true) {
            Ok(m) => m,
            Err(e) => panic!("message not read: {e}"),
        }
    }

    #[test]
    fn thread_id_prefers_references_then_reply_then_own() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(thread_id(s("root"), s("parent"), s("me")), s("root"));
        assert_eq!(thread_id(None, s("parent"), s("me")), s("parent"));
        assert_eq!(thread_id(None, None, s("me")), s("me"));
        assert_eq!(thread_id(None, None, None), None);

        let m = read_str(
            "Message-ID: <c@x>\nIn-Reply-To: <b@x>\nReferences: <a@x> <b@x>\nSubject: s\n\nbody\n",
        );
        assert_eq!(m.meta.thread_id.as_deref(), Some("a@x"));
        assert_eq!(m.meta.in_reply_to.as_deref(), Some("b@x"));
        assert_eq!(m.meta.message_id.as_deref(), Some("c@x"));
    }

    #[test]
    fn headers_are_formatted() {
        let m = read_str(
            "From: Tom Beckett <tom@mossgrove.example>\nTo: priya@finchrowe.example, \"Hale, Marcus\" <mhale@aldercreek.example>\nCc: Site <site@mossgrove.example>\nDate: Tue, 12 Nov 2024 09:30:00 -0500\nSubject: =?utf-8?q?Caf=C3=A9?=\n\nbody\n",
        );
        assert_eq!(
            m.meta.from.as_deref(),
            Some("Tom Beckett <tom@mossgrove.example>")
        );
        assert_eq!(
            m.meta.to,
            vec![
                "priya@finchrowe.example".to_string(),
                "Hale, Marcus <mhale@aldercreek.example>".to_string()
            ]
        );
        assert_eq!(m.meta.cc, vec!["Site <site@mossgrove.example>".to_string()]);
        assert_eq!(m.meta.date.as_deref(), Some("2024-11-12T14:30:00Z"));
        assert_eq!(m.meta.subject.as_deref(), Some("Café"));
    }

    #[test]
    fn html_only_body_becomes_text() {
        let m = read_str(
            "Subject: s\nContent-Type: text/html; charset=utf-8\n\n<html><body><h1>Book sale</h1><p>Moved to the <a href=\"https://x.example/\">community hall</a>.</p><p>Second paragraph.</p></body></html>\n",
        );
        assert!(m.body.starts_with("Book sale\n\n"));
        assert!(m.body.contains("Moved to the community hall."));
        assert!(!m.body.contains("<p>"));
        assert!(!m.body.contains("https://x.example/"));
    }

    #[test]
    fn plain_text_is_preferred_over_html() {
        let m = read_str(
            "Subject: s\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\n\nplain version\n--b\nContent-Type: text/html; charset=utf-8\n\n<p>html version</p>\n--b--\n",
        );
        assert_eq!(m.body.trim(), "plain version");
    }

    #[test]
    fn legacy_charsets_are_decoded() {
        let mut raw = b"Subject: s\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nGr=FC=DFe aus M=FCnchen\n".to_vec();
        let m = read(&raw, false).ok().map(|m| m.body);
        assert_eq!(m.as_deref().map(str::trim), Some("Grüße aus München"));

        raw = b"Subject: s\nContent-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: 8bit\n\n\x93quoted\x94 \x80100\n".to_vec();
        let m = read(&raw, false).ok().map(|m| m.body);
        assert_eq!(
            m.as_deref().map(str::trim),
            Some("\u{201c}quoted\u{201d} €100")
        );
    }

    #[test]
    fn undeclared_legacy_charset_is_guessed() {
        let raw =
            b"Subject: s\n\nDie Fensterrahmen f\xfcr M\xfcller sind gr\xf6\xdfer als gedacht.\n";
        let m = read(raw, false).ok().map(|m| m.body);
        assert_eq!(
            m.as_deref().map(str::trim),
            Some("Die Fensterrahmen für Müller sind größer als gedacht.")
        );
    }

    #[test]
    fn attachments_are_classified() {
        assert_eq!(
            classify("application", "octet-stream", "Invoice.PDF"),
            AttachmentKind::Pdf
        );
        assert_eq!(
            classify("application", "pdf", "attachment-1"),
            AttachmentKind::Pdf
        );
        assert_eq!(classify("text", "plain", "notes"), AttachmentKind::Text);
        assert_eq!(
            classify("application", "octet-stream", "notes.md"),
            AttachmentKind::Markdown
        );
        assert_eq!(
            classify("text", "plain", "notes.md"),
            AttachmentKind::Markdown
        );
        assert_eq!(classify("image", "png", "plan.png"), AttachmentKind::Other);
    }

    #[test]
    fn partial_base64_is_trimmed_to_whole_groups() {
        assert_eq!(trim_partial_base64(b"QUJD\nREVG\nR0\n"), b"QUJD\nREVG\n");
        assert_eq!(trim_partial_base64(b"QUJD\n"), b"QUJD");
        assert_eq!(
            base64_decode(trim_partial_base64(b"QUJD\nREVG\nR0")),
            Some(b"ABCDEF".to_vec())
        );
    }

    #[test]
    fn unclosed_multipart_keeps_its_parts() {
        let raw = "Subject: s\nFrom: a@x.example\nGarbage line without a colon\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nThe text part.\n\n--b\nContent-Type: application/pdf; name=t.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\nJcfs\n";
        let m = read_str(raw);
        assert_eq!(m.body.trim(), "The text part.");
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].kind, AttachmentKind::Pdf);
        assert!(m.attachments[0].bytes.starts_with(b"%PDF-1.4\n"));
    }

    #[test]
    fn no_headers_is_an_error() {
        assert!(read(b"just some text\nwithout headers\n", false).is_err());
        assert!(read(b"", false).is_err());
        assert!(read(b"\x00\x01\x02", false).is_err());
    }
}
