//! The LightGBM LambdaMART ranker (`ltr`) over the [`crate::features`] of hybrid candidates.
//!
//! A model directory (written by `shelf train --ranker lgbm`, see [`crate::train::lgbm`])
//! holds
//!
//! ```text
//! models/<name>/
//!   model.txt      the LightGBM model trained on every judged query
//!   fold-N.txt     the model of each cross-validation fold (trained without fold N)
//!   meta.json      ranker kind, feature names and schema version, training data fingerprint,
//!                  parameters, cross-validated metrics, date, which fold each query was in
//! ```
//!
//! Explanations are exact SHAP values (LightGBM's TreeSHAP): with the bias they sum to the
//! score.

use std::path::Path;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use lightgbm3::Booster;

use super::{check_schema, read_meta, Explanation, Inputs, ModelError, ModelMeta, Ranker, Scored, Scoring};
use crate::features::{self, Row};
use crate::search::RankerKind;

/// `meta.json`'s `ranker` for this kind.
pub const KIND: &str = "lgbm";
pub const MODEL_FILE: &str = "model.txt";
/// Rows below which splitting a list between threads costs more than it saves.
const SPLIT_ROWS: usize = 64;

/// The file of fold `fold`'s model.
pub fn fold_file(fold: usize) -> String {
    format!("fold-{fold}.txt")
}

/// LightGBM keeps the thread count of its parallel loops in one process-wide variable, which
/// every call with parameters sets, and sizes per-thread buffers from it before a loop reads
/// it again (a prediction's buffers, a training set's bins): a call on another thread that
/// raises the count in between makes the loop index past its buffers. Training beside
/// scoring in one process does exactly that (the likely cause of a segfault seen once in the
/// test suite). Scoring always asks for one thread, so scoring calls may overlap, as they can
/// only lower the count: they hold this lock shared. Calls that run on more threads
/// (training, and SHAP contributions, which the binding runs at LightGBM's default) hold it
/// exclusively.
static THREAD_COUNT: RwLock<()> = RwLock::new(());

/// Held by a LightGBM call that runs on one thread, or sets no thread count.
fn one_thread_call() -> RwLockReadGuard<'static, ()> {
    THREAD_COUNT.read().unwrap_or_else(PoisonError::into_inner)
}

/// Scores rows on one thread under the shared lock: the only way shelf scores with LightGBM,
/// so every scoring call keeps the promise the shared lock rests on.
pub(crate) fn predict_on_one_thread(booster: &Booster, flat: &[f32]) -> Result<Vec<f64>, lightgbm3::Error> {
    let _call = one_thread_call();
    booster.predict_with_params(flat, features::COUNT as i32, true, "num_threads=1")
}

/// Held by a LightGBM call that may run on several threads.
pub(crate) fn many_threads_call() -> RwLockWriteGuard<'static, ()> {
    THREAD_COUNT.write().unwrap_or_else(PoisonError::into_inner)
}

/// A LightGBM booster that may be shared between threads.
struct SharedBooster(Booster);

// SAFETY: LightGBM's C API guards a booster with a reader-writer lock and takes it shared
// in every predict call, so concurrent predictions are safe; shelf never trains or changes a
// loaded booster.
unsafe impl Send for SharedBooster {}
unsafe impl Sync for SharedBooster {}

/// A loaded LightGBM model directory.
pub struct LgbmRanker {
    pub meta: ModelMeta,
    booster: SharedBooster,
    folds: Vec<SharedBooster>,
}

impl LgbmRanker {
    pub fn load(dir: &Path) -> Result<LgbmRanker, ModelError> {
        let meta = read_meta(dir)?;
        check_schema(dir, &meta)?;
        if meta.ranker != KIND {
            return Err(ModelError::corrupt(&dir.join(super::META_FILE), format!("a {} model, not lgbm", meta.ranker)));
        }
        let load = |name: &str| -> Result<SharedBooster, ModelError> {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
            // LightGBM reads a C string: a NUL byte would end it early (and the binding panics).
            if text.contains('\0') {
                return Err(ModelError::corrupt(&path, "a NUL byte in a text model"));
            }
            let booster = {
                let _call = one_thread_call();
                Booster::from_string(&text).map_err(|e| ModelError::corrupt(&path, e))?
            };
            if booster.num_features() != features::COUNT as i32 {
                let message = format!("{} features, expected {}", booster.num_features(), features::COUNT);
                return Err(ModelError::corrupt(&path, message));
            }
            Ok(SharedBooster(booster))
        };
        let booster = load(MODEL_FILE)?;
        let folds = (0..meta.fold_count()).map(|fold| load(&fold_file(fold))).collect::<Result<Vec<_>, _>>()?;
        Ok(LgbmRanker { meta, booster, folds })
    }

    /// The booster that scores `query`.
    fn booster_for(&self, query: &str, scoring: Scoring) -> &Booster {
        let fold = match scoring {
            Scoring::Final => None,
            Scoring::HeldOut => self.meta.fold_of(query).and_then(|fold| self.folds.get(fold)),
        };
        &fold.unwrap_or(&self.booster).0
    }

    /// Whether `query` was a training query (so [`Scoring::HeldOut`] scores it with a fold
    /// model).
    pub fn held_out(&self, query: &str) -> bool {
        self.meta.fold_of(query).is_some()
    }

    /// Scores rows of features (higher is better). With `share_cores`, a long list is split
    /// between the cores (each part in one LightGBM thread: its own threads would spin
    /// against the server's).
    pub fn score_rows(
        &self,
        query: &str,
        rows: &[Row],
        scoring: Scoring,
        share_cores: bool,
    ) -> Result<Vec<f64>, ModelError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        if share_cores && rows.len() >= 2 * SPLIT_ROWS {
            let (first, second) = rows.split_at(rows.len() / 2);
            let score = |rows| self.score_rows(query, rows, scoring, true);
            let (first, second) = rayon::join(|| score(first), || score(second));
            let mut scores = first?;
            scores.extend(second?);
            return Ok(scores);
        }
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Ok(predict_on_one_thread(self.booster_for(query, scoring), &flat)?)
    }

    /// Per-feature SHAP contributions of each row, plus the bias last: each row's values
    /// sum to its score.
    pub fn contributions(&self, query: &str, rows: &[Row], scoring: Scoring) -> Result<Vec<Vec<f64>>, ModelError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let values = {
            let _call = many_threads_call();
            self.booster_for(query, scoring).predict_contrib(&flat, features::COUNT as i32, true)?
        };
        Ok(values.chunks(features::COUNT + 1).map(<[f64]>::to_vec).collect())
    }
}

impl Ranker for LgbmRanker {
    fn kind(&self) -> RankerKind {
        RankerKind::Ltr
    }

    fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    fn score(&self, inputs: &Inputs, scoring: Scoring) -> Result<Scored, ModelError> {
        Ok(Scored {
            relevance: self.score_rows(inputs.query, inputs.rows, scoring, inputs.share_cores)?,
            ..Scored::default()
        })
    }

    fn explain(&self, inputs: &Inputs, scoring: Scoring, positions: &[usize]) -> Result<Vec<Explanation>, ModelError> {
        let rows: Vec<Row> = positions.iter().filter_map(|&at| inputs.rows.get(at).copied()).collect();
        let contributions = self.contributions(inputs.query, &rows, scoring)?;
        Ok(contributions
            .into_iter()
            .map(|values| {
                let bias = values.get(features::COUNT).copied().unwrap_or(0.0);
                let contributions: Vec<(String, f64)> =
                    features::NAMES.iter().zip(&values).map(|(name, c)| (name.to_string(), *c)).collect();
                Explanation {
                    score: values.iter().sum(),
                    bias,
                    contributions,
                    residual: 0.0,
                    method: "shap",
                    heads: Default::default(),
                    members: Default::default(),
                }
            })
            .collect())
    }
}
