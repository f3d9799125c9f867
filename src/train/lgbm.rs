//! Training the LightGBM ranker: lambdarank with linear gains (grade g is worth g, as in the
//! evaluation's nDCG), early stopping on validation nDCG@10, LightGBM's own log routed to
//! `tracing`. The fold loop, model directory and report are [`super::cross_validate`]'s.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use lightgbm3::{Booster, Dataset, ImportanceType};
use serde::{Deserialize, Serialize};

use super::{
    create, cross_validate, finish, io, number, suffixed, FoldTrainer, LoggedQuery, LoggedRow, Prepared, TrainError,
    TrainOptions, Trained,
};
use crate::features;
use crate::rank::lgbm;

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
    /// Unset: pointwise on engagement alone (`shelf train --events`), lambdarank otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
}

/// What the booster learns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// LambdaMART on the grades: each query's order.
    #[default]
    Lambdarank,
    /// For labels from engagement: a regression on each shown product's engagement per
    /// examination (worth / exposure, not shrunk), weighted by its exposure, so that the
    /// products it sees once near the bottom count as little as they tell, without the
    /// grades' rounding and cap (one click there would be a top grade). Early stopping
    /// watches the same weighted squared error on the validation queries. Rows without
    /// engagement are left out.
    Pointwise,
}

impl std::str::FromStr for Objective {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lambdarank" => Ok(Objective::Lambdarank),
            "pointwise" => Ok(Objective::Pointwise),
            other => Err(format!("unknown objective '{other}' (lambdarank or pointwise)")),
        }
    }
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
            objective: None,
        }
    }
}

impl LgbmParams {
    /// The LightGBM parameter object.
    pub(crate) fn lightgbm(&self, seed: u64, rounds: u32, early_stopping: bool) -> serde_json::Value {
        // Linear gains, as the evaluation's nDCG: grade g is worth g (for every grade an
        // engagement label can have, up to 30).
        let label_gain: Vec<String> = (0..=30).map(|g| g.to_string()).collect();
        let (objective, metric) = match self.objective.unwrap_or_default() {
            Objective::Lambdarank => ("lambdarank", "ndcg"),
            Objective::Pointwise => ("regression", "l2"),
        };
        let mut params = serde_json::json!({
            "objective": objective,
            "metric": metric,
            "eval_at": "10",
            "label_gain": label_gain.join(","),
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

/// The LightGBM side of [`super::cross_validate`].
pub(crate) struct LgbmTrainer<'a> {
    pub logged: &'a [&'a LoggedQuery],
    pub options: &'a TrainOptions,
    pub work: &'a Path,
}

impl FoldTrainer for LgbmTrainer<'_> {
    type Model = Booster;

    fn fit(&self, fit: &[usize], valid: Option<&[usize]>, rounds: usize) -> Result<Booster, TrainError> {
        fit_booster(self.logged, fit, valid, self.options, rounds as u32, self.work)
    }

    fn rounds(&self, model: &Booster) -> usize {
        model.num_iterations().max(1) as usize
    }

    fn max_rounds(&self) -> usize {
        self.options.lgbm.max_rounds as usize
    }

    fn score(&self, model: &Booster, query: usize) -> Result<Vec<f64>, TrainError> {
        let rows: Vec<f32> = self.logged[query].rows.iter().flat_map(|r| r.features).collect();
        Ok(crate::rank::lgbm::predict_on_one_thread(model, &rows)?)
    }

    fn save(&self, model: &Booster, dir: &Path, fold: Option<usize>) -> Result<(), TrainError> {
        let name = fold.map_or_else(|| lgbm::MODEL_FILE.to_string(), lgbm::fold_file);
        let path = dir.join(name);
        std::fs::write(&path, model.save_string()?).map_err(io(&path))
    }

    fn parameters(&self, rounds: usize) -> serde_json::Value {
        self.options.lgbm.lightgbm(self.options.seed, rounds as u32, false)
    }
}

/// Gain-based importance of each feature in the final model, largest first.
pub(crate) fn importance(booster: &Booster) -> Result<Vec<(String, f64)>, TrainError> {
    let gains = booster.feature_importance(ImportanceType::Gain)?;
    let mut importance: Vec<(String, f64)> = features::NAMES.iter().map(|n| n.to_string()).zip(gains).collect();
    importance.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(importance)
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
    let (targets, valid_targets) = match options.lgbm.objective.unwrap_or_default() {
        Objective::Lambdarank => {
            (Targets::Grades { unjudged_weight: options.unjudged_weight }, Targets::Grades { unjudged_weight: 1.0 })
        }
        Objective::Pointwise => (Targets::EngagementRates, Targets::EngagementRates),
    };
    write_lightgbm_file(logged, fit, targets, &train_path)?;
    let valid_path = work.join("valid.tsv");
    if let Some(valid) = valid {
        write_lightgbm_file(logged, valid, valid_targets, &valid_path)?;
    }
    // Loading the data and boosting run on every core.
    let _call = crate::rank::lgbm::many_threads_call();
    let mut train = Dataset::from_file(&train_path.to_string_lossy())?;
    train.set_feature_names(&names)?;
    let params = options.lgbm.lightgbm(options.seed, rounds, valid.is_some());
    let booster = match valid {
        Some(_) => {
            let valid = Dataset::from_file_with_reference(&valid_path.to_string_lossy(), Some(&train))?;
            Booster::train_with_valid(train, Some(valid), &params)?
        }
        None => Booster::train(train, &params)?,
    };
    Ok(booster)
}

/// What a LightGBM data file's rows are labelled and weighted with.
#[derive(Debug, Clone, Copy)]
enum Targets {
    /// The grades; unjudged rows weigh `unjudged_weight`, the others 1.
    Grades { unjudged_weight: f64 },
    /// Engagement per examination, weighted by exposure ([`Objective::Pointwise`]); rows
    /// the log never examined are left out.
    EngagementRates,
}

impl Targets {
    /// A row's (label, weight), or `None` to leave it out.
    fn of(self, row: &LoggedRow) -> Option<(String, f64)> {
        match self {
            Targets::Grades { unjudged_weight } => {
                Some((row.label.to_string(), if row.judged { 1.0 } else { unjudged_weight }))
            }
            Targets::EngagementRates => row
                .engagement
                .filter(|rates| rates.exposure > 0.0)
                .map(|rates| ((rates.worth / rates.exposure).to_string(), rates.exposure)),
        }
    }
}

/// A LightGBM data file (label, then every feature; `nan` for missing), its `.query` group
/// file and its `.weight` file.
fn write_lightgbm_file(
    logged: &[&LoggedQuery],
    queries: &[usize],
    targets: Targets,
    path: &Path,
) -> Result<(), TrainError> {
    let (group_path, weight_path) = (suffixed(path, ".query"), suffixed(path, ".weight"));
    let (mut data, mut groups, mut weights) = (create(path)?, create(&group_path)?, create(&weight_path)?);
    for &q in queries {
        let rows: Vec<(&LoggedRow, (String, f64))> =
            logged[q].rows.iter().filter_map(|row| Some((row, targets.of(row)?))).collect();
        if rows.is_empty() {
            continue;
        }
        writeln!(groups, "{}", rows.len()).map_err(io(&group_path))?;
        for (row, (label, weight)) in rows {
            let values: Vec<String> = row.features.iter().map(|v| number(*v)).collect();
            writeln!(data, "{label}\t{}", values.join("\t")).map_err(io(path))?;
            writeln!(weights, "{weight}").map_err(io(&weight_path))?;
        }
    }
    data.flush().map_err(io(path))?;
    weights.flush().map_err(io(&weight_path))?;
    groups.flush().map_err(io(&group_path))
}

/// Trains LightGBM with cross-validation into `out`; also returns every logged row's
/// held-out score (the ensemble tunes its blend on them).
pub(crate) fn train(
    data: &Prepared,
    options: &TrainOptions,
    out: &Path,
) -> Result<(Trained, Vec<Vec<f64>>), TrainError> {
    let started = Instant::now();
    let work = out.join("work");
    std::fs::create_dir_all(&work).map_err(io(&work))?;
    let trainer = LgbmTrainer { logged: &data.queries, options, work: &work };
    let validated = cross_validate(&trainer, data, options, options.lgbm.validation_share, out)?;
    let _ = std::fs::remove_dir_all(&work);
    let parameters = trainer.parameters(validated.rounds);
    let mut report = finish(lgbm::KIND, data, options, &validated, parameters, started, out)?;
    report.importance = importance(&validated.model)?;
    Ok((Trained { report, booster: Some(validated.model) }, validated.held_out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::labels::Rates;

    fn row(label: i32, judged: bool, engagement: Option<(f64, f64)>) -> LoggedRow {
        LoggedRow {
            id: "p".into(),
            label,
            judged,
            features: [0.0; features::COUNT],
            engagement: engagement.map(|(worth, exposure)| Rates {
                rates: [0.0; 3],
                exposure,
                worth,
                reached: [0.0; 3],
            }),
        }
    }

    /// Pointwise rows learn worth per examination, weighted by exposure: a click at a
    /// position examined a tenth of the time is worth 10 with a tenth of the weight; a
    /// product nobody examined teaches nothing.
    #[test]
    fn pointwise_targets_are_unbiased_rates_weighted_by_exposure() {
        let rates = Targets::EngagementRates;
        assert_eq!(rates.of(&row(6, true, Some((1.0, 0.1)))), Some(("10".to_string(), 0.1)));
        assert_eq!(rates.of(&row(0, true, Some((3.0, 12.0)))), Some(("0.25".to_string(), 12.0)));
        assert_eq!(rates.of(&row(0, true, Some((0.0, 0.0)))), None);
        assert_eq!(rates.of(&row(4, true, None)), None);
        let grades = Targets::Grades { unjudged_weight: 0.3 };
        assert_eq!(grades.of(&row(4, true, Some((1.0, 0.1)))), Some(("4".to_string(), 1.0)));
        assert_eq!(grades.of(&row(0, false, None)), Some(("0".to_string(), 0.3)));
    }

    #[test]
    fn the_objective_picks_lightgbm_objective_and_metric() {
        let pointwise = LgbmParams { objective: Some(Objective::Pointwise), ..LgbmParams::default() };
        let params = pointwise.lightgbm(7, 10, true);
        assert_eq!((params["objective"].as_str(), params["metric"].as_str()), (Some("regression"), Some("l2")));
        let params = LgbmParams::default().lightgbm(7, 10, true);
        assert_eq!((params["objective"].as_str(), params["metric"].as_str()), (Some("lambdarank"), Some("ndcg")));
        // Every grade an engagement label can take has a gain.
        assert_eq!(params["label_gain"].as_str().map(|g| g.split(',').count()), Some(31));
        assert_eq!("pointwise".parse::<Objective>(), Ok(Objective::Pointwise));
        assert!("listwise".parse::<Objective>().is_err());
    }
}
