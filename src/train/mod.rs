//! Feature logging and training of the learned rankers.
//!
//! Training data comes from the evaluation harness's judged queries: for each query, its
//! hybrid candidates and its judged products, with their [`features`] and grades
//! ([`log_features`]). Candidates nobody judged are the open question of learning to rank
//! from sparse judgments: labelled 0 they teach the model "was this product judged" rather
//! than "is it relevant"; dropped, the model never sees the products retrieval proposes that
//! nobody judged. [`Unjudged`] picks, and the README has the measurements.
//!
//! [`train`] fits a ranker with k-fold cross-validation grouped by query text (a query
//! text is in exactly one fold), early stopping on a validation share of each fold's
//! training queries, then a final model on every query, and writes a model directory
//! ([`crate::rank`]). The fold loop ([`cross_validate`]) is shared; each ranker brings its
//! fitting: [`lgbm`] (LightGBM lambdarank), [`neural`] (the multi-head network) and
//! [`ensemble`] (both, blended with a weight tuned on held-out scores).
//!
//! ```no_run
//! use shelf::engine::Engine;
//! use shelf::eval::trec::{read_qrels, read_queries};
//! use shelf::train::{log_features, train, LogOptions, TrainOptions};
//!
//! let engine = Engine::open("index/demo".as_ref()).unwrap();
//! let queries = read_queries(std::io::BufReader::new(std::fs::File::open("queries/demo.tsv").unwrap())).unwrap();
//! let qrels = read_qrels(std::io::BufReader::new(std::fs::File::open("queries/demo.qrels").unwrap())).unwrap();
//! let logged = log_features(&engine, &queries, &qrels, &LogOptions::default()).unwrap();
//! let trained = train(&logged, engine.vectors(), &TrainOptions::default(), "models/demo".as_ref()).unwrap();
//! println!("cross-validated nDCG@10 {:.4}", trained.report.cv_ndcg10);
//! ```

pub mod encoder;
pub mod ensemble;
pub mod finetune;
pub mod lgbm;
pub mod neural;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use lightgbm3::Booster;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dense::VectorStore;
use crate::engine::{Engine, SearchError};
use crate::eval::metrics::Metrics;
use crate::eval::trec::Qrels;
use crate::events::labels::{Engagement, Rates};
use crate::features::{self, Row};
use crate::rank::{ModelError, ModelMeta, META_FILE};

pub use lgbm::{LgbmParams, Objective};
pub use neural::NeuralParams;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("no query of the query file has judgments in the qrels (do the qids match?)")]
    NothingJudged,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("LightGBM: {0}")]
    LightGbm(#[from] lightgbm3::Error),
    #[error("neural ranker: {0}")]
    Neural(#[from] candle_core::Error),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("config {path}: {message}")]
    Config { path: String, message: String },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io { path: path.display().to_string(), source }
}

/// What happens to candidates that have no judgment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unjudged {
    /// Left out: the model learns from judged products only.
    Drop,
    /// Labelled grade 0 (not relevant).
    Zero,
}

impl FromStr for Unjudged {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "drop" => Ok(Unjudged::Drop),
            "zero" => Ok(Unjudged::Zero),
            other => Err(format!("unknown treatment of unjudged candidates '{other}' (drop or zero)")),
        }
    }
}

impl std::fmt::Display for Unjudged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unjudged::Drop => "drop",
            Unjudged::Zero => "zero",
        })
    }
}

#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Candidates each source proposes (as the hybrid ranker).
    pub depth: usize,
    pub unjudged: Unjudged,
    /// Under [`Unjudged::Zero`], the candidates logged: the first this many of the hybrid
    /// order (the ones the model will reorder).
    pub negatives: usize,
    pub show_progress: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { depth: 100, unjudged: Unjudged::Zero, negatives: 60, show_progress: false }
    }
}

/// One logged candidate.
#[derive(Debug, Clone)]
pub struct LoggedRow {
    pub id: String,
    /// The grade, 0 for an unjudged candidate kept under [`Unjudged::Zero`].
    pub label: i32,
    pub judged: bool,
    pub features: Row,
    /// What shoppers did with the product for this query, when trained from engagement
    /// ([`with_engagement`]): the neural ranker's engagement heads learn from it.
    pub engagement: Option<Rates>,
}

/// One query's logged candidates.
#[derive(Debug, Clone)]
pub struct LoggedQuery {
    pub qid: String,
    pub query: String,
    /// The query's embedding (the neural ranker reads it with each product's).
    pub query_vector: Arc<[f32]>,
    pub rows: Vec<LoggedRow>,
}

/// Logs the features of every judged query's candidates (hybrid top `depth` per source ∪
/// its judged products), labelled by the qrels.
pub fn log_features(
    engine: &Engine,
    queries: &[(String, String)],
    qrels: &Qrels,
    options: &LogOptions,
) -> Result<Vec<LoggedQuery>, TrainError> {
    let judged: Vec<&(String, String)> =
        queries.iter().filter(|(qid, text)| qrels.contains_key(qid) && !crate::lexical::text::is_blank(text)).collect();
    if judged.is_empty() {
        return Err(TrainError::NothingJudged);
    }
    let texts: Vec<&str> = judged.iter().map(|(_, text)| text.as_str()).collect();
    let progress = crate::progress::bar(texts.len() as u64, "embedding queries", options.show_progress);
    engine.embed_queries(&texts, &|done| progress.inc(done as u64))?;
    progress.finish_and_clear();
    let progress = crate::progress::bar(judged.len() as u64, "logging features", options.show_progress);
    let logged = judged
        .par_iter()
        .map(|(qid, text)| {
            let judgments = &qrels[qid];
            let ids: Vec<String> = judgments.keys().cloned().collect();
            let candidates = engine.candidates_with_features(text, options.depth, &ids)?;
            let fused_rank = features::index_of("fused_rank").unwrap_or(0);
            let rows = candidates
                .into_iter()
                .filter_map(|c| {
                    let grade = judgments.get(&c.id).copied();
                    // Under `zero`, the rows are exactly what the model will reorder when
                    // serving (the head of the hybrid list), judged or not: judged products
                    // that retrieval ranks lower would teach it that a low rank means
                    // "judged, so relevant".
                    let served = c.features[fused_rank] <= options.negatives as f32;
                    let keep = match options.unjudged {
                        Unjudged::Drop => grade.is_some(),
                        Unjudged::Zero => served,
                    };
                    if !keep {
                        return None;
                    }
                    Some(LoggedRow {
                        id: c.id,
                        label: grade.unwrap_or(0),
                        judged: grade.is_some(),
                        features: c.features,
                        engagement: None,
                    })
                })
                .collect();
            progress.inc(1);
            let query_vector = engine.embed_query(text)?;
            Ok(LoggedQuery { qid: qid.clone(), query: text.clone(), query_vector, rows })
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    progress.finish_and_clear();
    Ok(logged)
}

/// Attaches each logged row's engagement rates (by qid and product, as
/// [`crate::events::labels::Labels::engagement`] holds them); rows the log never showed
/// keep none.
pub fn with_engagement(logged: &mut [LoggedQuery], engagement: &Engagement) {
    for query in logged {
        let Some(products) = engagement.get(&query.qid) else { continue };
        for row in &mut query.rows {
            row.engagement = products.get(&row.id).copied();
        }
    }
}

pub(crate) fn number(value: f32) -> String {
    if value.is_nan() {
        "nan".to_string()
    } else {
        format!("{value}")
    }
}

/// Writes the log as LibSVM text with `qid:` (missing values left out), the LightGBM group
/// file `<path>.query`, and `<path>.tsv` with a header of feature names, for analysis.
pub fn write_log(logged: &[LoggedQuery], path: &Path) -> Result<(), TrainError> {
    let group_path = suffixed(path, ".query");
    let tsv_path = suffixed(path, ".tsv");
    let (mut svm, mut groups, mut tsv) = (create(path)?, create(&group_path)?, create(&tsv_path)?);
    writeln!(tsv, "qid\tquery\tproduct\tlabel\tjudged\t{}", features::NAMES.join("\t")).map_err(io(&tsv_path))?;
    for (number_of_query, query) in logged.iter().enumerate() {
        if query.rows.is_empty() {
            continue;
        }
        writeln!(groups, "{}", query.rows.len()).map_err(io(&group_path))?;
        for row in &query.rows {
            let mut line = format!("{} qid:{}", row.label, number_of_query + 1);
            for (at, value) in row.features.iter().enumerate().filter(|(_, v)| !v.is_nan()) {
                let _ = write!(line, " {}:{}", at + 1, value);
            }
            writeln!(svm, "{line}").map_err(io(path))?;
            let values: Vec<String> = row.features.iter().map(|v| number(*v)).collect();
            let query_text = query.query.replace(['\t', '\n'], " ");
            writeln!(
                tsv,
                "{}\t{query_text}\t{}\t{}\t{}\t{}",
                query.qid,
                row.id,
                row.label,
                row.judged,
                values.join("\t")
            )
            .map_err(io(&tsv_path))?;
        }
    }
    for (writer, path) in [(&mut svm, path), (&mut groups, group_path.as_path()), (&mut tsv, tsv_path.as_path())] {
        writer.flush().map_err(io(path))?;
    }
    Ok(())
}

pub(crate) fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, TrainError> {
    Ok(std::io::BufWriter::new(std::fs::File::create(path).map_err(io(path))?))
}

pub(crate) fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Which ranker [`train`] fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrainerKind {
    /// LightGBM lambdarank (`ltr`).
    #[default]
    Lgbm,
    /// The multi-head network (`neural`).
    Neural,
    /// Both, blended (`ensemble`, which also serves `ltr` and `neural`).
    Ensemble,
}

impl FromStr for TrainerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lgbm" | "ltr" => Ok(TrainerKind::Lgbm),
            "neural" => Ok(TrainerKind::Neural),
            "ensemble" => Ok(TrainerKind::Ensemble),
            other => Err(format!("unknown ranker '{other}' to train (lgbm, neural or ensemble)")),
        }
    }
}

impl std::fmt::Display for TrainerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrainerKind::Lgbm => crate::rank::lgbm::KIND,
            TrainerKind::Neural => crate::rank::neural::KIND,
            TrainerKind::Ensemble => crate::rank::ensemble::KIND,
        })
    }
}

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub ranker: TrainerKind,
    pub folds: usize,
    pub seed: u64,
    pub lgbm: LgbmParams,
    pub neural: NeuralParams,
    /// How the log treated unjudged candidates (recorded in `meta.json`).
    pub unjudged: String,
    /// How deep in the hybrid list the model will rerank: the depth unjudged candidates
    /// were logged from.
    pub rerank_depth: usize,
    /// Weight of an unjudged candidate's row against a judged one's (1: equal).
    pub unjudged_weight: f64,
    /// Features the model may not use (ablations, or magnitudes that do not carry over to
    /// other catalogues): they are blanked to missing in training, so the model cannot use
    /// them.
    pub without: Vec<String>,
    /// The encoder identity of the index the rows were logged from (recorded in
    /// `meta.json`; [`train`] fills it in from the vectors it is given).
    pub encoder: Option<crate::dense::EncoderIdentity>,
    /// How that index encodes queries (recorded in `meta.json`: the dense features of 8-bit
    /// query vectors differ a little from float ones).
    pub query_precision: crate::dense::Precision,
    pub show_progress: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            ranker: TrainerKind::Lgbm,
            folds: 5,
            seed: 42,
            lgbm: LgbmParams::default(),
            neural: NeuralParams::default(),
            unjudged: describe_unjudged(&LogOptions::default()),
            rerank_depth: LogOptions::default().negatives,
            unjudged_weight: 1.0,
            without: Vec::new(),
            encoder: None,
            query_precision: crate::dense::Precision::Fp32,
            show_progress: false,
        }
    }
}

/// The parameters a training configuration file can set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    #[serde(default)]
    pub lgbm: LgbmParams,
    #[serde(default)]
    pub neural: NeuralParams,
    /// The encoder's training pairs and the query adapter's (`--ranker encoder`).
    #[serde(default)]
    pub encoder: encoder::AdapterParams,
    /// Full fine-tuning's (`--ranker encoder --method full`).
    #[serde(default)]
    pub finetune: finetune::FinetuneParams,
    /// How engagement becomes labels (`shelf train --events`).
    #[serde(default)]
    pub engagement: crate::events::labels::LabelParams,
}

/// The `[lgbm]`, `[neural]`, `[encoder]` and `[finetune]` tables of a training
/// configuration file (each optional, every key optional).
pub fn read_params(path: &Path) -> Result<TrainParams, TrainError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    toml::from_str(&text).map_err(|e| TrainError::Config { path: path.display().to_string(), message: e.to_string() })
}

/// How a log treated unjudged candidates, in words.
pub fn describe_unjudged(options: &LogOptions) -> String {
    match options.unjudged {
        Unjudged::Drop => "dropped".to_string(),
        Unjudged::Zero => format!("the first {} hybrid candidates, unjudged as grade 0", options.negatives),
    }
}

/// A trained model: what training measured, and for LightGBM the final booster as trained
/// (the model directory holds the same booster, saved).
pub struct Trained {
    pub report: TrainReport,
    pub booster: Option<Booster>,
}

/// What training measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TrainReport {
    pub ranker: String,
    pub queries: usize,
    pub rows: usize,
    /// Mean nDCG@10 of the logged candidates of each query, ordered by the fold model that
    /// never saw the query.
    pub cv_ndcg10: f64,
    /// The same ordering by the hybrid ranker's fused rank, for comparison.
    pub cv_ndcg10_hybrid: f64,
    pub fold_rounds: Vec<usize>,
    /// Boosting rounds (LightGBM) or epochs (neural) of the final model.
    pub rounds: usize,
    /// Gain-based importance of each feature (LightGBM), largest first.
    pub importance: Vec<(String, f64)>,
    /// The neural ranker's heads, and why any is off.
    pub heads: Vec<crate::rank::neural::HeadInfo>,
    /// An ensemble's members' reports.
    pub members: Vec<TrainReport>,
    /// An ensemble's tuned weight of LightGBM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lgbm_weight: Option<f64>,
    pub seconds: f64,
}

/// The logged queries a model trains on, with their folds.
pub(crate) struct Prepared<'a> {
    pub queries: Vec<&'a LoggedQuery>,
    /// The fold each query text is held out in.
    pub fold_of: BTreeMap<String, usize>,
    pub folds: usize,
}

impl Prepared<'_> {
    pub fn rows(&self) -> usize {
        self.queries.iter().map(|q| q.rows.len()).sum()
    }
}

/// Trains the ranker `options.ranker` with cross-validation and writes the model directory
/// `out`. `vectors` are the index's product vectors (the neural ranker reads them).
pub fn train(
    logged: &[LoggedQuery],
    vectors: Option<&VectorStore>,
    options: &TrainOptions,
    out: &Path,
) -> Result<Trained, TrainError> {
    let options = &TrainOptions { encoder: vectors.map(|v| v.identity.clone()), ..options.clone() };
    write_model_dir(out, |staging| train_blanked(logged, vectors, options, staging))
}

/// Fails unless `out` is absent, empty or a model directory (one with `meta.json`): what
/// training may replace.
pub(crate) fn check_replaceable(out: &Path) -> Result<(), TrainError> {
    if out.exists() && !out.is_dir() {
        return Err(TrainError::Invalid(format!(
            "refusing to replace {}: it is a file, not a model directory; choose another --out",
            out.display()
        )));
    }
    if out.exists() && !out.join(META_FILE).exists() && std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(TrainError::Invalid(format!(
            "refusing to replace {}: it exists and is not a model directory; choose another --out",
            out.display()
        )));
    }
    Ok(())
}

/// Writes a model directory: `write` fills a staging directory beside `out`, which replaces
/// `out` only when complete, so a failed training never leaves a half-written or mixed
/// model behind. A directory that exists and is not a model (no `meta.json`) is never
/// replaced.
pub(crate) fn write_model_dir<T>(
    out: &Path,
    write: impl FnOnce(&Path) -> Result<T, TrainError>,
) -> Result<T, TrainError> {
    check_replaceable(out)?;
    let name = out.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    let staging = out.with_file_name(format!(".{name}.training"));
    let _ = std::fs::remove_dir_all(&staging);
    let result = write(&staging);
    if result.is_ok() {
        let old = out.with_file_name(format!(".{name}.old"));
        let _ = std::fs::remove_dir_all(&old);
        if out.exists() {
            std::fs::rename(out, &old).map_err(io(out))?;
        }
        std::fs::rename(&staging, out).map_err(io(out))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// Blanks the features the model may not use, then trains.
fn train_blanked(
    logged: &[LoggedQuery],
    vectors: Option<&VectorStore>,
    options: &TrainOptions,
    out: &Path,
) -> Result<Trained, TrainError> {
    let mut blank = Vec::new();
    for name in options.without.iter().filter(|name| !name.trim().is_empty()) {
        blank.push(features::index_of(name).ok_or_else(|| {
            TrainError::Invalid(format!("unknown feature '{name}' (features: {})", features::NAMES.join(", ")))
        })?);
    }
    let masked: Vec<LoggedQuery>;
    let logged = if blank.is_empty() {
        logged
    } else {
        masked = logged
            .iter()
            .map(|q| {
                let mut q = q.clone();
                for row in &mut q.rows {
                    blank.iter().for_each(|&at| row.features[at] = f32::NAN);
                }
                q
            })
            .collect();
        &masked
    };
    let data = prepare(logged, options)?;
    std::fs::create_dir_all(out).map_err(io(out))?;
    match options.ranker {
        TrainerKind::Lgbm => lgbm::train(&data, options, out).map(|(trained, _)| trained),
        TrainerKind::Neural => neural::train(&data, vectors, options, out).map(|(trained, _)| trained),
        TrainerKind::Ensemble => ensemble::train(&data, vectors, options, out),
    }
}

/// The queries with logged candidates, each query text assigned to one fold.
fn prepare<'a>(logged: &'a [LoggedQuery], options: &TrainOptions) -> Result<Prepared<'a>, TrainError> {
    let queries: Vec<&LoggedQuery> = logged.iter().filter(|q| !q.rows.is_empty()).collect();
    if options.folds < 2 {
        return Err(TrainError::Invalid("--folds must be at least 2".into()));
    }
    if queries.len() < options.folds * 2 {
        return Err(TrainError::Invalid(format!(
            "{} queries with logged candidates are too few for {} folds",
            queries.len(),
            options.folds
        )));
    }
    // A query text belongs to exactly one fold, so no fold model has seen a test query.
    let mut texts: Vec<&str> = queries.iter().map(|q| q.query.as_str()).collect();
    texts.sort_unstable();
    texts.dedup();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(options.seed);
    texts.shuffle(&mut rng);
    let fold_of = texts.iter().enumerate().map(|(at, text)| (text.to_string(), at % options.folds)).collect();
    Ok(Prepared { queries, fold_of, folds: options.folds })
}

/// What a ranker's trainer brings to [`cross_validate`].
pub(crate) trait FoldTrainer {
    type Model;
    /// Fits on the queries `fit`: early-stopping on `valid` when given (up to
    /// `rounds`), else exactly `rounds` rounds or epochs.
    fn fit(&self, fit: &[usize], valid: Option<&[usize]>, rounds: usize) -> Result<Self::Model, TrainError>;
    /// The rounds (or epochs) a fitted model kept.
    fn rounds(&self, model: &Self::Model) -> usize;
    fn max_rounds(&self) -> usize;
    /// Scores the logged rows of one query.
    fn score(&self, model: &Self::Model, query: usize) -> Result<Vec<f64>, TrainError>;
    /// Writes the final model (`fold` None) or a fold's into `dir`.
    fn save(&self, model: &Self::Model, dir: &Path, fold: Option<usize>) -> Result<(), TrainError>;
    /// The parameters `meta.json` records.
    fn parameters(&self, rounds: usize) -> serde_json::Value;
}

/// The result of [`cross_validate`].
pub(crate) struct CrossValidated<M> {
    pub model: M,
    pub fold_rounds: Vec<usize>,
    pub rounds: usize,
    /// Every logged row's score by the fold model that never saw its query.
    pub held_out: Vec<Vec<f64>>,
}

/// k-fold cross-validation: a model per fold (early-stopped on a validation share of the
/// fold's training queries), each query scored by the fold model that held it out, then a
/// final model on every query with the folds' mean rounds. Writes every model into `out`.
pub(crate) fn cross_validate<T: FoldTrainer>(
    trainer: &T,
    data: &Prepared,
    options: &TrainOptions,
    validation_share: f64,
    out: &Path,
) -> Result<CrossValidated<T::Model>, TrainError> {
    let label = format!("training {} folds", options.ranker);
    let progress = crate::progress::bar(data.folds as u64 + 1, label, options.show_progress);
    let fold = |q: usize| data.fold_of[&data.queries[q].query];
    let mut fold_rounds = Vec::new();
    let mut held_out: Vec<Vec<f64>> = vec![Vec::new(); data.queries.len()];
    for k in 0..data.folds {
        let test: Vec<usize> = (0..data.queries.len()).filter(|&q| fold(q) == k).collect();
        let rest: Vec<usize> = (0..data.queries.len()).filter(|&q| fold(q) != k).collect();
        let every = (1.0 / validation_share.clamp(0.01, 0.5)).round() as usize;
        let (valid, fit): (Vec<usize>, Vec<usize>) = rest.iter().partition(|&&q| q % every == 0);
        let model = trainer.fit(&fit, Some(&valid), trainer.max_rounds())?;
        fold_rounds.push(trainer.rounds(&model));
        trainer.save(&model, out, Some(k))?;
        for &q in &test {
            held_out[q] = trainer.score(&model, q)?;
        }
        progress.inc(1);
    }
    let rounds = (fold_rounds.iter().sum::<usize>() as f64 / fold_rounds.len() as f64).round().max(1.0) as usize;
    let everything: Vec<usize> = (0..data.queries.len()).collect();
    let model = trainer.fit(&everything, None, rounds)?;
    trainer.save(&model, out, None)?;
    progress.finish_and_clear();
    Ok(CrossValidated { model, fold_rounds, rounds, held_out })
}

/// Mean nDCG@10 over the queries `which` of the candidates the model reorders when serving
/// (the head of the hybrid list, `depth` deep), ordered by `score(query, row)`.
pub(crate) fn candidates_ndcg(
    data: &Prepared,
    which: &[usize],
    depth: usize,
    score: &dyn Fn(usize, usize) -> f64,
) -> f64 {
    if which.is_empty() {
        return 0.0;
    }
    let fused_rank = features::index_of("fused_rank").unwrap_or(0);
    let total: f64 = which
        .iter()
        .map(|&q| {
            let rows = &data.queries[q].rows;
            let mut ranking: Vec<(String, f64)> = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| r.features[fused_rank] <= depth as f32)
                .map(|(at, r)| (r.id.clone(), score(q, at)))
                .collect();
            crate::eval::metrics::sort_like_trec_eval(&mut ranking);
            let ids: Vec<String> = ranking.into_iter().map(|(id, _)| id).collect();
            let judgments: BTreeMap<String, i32> =
                rows.iter().filter(|r| r.judged).map(|r| (r.id.clone(), r.label)).collect();
            Metrics::compute(&ids, &judgments, crate::eval::DEFAULT_THRESHOLD).ndcg10
        })
        .sum();
    total / which.len() as f64
}

/// The hybrid order's nDCG@10 over the same candidates, the baseline a ranker must beat.
pub(crate) fn hybrid_ndcg(data: &Prepared, which: &[usize], depth: usize) -> f64 {
    let fused_rank = features::index_of("fused_rank").unwrap_or(0);
    candidates_ndcg(data, which, depth, &|q, at| {
        let rank = data.queries[q].rows[at].features[fused_rank];
        if rank.is_nan() {
            -1e9 - at as f64
        } else {
            -(rank as f64)
        }
    })
}

/// The report and `meta.json` every ranker writes after [`cross_validate`].
pub(crate) fn finish<M>(
    kind: &str,
    data: &Prepared,
    options: &TrainOptions,
    validated: &CrossValidated<M>,
    parameters: serde_json::Value,
    started: Instant,
    out: &Path,
) -> Result<TrainReport, TrainError> {
    let all: Vec<usize> = (0..data.queries.len()).collect();
    let cv_ndcg10 = candidates_ndcg(data, &all, options.rerank_depth, &|q, at| {
        validated.held_out[q].get(at).copied().unwrap_or(f64::MIN)
    });
    let cv_ndcg10_hybrid = hybrid_ndcg(data, &all, options.rerank_depth);
    let report = TrainReport {
        ranker: kind.to_string(),
        queries: data.queries.len(),
        rows: data.rows(),
        cv_ndcg10,
        cv_ndcg10_hybrid,
        fold_rounds: validated.fold_rounds.clone(),
        rounds: validated.rounds,
        seconds: started.elapsed().as_secs_f64(),
        ..TrainReport::default()
    };
    let cv = BTreeMap::from([
        ("ndcg@10_candidates".to_string(), cv_ndcg10),
        ("ndcg@10_candidates_hybrid".to_string(), cv_ndcg10_hybrid),
    ]);
    meta(kind, data, options, validated.rounds, parameters, cv, report.seconds).write(out)?;
    Ok(report)
}

/// A model directory's `meta.json`.
pub(crate) fn meta(
    kind: &str,
    data: &Prepared,
    options: &TrainOptions,
    rounds: usize,
    parameters: serde_json::Value,
    cv: BTreeMap<String, f64>,
    seconds: f64,
) -> ModelMeta {
    ModelMeta {
        ranker: kind.to_string(),
        feature_schema_version: features::SCHEMA_VERSION,
        feature_names: features::NAMES.iter().map(|n| n.to_string()).collect(),
        data_fingerprint: fingerprint(&data.queries),
        parameters,
        cv,
        trained_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        train_seconds: seconds,
        folds: data.fold_of.clone(),
        rounds,
        unjudged: options.unjudged.clone(),
        rerank_depth: options.rerank_depth,
        without: options.without.clone(),
        encoder: options.encoder.clone(),
        query_precision: options.query_precision,
    }
}

/// sha256 over the training rows, to tell which data a model was trained on.
fn fingerprint(logged: &[&LoggedQuery]) -> String {
    let mut hasher = Sha256::new();
    for query in logged {
        hasher.update(query.qid.as_bytes());
        for row in &query.rows {
            hasher.update(row.id.as_bytes());
            hasher.update(row.label.to_le_bytes());
            for value in row.features {
                hasher.update(value.to_le_bytes());
            }
        }
    }
    format!("{:x}", hasher.finalize())
}
