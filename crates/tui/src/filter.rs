//! Search filters chosen in the filter form, written in the query syntax docent already reads
//! (`kind:pdf,email path:<prefix> from:<text> after:YYYY-MM-DD before:YYYY-MM-DD`; see
//! `docent_retrieve::parse_query`).

use std::fmt::Write as _;

use docent_core::DocKind;
use docent_core::date::is_calendar_date;

use crate::editor::TextInput;

/// Restrictions added to every question and search until cleared.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Filters {
    /// Any of these kinds (empty: all).
    pub kinds: Vec<DocKind>,
    /// Path prefix, as typed.
    pub path: Option<String>,
    /// Text the sender contains.
    pub from: Option<String>,
    /// `YYYY-MM-DD`, inclusive.
    pub after: Option<String>,
    /// `YYYY-MM-DD`, exclusive.
    pub before: Option<String>,
}

/// A value as the query syntax reads it: double-quoted when it holds whitespace; double quotes
/// inside cannot be written and are dropped.
fn value(s: &str) -> String {
    let s: String = s.chars().filter(|&c| c != '"' && !c.is_control()).collect();
    if s.chars().any(char::is_whitespace) {
        format!("\"{s}\"")
    } else {
        s
    }
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        self == &Filters::default()
    }

    /// The filters in query syntax, `""` when there are none.
    pub fn to_query(&self) -> String {
        let mut out = String::new();
        let mut push = |name: &str, v: &str| {
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{name}:{}", value(v));
        };
        if !self.kinds.is_empty() {
            let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
            push("kind", &kinds.join(","));
        }
        for (name, v) in [
            ("path", &self.path),
            ("from", &self.from),
            ("after", &self.after),
            ("before", &self.before),
        ] {
            if let Some(v) = v {
                push(name, v);
            }
        }
        out
    }

    /// `text` with the filters appended (the text alone when there are none).
    pub fn apply_to(&self, text: &str) -> String {
        let q = self.to_query();
        if q.is_empty() {
            text.to_string()
        } else {
            format!("{} {q}", text.trim_end())
        }
    }
}

/// The fields of the filter form, in order.
pub const FIELDS: [(&str, &str); 5] = [
    ("kind", "pdf, note, email (any of them)"),
    ("path", "folder or file prefix"),
    ("from", "sender contains"),
    ("after", "YYYY-MM-DD (on or after)"),
    ("before", "YYYY-MM-DD (before)"),
];

/// The filter form: one input per field of [`FIELDS`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterForm {
    pub fields: [TextInput; 5],
    /// The field being edited.
    pub focus: usize,
    /// Why the last attempt to apply was refused.
    pub error: Option<String>,
}

impl FilterForm {
    /// A form showing `f`.
    pub fn new(f: &Filters) -> Self {
        let kinds: Vec<&str> = f.kinds.iter().map(|k| k.as_str()).collect();
        let opt = |o: &Option<String>| TextInput::from_text(o.as_deref().unwrap_or(""));
        FilterForm {
            fields: [
                TextInput::from_text(&kinds.join(", ")),
                opt(&f.path),
                opt(&f.from),
                opt(&f.after),
                opt(&f.before),
            ],
            focus: 0,
            error: None,
        }
    }

    /// The filters the form holds, or what is wrong with it.
    pub fn parse(&self) -> Result<Filters, String> {
        let text = |i: usize| {
            let t = self.fields[i].text().trim().to_string();
            (!t.is_empty()).then_some(t)
        };
        let mut kinds = Vec::new();
        if let Some(k) = text(0) {
            for part in k.split([',', ' ', '|']).filter(|p| !p.is_empty()) {
                let kind = match part.to_ascii_lowercase().as_str() {
                    "pdf" | "pdfs" => DocKind::Pdf,
                    "note" | "notes" | "text" | "md" | "markdown" => DocKind::Note,
                    "email" | "emails" | "mail" => DocKind::Email,
                    other => {
                        return Err(format!("kind `{other}` is not one of pdf, note, email"));
                    }
                };
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
        }
        for (i, name) in [(3, "after"), (4, "before")] {
            if let Some(d) = text(i)
                && !is_calendar_date(&d)
            {
                return Err(format!("{name}: `{d}` is not a date written YYYY-MM-DD"));
            }
        }
        let f = Filters {
            kinds,
            path: text(1),
            from: text(2),
            after: text(3),
            before: text(4),
        };
        if let (Some(a), Some(b)) = (&f.after, &f.before)
            && a >= b
        {
            return Err(format!("after ({a}) must be earlier than before ({b})"));
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docent_retrieve::parse_query;

    #[test]
    fn filters_render_in_query_syntax() {
        let f = Filters {
            kinds: vec![DocKind::Pdf, DocKind::Email],
            path: Some("/home/a/My Docs/".into()),
            from: Some("alice".into()),
            after: Some("2024-01-01".into()),
            before: Some("2025-01-01".into()),
        };
        assert_eq!(
            f.to_query(),
            "kind:pdf,email path:\"/home/a/My Docs/\" from:alice after:2024-01-01 before:2025-01-01"
        );
        assert_eq!(Filters::default().to_query(), "");
        assert_eq!(Filters::default().apply_to("roof? "), "roof? ");
        assert_eq!(
            f.apply_to("when is the roof due?"),
            format!("when is the roof due? {}", f.to_query())
        );
    }

    #[test]
    fn docent_reads_back_what_the_form_writes() {
        let f = Filters {
            kinds: vec![DocKind::Note],
            path: Some("notes/\"odd\" dir".into()),
            from: Some("Bob Smith".into()),
            after: Some("2023-02-28".into()),
            before: None,
        };
        let q = parse_query(&f.apply_to("roof membrane"));
        assert!(q.warnings.is_empty(), "{:?}", q.warnings);
        assert_eq!(q.text, "roof membrane");
        assert_eq!(q.filter.kinds, vec![DocKind::Note]);
        assert_eq!(q.filter.path_prefix.as_deref(), Some("notes/odd dir"));
        assert_eq!(q.filter.from.as_deref(), Some("Bob Smith"));
        assert_eq!(q.filter.after.as_deref(), Some("2023-02-28"));
        assert_eq!(q.filter.before, None);
    }

    #[test]
    fn the_form_validates() {
        let mut form = FilterForm::default();
        form.fields[0] = TextInput::from_text("PDF, mail, pdf");
        form.fields[3] = TextInput::from_text(" 2024-02-29 ");
        let f = form.parse().unwrap();
        assert_eq!(f.kinds, vec![DocKind::Pdf, DocKind::Email]);
        assert_eq!(f.after.as_deref(), Some("2024-02-29"));
        assert_eq!(FilterForm::new(&f).parse().unwrap(), f);

        form.fields[0] = TextInput::from_text("video");
        assert!(form.parse().unwrap_err().contains("video"));
        form.fields[0] = TextInput::default();
        form.fields[3] = TextInput::from_text("2023-02-29");
        assert!(form.parse().unwrap_err().starts_with("after:"));
        form.fields[3] = TextInput::from_text("2024-05-01");
        form.fields[4] = TextInput::from_text("2024-04-01");
        assert!(form.parse().unwrap_err().contains("earlier"));
    }

    #[test]
    fn dates() {
        assert!(is_calendar_date("2024-12-31"));
        assert!(is_calendar_date("2000-02-29"));
        assert!(!is_calendar_date("1900-02-29"));
        assert!(!is_calendar_date("2024-13-01"));
        assert!(!is_calendar_date("2024-1-01"));
        assert!(!is_calendar_date("+024-01-01"));
        assert!(!is_calendar_date("2024-04-31"));
    }
}
