//! Retrieval evaluation on BEIR-format datasets (`docent eval retrieval`): the loader, the
//! metrics (nDCG@k, recall@k, MRR@k as BEIR reports them) and their average over queries.
//!
//! A BEIR dataset is a folder with `corpus.jsonl` (`{"_id", "title", "text"}` per line),
//! `queries.jsonl` (`{"_id", "text"}`) and `qrels/<split>.tsv` (a header row, then
//! `query-id<TAB>corpus-id<TAB>score` rows; a score of 0 means judged not relevant).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A failure to load a dataset: which file, which line, what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(
        "{}: could not read: {source}\nhint: a BEIR dataset folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv",
        path.display()
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Format {
        path: PathBuf,
        /// 1-based.
        line: usize,
        message: String,
    },
}

/// One document of a BEIR corpus.
#[derive(Clone, PartialEq, Eq)]
pub struct BeirDoc {
    pub id: String,
    /// Empty when the corpus has none.
    pub title: String,
    pub text: String,
}

impl fmt::Debug for BeirDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BeirDoc")
            .field("id", &self.id)
            .field("title_len", &self.title.len())
            .field("text_len", &self.text.len())
            .finish()
    }
}

/// A BEIR dataset, one split of it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BeirDataset {
    /// In file order.
    pub corpus: Vec<BeirDoc>,
    /// Query id → text: only the queries that have judgments in the split.
    pub queries: HashMap<String, String>,
    /// Query id → corpus id → relevance grade (0: judged not relevant).
    pub qrels: HashMap<String, HashMap<String, u32>>,
}

impl fmt::Debug for BeirDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BeirDataset")
            .field("corpus", &self.corpus.len())
            .field("queries", &self.queries.len())
            .field("judgments", &self.judgments())
            .finish()
    }
}

impl BeirDataset {
    /// Number of (query, document) judgments in the split.
    pub fn judgments(&self) -> usize {
        self.qrels.values().map(HashMap::len).sum()
    }

    /// The queries to evaluate, `(id, text)`, sorted by id.
    pub fn eval_queries(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = self
            .queries
            .iter()
            .map(|(id, text)| (id.as_str(), text.as_str()))
            .collect();
        out.sort_unstable();
        out
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawId {
    Text(String),
    Number(serde_json::Number),
}

impl RawId {
    fn into_string(self) -> String {
        match self {
            RawId::Text(s) => s,
            RawId::Number(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct RawDoc {
    #[serde(rename = "_id")]
    id: RawId,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// Loads `dir`'s corpus, queries and `qrels/<split>.tsv`. Only queries with judgments in the
/// split are kept. Fails on the first malformed line, naming file and line; a judged query
/// missing from `queries.jsonl` and a document id given twice are errors too. Judgments of
/// documents missing from the corpus are kept (they can never be retrieved, as in BEIR).
pub fn load_beir(dir: &Path, split: &str) -> Result<BeirDataset, EvalError> {
    let corpus_path = dir.join("corpus.jsonl");
    let mut corpus = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (line, raw) in jsonl::<RawDoc>(&corpus_path)? {
        let id = raw.id.into_string();
        if !seen.insert(id.clone()) {
            return Err(format_error(
                &corpus_path,
                line,
                format!("document id `{id}` appears twice"),
            ));
        }
        corpus.push(BeirDoc {
            id,
            title: raw.title.unwrap_or_default(),
            text: raw.text.unwrap_or_default(),
        });
    }

    let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
    let (qrels, first_line) = load_qrels(&qrels_path)?;

    let queries_path = dir.join("queries.jsonl");
    let mut queries = HashMap::new();
    for (_, raw) in jsonl::<RawDoc>(&queries_path)? {
        let id = raw.id.into_string();
        if qrels.contains_key(&id) {
            queries.insert(id, raw.text.unwrap_or_default());
        }
    }
    if let Some(missing) = first_line
        .iter()
        .filter(|(q, _)| !queries.contains_key(*q))
        .min_by_key(|(_, line)| **line)
    {
        return Err(format_error(
            &qrels_path,
            *missing.1,
            format!("query `{}` is not in {}", missing.0, queries_path.display()),
        ));
    }

    Ok(BeirDataset {
        corpus,
        queries,
        qrels,
    })
}

type Qrels = HashMap<String, HashMap<String, u32>>;

/// The judgments of a qrels file, and the line each query first appears on.
fn load_qrels(path: &Path) -> Result<(Qrels, HashMap<String, usize>), EvalError> {
    let text = read(path)?;
    let mut qrels: Qrels = HashMap::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut header_checked = false;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim_end_matches('\r');
        let line = if i == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = if line.contains('\t') {
            line.split('\t').map(str::trim).collect()
        } else {
            line.split_whitespace().collect()
        };
        let is_first = !header_checked;
        header_checked = true;
        if fields.len() != 3 {
            return Err(format_error(
                path,
                line_no,
                format!(
                    "expected 3 tab-separated fields (query-id, corpus-id, score), found {}",
                    fields.len()
                ),
            ));
        }
        let score = match fields[2].parse::<i64>() {
            Ok(s) => u32::try_from(s.max(0)).unwrap_or(u32::MAX),
            // The header row.
            Err(_) if is_first => continue,
            Err(_) => {
                return Err(format_error(
                    path,
                    line_no,
                    format!("score `{}` is not a whole number", fields[2]),
                ));
            }
        };
        let (q, d) = (fields[0], fields[1]);
        if q.is_empty() || d.is_empty() {
            return Err(format_error(
                path,
                line_no,
                "empty query or corpus id".into(),
            ));
        }
        first_line.entry(q.to_string()).or_insert(line_no);
        qrels
            .entry(q.to_string())
            .or_default()
            .insert(d.to_string(), score);
    }
    Ok((qrels, first_line))
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn format_error(path: &Path, line: usize, message: String) -> EvalError {
    EvalError::Format {
        path: path.to_path_buf(),
        line,
        message,
    }
}

/// The non-blank lines of a JSON-lines file, parsed, with their 1-based line numbers.
fn jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<(usize, T)>, EvalError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let line = if i == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(line).map_err(|e| {
            // serde_json's message may quote the line's text; keep only its category and column.
            let what = match e.classify() {
                serde_json::error::Category::Data => "a JSON object with a string `_id`",
                _ => "valid JSON",
            };
            format_error(
                path,
                i + 1,
                format!("expected {what} (column {})", e.column()),
            )
        })?;
        out.push((i + 1, value));
    }
    Ok(out)
}

// ---- metrics ---------------------------------------------------------------------------------

/// The first `k` distinct ids of a ranking.
fn top_k(ranked: &[String], k: usize) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    ranked
        .iter()
        .map(String::as_str)
        .filter(|d| seen.insert(*d))
        .take(k)
        .collect()
}

/// nDCG@k as trec_eval's `ndcg_cut` computes it (and so BEIR, through pytrec_eval): the gain of
/// a document is its relevance grade, discounted by `1 / log2(rank + 1)` with ranks from 1; the
/// ideal DCG ranks all judged documents by grade. Repeated ids count at their first place
/// only. 0 when nothing is relevant.
pub fn ndcg_at_k(ranked: &[String], rels: &HashMap<String, u32>, k: usize) -> f64 {
    let dcg: f64 = top_k(ranked, k)
        .iter()
        .enumerate()
        .map(|(i, d)| f64::from(rels.get(*d).copied().unwrap_or(0)) / discount(i))
        .sum();
    let mut grades: Vec<u32> = rels.values().copied().filter(|&g| g > 0).collect();
    grades.sort_unstable_by(|a, b| b.cmp(a));
    let ideal: f64 = grades
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &g)| f64::from(g) / discount(i))
        .sum();
    if ideal > 0.0 { dcg / ideal } else { 0.0 }
}

/// `log2(rank + 1)` for the 0-based position `i` (rank `i + 1`).
fn discount(i: usize) -> f64 {
    (i as f64 + 2.0).log2()
}

/// Recall@k: relevant documents (grade > 0) in the top `k`, over all relevant documents. 0 when
/// nothing is relevant.
pub fn recall_at_k(ranked: &[String], rels: &HashMap<String, u32>, k: usize) -> f64 {
    let relevant = rels.values().filter(|&&g| g > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = top_k(ranked, k)
        .iter()
        .filter(|d| rels.get(**d).is_some_and(|&g| g > 0))
        .count();
    found as f64 / relevant as f64
}

/// MRR@k: `1 / rank` of the first relevant document (grade > 0) in the top `k`, else 0.
pub fn mrr_at_k(ranked: &[String], rels: &HashMap<String, u32>, k: usize) -> f64 {
    top_k(ranked, k)
        .iter()
        .position(|d| rels.get(*d).is_some_and(|&g| g > 0))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

/// One query's scores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryScores {
    pub ndcg_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
}

/// Scores of one ranking (document ids, best first) against a query's judgments.
pub fn score_query(ranked: &[String], rels: &HashMap<String, u32>) -> QueryScores {
    QueryScores {
        ndcg_at_10: ndcg_at_k(ranked, rels, 10),
        recall_at_100: recall_at_k(ranked, rels, 100),
        mrr_at_10: mrr_at_k(ranked, rels, 10),
    }
}

/// Mean scores over the evaluated queries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Number of queries averaged over.
    pub queries: usize,
    pub ndcg_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
}

/// Averages [`score_query`] over every query of `qrels`, looking up its ranking in `runs`
/// (query id → document ids, best first); a query without a ranking, or with an empty one,
/// scores 0. Rankings of queries without judgments are ignored.
pub fn evaluate(
    qrels: &HashMap<String, HashMap<String, u32>>,
    runs: &HashMap<String, Vec<String>>,
) -> EvalReport {
    let mut report = EvalReport {
        queries: qrels.len(),
        ..EvalReport::default()
    };
    if qrels.is_empty() {
        return report;
    }
    // Summed in query-id order so the result does not depend on hash order.
    let mut ids: Vec<&String> = qrels.keys().collect();
    ids.sort_unstable();
    for q in ids {
        let ranked = runs.get(q).map_or(&[][..], Vec::as_slice);
        let s = score_query(ranked, &qrels[q]);
        report.ndcg_at_10 += s.ndcg_at_10;
        report.recall_at_100 += s.recall_at_100;
        report.mrr_at_10 += s.mrr_at_10;
    }
    let n = qrels.len() as f64;
    report.ndcg_at_10 /= n;
    report.recall_at_100 /= n;
    report.mrr_at_10 /= n;
    report
}

/// Document keys ranked by their best chunk's score (a document's score is the maximum over
/// its chunks), best first, at most `limit`; equal scores in key order, a NaN score counts as
/// the lowest.
pub fn rank_documents(hits: &[(String, f32)], limit: usize) -> Vec<String> {
    let mut best: HashMap<&str, f32> = HashMap::new();
    for (key, score) in hits {
        let s = if score.is_nan() {
            f32::NEG_INFINITY
        } else {
            *score
        };
        best.entry(key.as_str())
            .and_modify(|b| *b = b.max(s))
            .or_insert(s);
    }
    let mut docs: Vec<(&str, f32)> = best.into_iter().collect();
    docs.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    docs.into_iter()
        .take(limit)
        .map(|(k, _)| k.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn rels(items: &[(&str, u32)]) -> HashMap<String, u32> {
        items.iter().map(|&(d, g)| (d.to_string(), g)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn ndcg_binary_by_hand() {
        // Relevant: a, b. Ranking: x a y b.
        // DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3).
        let r = rels(&[("a", 1), ("b", 1), ("z", 0)]);
        let run = ranked(&["x", "a", "y", "b"]);
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!(close(ndcg_at_k(&run, &r, 10), dcg / idcg));
        assert!(close(ndcg_at_k(&run, &r, 10), 0.650_920_929_807_132_6));
        // Cut at 2: only `a` counts; the ideal still has two relevant documents.
        assert!(close(ndcg_at_k(&run, &r, 2), (1.0 / 3f64.log2()) / idcg));
        assert!(close(ndcg_at_k(&ranked(&["a", "b"]), &r, 10), 1.0));
        assert!(close(ndcg_at_k(&ranked(&["b", "a", "x"]), &r, 10), 1.0));
        assert_eq!(ndcg_at_k(&[], &r, 10), 0.0);
    }

    #[test]
    fn ndcg_graded_by_hand() {
        // Grades: a 3, b 2, c 1. Ranking: c x a b.
        // DCG = 1/1 + 0 + 3/log2(4) + 2/log2(5) = 1 + 1.5 + 0.861353116146786 = 3.361353116146786
        // IDCG = 3/1 + 2/log2(3) + 1/log2(4) = 3 + 1.261859507142915 + 0.5 = 4.761859507142915
        let r = rels(&[("a", 3), ("b", 2), ("c", 1)]);
        let run = ranked(&["c", "x", "a", "b"]);
        let expected = 3.361_353_116_146_786 / 4.761_859_507_142_915;
        assert!(close(ndcg_at_k(&run, &r, 10), expected));
        // trec_eval (ndcg_cut.10, ndcg_cut.1) gives the same.
        assert!(close(ndcg_at_k(&run, &r, 10), 0.705_890_862_824_631_3));
        // @1: DCG = 1, IDCG = 3.
        assert!(close(ndcg_at_k(&run, &r, 1), 1.0 / 3.0));
        // Repeats count once: `c c a` ranks as `c a`.
        let run = ranked(&["c", "c", "a"]);
        let expected = (1.0 + 3.0 / 3f64.log2()) / 4.761_859_507_142_915;
        assert!(close(ndcg_at_k(&run, &r, 10), expected));
    }

    #[test]
    fn recall_and_mrr_by_hand() {
        let r = rels(&[("a", 1), ("b", 2), ("c", 1), ("z", 0)]);
        let run = ranked(&["z", "x", "b", "y", "a"]);
        assert!(close(recall_at_k(&run, &r, 100), 2.0 / 3.0));
        assert!(close(recall_at_k(&run, &r, 3), 1.0 / 3.0));
        assert!(close(recall_at_k(&run, &r, 2), 0.0));
        // `z` is judged but not relevant: the first relevant is `b` at rank 3.
        assert!(close(mrr_at_k(&run, &r, 10), 1.0 / 3.0));
        assert!(close(mrr_at_k(&run, &r, 2), 0.0));
        let none = rels(&[("z", 0)]);
        assert_eq!(recall_at_k(&run, &none, 10), 0.0);
        assert_eq!(mrr_at_k(&run, &none, 10), 0.0);
        assert_eq!(ndcg_at_k(&run, &none, 10), 0.0);
    }

    #[test]
    fn report_averages_with_missing_runs_as_zero() {
        let mut qrels = HashMap::new();
        qrels.insert("q1".to_string(), rels(&[("a", 1)]));
        qrels.insert("q2".to_string(), rels(&[("b", 1)]));
        qrels.insert("q3".to_string(), rels(&[("c", 1)]));
        let mut runs = HashMap::new();
        runs.insert("q1".to_string(), ranked(&["a"]));
        runs.insert("q2".to_string(), ranked(&["x", "b"]));
        runs.insert("q9".to_string(), ranked(&["c"]));
        let r = evaluate(&qrels, &runs);
        assert_eq!(r.queries, 3);
        assert!(close(r.mrr_at_10, (1.0 + 0.5) / 3.0));
        assert!(close(r.recall_at_100, 2.0 / 3.0));
        assert!(close(r.ndcg_at_10, (1.0 + 1.0 / 3f64.log2()) / 3.0));
        assert_eq!(evaluate(&HashMap::new(), &runs), EvalReport::default());
        let json = serde_json::to_string(&r).unwrap_or_default();
        assert!(json.contains("\"ndcg_at_10\""), "{json}");
    }

    #[test]
    fn documents_rank_by_their_best_chunk() {
        let hits = vec![
            ("d1".to_string(), 0.2),
            ("d2".to_string(), 0.9),
            ("d1".to_string(), 0.95),
            ("d3".to_string(), 0.5),
            ("d4".to_string(), 0.5),
            ("d5".to_string(), f32::NAN),
        ];
        assert_eq!(rank_documents(&hits, 10), ["d1", "d2", "d3", "d4", "d5"]);
        assert_eq!(rank_documents(&hits, 2), ["d1", "d2"]);
        assert!(rank_documents(&[], 5).is_empty());
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).unwrap();
    }

    fn fixture() -> tempfile::TempDir {
        let dir = docent_test_support::tempdir();
        write(
            dir.path(),
            "corpus.jsonl",
            "{\"_id\": \"d1\", \"title\": \"Roofs\", \"text\": \"Membranes leak.\"}\r\n\
             {\"_id\": 2, \"text\": \"No title here.\"}\r\n\
             \r\n\
             {\"_id\": \"d3\", \"title\": \"\", \"text\": \"Third.\", \"metadata\": {}}\r\n",
        );
        write(
            dir.path(),
            "queries.jsonl",
            "{\"_id\": \"q1\", \"text\": \"why do roofs leak\"}\n\
             {\"_id\": \"q2\", \"text\": \"titles\"}\n\
             {\"_id\": \"q3\", \"text\": \"unjudged\"}\n",
        );
        write(
            dir.path(),
            "qrels/test.tsv",
            "query-id\tcorpus-id\tscore\r\nq1\td1\t2\r\nq1\td3\t0\r\nq2\t2\t1\r\n",
        );
        dir
    }

    #[test]
    fn loads_a_small_dataset() {
        let dir = fixture();
        let ds = load_beir(dir.path(), "test").unwrap();
        assert_eq!(ds.corpus.len(), 3);
        assert_eq!(
            ds.corpus[0],
            BeirDoc {
                id: "d1".into(),
                title: "Roofs".into(),
                text: "Membranes leak.".into()
            }
        );
        assert_eq!(ds.corpus[1].id, "2");
        assert_eq!(ds.corpus[1].title, "");
        assert_eq!(ds.queries.len(), 2);
        assert_eq!(ds.queries["q1"], "why do roofs leak");
        assert_eq!(
            ds.eval_queries(),
            [("q1", "why do roofs leak"), ("q2", "titles")]
        );
        assert_eq!(ds.qrels["q1"], rels(&[("d1", 2), ("d3", 0)]));
        assert_eq!(ds.qrels["q2"], rels(&[("2", 1)]));
        assert_eq!(ds.judgments(), 3);
        let dbg = format!("{ds:?} {:?}", ds.corpus[0]);
        assert!(
            !dbg.contains("Membranes") && !dbg.contains("roofs"),
            "{dbg}"
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let dir = fixture();
        let err = load_beir(dir.path(), "dev").unwrap_err().to_string();
        assert!(err.contains("dev.tsv") && err.contains("hint:"), "{err}");

        write(
            dir.path(),
            "qrels/bad.tsv",
            "query-id\tcorpus-id\tscore\nq1\td1\n",
        );
        let err = load_beir(dir.path(), "bad").unwrap_err().to_string();
        assert!(
            err.contains("bad.tsv:2:") && err.contains("3 tab-separated"),
            "{err}"
        );

        write(dir.path(), "qrels/bad.tsv", "q1\td1\t1\nq1\td3\tx\n");
        let err = load_beir(dir.path(), "bad").unwrap_err().to_string();
        assert!(err.contains("bad.tsv:2:") && err.contains("`x`"), "{err}");

        write(dir.path(), "qrels/bad.tsv", "q1\td1\t1\nq7\td3\t1\n");
        let err = load_beir(dir.path(), "bad").unwrap_err().to_string();
        assert!(err.contains("bad.tsv:2:") && err.contains("`q7`"), "{err}");

        write(
            dir.path(),
            "corpus.jsonl",
            "{\"_id\": \"d1\", \"text\": \"secret text\"}\n{\"_id\": \"d2\", \"text\": secret}\n",
        );
        let err = load_beir(dir.path(), "test").unwrap_err().to_string();
        assert!(err.contains("corpus.jsonl:2:"), "{err}");
        assert!(!err.contains("secret"), "{err}");

        write(
            dir.path(),
            "corpus.jsonl",
            "{\"_id\": \"d1\"}\n{\"text\": \"no id\"}\n",
        );
        let err = load_beir(dir.path(), "test").unwrap_err().to_string();
        assert!(
            err.contains("corpus.jsonl:2:") && err.contains("`_id`"),
            "{err}"
        );

        write(
            dir.path(),
            "corpus.jsonl",
            "{\"_id\": \"d1\"}\n{\"_id\": \"d1\"}\n",
        );
        let err = load_beir(dir.path(), "test").unwrap_err().to_string();
        assert!(
            err.contains("corpus.jsonl:2:") && err.contains("twice"),
            "{err}"
        );
    }
}
