//! Ranking: the learned stage that reorders the head of the hybrid candidate list.
//!
//! Retrieval proposes candidates and [`crate::features`] describes each one as a row of
//! named numbers. A [`Ranker`] turns those rows into relevance scores, and can say why
//! ([`Ranker::explain`]). Three rankers implement it:
//!
//! - [`lgbm::LgbmRanker`] (`ltr`): a LightGBM LambdaMART model;
//! - [`neural::NeuralRanker`] (`neural`): a multi-head network over the same features and
//!   the query and product embeddings, predicting relevance and product signals;
//! - [`ensemble::Ensemble`] (`ensemble`): both, their scores standardised per query and
//!   blended with a weight tuned on held-out folds.
//!
//! The relevance score is not the whole story for a shop: [`utility`] blends it with the
//! shop's other goals (rating, stock, popularity, the neural heads' predictions).
//!
//! A model directory holds one ranker, or for `ensemble` both members in `lgbm/` and
//! `neural/`; [`load`] reads any of them and refuses a model whose features are not this
//! shelf's.
//!
//! ```no_run
//! use shelf::rank::{self, Inputs, Scoring};
//!
//! let models = rank::load("models/demo".as_ref()).unwrap();
//! for ranker in models.rankers() {
//!     println!("{} serves {}", ranker.describe(), ranker.kind());
//! }
//! let ranker = models.get(shelf::search::RankerKind::Ltr).unwrap();
//! let rows = vec![[0.0f32; shelf::features::COUNT]; 3];
//! let inputs = Inputs::new("office chair", &[], &rows, &[None, None, None]);
//! let scored = ranker.score(&inputs, Scoring::Final).unwrap();
//! assert_eq!(scored.relevance.len(), 3);
//! ```

pub mod ensemble;
pub mod lgbm;
mod meta;
pub mod neural;
pub mod utility;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub use meta::{check_schema, read_meta, ModelError, ModelMeta, META_FILE};

use crate::features::{self, Row};
use crate::search::RankerKind;

/// One query's candidates, as a ranker sees them.
pub struct Inputs<'a> {
    pub query: &'a str,
    /// The query's embedding (empty when the index has no vectors).
    pub query_vector: &'a [f32],
    /// Each candidate's features.
    pub rows: &'a [Row],
    /// Each candidate's product embedding, when the index holds one.
    pub vectors: &'a [Option<&'a [f32]>],
    /// Whether the work may be split between idle cores (a search running alone).
    pub share_cores: bool,
}

impl<'a> Inputs<'a> {
    /// A query's candidates, scored on the calling thread (`share_cores` off).
    pub fn new(query: &'a str, query_vector: &'a [f32], rows: &'a [Row], vectors: &'a [Option<&'a [f32]>]) -> Self {
        Inputs { query, query_vector, rows, vectors, share_cores: false }
    }
}

/// Which model scores a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scoring {
    /// The model trained on every judged query: what live traffic gets.
    #[default]
    Final,
    /// For a query the model was trained on, the cross-validation fold model that never
    /// saw it; other queries get the final model. An evaluation device only: it keeps
    /// `shelf eval` honest on the training queries.
    HeldOut,
}

/// A ranker's scores for one query's candidates.
#[derive(Debug, Clone, Default)]
pub struct Scored {
    /// Relevance, higher is better (scale is the ranker's own).
    pub relevance: Vec<f64>,
    /// Other heads' predictions for each candidate (the neural ranker's `rating`,
    /// `in_stock`, … in the units of the signal they predict).
    pub heads: BTreeMap<String, Vec<f64>>,
}

/// Why a candidate got its relevance score: each feature's contribution. With `bias` they
/// add up to `score` (up to `residual`, the part an approximate method leaves unexplained).
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub score: f64,
    pub bias: f64,
    /// One per feature, in [`features::NAMES`] order, then any extra inputs the ranker has
    /// (the neural ranker's `embedding`).
    pub contributions: Vec<(String, f64)>,
    pub residual: f64,
    /// How the contributions were computed (`shap`, `integrated_gradients`, `blend`).
    pub method: &'static str,
    /// Every head's output for this candidate.
    pub heads: BTreeMap<String, f64>,
    /// An ensemble's members' own scores.
    pub members: BTreeMap<String, f64>,
}

impl Explanation {
    /// The JSON form of `explain` in search responses: feature values, contributions, and
    /// the five that moved the score most.
    pub fn to_json(&self, row: &Row) -> serde_json::Value {
        let value_of = |name: &str| {
            features::index_of(name).map(|at| row[at]).filter(|v| !v.is_nan()).map(|v| serde_json::json!(v))
        };
        let features: serde_json::Map<String, serde_json::Value> = self
            .contributions
            .iter()
            .map(|(name, contribution)| {
                let value = value_of(name).unwrap_or(serde_json::Value::Null);
                (name.clone(), serde_json::json!({"value": value, "contribution": contribution}))
            })
            .collect();
        let mut top: Vec<&(String, f64)> = self.contributions.iter().collect();
        top.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        let top: Vec<serde_json::Value> =
            top.into_iter().take(5).map(|(name, c)| serde_json::json!({"feature": name, "contribution": c})).collect();
        let mut json = serde_json::json!({
            "score": self.score,
            "bias": self.bias,
            "method": self.method,
            "features": features,
            "top": top,
        });
        if self.residual != 0.0 {
            json["residual"] = serde_json::json!(self.residual);
        }
        if !self.heads.is_empty() {
            json["heads"] = serde_json::json!(self.heads);
        }
        if !self.members.is_empty() {
            json["members"] = serde_json::json!(self.members);
        }
        json
    }
}

/// What every learned ranker does.
pub trait Ranker: Send + Sync {
    /// The ranker this serves (`ltr`, `neural`, `ensemble`).
    fn kind(&self) -> RankerKind;
    /// The model's description: its `meta.json`.
    fn meta(&self) -> &ModelMeta;
    /// Relevance (and any other head) for each candidate.
    fn score(&self, inputs: &Inputs, scoring: Scoring) -> Result<Scored, ModelError>;
    /// Explanations of the candidates at `positions` (scores are computed over all of
    /// `inputs`, as some rankers standardise per query).
    fn explain(&self, inputs: &Inputs, scoring: Scoring, positions: &[usize]) -> Result<Vec<Explanation>, ModelError>;
    /// The heads this ranker predicts besides relevance.
    fn heads(&self) -> Vec<String> {
        Vec::new()
    }
    /// A one-line description for logs and `/readyz`.
    fn describe(&self) -> String {
        let meta = self.meta();
        format!(
            "{} model trained {} on {} ({} features)",
            meta.ranker,
            meta.trained_at,
            meta.data_fingerprint.get(..12).unwrap_or(""),
            meta.feature_names.len()
        )
    }
}

/// The rankers a model directory serves.
#[derive(Clone, Default)]
pub struct Models {
    rankers: BTreeMap<String, Arc<dyn Ranker>>,
    /// How many hybrid candidates the models reorder.
    depth: usize,
}

impl Models {
    pub fn get(&self, kind: RankerKind) -> Option<&Arc<dyn Ranker>> {
        self.rankers.get(&kind.to_string())
    }

    pub fn rankers(&self) -> impl Iterator<Item = &Arc<dyn Ranker>> {
        self.rankers.values()
    }

    pub fn kinds(&self) -> Vec<RankerKind> {
        self.rankers.values().map(|r| r.kind()).collect()
    }

    /// The best ranker held: the ensemble, else LightGBM, else the neural ranker.
    pub fn best(&self) -> Option<RankerKind> {
        [RankerKind::Ensemble, RankerKind::Ltr, RankerKind::Neural].into_iter().find(|k| self.get(*k).is_some())
    }

    /// How many of the hybrid list's first candidates the models reorder: the depth their
    /// training rows came from.
    pub fn rerank_depth(&self) -> usize {
        self.depth
    }

    /// Makes the models reorder `depth` candidates (benchmarks and experiments).
    pub fn set_rerank_depth(&mut self, depth: usize) {
        self.depth = depth;
    }

    fn insert(&mut self, ranker: Arc<dyn Ranker>) {
        self.depth = self.depth.max(ranker.meta().rerank_depth);
        self.rankers.insert(ranker.kind().to_string(), ranker);
    }
}

/// Loads a model directory: `lgbm` serves `ltr`, `neural` serves `neural`, and `ensemble`
/// serves all three.
pub fn load(dir: &Path) -> Result<Models, ModelError> {
    let meta = read_meta(dir)?;
    let mut models = Models::default();
    match meta.ranker.as_str() {
        lgbm::KIND => models.insert(Arc::new(lgbm::LgbmRanker::load(dir)?)),
        neural::KIND => models.insert(Arc::new(neural::NeuralRanker::load(dir)?)),
        ensemble::KIND => {
            let ensemble = ensemble::Ensemble::load(dir)?;
            models.insert(ensemble.lgbm.clone());
            models.insert(ensemble.neural.clone());
            models.insert(Arc::new(ensemble));
        }
        other => {
            return Err(ModelError::Corrupt {
                path: dir.join(META_FILE).display().to_string(),
                message: format!("unknown ranker kind '{other}' (lgbm, neural or ensemble)"),
            })
        }
    }
    Ok(models)
}

/// Each query's scores standardised (mean 0, standard deviation 1), so rankers of
/// different scales can be blended; a query whose scores are all equal gets zeros.
pub fn standardise(scores: &[f64]) -> (Vec<f64>, f64, f64) {
    if scores.is_empty() {
        return (Vec::new(), 0.0, 1.0);
    }
    let n = scores.len() as f64;
    let mean = scores.iter().sum::<f64>() / n;
    let sd = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n).sqrt();
    let sd = if sd > 1e-12 { sd } else { 1.0 };
    (scores.iter().map(|s| (s - mean) / sd).collect(), mean, sd)
}
