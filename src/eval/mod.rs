//! Relevance evaluation: every ranking change is a number, not an opinion.
//!
//! Judged query sets are TREC files ([`trec`]): queries `qid<TAB>query`, qrels
//! `qid 0 docid grade`, runs `qid Q0 docid rank score tag`. [`metrics`] computes what
//! trec_eval computes. Two protocols turn an engine into a run:
//!
//! - [`Protocol::Rerank`]: each query orders only its own judged products (the KDD Cup ESCI
//!   task 1 protocol): a pure test of ordering, blind to recall.
//! - [`Protocol::Retrieve`]: each query searches the whole catalogue, top 100; unjudged
//!   products count as gain 0, so read it with `judged@10` beside it.
//!
//! [`compare`] sets two runs side by side with per-query deltas and paired significance tests.
//!
//! ```no_run
//! use shelf::engine::Engine;
//! use shelf::eval::{evaluate, EvalOptions, Protocol};
//! use shelf::eval::trec::{read_qrels, read_queries};
//!
//! let engine = Engine::open("index/demo".as_ref()).unwrap();
//! let queries = read_queries(std::io::BufReader::new(std::fs::File::open("queries/demo.tsv").unwrap())).unwrap();
//! let qrels = read_qrels(std::io::BufReader::new(std::fs::File::open("queries/demo.qrels").unwrap())).unwrap();
//! let report = evaluate(&engine, &queries, &qrels, &EvalOptions::new(Protocol::Retrieve)).unwrap();
//! println!("nDCG@10 {:.4}", report.mean.ndcg10);
//! ```

pub mod compare;
pub mod metrics;
pub mod scoring;
pub mod split;
pub mod sweep;
pub mod trec;

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::engine::{Engine, SearchError};
use crate::search::{RankerKind, SearchRequest};
use metrics::{rank_like_trec_eval, Metrics};
use trec::{Qrels, Run};

/// Grade from which a product counts as relevant for binary metrics (Home Depot: ≥ 4).
pub const DEFAULT_THRESHOLD: i32 = 4;
/// Results per query in the retrieve protocol.
pub const RETRIEVE_DEPTH: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Rerank,
    Retrieve,
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rerank" => Ok(Protocol::Rerank),
            "retrieve" => Ok(Protocol::Retrieve),
            other => Err(format!("unknown protocol '{other}' (rerank or retrieve)")),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Rerank => "rerank",
            Protocol::Retrieve => "retrieve",
        })
    }
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub protocol: Protocol,
    pub ranker: RankerKind,
    pub threshold: i32,
    pub show_progress: bool,
    /// Utility weights overriding the index's (learned rankers, retrieve protocol).
    pub utility: Option<crate::rank::utility::Weights>,
}

impl EvalOptions {
    pub fn new(protocol: Protocol) -> Self {
        EvalOptions {
            protocol,
            ranker: RankerKind::Bm25,
            threshold: DEFAULT_THRESHOLD,
            show_progress: false,
            utility: None,
        }
    }
}

/// One evaluated query.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    pub qid: String,
    pub query: String,
    pub metrics: Metrics,
    /// The ranking the system returned, best first, with scores.
    #[serde(skip)]
    pub ranking: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub protocol: Protocol,
    pub ranker: RankerKind,
    /// Queries evaluated (those with judgments).
    pub queries: usize,
    /// Queries in the query file without any judgment: skipped, as trec_eval does.
    pub skipped_queries: usize,
    pub threshold: i32,
    #[serde(flatten)]
    pub mean: Metrics,
    pub seconds: f64,
    #[serde(skip)]
    pub per_query: Vec<QueryResult>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("no query of the query file has judgments in the qrels (do the qids match?)")]
    NothingJudged,
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// Runs every judged query through `engine` under the protocol and scores the rankings.
pub fn evaluate(
    engine: &Engine,
    queries: &[(String, String)],
    qrels: &Qrels,
    options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    let started = Instant::now();
    let judged: Vec<&(String, String)> = queries.iter().filter(|(qid, _)| qrels.contains_key(qid)).collect();
    if judged.is_empty() {
        return Err(EvalError::NothingJudged);
    }
    if options.ranker.uses_vectors() {
        engine.check_ranker(options.ranker)?;
        let texts: Vec<&str> = judged.iter().map(|(_, text)| text.as_str()).collect();
        let progress = crate::progress::bar(texts.len() as u64, "embedding queries", options.show_progress);
        engine.embed_queries(&texts, &|done| progress.inc(done as u64))?;
        progress.finish_and_clear();
    }
    let progress = crate::progress::bar(judged.len() as u64, "evaluating", options.show_progress);
    let per_query = judged
        .par_iter()
        .map(|(qid, text)| {
            let judgments = &qrels[qid];
            let ranking = rank(engine, text, judgments, options)?;
            let ids: Vec<String> = ranking.iter().map(|(id, _)| id.clone()).collect();
            progress.inc(1);
            Ok(QueryResult {
                qid: qid.clone(),
                query: text.clone(),
                metrics: Metrics::compute(&ids, judgments, options.threshold),
                ranking,
            })
        })
        .collect::<Result<Vec<_>, EvalError>>()?;
    progress.finish_and_clear();
    Ok(EvalReport {
        protocol: options.protocol,
        ranker: options.ranker,
        queries: per_query.len(),
        skipped_queries: queries.len() - judged.len(),
        threshold: options.threshold,
        mean: Metrics::mean(per_query.iter().map(|q| &q.metrics)),
        seconds: started.elapsed().as_secs_f64(),
        per_query,
    })
}

/// How much of the relevant judged products a candidate generator finds.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateRecall {
    pub ranker: RankerKind,
    /// How deep each source looked.
    pub depth: usize,
    /// Queries with at least one relevant product.
    pub queries: usize,
    /// Mean share of each query's relevant products among its candidates.
    pub recall: f64,
    /// Mean number of candidates per query.
    pub candidates: f64,
}

/// Candidate recall at `depth`: the ceiling of any reranker put after `ranker`'s candidate
/// generation (for hybrid, the union of both sources' top `depth`).
pub fn candidate_recall(
    engine: &Engine,
    queries: &[(String, String)],
    qrels: &Qrels,
    options: &EvalOptions,
    depth: usize,
) -> Result<CandidateRecall, EvalError> {
    let relevant = |qid: &str| -> Vec<&String> {
        qrels
            .get(qid)
            .map_or_else(Vec::new, |j| j.iter().filter(|(_, g)| **g >= options.threshold).map(|(id, _)| id).collect())
    };
    let judged: Vec<&(String, String)> = queries.iter().filter(|(qid, _)| !relevant(qid).is_empty()).collect();
    if judged.is_empty() {
        return Err(EvalError::NothingJudged);
    }
    if options.ranker.uses_vectors() {
        let texts: Vec<&str> = judged.iter().map(|(_, text)| text.as_str()).collect();
        engine.embed_queries(&texts, &|_| {})?;
    }
    let progress = crate::progress::bar(judged.len() as u64, "candidates", options.show_progress);
    let per_query = judged
        .par_iter()
        .map(|(qid, text)| {
            let found: std::collections::HashSet<String> =
                engine.candidate_ids(text, options.ranker, depth)?.into_iter().collect();
            let wanted = relevant(qid);
            let hits = wanted.iter().filter(|id| found.contains(id.as_str())).count();
            progress.inc(1);
            Ok((hits as f64 / wanted.len() as f64, found.len()))
        })
        .collect::<Result<Vec<_>, EvalError>>()?;
    progress.finish_and_clear();
    let n = per_query.len() as f64;
    Ok(CandidateRecall {
        ranker: options.ranker,
        depth,
        queries: per_query.len(),
        recall: per_query.iter().map(|q| q.0).sum::<f64>() / n,
        candidates: per_query.iter().map(|q| q.1 as f64).sum::<f64>() / n,
    })
}

/// One query's ranking under the protocol, best first, tie-ordered as trec_eval would.
fn rank(
    engine: &Engine,
    text: &str,
    judgments: &std::collections::BTreeMap<String, i32>,
    options: &EvalOptions,
) -> Result<Vec<(String, f64)>, SearchError> {
    let mut ranking: Vec<(String, f64)> = match options.protocol {
        Protocol::Retrieve => {
            if crate::lexical::text::is_blank(text) {
                return Ok(Vec::new());
            }
            let mut request = SearchRequest::new(text).with_k(RETRIEVE_DEPTH);
            request.ranker = options.ranker;
            request.scoring = crate::rank::Scoring::HeldOut;
            request.utility = options.utility.clone();
            engine.search(&request)?.results.into_iter().map(|hit| (hit.id, hit.score as f64)).collect()
        }
        Protocol::Rerank => {
            let ids: Vec<String> = judgments.keys().cloned().collect();
            let scored = scoring::score_products(engine, text, options.ranker, &ids)?;
            let mut ranking: Vec<(String, f64)> = scored.into_iter().map(|(id, s)| (id, s as f64)).collect();
            // Judged products the ranker did not match still belong to the ranking, last.
            let floor = ranking.iter().map(|r| r.1).fold(0.0f64, f64::min) - 1.0;
            for id in ids {
                if !ranking.iter().any(|(seen, _)| *seen == id) {
                    ranking.push((id, floor));
                }
            }
            ranking
        }
    };
    metrics::sort_like_trec_eval(&mut ranking);
    Ok(ranking)
}

/// Per-query metrics of a run against qrels, for the queries judged in `qrels`. A judged
/// query missing from the run scores 0 when `complete` (trec_eval `-c`) and is left out
/// otherwise (trec_eval's default).
pub fn evaluate_run(
    run: &Run,
    qrels: &Qrels,
    threshold: i32,
    complete: bool,
) -> std::collections::BTreeMap<String, Metrics> {
    qrels
        .iter()
        .filter_map(|(qid, judged)| match run.get(qid) {
            Some(scored) => {
                Some((qid.clone(), Metrics::compute(&rank_like_trec_eval(scored.clone()), judged, threshold)))
            }
            None if complete => Some((qid.clone(), Metrics::compute(&[], judged, threshold))),
            None => None,
        })
        .collect()
}

/// The run of an evaluation, for `--run FILE`.
pub fn write_run(out: &mut impl std::io::Write, report: &EvalReport, tag: &str) -> std::io::Result<()> {
    for query in &report.per_query {
        trec::write_run_query(&mut *out, &query.qid, &query.ranking, tag)?;
    }
    Ok(())
}
