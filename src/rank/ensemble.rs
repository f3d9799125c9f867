//! The ensemble ranker (`ensemble`): LightGBM and the neural ranker blended.
//!
//! Their scores live on different scales, so each member's scores are standardised over
//! the query's candidates (mean 0, standard deviation 1) and blended:
//! `score = w × lgbm + (1 − w) × neural`. The weight `w` is tuned at training on the
//! out-of-fold scores of the tuning part of the judged queries (see
//! [`crate::train::ensemble`]). The directory holds both members:
//!
//! ```text
//! models/<name>/
//!   meta.json   ranker "ensemble", the weight and how it was tuned in `parameters`
//!   lgbm/       a complete LightGBM model directory
//!   neural/     a complete neural model directory
//! ```
//!
//! An explanation is the members' explanations put through the same arithmetic, so the
//! contributions still add up to the blended score.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::lgbm::LgbmRanker;
use super::neural::NeuralRanker;
use super::{read_meta, standardise, Explanation, Inputs, ModelError, ModelMeta, Ranker, Scored, Scoring};
use crate::search::RankerKind;

/// `meta.json`'s `ranker` for this kind.
pub const KIND: &str = "ensemble";
pub const LGBM_DIR: &str = "lgbm";
pub const NEURAL_DIR: &str = "neural";

/// The blend, as `meta.json`'s `parameters` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleParams {
    /// Weight of LightGBM's standardised score; the neural ranker's is `1 − weight`.
    pub lgbm_weight: f64,
    /// Which queries the weight was tuned on.
    pub tuned_on: String,
}

pub struct Ensemble {
    pub meta: ModelMeta,
    pub params: EnsembleParams,
    pub lgbm: Arc<dyn Ranker>,
    pub neural: Arc<dyn Ranker>,
}

impl Ensemble {
    pub fn load(dir: &Path) -> Result<Ensemble, ModelError> {
        let meta = read_meta(dir)?;
        let meta_path = dir.join(super::META_FILE);
        let params: EnsembleParams =
            serde_json::from_value(meta.parameters.clone()).map_err(|e| ModelError::corrupt(&meta_path, e))?;
        if !(0.0..=1.0).contains(&params.lgbm_weight) {
            return Err(ModelError::corrupt(&meta_path, "lgbm_weight must be between 0 and 1"));
        }
        let lgbm = LgbmRanker::load(&dir.join(LGBM_DIR))?;
        let neural = NeuralRanker::load(&dir.join(NEURAL_DIR))?;
        Ok(Ensemble::new(meta, params, Arc::new(lgbm), Arc::new(neural)))
    }

    pub fn new(meta: ModelMeta, params: EnsembleParams, lgbm: Arc<dyn Ranker>, neural: Arc<dyn Ranker>) -> Ensemble {
        Ensemble { meta, params, lgbm, neural }
    }

    /// Blends two members' relevance scores of one query's candidates.
    pub fn blend(lgbm_weight: f64, lgbm: &[f64], neural: &[f64]) -> Vec<f64> {
        let (l, _, _) = standardise(lgbm);
        let (n, _, _) = standardise(neural);
        l.iter().zip(&n).map(|(l, n)| lgbm_weight * l + (1.0 - lgbm_weight) * n).collect()
    }
}

impl Ranker for Ensemble {
    fn kind(&self) -> RankerKind {
        RankerKind::Ensemble
    }

    fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    fn heads(&self) -> Vec<String> {
        self.neural.heads()
    }

    fn score(&self, inputs: &Inputs, scoring: Scoring) -> Result<Scored, ModelError> {
        let lgbm = self.lgbm.score(inputs, scoring)?;
        let neural = self.neural.score(inputs, scoring)?;
        let relevance = Ensemble::blend(self.params.lgbm_weight, &lgbm.relevance, &neural.relevance);
        Ok(Scored { relevance, heads: neural.heads })
    }

    fn explain(&self, inputs: &Inputs, scoring: Scoring, positions: &[usize]) -> Result<Vec<Explanation>, ModelError> {
        let w = self.params.lgbm_weight;
        let (_, l_mean, l_sd) = standardise(&self.lgbm.score(inputs, scoring)?.relevance);
        let (_, n_mean, n_sd) = standardise(&self.neural.score(inputs, scoring)?.relevance);
        let lgbm = self.lgbm.explain(inputs, scoring, positions)?;
        let neural = self.neural.explain(inputs, scoring, positions)?;
        let (l_scale, n_scale) = (w / l_sd, (1.0 - w) / n_sd);
        Ok(lgbm
            .into_iter()
            .zip(neural)
            .map(|(l, n)| {
                let mut contributions: Vec<(String, f64)> = Vec::with_capacity(n.contributions.len());
                let of_lgbm: BTreeMap<&str, f64> = l.contributions.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                for (name, value) in &n.contributions {
                    let from_lgbm = of_lgbm.get(name.as_str()).copied().unwrap_or(0.0);
                    contributions.push((name.clone(), l_scale * from_lgbm + n_scale * value));
                }
                Explanation {
                    score: l_scale * (l.score - l_mean) + n_scale * (n.score - n_mean),
                    bias: l_scale * (l.bias - l_mean) + n_scale * (n.bias - n_mean),
                    contributions,
                    residual: n_scale * n.residual,
                    method: "blend",
                    heads: n.heads,
                    members: BTreeMap::from([("ltr".to_string(), l.score), ("neural".to_string(), n.score)]),
                }
            })
            .collect())
    }
}
