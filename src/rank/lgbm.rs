//! The learned ranker: a LightGBM LambdaMART model over the [`crate::features`] of hybrid
//! candidates.
//!
//! A model directory (written by `shelf train`, see [`crate::train`]) holds
//!
//! ```text
//! models/<name>/
//!   model.txt      the LightGBM model trained on every judged query
//!   fold-N.txt     the model of each cross-validation fold (trained without fold N)
//!   meta.json      ranker kind, feature names and schema version, training data fingerprint,
//!                  parameters, cross-validated metrics, date, which fold each query was in
//! ```
//!
//! A model is refused when its features are not the ones this shelf computes. Evaluating a
//! model on the queries it was trained on would flatter it, so [`LtrModel::booster_for`]
//! hands out, for a query it saw, the fold model that never saw it.

use std::collections::BTreeMap;
use std::path::Path;

use lightgbm3::Booster;
use serde::{Deserialize, Serialize};

use crate::features::{self, Row};

pub const MODEL_FILE: &str = "model.txt";
pub const META_FILE: &str = "meta.json";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0} is not a model directory (no meta.json); train one with `shelf train --out {0}`")]
    NotAModel(String),
    #[error("the model in {dir} was trained on feature schema {found}, but this shelf computes schema {expected} ({difference}); retrain it with `shelf train`")]
    Schema { dir: String, found: String, expected: String, difference: String },
    #[error("{path} is damaged: {message}; retrain the model with `shelf train`")]
    Corrupt { path: String, message: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("LightGBM: {0}")]
    LightGbm(#[from] lightgbm3::Error),
}

impl ModelError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> ModelError {
        ModelError::Io { path: path.display().to_string(), source }
    }
}

/// `meta.json`: what a model is and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// `lgbm`.
    pub ranker: String,
    pub feature_schema_version: u32,
    pub feature_names: Vec<String>,
    /// sha256 over the training rows (features and labels).
    pub data_fingerprint: String,
    /// LightGBM parameters.
    pub parameters: serde_json::Value,
    /// Cross-validated metrics (each query scored by the fold model that never saw it).
    pub cv: BTreeMap<String, f64>,
    pub trained_at: String,
    pub train_seconds: f64,
    /// Training queries (by text) and the fold each was held out in.
    #[serde(default)]
    pub folds: BTreeMap<String, usize>,
    /// Boosting rounds of the final model.
    pub rounds: usize,
    /// How unjudged candidates were treated.
    pub unjudged: String,
    /// How many of the hybrid list's first candidates the model reorders (the depth its
    /// training candidates came from).
    pub rerank_depth: usize,
    /// Features blanked in training (the model ignores them).
    #[serde(default)]
    pub without: Vec<String>,
}

/// A LightGBM booster that may be shared between threads.
struct SharedBooster(Booster);

// SAFETY: LightGBM's C API guards a booster with a reader-writer lock and takes it shared
// in every predict call, so concurrent predictions are safe; shelf never trains or changes a
// loaded booster.
unsafe impl Send for SharedBooster {}
unsafe impl Sync for SharedBooster {}

/// A loaded model directory.
pub struct LtrModel {
    pub meta: ModelMeta,
    booster: SharedBooster,
    folds: Vec<SharedBooster>,
}

impl LtrModel {
    pub fn load(dir: &Path) -> Result<LtrModel, ModelError> {
        let meta_path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&meta_path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => ModelError::NotAModel(dir.display().to_string()),
            _ => ModelError::io(&meta_path, error),
        })?;
        let meta: ModelMeta = serde_json::from_str(&text)
            .map_err(|e| ModelError::Corrupt { path: meta_path.display().to_string(), message: e.to_string() })?;
        check_schema(dir, &meta)?;
        let load = |name: &str| -> Result<SharedBooster, ModelError> {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
            let booster = Booster::from_string(&text)
                .map_err(|e| ModelError::Corrupt { path: path.display().to_string(), message: e.to_string() })?;
            if booster.num_features() != features::COUNT as i32 {
                return Err(ModelError::Corrupt {
                    path: path.display().to_string(),
                    message: format!("{} features, expected {}", booster.num_features(), features::COUNT),
                });
            }
            Ok(SharedBooster(booster))
        };
        let booster = load(MODEL_FILE)?;
        let fold_count = meta.folds.values().copied().max().map_or(0, |m| m + 1);
        let folds = (0..fold_count).map(|fold| load(&fold_file(fold))).collect::<Result<Vec<_>, _>>()?;
        Ok(LtrModel { meta, booster, folds })
    }

    /// The booster to score `query` with: the one that never saw it in training.
    fn booster_for(&self, query: &str) -> &Booster {
        match self.meta.folds.get(query).and_then(|fold| self.folds.get(*fold)) {
            Some(fold) => &fold.0,
            None => &self.booster.0,
        }
    }

    /// Whether `query` was a training query (so it is scored by a held-out fold model).
    pub fn held_out(&self, query: &str) -> bool {
        self.meta.folds.contains_key(query)
    }

    /// Scores rows of features (higher is better).
    pub fn score(&self, query: &str, rows: &[Row]) -> Result<Vec<f64>, ModelError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Ok(self.booster_for(query).predict_with_params(&flat, features::COUNT as i32, true, "num_threads=1")?)
    }

    /// Per-feature SHAP contributions of each row, plus the bias last: each row's values
    /// sum to its score.
    pub fn contributions(&self, query: &str, rows: &[Row]) -> Result<Vec<Vec<f64>>, ModelError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let values = self.booster_for(query).predict_contrib(&flat, features::COUNT as i32, true)?;
        Ok(values.chunks(features::COUNT + 1).map(<[f64]>::to_vec).collect())
    }
}

/// The file of fold `fold`'s model.
pub fn fold_file(fold: usize) -> String {
    format!("fold-{fold}.txt")
}

/// Refuses a model whose features are not this shelf's, naming the difference.
fn check_schema(dir: &Path, meta: &ModelMeta) -> Result<(), ModelError> {
    let ours: Vec<String> = features::NAMES.iter().map(|n| n.to_string()).collect();
    if meta.feature_schema_version == features::SCHEMA_VERSION && meta.feature_names == ours {
        return Ok(());
    }
    let missing: Vec<&str> = ours.iter().filter(|n| !meta.feature_names.contains(n)).map(String::as_str).collect();
    let extra: Vec<&str> = meta.feature_names.iter().filter(|n| !ours.contains(n)).map(String::as_str).collect();
    let difference = if missing.is_empty() && extra.is_empty() {
        if meta.feature_names == ours {
            "same features, different meaning".to_string()
        } else {
            "the same features in another order".to_string()
        }
    } else {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("the model lacks {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            parts.push(format!("the model has {} which this shelf does not compute", extra.join(", ")));
        }
        parts.join("; ")
    };
    Err(ModelError::Schema {
        dir: dir.display().to_string(),
        found: meta.feature_schema_version.to_string(),
        expected: features::SCHEMA_VERSION.to_string(),
        difference,
    })
}
