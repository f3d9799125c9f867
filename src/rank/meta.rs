//! `meta.json`: what a model directory holds and how it was made, shared by every ranker.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::features;

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
    #[error("neural ranker: {0}")]
    Neural(#[from] candle_core::Error),
    #[error("{0}")]
    Invalid(String),
}

impl ModelError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> ModelError {
        ModelError::Io { path: path.display().to_string(), source }
    }

    pub(crate) fn corrupt(path: &Path, message: impl ToString) -> ModelError {
        ModelError::Corrupt { path: path.display().to_string(), message: message.to_string() }
    }
}

/// `meta.json`: what a model is and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// `lgbm`, `neural` or `ensemble`.
    pub ranker: String,
    pub feature_schema_version: u32,
    pub feature_names: Vec<String>,
    /// sha256 over the training rows (features and labels).
    pub data_fingerprint: String,
    /// The trainer's parameters.
    pub parameters: serde_json::Value,
    /// Cross-validated metrics (each query scored by the fold model that never saw it).
    pub cv: BTreeMap<String, f64>,
    pub trained_at: String,
    pub train_seconds: f64,
    /// Training queries (by text) and the fold each was held out in.
    #[serde(default)]
    pub folds: BTreeMap<String, usize>,
    /// Boosting rounds (LightGBM) or epochs (neural) of the final model.
    pub rounds: usize,
    /// How unjudged candidates were treated.
    pub unjudged: String,
    /// How many of the hybrid list's first candidates the model reorders (the depth its
    /// training candidates came from).
    pub rerank_depth: usize,
    /// Features blanked in training (the model ignores them).
    #[serde(default)]
    pub without: Vec<String>,
    /// The encoder (and query adapter) of the index the features were logged from: its
    /// dense features mean something else under another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<crate::dense::EncoderIdentity>,
    /// How that index encoded queries (`[dense] query_precision`); models from before the
    /// setting existed were trained on float queries.
    #[serde(default)]
    pub query_precision: crate::dense::Precision,
}

impl ModelMeta {
    /// How many folds the model was cross-validated with.
    pub fn fold_count(&self) -> usize {
        self.folds.values().copied().max().map_or(0, |m| m + 1)
    }

    /// The fold that held `query` out, when it was a training query.
    pub fn fold_of(&self, query: &str) -> Option<usize> {
        self.folds.get(query).copied()
    }

    pub fn write(&self, dir: &Path) -> Result<(), ModelError> {
        let path = dir.join(META_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| ModelError::Invalid(e.to_string()))?;
        std::fs::write(&path, text + "\n").map_err(|e| ModelError::io(&path, e))
    }
}

/// Reads a model directory's `meta.json`.
pub fn read_meta(dir: &Path) -> Result<ModelMeta, ModelError> {
    let path = dir.join(META_FILE);
    let text = std::fs::read_to_string(&path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => ModelError::NotAModel(dir.display().to_string()),
        _ => ModelError::io(&path, error),
    })?;
    serde_json::from_str(&text).map_err(|e| ModelError::corrupt(&path, e))
}

/// Refuses a model whose features are not this shelf's, naming the difference.
pub fn check_schema(dir: &Path, meta: &ModelMeta) -> Result<(), ModelError> {
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
