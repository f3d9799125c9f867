//! Two systems side by side: mean metrics, the queries that gained and lost most, and
//! paired significance tests, as text or as a markdown report to review a ranking change
//! like a code change.
//!
//! ```
//! use shelf::eval::compare::{compare, Options};
//! use shelf::eval::trec::{read_qrels, read_run};
//!
//! let qrels = read_qrels("q1 0 a 2\nq1 0 b 0\nq2 0 c 1\n".as_bytes()).unwrap();
//! let old = read_run("q1 Q0 b 1 2 x\nq1 Q0 a 2 1 x\nq2 Q0 c 1 1 x\n".as_bytes()).unwrap();
//! let new = read_run("q1 Q0 a 1 2 y\nq1 Q0 b 2 1 y\nq2 Q0 c 1 1 y\n".as_bytes()).unwrap();
//! let comparison = compare(&old, &new, &qrels, &Default::default(), &Options::default()).unwrap();
//! assert!(comparison.mean_delta() > 0.0);
//! assert_eq!((comparison.wins, comparison.losses, comparison.ties), (1, 0, 1));
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::metrics::{Metrics, NAMES};
use super::split::Part;
use super::trec::{Qrels, Run};
use super::{evaluate_run, EvalError, DEFAULT_THRESHOLD};
use crate::engine::{Engine, SearchError};
use crate::search::{RankerKind, SearchRequest};

/// Per-query differences at most this large are ties (rounding, not a change).
pub const TIE: f64 = 1e-12;

#[derive(Debug, Clone)]
pub struct Options {
    /// The metric the per-query deltas and tests use.
    pub metric: String,
    pub threshold: i32,
    /// Queries listed among the biggest gains and losses.
    pub top: usize,
    /// Sign flips of the randomization test.
    pub permutations: usize,
    pub names: (String, String),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            metric: "ndcg@10".into(),
            threshold: DEFAULT_THRESHOLD,
            top: 10,
            permutations: 10_000,
            names: ("A".into(), "B".into()),
        }
    }
}

/// One query's metric under both systems.
#[derive(Debug, Clone, Serialize)]
pub struct QueryDelta {
    pub qid: String,
    pub query: String,
    pub a: f64,
    pub b: f64,
    pub delta: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub metric: String,
    pub names: (String, String),
    pub queries: usize,
    /// Of those queries, how many each run has no results for (they score 0 there).
    pub missing_a: usize,
    pub missing_b: usize,
    pub mean_a: Metrics,
    pub mean_b: Metrics,
    /// Queries where B scored higher, lower, the same.
    pub wins: usize,
    pub losses: usize,
    pub ties: usize,
    /// Two-sided paired t-test on the per-query metric.
    pub t_statistic: f64,
    pub t_test_p: f64,
    /// Two-sided paired randomization (sign-flip) test.
    pub randomization_p: f64,
    pub permutations: usize,
    /// Every query, biggest gain of B first.
    pub deltas: Vec<QueryDelta>,
    #[serde(skip)]
    top: usize,
}

/// Compares run `b` against run `a` on the judged queries either run answers; a query one
/// run misses scores 0 there.
pub fn compare(
    a: &Run,
    b: &Run,
    qrels: &Qrels,
    texts: &HashMap<String, String>,
    options: &Options,
) -> Result<Comparison, String> {
    if !NAMES.contains(&options.metric.as_str()) {
        return Err(format!("unknown metric '{}' (metrics: {})", options.metric, NAMES.join(", ")));
    }
    let in_either: Qrels = qrels
        .iter()
        .filter(|(q, _)| a.contains_key(*q) || b.contains_key(*q))
        .map(|(q, j)| (q.clone(), j.clone()))
        .collect();
    if in_either.is_empty() {
        return Err("no judged query appears in either run (do the qids match the qrels?)".into());
    }
    let missing = |run: &Run| in_either.keys().filter(|q| !run.contains_key(*q)).count();
    let (missing_a, missing_b) = (missing(a), missing(b));
    let per_a = evaluate_run(a, &in_either, options.threshold, true);
    let per_b = evaluate_run(b, &in_either, options.threshold, true);
    let value = |m: &Metrics| m.get(&options.metric).unwrap_or(0.0);
    let mut deltas: Vec<QueryDelta> = per_a
        .iter()
        .map(|(qid, ma)| {
            let (va, vb) = (value(ma), per_b.get(qid).map_or(0.0, value));
            QueryDelta {
                qid: qid.clone(),
                query: texts.get(qid).cloned().unwrap_or_default(),
                a: va,
                b: vb,
                delta: vb - va,
            }
        })
        .collect();
    deltas.sort_by(|x, y| y.delta.total_cmp(&x.delta).then_with(|| x.qid.cmp(&y.qid)));
    let differences: Vec<f64> = deltas.iter().map(|d| d.delta).collect();
    let (t_statistic, t_test_p) = paired_t_test(&differences);
    Ok(Comparison {
        metric: options.metric.clone(),
        names: options.names.clone(),
        queries: deltas.len(),
        missing_a,
        missing_b,
        mean_a: Metrics::mean(per_a.values()),
        mean_b: Metrics::mean(per_b.values()),
        wins: differences.iter().filter(|d| **d > TIE).count(),
        losses: differences.iter().filter(|d| **d < -TIE).count(),
        ties: differences.iter().filter(|d| d.abs() <= TIE).count(),
        t_statistic,
        t_test_p,
        randomization_p: randomization_test(&differences, options.permutations),
        permutations: options.permutations,
        deltas,
        top: options.top,
    })
}

/// The compared queries of the reporting part in two groups: those with a relevant product
/// that is also relevant to some query of the tuning part (a model trained there has seen
/// it), and those whose relevant products it has not. Shows whether a gain carries over to
/// what training never showed, or rests on products seen there.
#[derive(Debug, Clone, Serialize)]
pub struct SeenSplit {
    pub seen: Group,
    pub unseen: Group,
    /// Compared queries left out: of the tuning part, or without a relevant product.
    pub left_out: usize,
}

/// Queries of one group and their mean delta.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub queries: usize,
    pub mean_delta: f64,
}

/// Splits `comparison`'s reporting-part queries by whether a product relevant to them (grade
/// at least `threshold`) is relevant to a tuning-part query. `texts` must name every judged
/// query, both parts, since the parts come from the query text.
pub fn by_seen_products(
    comparison: &Comparison,
    qrels: &Qrels,
    texts: &HashMap<String, String>,
    threshold: i32,
) -> Result<SeenSplit, String> {
    let part_of = |qid: &str| texts.get(qid).map(|text| Part::of(text));
    let unnamed = qrels.keys().filter(|qid| part_of(qid).is_none()).count();
    if unnamed > 0 {
        return Err(format!(
            "{unnamed} judged queries have no text in --queries: the parts come from the text, so every query needs one"
        ));
    }
    let relevant = |qid: &str| -> Vec<&str> {
        let grades = qrels.get(qid).into_iter().flatten();
        grades.filter(|(_, g)| **g >= threshold).map(|(id, _)| id.as_str()).collect()
    };
    let seen: HashSet<&str> =
        qrels.keys().filter(|qid| part_of(qid) == Some(Part::Tune)).flat_map(|qid| relevant(qid)).collect();
    let (mut with, mut without, mut left_out) = (Vec::new(), Vec::new(), 0);
    for delta in &comparison.deltas {
        let relevant = relevant(&delta.qid);
        if part_of(&delta.qid) != Some(Part::Report) || relevant.is_empty() {
            left_out += 1;
        } else if relevant.iter().any(|id| seen.contains(id)) {
            with.push(delta.delta);
        } else {
            without.push(delta.delta);
        }
    }
    if with.is_empty() && without.is_empty() {
        return Err("no compared query of the reporting part has a relevant product".into());
    }
    let group = |deltas: &[f64]| Group {
        queries: deltas.len(),
        mean_delta: if deltas.is_empty() { 0.0 } else { deltas.iter().sum::<f64>() / deltas.len() as f64 },
    };
    Ok(SeenSplit { seen: group(&with), unseen: group(&without), left_out })
}

impl SeenSplit {
    pub fn text(&self, metric: &str) -> String {
        format!(
            "\nreporting-part queries by what the tuning part saw ({metric}, mean B - A):\n  \
             {:>5} with a relevant product also relevant to a tuning query: {:+.4}\n  \
             {:>5} whose relevant products no tuning query has:          {:+.4}\n  \
             ({} compared queries left out: tuning part, or no relevant product)\n",
            self.seen.queries, self.seen.mean_delta, self.unseen.queries, self.unseen.mean_delta, self.left_out
        )
    }
}

/// Two-sided paired t-test: (t, p) for the mean of the differences being 0.
pub fn paired_t_test(differences: &[f64]) -> (f64, f64) {
    let n = differences.len() as f64;
    if differences.len() < 2 {
        return (0.0, 1.0);
    }
    let mean = differences.iter().sum::<f64>() / n;
    let variance = differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0);
    if variance == 0.0 {
        return if mean == 0.0 { (0.0, 1.0) } else { (f64::INFINITY.copysign(mean), 0.0) };
    }
    let t = mean / (variance / n).sqrt();
    let p = match StudentsT::new(0.0, 1.0, n - 1.0) {
        Ok(dist) => 2.0 * (1.0 - dist.cdf(t.abs())),
        Err(_) => 1.0,
    };
    (t, p.clamp(0.0, 1.0))
}

/// Two-sided paired randomization test: flip the sign of each difference at random and count
/// how often the mean is at least as far from 0 as observed. Seeded, so reports repeat.
pub fn randomization_test(differences: &[f64], permutations: usize) -> f64 {
    if differences.is_empty() || permutations == 0 {
        return 1.0;
    }
    let observed = differences.iter().sum::<f64>().abs();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5E1F);
    let mut extreme = 0usize;
    for _ in 0..permutations {
        let sum: f64 = differences.iter().map(|d| if rng.random_bool(0.5) { *d } else { -*d }).sum();
        if sum.abs() >= observed - 1e-12 {
            extreme += 1;
        }
    }
    (extreme + 1) as f64 / (permutations + 1) as f64
}

impl Comparison {
    pub fn mean_delta(&self) -> f64 {
        self.mean_b.get(&self.metric).unwrap_or(0.0) - self.mean_a.get(&self.metric).unwrap_or(0.0)
    }

    fn gains(&self) -> impl Iterator<Item = &QueryDelta> {
        self.deltas.iter().filter(|d| d.delta > 0.0).take(self.top)
    }

    fn losses_list(&self) -> impl Iterator<Item = &QueryDelta> {
        self.deltas.iter().rev().filter(|d| d.delta < 0.0).take(self.top)
    }

    fn metric_rows(&self) -> Vec<(&'static str, f64, f64)> {
        NAMES.iter().map(|n| (*n, self.mean_a.get(n).unwrap_or(0.0), self.mean_b.get(n).unwrap_or(0.0))).collect()
    }

    /// Says when the runs do not answer the same queries: a query a run misses scores 0
    /// there, which is usually two runs of different query sets rather than a ranking change.
    fn missing_note(&self) -> Option<String> {
        let (a, b) = &self.names;
        let mut parts = Vec::new();
        for (name, missing) in [(a, self.missing_a), (b, self.missing_b)] {
            if missing > 0 {
                parts.push(format!("{name} has no results for {missing} of them"));
            }
        }
        (!parts.is_empty()).then(|| format!("{}; they score 0 there", parts.join(", ")))
    }

    /// A plain-text report for the terminal.
    pub fn text(&self) -> String {
        let (a, b) = &self.names;
        let mut out = String::new();
        let _ = writeln!(out, "{} judged queries; A = {a}, B = {b}", self.queries);
        if let Some(note) = self.missing_note() {
            let _ = writeln!(out, "warning: {note}");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<12} {:>8} {:>8} {:>9}", "metric", "A", "B", "B - A");
        for (name, va, vb) in self.metric_rows() {
            let _ = writeln!(out, "{name:<12} {va:>8.4} {vb:>8.4} {:>+9.4}", vb - va);
        }
        let _ = writeln!(
            out,
            "\n{}: B better on {}, worse on {}, same on {} queries",
            self.metric, self.wins, self.losses, self.ties
        );
        let _ = writeln!(
            out,
            "paired t-test: t = {:.3}, p {}; randomization test ({} sign flips): p {}",
            self.t_statistic,
            p_phrase(self.t_test_p),
            self.permutations,
            p_phrase(self.randomization_p)
        );
        for (title, rows) in
            [("gained most", self.gains().collect::<Vec<_>>()), ("lost most", self.losses_list().collect())]
        {
            let _ = writeln!(out, "\n{title} ({}):", self.metric);
            for d in rows {
                let _ = writeln!(out, "  {:>+7.4}  {:.4} -> {:.4}  {:<10} {}", d.delta, d.a, d.b, d.qid, d.query);
            }
        }
        out
    }

    /// A markdown report, for a pull request.
    pub fn markdown(&self) -> String {
        let (a, b) = &self.names;
        let mut out = String::new();
        let _ = writeln!(out, "## Ranking comparison: `{a}` → `{b}`\n");
        let _ = writeln!(out, "{} judged queries.\n", self.queries);
        if let Some(note) = self.missing_note() {
            let _ = writeln!(out, "**Warning:** {note}\n");
        }
        let _ = writeln!(out, "| metric | {a} | {b} | Δ |\n| --- | ---: | ---: | ---: |");
        for (name, va, vb) in self.metric_rows() {
            let _ = writeln!(out, "| {name} | {va:.4} | {vb:.4} | {:+.4} |", vb - va);
        }
        let _ = writeln!(
            out,
            "\n**{}**: better on {}, worse on {}, unchanged on {} queries. Paired t-test t = {:.3}, p {}; \
             paired randomization test ({} sign flips) p {}.\n",
            self.metric,
            self.wins,
            self.losses,
            self.ties,
            self.t_statistic,
            p_phrase(self.t_test_p),
            self.permutations,
            p_phrase(self.randomization_p)
        );
        for (title, rows) in
            [("Gained most", self.gains().collect::<Vec<_>>()), ("Lost most", self.losses_list().collect())]
        {
            let _ = writeln!(out, "### {title}\n\n| qid | query | {a} | {b} | Δ |\n| --- | --- | ---: | ---: | ---: |");
            for d in rows {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.4} | {:.4} | {:+.4} |",
                    d.qid,
                    d.query.replace('|', "\\|"),
                    d.a,
                    d.b,
                    d.delta
                );
            }
            out.push('\n');
        }
        out
    }
}

/// A p-value as reports print it; below f64 precision it is written as a bound.
fn p_phrase(p: f64) -> String {
    if p < 1e-16 {
        "< 1e-16".to_string()
    } else {
        format!("= {p:.2e}")
    }
}

/// What a shopper sees from `a` and from `b` (the first page of `k`, as served: the final
/// model, no held-out folds) on every judged query, compared. The workbench steps through its
/// biggest differences; the scores are the served ranks, so the order compared is exactly
/// the order shown.
pub fn served(
    engine: &Engine,
    queries: &[(String, String)],
    qrels: &Qrels,
    (a, b): (RankerKind, RankerKind),
    k: usize,
) -> Result<Comparison, EvalError> {
    let judged: Vec<&(String, String)> =
        queries.iter().filter(|(qid, text)| qrels.contains_key(qid) && !crate::lexical::text::is_blank(text)).collect();
    if judged.is_empty() {
        return Err(EvalError::NothingJudged);
    }
    for ranker in [a, b] {
        engine.check_ranker(ranker)?;
    }
    if a.uses_vectors() || b.uses_vectors() {
        let texts: Vec<&str> = judged.iter().map(|(_, text)| text.as_str()).collect();
        engine.embed_queries(&texts, &|_| {})?;
    }
    let page = |ranker: RankerKind, text: &str| -> Result<Vec<(String, f64)>, SearchError> {
        let request = SearchRequest { ranker, ..SearchRequest::new(text).with_k(k) };
        let results = engine.search(&request)?.results;
        Ok(results.into_iter().map(|hit| (hit.id, -(hit.rank as f64))).collect())
    };
    let pages = judged
        .par_iter()
        .map(|(qid, text)| Ok(((qid.clone(), page(a, text)?), (qid.clone(), page(b, text)?))))
        .collect::<Result<Vec<_>, SearchError>>()?;
    let (run_a, run_b): (Run, Run) = pages.into_iter().unzip();
    let options = Options { names: (a.to_string(), b.to_string()), ..Options::default() };
    compare(&run_a, &run_b, qrels, &texts(queries), &options)
        .map_err(|e| EvalError::Search(SearchError::InvalidRequest(e)))
}

/// Query texts by qid, for reports.
pub fn texts(queries: &[(String, String)]) -> HashMap<String, String> {
    queries.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_test_matches_a_hand_computed_value() {
        // Differences 1, 2, 3: mean 2, sd 1, t = 2 / (1/sqrt(3)) = 3.4641, df = 2, p = 0.0742.
        let (t, p) = paired_t_test(&[1.0, 2.0, 3.0]);
        assert!((t - 3.464_101_6).abs() < 1e-6);
        assert!((p - 0.074_180).abs() < 1e-5, "{p}");
        assert_eq!(paired_t_test(&[0.0, 0.0]), (0.0, 1.0));
    }

    #[test]
    fn randomization_separates_consistent_from_noisy_changes() {
        let consistent: Vec<f64> = (0..40).map(|i| 0.05 + (i % 3) as f64 * 0.01).collect();
        assert!(randomization_test(&consistent, 2000) < 0.001);
        let noisy: Vec<f64> = (0..40).map(|i| if i % 2 == 0 { 0.1 } else { -0.1 }).collect();
        assert!(randomization_test(&noisy, 2000) > 0.5);
    }

    #[test]
    fn a_gain_is_split_by_what_the_tuning_part_saw() {
        // Query texts of each part (the parts come from a hash of the text).
        let texts_of = |part: Part| (0..).map(|i| format!("query {i}")).filter(move |t| Part::of(t) == part);
        let tune = texts_of(Part::Tune).next().unwrap();
        let report: Vec<String> = texts_of(Part::Report).take(3).collect();
        let judged = |pairs: &[(&str, i32)]| pairs.iter().map(|(id, g)| (id.to_string(), *g)).collect();
        let qrels: Qrels = [
            ("t1", judged(&[("shared", 5), ("other", 0)])),
            ("r1", judged(&[("shared", 4)])), // a product the tuning part judged relevant
            ("r2", judged(&[("fresh", 6)])),  // a product it never saw
            ("r3", judged(&[("meh", 1)])),    // nothing relevant: left out
        ]
        .into_iter()
        .map(|(q, j)| (q.to_string(), j))
        .collect();
        let mut texts: HashMap<String, String> =
            [("t1", &tune), ("r1", &report[0]), ("r2", &report[1]), ("r3", &report[2])]
                .into_iter()
                .map(|(q, t)| (q.to_string(), t.clone()))
                .collect();
        let run = |lists: &[(&str, &str)]| -> Run {
            lists.iter().map(|(q, d)| (q.to_string(), vec![(d.to_string(), 1.0)])).collect()
        };
        let a = run(&[("t1", "other"), ("r1", "x"), ("r2", "fresh"), ("r3", "meh")]);
        let b = run(&[("t1", "shared"), ("r1", "shared"), ("r2", "x"), ("r3", "meh")]);
        let comparison = compare(&a, &b, &qrels, &texts, &Options::default()).unwrap();
        let split = by_seen_products(&comparison, &qrels, &texts, 4).unwrap();
        assert_eq!((split.seen.queries, split.unseen.queries, split.left_out), (1, 1, 2));
        assert!((split.seen.mean_delta - 1.0).abs() < 1e-9, "{split:?}");
        assert!((split.unseen.mean_delta + 1.0).abs() < 1e-9, "{split:?}");
        assert!(split.text("ndcg@10").contains("+1.0000"));

        texts.remove("t1");
        let error = by_seen_products(&comparison, &qrels, &texts, 4).unwrap_err();
        assert!(error.contains("1 judged queries have no text"), "{error}");
    }

    #[test]
    fn queries_one_run_misses_are_counted_and_said() {
        let qrels: Qrels = [("q1", "d1"), ("q2", "d2"), ("q3", "d3")]
            .into_iter()
            .map(|(q, d)| (q.to_string(), [(d.to_string(), 2)].into_iter().collect()))
            .collect();
        let run = |queries: &[&str]| -> Run {
            queries.iter().map(|q| (q.to_string(), vec![(format!("d{}", &q[1..]), 1.0)])).collect()
        };
        let options = Options { names: ("full".into(), "part".into()), ..Default::default() };
        let both = compare(&run(&["q1", "q2", "q3"]), &run(&["q1"]), &qrels, &HashMap::new(), &options).unwrap();
        assert_eq!((both.queries, both.missing_a, both.missing_b), (3, 0, 2));
        assert!(both.text().contains("warning: part has no results for 2 of them; they score 0 there"));
        assert!(both.markdown().contains("**Warning:** part has no results for 2 of them"));
        let same = compare(&run(&["q1", "q2"]), &run(&["q1", "q2"]), &qrels, &HashMap::new(), &options).unwrap();
        assert_eq!((same.missing_a, same.missing_b), (0, 0));
        assert!(!same.text().contains("warning"));
    }

    #[test]
    fn unknown_metric_is_refused() {
        let error = compare(
            &Run::new(),
            &Run::new(),
            &Qrels::new(),
            &HashMap::new(),
            &Options { metric: "ndcg@7".into(), ..Default::default() },
        );
        assert!(error.unwrap_err().contains("unknown metric"));
    }
}
