//! Email fixtures (`fixtures/mail`, `fixtures/invalid/broken-mime.eml`) through the public
//! `parse_file`: a snapshot of each, and explicit checks of what matters most.

use std::collections::BTreeMap;
use std::path::Path;

use docent_core::{DocKind, Document};
use docent_parse::{Format, Outcome, ParseError, ParseOptions, parse_file};
use docent_test_support::{fixture, snapshot_settings, tempdir};
use serde::Serialize;

/// What a snapshot shows of one document.
#[derive(Serialize)]
struct Summary {
    part: Option<String>,
    kind: DocKind,
    parser: String,
    title: Option<String>,
    /// The part of the parent document (`(whole file)` for a parent without a part).
    parent: Option<String>,
    meta: BTreeMap<String, String>,
    email: Option<EmailSummary>,
    blocks: usize,
    text: String,
}

#[derive(Serialize)]
struct EmailSummary {
    subject: Option<String>,
    from: Option<String>,
    to: Vec<String>,
    cc: Vec<String>,
    date: Option<String>,
    message_id: Option<String>,
    in_reply_to: Option<String>,
    thread_id: Option<String>,
    attachments: Vec<String>,
    stripped: Option<String>,
}

#[derive(Serialize)]
struct FileSummary {
    format: Format,
    documents: Vec<Summary>,
    warnings: Vec<String>,
}

fn head(s: &str, chars: usize) -> String {
    let mut out: String = s.chars().take(chars).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn summarise(format: Format, docs: &[Document], warnings: &[String]) -> FileSummary {
    let documents = docs
        .iter()
        .map(|d| Summary {
            part: d.part.clone(),
            kind: d.kind,
            parser: d.parser.clone(),
            title: d.title.clone(),
            parent: d.parent.as_ref().map(|p| {
                let parent = docs.iter().find(|o| &o.id == p);
                match parent {
                    Some(o) => o.part.clone().unwrap_or_else(|| "(whole file)".into()),
                    None => "(missing)".into(),
                }
            }),
            meta: d.meta.clone(),
            email: d.email.as_ref().map(|e| EmailSummary {
                subject: e.subject.clone(),
                from: e.from.clone(),
                to: e.to.clone(),
                cc: e.cc.clone(),
                date: e.date.clone(),
                message_id: e.message_id.clone(),
                in_reply_to: e.in_reply_to.clone(),
                thread_id: e.thread_id.clone(),
                attachments: e.attachments.clone(),
                stripped: e.stripped.as_deref().map(|s| head(s, 300)),
            }),
            blocks: d.blocks.len(),
            text: head(&d.text, 300),
        })
        .collect();
    FileSummary {
        format,
        documents,
        warnings: warnings.to_vec(),
    }
}

fn parse_with(path: &Path, opts: &ParseOptions) -> (Format, Vec<Document>, Vec<String>) {
    match parse_file(path, opts) {
        Ok(Outcome::Parsed {
            format,
            documents,
            warnings,
        }) => (format, documents, warnings),
        Ok(Outcome::Skipped { reason, .. }) => panic!("{} skipped: {reason}", path.display()),
        Err(e) => panic!("{e}"),
    }
}

fn parse(rel: &str) -> (Format, Vec<Document>, Vec<String>) {
    let (format, docs, warnings) = parse_with(&fixture(rel), &ParseOptions::default());
    for d in &docs {
        check_blocks(d);
    }
    (format, docs, warnings)
}

/// Blocks are in order, do not overlap, lie on char boundaries and cover every non-whitespace
/// character; `first_line` agrees with the text; email blocks carry the subject.
fn check_blocks(d: &Document) {
    let mut covered = vec![false; d.text.len()];
    let mut last_end = 0;
    for b in &d.blocks {
        assert!(
            b.range.start >= last_end,
            "blocks overlap or are out of order"
        );
        assert!(b.range.start < b.range.end && b.range.end <= d.text.len());
        assert!(d.text.is_char_boundary(b.range.start) && d.text.is_char_boundary(b.range.end));
        let line = d.text[..b.range.start].matches('\n').count() + 1;
        if d.kind == DocKind::Email {
            assert_eq!(b.first_line as usize, line, "first_line of an email block");
            assert_eq!(b.heading_path, vec![d.title.clone().unwrap_or_default()]);
            assert_eq!(b.page, None);
        }
        covered[b.range.clone()].iter_mut().for_each(|c| *c = true);
        last_end = b.range.end;
    }
    for (i, c) in d.text.char_indices() {
        assert!(
            c.is_whitespace() || covered[i],
            "character at {i} not in any block"
        );
    }
}

fn snapshot(name: &str, rel: &str) -> (Vec<Document>, Vec<String>) {
    let (format, docs, warnings) = parse(rel);
    let summary = summarise(format, &docs, &warnings);
    snapshot_settings().bind(|| insta::assert_json_snapshot!(name, summary));
    (docs, warnings)
}

fn email(d: &Document) -> &docent_core::EmailMeta {
    d.email.as_ref().expect("an email document has email meta")
}

#[test]
fn hvac_delay_strips_quote_and_signature() {
    let (docs, warnings) = snapshot("mail_hvac_delay", "mail/hvac-delay.eml");
    assert!(warnings.is_empty());
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(d.parser, "eml");
    assert_eq!(d.part, None);
    assert_eq!(d.title.as_deref(), Some("HVAC units delayed"));
    assert!(
        d.text.starts_with(
            "Subject: HVAC units delayed\nFrom: Tom Beckett <tom@mossgrove.example>\n"
        )
    );
    assert!(d.text.contains("The new delivery date is 3 February 2025."));
    assert!(d.text.contains("factory is retooling"));
    // The plain-text alternative is used, not the HTML one.
    assert!(!d.text.contains("<p>") && !d.text.contains("margin"));

    let e = email(d);
    let stripped = e.stripped.as_deref().unwrap_or_default();
    for quoted in [
        "reading-room closure",
        "Priya Natarajan <priya@finchrowe.example> wrote:",
    ] {
        assert!(!d.text.contains(quoted), "quote left in the text: {quoted}");
        assert!(
            stripped.contains(quoted),
            "quote missing from stripped: {quoted}"
        );
    }
    for sig in ["Site Lead, Mossgrove Builders", "555-0187"] {
        assert!(!d.text.contains(sig), "signature left in the text: {sig}");
        assert!(
            stripped.contains(sig),
            "signature missing from stripped: {sig}"
        );
    }
    assert_eq!(e.date.as_deref(), Some("2024-11-12T21:42:00Z"));
    assert_eq!(
        e.thread_id.as_deref(),
        Some("hvac-status-20241108@finchrowe.example")
    );
    assert_eq!(
        e.cc,
        vec!["Marcus Hale <mhale@aldercreek.example>".to_string()]
    );
}

#[test]
fn invoice_attachments_become_documents() {
    let (docs, warnings) = snapshot("mail_invoice_3", "mail/invoice-3.eml");
    assert!(warnings.is_empty(), "{warnings:?}");
    let msg = &docs[0];
    assert_eq!(msg.kind, DocKind::Email);
    assert_eq!(
        email(msg).attachments,
        vec!["invoice-3.pdf", "remittance.txt", "site-sign.png"]
    );
    assert!(
        msg.text
            .contains("Attachments: invoice-3.pdf, remittance.txt, site-sign.png")
    );

    let pdf = docs
        .iter()
        .find(|d| d.part.as_deref() == Some("attachment 1 invoice-3.pdf"))
        .expect("the PDF attachment is a document");
    assert_eq!(pdf.kind, DocKind::Pdf);
    assert_eq!(pdf.parent.as_ref(), Some(&msg.id));
    assert_eq!(pdf.title.as_deref(), Some("invoice-3.pdf"));
    assert!(pdf.text.contains("55,350"));
    assert!(pdf.text.contains("30 November 2024"));
    assert_eq!(
        pdf.meta.get("email_subject").map(String::as_str),
        Some("Invoice 3 for the signing payment")
    );
    assert_eq!(
        pdf.meta.get("email_from").map(String::as_str),
        Some("Priya Natarajan <priya@finchrowe.example>")
    );
    assert_eq!(
        pdf.meta.get("email_date").map(String::as_str),
        Some("2024-11-15T16:05:00Z")
    );
    let path = fixture("mail/invoice-3.eml");
    assert_eq!(
        pdf.id,
        docent_core::DocId::for_source(&path.to_string_lossy(), Some("attachment 1 invoice-3.pdf"))
    );

    let txt = docs
        .iter()
        .find(|d| d.part.as_deref() == Some("attachment 2 remittance.txt"))
        .expect("the text attachment is a document");
    assert_eq!(txt.parent.as_ref(), Some(&msg.id));
    assert!(txt.text.contains("LSL-INV-3"));
    // The image is listed, not parsed.
    assert_eq!(docs.len(), 3);

    let no_attachments = ParseOptions {
        parse_attachments: false,
        ..ParseOptions::default()
    };
    let (_, docs, _) = parse_with(&path, &no_attachments);
    assert_eq!(docs.len(), 1);
    assert_eq!(email(&docs[0]).attachments.len(), 3);
}

#[test]
fn html_only_newsletter_is_rendered_as_text() {
    let (docs, _) = snapshot("mail_newsletter", "mail/newsletter.eml");
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(
        email(d).from.as_deref(),
        Some("Friends of Linden Library <news@friendsoflinden.example>")
    );
    assert!(d.text.contains("Alder Creek Community Hall"));
    assert!(d.text.contains("8 March 2025"));
    assert!(d.text.contains("Sign up on our website."));
    for markup in ["<p>", "<b>", "font-family", "https://", "[1]"] {
        assert!(
            !d.text.contains(markup),
            "markup left in the text: {markup}"
        );
    }
}

#[test]
fn latin1_quoted_printable_is_decoded() {
    let (docs, _) = snapshot("mail_window_frames", "mail/window-frames.eml");
    let d = &docs[0];
    let e = email(d);
    assert_eq!(
        e.from.as_deref(),
        Some("Zoë Müller <zoe@muellerfensterbau.example>")
    );
    // Two RFC 2047 encoded words, folded over two lines, join without a space.
    assert_eq!(
        e.subject.as_deref(),
        Some("Fensterrahmen für die Bibliothek – Versand am 20. Januar")
    );
    for word in [
        "Eichenfensterrahmen für",
        "Lörrach",
        "20. Januar 2025",
        "Maße",
        "Grüßen",
    ] {
        assert!(d.text.contains(word), "missing: {word}");
    }
    assert!(!d.text.contains('\u{fffd}') && !d.text.contains("=FC"));
    // The German attribution and quote are stripped.
    assert!(!d.text.contains("schrieb"));
    assert!(
        e.stripped
            .as_deref()
            .unwrap_or_default()
            .contains("Am 11.11.2024 um 08:30 schrieb")
    );
}

#[test]
fn base64_body_is_decoded() {
    let (docs, _) = snapshot("mail_base64_body", "mail/base64-body.eml");
    let d = &docs[0];
    assert!(d.text.contains("23 December 2024 to 2 January 2025"));
    assert!(d.text.contains("café vouchers"));
    assert!(d.text.contains("holidays — and"));
}

#[test]
fn windows_1252_is_decoded() {
    let (docs, _) = snapshot("mail_windows_1252", "mail/windows-1252.eml");
    let d = &docs[0];
    assert!(d.text.contains("the \u{201c}oak frames\u{201d} line"));
    assert!(d.text.contains("€9,400"));
    assert!(d.text.contains("That\u{2019}s within"));
    assert!(!d.text.contains('\r'));
}

#[test]
fn mbox_thread_is_split_and_unescaped() {
    let (docs, warnings) = snapshot("mail_archive_mbox", "mail/archive.mbox");
    assert!(warnings.is_empty());
    let parts: Vec<_> = docs
        .iter()
        .map(|d| d.part.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(parts, ["message 1", "message 2", "message 3", "message 4"]);
    let path = fixture("mail/archive.mbox");
    for d in &docs {
        assert_eq!(d.parser, "mbox");
        assert_eq!(
            d.id,
            docent_core::DocId::for_source(&path.to_string_lossy(), d.part.as_deref())
        );
        assert_eq!(
            email(d).thread_id.as_deref(),
            Some("asbestos-1@finchrowe.example")
        );
    }
    // The escaped ">From the survey" line comes back as written.
    assert!(
        docs[0]
            .text
            .contains("\nFrom the survey, the affected area")
    );
    assert!(!docs[0].text.contains(">From"));
    assert!(docs[1].text.contains("18 to 22 November 2024"));
    assert!(!docs[1].text.contains("> Clearline"));
    // The Outlook tail of message 3 is stripped.
    assert!(!docs[2].text.contains("Original Message"));
    assert!(
        docs[2]
            .text
            .contains("The town approves the $12,800 abatement")
    );
    // mboxrd: ">>From" in a quote is ">From" once un-escaped.
    let stripped = email(&docs[3]).stripped.clone().unwrap_or_default();
    assert!(
        stripped.contains("\n>From now on the basement is clear"),
        "{}",
        stripped.len()
    );
    assert_eq!(
        email(&docs[3]).in_reply_to.as_deref(),
        Some("asbestos-3@aldercreek.example")
    );
}

#[test]
fn mbox_without_extension_is_detected_by_content() {
    let dir = tempdir();
    let path = dir.path().join("Inbox");
    std::fs::copy(fixture("mail/archive.mbox"), &path).expect("copy fixture");
    let (format, docs, _) = parse_with(&path, &ParseOptions::default());
    assert_eq!(format, Format::Mbox);
    assert_eq!(docs.len(), 4);
}

#[test]
fn broken_message_in_an_mbox_is_a_warning() {
    let dir = tempdir();
    let path = dir.path().join("broken.mbox");
    let mbox = "From a@x.example Mon Nov  4 09:00:00 2024\nSubject: first\nFrom: a@x.example\n\nFirst body.\n\nFrom b@x.example Mon Nov  4 10:00:00 2024\nX-Junk: only an unknown field\n\nno real headers here\n\nFrom c@x.example Mon Nov  4 11:00:00 2024\nSubject: third\n\nThird body.\n";
    std::fs::write(&path, mbox).expect("write mbox");
    let (_, docs, warnings) = parse_with(&path, &ParseOptions::default());
    let parts: Vec<_> = docs
        .iter()
        .map(|d| d.part.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(parts, ["message 1", "message 3"]);
    assert_eq!(warnings, ["message 2: no message headers found"]);
}

#[test]
fn maildir_messages() {
    let (cur, _) = snapshot(
        "mail_maildir_cur",
        "mail/Maildir/cur/1731400000.M1P1.alder:2,S",
    );
    let (new, _) = snapshot("mail_maildir_new", "mail/Maildir/new/1731486400.M2P1.alder");
    for d in cur.iter().chain(&new) {
        assert_eq!(d.parser, "maildir");
        assert_eq!(d.part, None);
    }
    assert!(cur[0].text.contains("1:12"));
    assert!(cur[0].text.contains("handrails on both sides"));
    assert_eq!(
        email(&new[0]).thread_id.as_deref(),
        Some("ramp-1@finchrowe.example")
    );
}

#[test]
fn broken_mime_gives_what_can_be_read() {
    let (docs, warnings) = snapshot("mail_broken_mime", "invalid/broken-mime.eml");
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(d.title.as_deref(), Some("Scaffolding inspection passed"));
    assert!(d.text.contains("passed its inspection this morning"));
    assert_eq!(email(d).attachments, vec!["scaffold-tag.pdf"]);
    // The truncated PDF attachment is a warning, not a failure.
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("attachment 1 scaffold-tag.pdf: "),
        "{warnings:?}"
    );
}

#[test]
fn a_file_without_a_message_is_corrupt() {
    let dir = tempdir();
    let path = dir.path().join("notes.eml");
    std::fs::write(&path, "Just some words,\nno header in sight.\n").expect("write");
    match parse_file(&path, &ParseOptions::default()) {
        Err(ParseError::Corrupt {
            format, path: p, ..
        }) => {
            assert_eq!(format, "email");
            assert_eq!(p, path);
        }
        other => panic!("expected a corrupt email, got {other:?}"),
    }
}
