//! Relevance metrics, computed exactly as trec_eval computes them.
//!
//! A ranking is ordered by score, highest first; ties are broken by document id in
//! *decreasing* order, as trec_eval does (the rank column of a run file is ignored). Gains are
//! the grades themselves (linear gain, trec_eval's `ndcg_cut`); binary metrics count a product
//! as relevant when its grade reaches the threshold.
//!
//! ```
//! use std::collections::BTreeMap;
//! use shelf::eval::metrics::{rank_like_trec_eval, Metrics};
//!
//! let judged = BTreeMap::from([("a".to_string(), 2), ("b".to_string(), 0), ("c".to_string(), 1)]);
//! let ranking = rank_like_trec_eval(vec![("b".into(), 3.0), ("a".into(), 2.0)]);
//! let m = Metrics::compute(&ranking, &judged, 1);
//! assert_eq!(m.rr10, 0.5);
//! assert_eq!(m.recall100, 0.5);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The metrics of one query (or their means over queries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(rename = "ndcg@10")]
    pub ndcg10: f64,
    #[serde(rename = "ndcg@100")]
    pub ndcg100: f64,
    #[serde(rename = "mrr@10")]
    pub rr10: f64,
    pub map: f64,
    #[serde(rename = "p@10")]
    pub p10: f64,
    #[serde(rename = "recall@100")]
    pub recall100: f64,
    #[serde(rename = "judged@10")]
    pub judged10: f64,
}

/// Metric names, in report order, as `--metric` and JSON name them.
pub const NAMES: [&str; 7] = ["ndcg@10", "ndcg@100", "mrr@10", "map", "p@10", "recall@100", "judged@10"];

impl Metrics {
    /// The metrics of one ranking (best first, already tie-ordered) against its judgments.
    pub fn compute(ranking: &[String], judged: &BTreeMap<String, i32>, threshold: i32) -> Metrics {
        let grade = |doc: &String| judged.get(doc).copied().unwrap_or(0);
        let relevant = |doc: &String| grade(doc) >= threshold;
        let total_relevant = judged.values().filter(|&&g| g >= threshold).count();

        let mut ideal: Vec<i32> = judged.values().copied().filter(|&g| g > 0).collect();
        ideal.sort_unstable_by(|a, b| b.cmp(a));
        let ndcg = |k: usize| {
            let dcg: f64 = ranking.iter().take(k).enumerate().map(|(i, d)| gain(grade(d)) / discount(i)).sum();
            let idcg: f64 = ideal.iter().take(k).enumerate().map(|(i, &g)| gain(g) / discount(i)).sum();
            if idcg > 0.0 {
                dcg / idcg
            } else {
                0.0
            }
        };
        let rr10 = ranking.iter().take(10).position(relevant).map_or(0.0, |at| 1.0 / (at + 1) as f64);
        let mut hits = 0usize;
        let mut precision_sum = 0.0;
        for (at, doc) in ranking.iter().enumerate() {
            if relevant(doc) {
                hits += 1;
                precision_sum += hits as f64 / (at + 1) as f64;
            }
        }
        let share = |count: usize, of: usize| if of == 0 { 0.0 } else { count as f64 / of as f64 };
        let relevant_in = |k: usize| ranking.iter().take(k).filter(|d| relevant(d)).count();
        let top10 = ranking.len().min(10);
        Metrics {
            ndcg10: ndcg(10),
            ndcg100: ndcg(100),
            rr10,
            map: share(1, total_relevant) * precision_sum,
            p10: relevant_in(10) as f64 / 10.0,
            recall100: share(relevant_in(100), total_relevant),
            judged10: share(ranking.iter().take(10).filter(|d| judged.contains_key(*d)).count(), top10),
        }
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "ndcg@10" => self.ndcg10,
            "ndcg@100" => self.ndcg100,
            "mrr@10" => self.rr10,
            "map" => self.map,
            "p@10" => self.p10,
            "recall@100" => self.recall100,
            "judged@10" => self.judged10,
            _ => return None,
        })
    }

    /// The mean of each metric.
    pub fn mean<'a>(all: impl IntoIterator<Item = &'a Metrics>) -> Metrics {
        let mut sum = Metrics::default();
        let mut count = 0usize;
        for m in all {
            count += 1;
            sum.ndcg10 += m.ndcg10;
            sum.ndcg100 += m.ndcg100;
            sum.rr10 += m.rr10;
            sum.map += m.map;
            sum.p10 += m.p10;
            sum.recall100 += m.recall100;
            sum.judged10 += m.judged10;
        }
        if count == 0 {
            return sum;
        }
        let n = count as f64;
        Metrics {
            ndcg10: sum.ndcg10 / n,
            ndcg100: sum.ndcg100 / n,
            rr10: sum.rr10 / n,
            map: sum.map / n,
            p10: sum.p10 / n,
            recall100: sum.recall100 / n,
            judged10: sum.judged10 / n,
        }
    }
}

fn gain(grade: i32) -> f64 {
    grade.max(0) as f64
}

fn discount(at: usize) -> f64 {
    ((at + 2) as f64).log2()
}

/// Orders scored documents as trec_eval does: score descending, then document id descending.
pub fn rank_like_trec_eval(mut scored: Vec<(String, f64)>) -> Vec<String> {
    sort_like_trec_eval(&mut scored);
    scored.into_iter().map(|(doc, _)| doc).collect()
}

/// Sorts scored documents in place in trec_eval's order.
pub fn sort_like_trec_eval(scored: &mut [(String, f64)]) {
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judgments(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
        pairs.iter().map(|(d, g)| (d.to_string(), *g)).collect()
    }

    #[test]
    fn ties_break_by_decreasing_docid() {
        let ranking = rank_like_trec_eval(vec![("a".into(), 1.0), ("c".into(), 1.0), ("b".into(), 2.0)]);
        assert_eq!(ranking, ["b", "c", "a"]);
    }

    #[test]
    fn hand_computed_values() {
        let judged = judgments(&[("a", 6), ("b", 3), ("c", 0), ("d", 4)]);
        let ranking: Vec<String> = ["c", "a", "x", "d"].iter().map(|s| s.to_string()).collect();
        let m = Metrics::compute(&ranking, &judged, 4);
        let dcg = 6.0 / 3f64.log2() + 4.0 / 5f64.log2();
        let idcg = 6.0 + 4.0 / 3f64.log2() + 3.0 / 2.0;
        assert!((m.ndcg10 - dcg / idcg).abs() < 1e-12);
        assert_eq!(m.rr10, 0.5);
        assert!((m.map - (1.0 / 2.0 + 2.0 / 4.0) / 2.0).abs() < 1e-12);
        assert_eq!(m.p10, 0.2);
        assert_eq!(m.recall100, 1.0);
        assert_eq!(m.judged10, 0.75);
        let none = Metrics::compute(&ranking, &judgments(&[("c", 0)]), 4);
        assert_eq!(none, Metrics { judged10: 0.25, ..Metrics::default() });
    }
}
