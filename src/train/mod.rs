//! Feature logging and training of the learned ranker.
//!
//! Training data comes from the evaluation harness's judged queries: for each query, its
//! hybrid candidates and its judged products, with their [`features`] and grades
//! ([`log_features`]). Candidates nobody judged are the open question of learning to rank
//! from sparse judgments: labelled 0 they teach the model "was this product judged" rather
//! than "is it relevant"; dropped, the model never sees the products retrieval proposes that
//! nobody judged. [`Unjudged`] picks, and the README has the measurements.
//!
//! [`train`] fits LightGBM lambdarank with k-fold cross-validation grouped by query text (a
//! query text is in exactly one fold), early stopping on a validation share of each fold's
//! training queries, and writes a model directory ([`crate::ltr`]).
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
//! let trained = train(&logged, &TrainOptions::default(), "models/demo".as_ref()).unwrap();
//! println!("cross-validated nDCG@10 {:.4}", trained.report.cv_ndcg10);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Instant, SystemTime};

use lightgbm3::{Booster, Dataset, ImportanceType};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::{Engine, SearchError};
use crate::eval::metrics::Metrics;
use crate::eval::trec::Qrels;
use crate::features::{self, Row};
use crate::ltr::{self, ModelMeta};

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
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("config {path}: {message}")]
    Config { path: String, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
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
}

/// One query's logged candidates.
#[derive(Debug, Clone)]
pub struct LoggedQuery {
    pub qid: String,
    pub query: String,
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
        queries.iter().filter(|(qid, text)| qrels.contains_key(qid) && !text.trim().is_empty()).collect();
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
                    })
                })
                .collect();
            progress.inc(1);
            Ok(LoggedQuery { qid: qid.clone(), query: text.clone(), rows })
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    progress.finish_and_clear();
    Ok(logged)
}

fn number(value: f32) -> String {
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

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, TrainError> {
    Ok(std::io::BufWriter::new(std::fs::File::create(path).map_err(io(path))?))
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// LightGBM's knobs (a `[lgbm]` table in `shelf train --config FILE`; every key optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LgbmParams {
    pub learning_rate: f64,
    pub num_leaves: u32,
    pub min_data_in_leaf: u32,
    pub max_rounds: u32,
    /// Stop when validation nDCG@10 has not improved for this many rounds.
    pub early_stopping_rounds: u32,
    pub feature_fraction: f64,
    pub bagging_fraction: f64,
    pub lambda_l2: f64,
    /// Share of each fold's training queries held out for early stopping.
    pub validation_share: f64,
    /// lambdarank's truncation: pairs beyond this position matter less.
    pub lambdarank_truncation_level: u32,
}

impl Default for LgbmParams {
    fn default() -> Self {
        LgbmParams {
            learning_rate: 0.05,
            num_leaves: 31,
            min_data_in_leaf: 50,
            max_rounds: 600,
            early_stopping_rounds: 40,
            feature_fraction: 0.8,
            bagging_fraction: 0.8,
            lambda_l2: 1.0,
            validation_share: 0.1,
            lambdarank_truncation_level: 30,
        }
    }
}

impl LgbmParams {
    pub fn from_file(path: &Path) -> Result<LgbmParams, TrainError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            lgbm: LgbmParams,
        }
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let file: File = toml::from_str(&text)
            .map_err(|e| TrainError::Config { path: path.display().to_string(), message: e.to_string() })?;
        Ok(file.lgbm)
    }

    /// The LightGBM parameter object.
    fn lightgbm(&self, seed: u64, rounds: u32, early_stopping: bool) -> serde_json::Value {
        let mut params = serde_json::json!({
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": "10",
            // Linear gains, as the evaluation's nDCG: grade g is worth g.
            "label_gain": "0,1,2,3,4,5,6",
            "lambdarank_truncation_level": self.lambdarank_truncation_level,
            "num_iterations": rounds,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "seed": seed,
            "deterministic": true,
            "force_row_wise": true,
            "num_threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "verbosity": -1,
        });
        if early_stopping {
            params["early_stopping_rounds"] = serde_json::json!(self.early_stopping_rounds);
        }
        params
    }
}

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub folds: usize,
    pub seed: u64,
    pub params: LgbmParams,
    /// How the log treated unjudged candidates (recorded in `meta.json`).
    pub unjudged: String,
    /// How deep in the hybrid list the model will rerank: the depth unjudged candidates
    /// were logged from.
    pub rerank_depth: usize,
    /// Weight of an unjudged candidate's row against a judged one's (1: equal).
    pub unjudged_weight: f64,
    /// Features the model may not use (ablations, or magnitudes that do not carry over to
    /// other catalogues): they are blanked to missing in training, so no tree splits on them.
    pub without: Vec<String>,
    pub show_progress: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            folds: 5,
            seed: 42,
            params: LgbmParams::default(),
            unjudged: describe_unjudged(&LogOptions::default()),
            rerank_depth: LogOptions::default().negatives,
            unjudged_weight: 1.0,
            without: Vec::new(),
            show_progress: false,
        }
    }
}

/// How a log treated unjudged candidates, in words.
pub fn describe_unjudged(options: &LogOptions) -> String {
    match options.unjudged {
        Unjudged::Drop => "dropped".to_string(),
        Unjudged::Zero => format!("the first {} hybrid candidates, unjudged as grade 0", options.negatives),
    }
}

/// A trained model: what training measured, and the final booster as trained (the model
/// directory holds the same booster, saved).
pub struct Trained {
    pub report: TrainReport,
    pub booster: Booster,
}

/// What training measured.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub queries: usize,
    pub rows: usize,
    /// Mean nDCG@10 of the logged candidates of each query, ordered by the fold model that
    /// never saw the query.
    pub cv_ndcg10: f64,
    /// The same ordering by the hybrid ranker's fused rank, for comparison.
    pub cv_ndcg10_hybrid: f64,
    pub fold_rounds: Vec<usize>,
    pub rounds: usize,
    /// Gain-based importance of each feature, largest first.
    pub importance: Vec<(String, f64)>,
    pub seconds: f64,
}

/// Trains the lambdarank model with cross-validation and writes the model directory `out`.
pub fn train(logged: &[LoggedQuery], options: &TrainOptions, out: &Path) -> Result<Trained, TrainError> {
    if out.exists()
        && !out.join(ltr::META_FILE).exists()
        && std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some())
    {
        return Err(TrainError::Invalid(format!(
            "refusing to replace {}: it exists and is not a model directory; choose another --out",
            out.display()
        )));
    }
    // Everything is written beside `out` and swapped in when complete: a failed training
    // never leaves a half-written or mixed model behind.
    let name = out.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    let staging = out.with_file_name(format!(".{name}.training"));
    let _ = std::fs::remove_dir_all(&staging);
    let result = train_into(logged, options, &staging);
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

fn train_into(logged: &[LoggedQuery], options: &TrainOptions, out: &Path) -> Result<Trained, TrainError> {
    let started = Instant::now();
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
    let logged: Vec<&LoggedQuery> = logged.iter().filter(|q| !q.rows.is_empty()).collect();
    if logged.len() < options.folds.max(2) * 2 {
        return Err(TrainError::Invalid(format!(
            "{} queries with logged candidates are too few for {} folds",
            logged.len(),
            options.folds
        )));
    }
    if options.folds < 2 {
        return Err(TrainError::Invalid("--folds must be at least 2".into()));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let work = out.join("work");
    std::fs::create_dir_all(&work).map_err(io(&work))?;

    // A query text belongs to exactly one fold, so no fold model has seen a test query.
    let mut texts: Vec<&str> = logged.iter().map(|q| q.query.as_str()).collect();
    texts.sort_unstable();
    texts.dedup();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(options.seed);
    texts.shuffle(&mut rng);
    let fold_of: BTreeMap<String, usize> =
        texts.iter().enumerate().map(|(at, text)| (text.to_string(), at % options.folds)).collect();

    let progress = crate::progress::bar(options.folds as u64 + 1, "training folds", options.show_progress);
    let mut fold_rounds = Vec::new();
    let mut held_out_scores: HashMap<(usize, usize), f64> = HashMap::new();
    for fold in 0..options.folds {
        let test: Vec<usize> = (0..logged.len()).filter(|&q| fold_of[&logged[q].query] == fold).collect();
        let rest: Vec<usize> = (0..logged.len()).filter(|&q| fold_of[&logged[q].query] != fold).collect();
        let every = (1.0 / options.params.validation_share.clamp(0.01, 0.5)).round() as usize;
        let (valid, fit): (Vec<usize>, Vec<usize>) = rest.iter().partition(|&&q| q % every == 0);
        let booster = fit_booster(&logged, &fit, Some(&valid), options, options.params.max_rounds, &work)?;
        fold_rounds.push(booster.num_iterations().max(1) as usize);
        std::fs::write(out.join(ltr::fold_file(fold)), booster.save_string()?).map_err(io(out))?;
        for &q in &test {
            let rows: Vec<f32> = logged[q].rows.iter().flat_map(|r| r.features).collect();
            let scores = booster.predict_with_params(&rows, features::COUNT as i32, true, "num_threads=1")?;
            for (at, score) in scores.into_iter().enumerate() {
                held_out_scores.insert((q, at), score);
            }
        }
        progress.inc(1);
    }
    let rounds = (fold_rounds.iter().sum::<usize>() as f64 / fold_rounds.len() as f64).round().max(1.0) as u32;
    let everything: Vec<usize> = (0..logged.len()).collect();
    let booster = fit_booster(&logged, &everything, None, options, rounds, &work)?;
    progress.finish_and_clear();
    std::fs::write(out.join(ltr::MODEL_FILE), booster.save_string()?).map_err(io(out))?;
    let _ = std::fs::remove_dir_all(&work);

    // Cross-validated nDCG@10 over the candidates the model will reorder when serving (the
    // head of the hybrid list), against the hybrid order.
    let fused_rank = features::index_of("fused_rank").unwrap_or(0);
    let served = |row: &LoggedRow| row.features[fused_rank] <= options.rerank_depth as f32;
    let ndcg = |order: &dyn Fn(usize, usize) -> f64| -> f64 {
        let total: f64 = (0..logged.len())
            .map(|q| {
                let rows = &logged[q].rows;
                let mut ranking: Vec<(String, f64)> = rows
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| served(r))
                    .map(|(at, r)| (r.id.clone(), order(q, at)))
                    .collect();
                crate::eval::metrics::sort_like_trec_eval(&mut ranking);
                let ids: Vec<String> = ranking.into_iter().map(|(id, _)| id).collect();
                let judgments: BTreeMap<String, i32> =
                    rows.iter().filter(|r| r.judged).map(|r| (r.id.clone(), r.label)).collect();
                Metrics::compute(&ids, &judgments, crate::eval::DEFAULT_THRESHOLD).ndcg10
            })
            .sum();
        total / logged.len() as f64
    };
    let cv_ndcg10 = ndcg(&|q, at| held_out_scores.get(&(q, at)).copied().unwrap_or(f64::MIN));
    let cv_ndcg10_hybrid = ndcg(&|q, at| {
        let rank = logged[q].rows[at].features[fused_rank];
        if rank.is_nan() {
            -1e9 - at as f64
        } else {
            -(rank as f64)
        }
    });

    let gains = booster.feature_importance(ImportanceType::Gain)?;
    let mut importance: Vec<(String, f64)> = features::NAMES.iter().map(|n| n.to_string()).zip(gains).collect();
    importance.sort_by(|a, b| b.1.total_cmp(&a.1));

    let rows: usize = logged.iter().map(|q| q.rows.len()).sum();
    let report = TrainReport {
        queries: logged.len(),
        rows,
        cv_ndcg10,
        cv_ndcg10_hybrid,
        fold_rounds: fold_rounds.clone(),
        rounds: rounds as usize,
        importance,
        seconds: started.elapsed().as_secs_f64(),
    };
    let meta = ModelMeta {
        ranker: "lgbm".into(),
        feature_schema_version: features::SCHEMA_VERSION,
        feature_names: features::NAMES.iter().map(|n| n.to_string()).collect(),
        data_fingerprint: fingerprint(&logged),
        parameters: options.params.lightgbm(options.seed, rounds, false),
        cv: BTreeMap::from([
            ("ndcg@10_candidates".to_string(), cv_ndcg10),
            ("ndcg@10_candidates_hybrid".to_string(), cv_ndcg10_hybrid),
        ]),
        trained_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        train_seconds: report.seconds,
        folds: fold_of,
        rounds: rounds as usize,
        unjudged: options.unjudged.clone(),
        rerank_depth: options.rerank_depth,
        without: options.without.clone(),
    };
    let meta_path = out.join(ltr::META_FILE);
    let text = serde_json::to_string_pretty(&meta).map_err(|e| TrainError::Invalid(e.to_string()))?;
    std::fs::write(&meta_path, text + "\n").map_err(io(&meta_path))?;
    Ok(Trained { report, booster })
}

/// Sends LightGBM's own log lines (dataset construction chatter) to `tracing` at debug
/// level instead of stdout.
fn quiet_lightgbm() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    unsafe extern "C" fn forward(line: *const std::os::raw::c_char) {
        if !line.is_null() {
            // SAFETY: LightGBM passes a NUL-terminated string that lives for the call.
            let text = unsafe { std::ffi::CStr::from_ptr(line) }.to_string_lossy();
            tracing::debug!(target: "lightgbm", "{}", text.trim_end());
        }
    }
    ONCE.call_once(|| {
        // SAFETY: registers a plain function pointer; LightGBM calls it with its log lines.
        unsafe {
            lightgbm3_sys::LGBM_RegisterLogCallback(Some(forward));
        }
    });
}

/// Trains one booster on the queries `fit` (early-stopping on `valid` when given).
fn fit_booster(
    logged: &[&LoggedQuery],
    fit: &[usize],
    valid: Option<&[usize]>,
    options: &TrainOptions,
    rounds: u32,
    work: &Path,
) -> Result<Booster, TrainError> {
    quiet_lightgbm();
    let names: Vec<String> = features::NAMES.iter().map(|n| n.to_string()).collect();
    let train_path = work.join("train.tsv");
    write_lightgbm_file(logged, fit, options.unjudged_weight, &train_path)?;
    let mut train = Dataset::from_file(&train_path.to_string_lossy())?;
    train.set_feature_names(&names)?;
    let params = options.params.lightgbm(options.seed, rounds, valid.is_some());
    let booster = match valid {
        Some(valid) => {
            let valid_path = work.join("valid.tsv");
            write_lightgbm_file(logged, valid, 1.0, &valid_path)?;
            let valid = Dataset::from_file_with_reference(&valid_path.to_string_lossy(), Some(&train))?;
            Booster::train_with_valid(train, Some(valid), &params)?
        }
        None => Booster::train(train, &params)?,
    };
    Ok(booster)
}

/// A LightGBM data file (label, then every feature; `nan` for missing), its `.query` group
/// file and its `.weight` file (unjudged rows weigh `unjudged_weight`).
fn write_lightgbm_file(
    logged: &[&LoggedQuery],
    queries: &[usize],
    unjudged_weight: f64,
    path: &Path,
) -> Result<(), TrainError> {
    let (group_path, weight_path) = (suffixed(path, ".query"), suffixed(path, ".weight"));
    let (mut data, mut groups, mut weights) = (create(path)?, create(&group_path)?, create(&weight_path)?);
    for &q in queries {
        writeln!(groups, "{}", logged[q].rows.len()).map_err(io(&group_path))?;
        for row in &logged[q].rows {
            let values: Vec<String> = row.features.iter().map(|v| number(*v)).collect();
            writeln!(data, "{}\t{}", row.label, values.join("\t")).map_err(io(path))?;
            writeln!(weights, "{}", if row.judged { 1.0 } else { unjudged_weight }).map_err(io(&weight_path))?;
        }
    }
    data.flush().map_err(io(path))?;
    weights.flush().map_err(io(&weight_path))?;
    groups.flush().map_err(io(&group_path))
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
