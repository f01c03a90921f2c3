//! Hybrid search: which retrievers run ([`Mode`]) and how their ranked lists become one
//! ([`Fusion`], [`fuse`]).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use docent_core::Hit;

/// The `k` of reciprocal rank fusion when none is given.
pub const DEFAULT_RRF_K: f32 = 60.0;

/// The weight of the vector list in score fusion when none is given.
pub const DEFAULT_SCORE_ALPHA: f32 = 0.5;

/// A word on the command line or in the config that is not one of the choices.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}\nhint: use {expected}")]
pub struct ParseChoiceError {
    /// What was being chosen (`search mode`, `fusion`).
    pub what: &'static str,
    /// What was given.
    pub value: String,
    /// The valid choices, as shown to the user.
    pub expected: &'static str,
}

/// Which retrievers a search runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Both, fused.
    #[default]
    Hybrid,
    /// Keyword search only.
    Bm25,
    /// Embedding similarity only.
    Vector,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Hybrid, Mode::Bm25, Mode::Vector];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hybrid => "hybrid",
            Mode::Bm25 => "bm25",
            Mode::Vector => "vector",
        }
    }

    /// Whether the keyword retriever runs.
    pub fn uses_bm25(self) -> bool {
        matches!(self, Mode::Hybrid | Mode::Bm25)
    }

    /// Whether the vector retriever runs.
    pub fn uses_vector(self) -> bool {
        matches!(self, Mode::Hybrid | Mode::Vector)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ParseChoiceError;

    /// `hybrid`, `bm25` or `vector`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == t)
            .ok_or_else(|| ParseChoiceError {
                what: "search mode",
                value: s.to_string(),
                expected: "`hybrid`, `bm25` or `vector`",
            })
    }
}

/// How a keyword list and a vector list become one ranking.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion: a hit scores `Σ 1 / (k + rank)` over the lists it is in, rank
    /// from 1. Needs no calibration of the retrievers' scores.
    Rrf { k: f32 },
    /// Convex combination of scores min-max normalised per list:
    /// `alpha · vector + (1 − alpha) · bm25`, a hit absent from a list getting 0 there (and
    /// every hit of a list whose scores are all equal getting 1).
    Score { alpha: f32 },
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Rrf { k: DEFAULT_RRF_K }
    }
}

impl fmt::Display for Fusion {
    /// `rrf` and `score` for the defaults, `rrf:<k>` and `score:<alpha>` otherwise, so that
    /// [`FromStr`] reads back what is written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fusion::Rrf { k } if k == DEFAULT_RRF_K => f.write_str("rrf"),
            Fusion::Rrf { k } => write!(f, "rrf:{k}"),
            Fusion::Score { alpha } if alpha == DEFAULT_SCORE_ALPHA => f.write_str("score"),
            Fusion::Score { alpha } => write!(f, "score:{alpha}"),
        }
    }
}

impl FromStr for Fusion {
    type Err = ParseChoiceError;

    /// `rrf` (k = 60), `rrf:<k>` with k ≥ 0, `score` (alpha = 0.5) or `score:<alpha>` with
    /// 0 ≤ alpha ≤ 1; names in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseChoiceError {
            what: "fusion",
            value: s.to_string(),
            expected: "`rrf`, `rrf:<k>` (k ≥ 0), `score` or `score:<alpha>` (0 ≤ alpha ≤ 1)",
        };
        let t = s.trim();
        let (name, param) = match t.split_once(':') {
            Some((n, p)) => (n, Some(p.trim())),
            None => (t, None),
        };
        let param = match param {
            None => None,
            Some(p) => Some(p.parse::<f32>().map_err(|_| err())?),
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "rrf" => {
                let k = param.unwrap_or(DEFAULT_RRF_K);
                if k.is_finite() && k >= 0.0 {
                    Ok(Fusion::Rrf { k })
                } else {
                    Err(err())
                }
            }
            "score" => {
                let alpha = param.unwrap_or(DEFAULT_SCORE_ALPHA);
                if (0.0..=1.0).contains(&alpha) {
                    Ok(Fusion::Score { alpha })
                } else {
                    Err(err())
                }
            }
            _ => Err(err()),
        }
    }
}

/// One chunk's standing in the two lists.
struct Entry<'a> {
    hit: &'a Hit,
    bm25: f32,
    vector: f32,
}

/// Fuses two ranked lists (each best first) into one of at most `limit` hits, best first.
///
/// Hits are identified by `chunk_id`; a chunk listed twice in one list counts at its first
/// (best) place only. A chunk in both lists keeps the keyword hit's fields. The fused score
/// replaces `score`; equal scores are ordered by chunk id, so the result depends only on the
/// inputs. Out-of-range parameters (a negative or non-finite `k`, an `alpha` outside 0..=1) are
/// replaced by the defaults or clamped.
pub fn fuse(bm25: &[Hit], vector: &[Hit], fusion: &Fusion, limit: usize) -> Vec<Hit> {
    let bm25 = unique(bm25);
    let vector = unique(vector);
    let (b_scores, v_scores) = match *fusion {
        Fusion::Rrf { k } => {
            let k = if k.is_finite() && k >= 0.0 {
                k
            } else {
                DEFAULT_RRF_K
            };
            (rrf(&bm25, k), rrf(&vector, k))
        }
        Fusion::Score { .. } => (min_max(&bm25), min_max(&vector)),
    };

    let mut entries: Vec<Entry<'_>> = Vec::with_capacity(bm25.len() + vector.len());
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(entries.capacity());
    for (hit, s) in bm25.iter().zip(b_scores) {
        index.insert(hit.chunk_id.as_str(), entries.len());
        entries.push(Entry {
            hit,
            bm25: s,
            vector: 0.0,
        });
    }
    for (hit, s) in vector.iter().zip(v_scores) {
        match index.get(hit.chunk_id.as_str()) {
            Some(&i) => entries[i].vector = s,
            None => {
                index.insert(hit.chunk_id.as_str(), entries.len());
                entries.push(Entry {
                    hit,
                    bm25: 0.0,
                    vector: s,
                });
            }
        }
    }

    let combine = |e: &Entry<'_>| match *fusion {
        Fusion::Rrf { .. } => e.bm25 + e.vector,
        Fusion::Score { alpha } => {
            let a = if alpha.is_nan() {
                DEFAULT_SCORE_ALPHA
            } else {
                alpha.clamp(0.0, 1.0)
            };
            a * e.vector + (1.0 - a) * e.bm25
        }
    };
    let mut scored: Vec<(f32, &Hit)> = entries.iter().map(|e| (combine(e), e.hit)).collect();
    scored.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.chunk_id.cmp(&b.1.chunk_id))
    });
    scored
        .into_iter()
        .take(limit)
        .map(|(score, hit)| Hit {
            score,
            ..hit.clone()
        })
        .collect()
}

/// The list without repeated chunks (first place kept).
fn unique(hits: &[Hit]) -> Vec<&Hit> {
    let mut seen = std::collections::HashSet::with_capacity(hits.len());
    hits.iter()
        .filter(|h| seen.insert(h.chunk_id.as_str()))
        .collect()
}

fn rrf(hits: &[&Hit], k: f32) -> Vec<f32> {
    (1..=hits.len())
        .map(|rank| 1.0 / (k + rank as f32))
        .collect()
}

/// Scores scaled to 0..=1 by the list's minimum and maximum; a NaN counts as the minimum.
fn min_max(hits: &[&Hit]) -> Vec<f32> {
    let finite = || hits.iter().map(|h| h.score).filter(|s| s.is_finite());
    let lo = finite().fold(f32::INFINITY, f32::min);
    let hi = finite().fold(f32::NEG_INFINITY, f32::max);
    hits.iter()
        .map(|h| {
            let s = h.score;
            if s.is_nan() || s == f32::NEG_INFINITY {
                0.0
            } else if s == f32::INFINITY {
                1.0
            } else if hi > lo {
                ((s - lo) / (hi - lo)).clamp(0.0, 1.0)
            } else {
                1.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hit;

    fn ids(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|h| h.chunk_id.as_str()).collect()
    }

    fn list(items: &[(&str, f32)]) -> Vec<Hit> {
        items
            .iter()
            .map(|&(id, s)| test_hit(id, "doc", 0, s, "text"))
            .collect()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn rrf_by_hand() {
        let b = list(&[("a", 12.0), ("b", 9.0), ("c", 1.0)]);
        let v = list(&[("c", 0.9), ("a", 0.8), ("d", 0.1)]);
        let out = fuse(&b, &v, &Fusion::Rrf { k: 60.0 }, 10);
        // a: 1/61 + 1/62; c: 1/63 + 1/61; b: 1/62; d: 1/63
        assert_eq!(ids(&out), ["a", "c", "b", "d"]);
        assert!(close(out[0].score, 1.0 / 61.0 + 1.0 / 62.0));
        assert!(close(out[1].score, 1.0 / 63.0 + 1.0 / 61.0));
        assert!(close(out[2].score, 1.0 / 62.0));
        assert!(close(out[3].score, 1.0 / 63.0));
    }

    #[test]
    fn score_fusion_by_hand() {
        let b = list(&[("a", 10.0), ("b", 6.0), ("c", 2.0)]);
        let v = list(&[("c", 0.9), ("d", 0.5), ("a", 0.4)]);
        let out = fuse(&b, &v, &Fusion::Score { alpha: 0.5 }, 10);
        // bm25 normalised: a 1, b 0.5, c 0; vector: c 1, d 0.2, a 0
        // fused: a 0.5, b 0.25, c 0.5, d 0.1 → a and c tie, chunk id breaks it
        assert_eq!(ids(&out), ["a", "c", "b", "d"]);
        assert!(close(out[0].score, 0.5));
        assert!(close(out[1].score, 0.5));
        assert!(close(out[2].score, 0.25));
        assert!(close(out[3].score, 0.1));

        let out = fuse(&b, &v, &Fusion::Score { alpha: 1.0 }, 2);
        assert_eq!(ids(&out), ["c", "d"]);
        let out = fuse(&b, &v, &Fusion::Score { alpha: 0.0 }, 1);
        assert_eq!(ids(&out), ["a"]);
    }

    #[test]
    fn single_or_equal_scores_normalise_to_one() {
        let b = list(&[("a", 3.0)]);
        let v = list(&[("b", 0.2), ("c", 0.2)]);
        let out = fuse(&b, &v, &Fusion::Score { alpha: 0.5 }, 10);
        assert_eq!(ids(&out), ["a", "b", "c"]);
        assert!(out.iter().all(|h| close(h.score, 0.5)));
    }

    #[test]
    fn one_list_empty() {
        let b = list(&[("x", 5.0), ("y", 4.0)]);
        let out = fuse(&b, &[], &Fusion::default(), 10);
        assert_eq!(ids(&out), ["x", "y"]);
        let out = fuse(&[], &b, &Fusion::Score { alpha: 0.5 }, 10);
        assert_eq!(ids(&out), ["x", "y"]);
        assert!(fuse(&[], &[], &Fusion::default(), 10).is_empty());
        assert!(fuse(&b, &b, &Fusion::default(), 0).is_empty());
    }

    #[test]
    fn duplicates_in_a_list_count_once() {
        let b = list(&[("a", 5.0), ("a", 4.0), ("b", 3.0)]);
        let out = fuse(&b, &[], &Fusion::Rrf { k: 0.0 }, 10);
        assert_eq!(ids(&out), ["a", "b"]);
        assert!(close(out[1].score, 0.5));
    }

    #[test]
    fn keyword_fields_win_and_order_is_deterministic() {
        let mut b = list(&[("a", 1.0)]);
        b[0].text = "from bm25".into();
        let mut v = list(&[("a", 1.0)]);
        v[0].text = "from vector".into();
        assert_eq!(fuse(&b, &v, &Fusion::default(), 1)[0].text, "from bm25");

        let b = list(&[("z", 1.0), ("m", 1.0)]);
        let v = list(&[("m", 1.0), ("z", 1.0)]);
        assert_eq!(ids(&fuse(&b, &v, &Fusion::default(), 5)), ["m", "z"]);
        assert_eq!(ids(&fuse(&v, &b, &Fusion::default(), 5)), ["m", "z"]);
    }

    #[test]
    fn odd_scores_and_parameters_do_not_break_ordering() {
        let b = list(&[("a", f32::NAN), ("b", f32::INFINITY), ("c", -1.0)]);
        let v = list(&[("d", f32::NEG_INFINITY)]);
        let out = fuse(&b, &v, &Fusion::Score { alpha: f32::NAN }, 10);
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|h| h.score.is_finite()));
        let out = fuse(&b, &v, &Fusion::Rrf { k: -5.0 }, 10);
        assert!(out.iter().all(|h| h.score.is_finite() && h.score > 0.0));
    }

    #[test]
    fn names_round_trip() {
        for m in Mode::ALL {
            assert_eq!(m.to_string().parse::<Mode>(), Ok(m));
        }
        assert_eq!("BM25".parse::<Mode>(), Ok(Mode::Bm25));
        assert!(Mode::Hybrid.uses_bm25() && Mode::Hybrid.uses_vector());
        assert!(!Mode::Bm25.uses_vector() && !Mode::Vector.uses_bm25());
        let err = "semantic".parse::<Mode>().unwrap_err().to_string();
        assert!(err.contains("semantic") && err.contains("hint:"), "{err}");

        assert_eq!(Fusion::default().to_string(), "rrf");
        assert_eq!("rrf".parse::<Fusion>(), Ok(Fusion::Rrf { k: 60.0 }));
        assert_eq!("score".parse::<Fusion>(), Ok(Fusion::Score { alpha: 0.5 }));
        assert_eq!(Fusion::Score { alpha: 0.5 }.to_string(), "score");
        for f in [Fusion::Rrf { k: 10.0 }, Fusion::Score { alpha: 0.25 }] {
            assert_eq!(f.to_string().parse::<Fusion>(), Ok(f));
        }
        assert_eq!("rrf:10".to_string(), Fusion::Rrf { k: 10.0 }.to_string());
        for bad in [
            "",
            "rank",
            "rrf:-1",
            "rrf:x",
            "score:2",
            "score:nan",
            "rrf:inf",
        ] {
            assert!(bad.parse::<Fusion>().is_err(), "{bad}");
        }
    }
}
