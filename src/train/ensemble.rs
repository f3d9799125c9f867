//! Training the ensemble: LightGBM and the neural ranker on the same folds, then the blend
//! weight that gives the best held-out nDCG@10 on the **tuning part** of the queries
//! ([`crate::eval::split`]), so the reporting part stays untouched by the choice.

use std::path::Path;
use std::time::Instant;

use super::{candidates_ndcg, hybrid_ndcg, meta, Prepared, TrainError, TrainOptions, TrainReport, Trained};
use crate::dense::VectorStore;
use crate::eval::split::Part;
use crate::rank::ensemble::{self, Ensemble, EnsembleParams};

/// Weights of LightGBM tried: 0, 0.05, …, 1.
const STEPS: usize = 20;
/// Fewer tuning-part queries than this, and the weight is tuned on every query.
const MIN_TUNING_QUERIES: usize = 20;

pub(crate) fn train(
    data: &Prepared,
    vectors: Option<&VectorStore>,
    options: &TrainOptions,
    out: &Path,
) -> Result<Trained, TrainError> {
    let started = Instant::now();
    let member = |dir: &str| -> Result<std::path::PathBuf, TrainError> {
        let path = out.join(dir);
        std::fs::create_dir_all(&path).map_err(super::io(&path))?;
        Ok(path)
    };
    let lgbm_options = TrainOptions { ranker: super::TrainerKind::Lgbm, ..options.clone() };
    let (lgbm, lgbm_scores) = super::lgbm::train(data, &lgbm_options, &member(ensemble::LGBM_DIR)?)?;
    let neural_options = TrainOptions { ranker: super::TrainerKind::Neural, ..options.clone() };
    let (neural, neural_scores) = super::neural::train(data, vectors, &neural_options, &member(ensemble::NEURAL_DIR)?)?;

    let blended = |weight: f64| -> Vec<Vec<f64>> {
        lgbm_scores.iter().zip(&neural_scores).map(|(l, n)| Ensemble::blend(weight, l, n)).collect()
    };
    let all: Vec<usize> = (0..data.queries.len()).collect();
    let tuning: Vec<usize> = all.iter().copied().filter(|&q| Part::of(&data.queries[q].query) == Part::Tune).collect();
    let (tuned_on, which) = if tuning.len() >= MIN_TUNING_QUERIES {
        (format!("held-out scores of the {} tuning-part queries", tuning.len()), tuning)
    } else {
        (format!("held-out scores of all {} queries (too few in the tuning part)", all.len()), all.clone())
    };
    let depth = options.rerank_depth;
    let mut best = (f64::MIN, 0.5);
    for step in 0..=STEPS {
        let weight = step as f64 / STEPS as f64;
        let scores = blended(weight);
        let ndcg = candidates_ndcg(data, &which, depth, &|q, at| scores[q].get(at).copied().unwrap_or(f64::MIN));
        if ndcg > best.0 + 1e-9 {
            best = (ndcg, weight);
        }
    }
    let lgbm_weight = best.1;
    let scores = blended(lgbm_weight);
    let cv_ndcg10 = candidates_ndcg(data, &all, depth, &|q, at| scores[q].get(at).copied().unwrap_or(f64::MIN));
    let cv_ndcg10_hybrid = hybrid_ndcg(data, &all, depth);
    let params = EnsembleParams { lgbm_weight, tuned_on };
    let parameters = serde_json::to_value(&params).map_err(|e| TrainError::Invalid(e.to_string()))?;
    let cv = [
        ("ndcg@10_candidates", cv_ndcg10),
        ("ndcg@10_candidates_hybrid", cv_ndcg10_hybrid),
        ("ndcg@10_candidates_lgbm", lgbm.report.cv_ndcg10),
        ("ndcg@10_candidates_neural", neural.report.cv_ndcg10),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let seconds = started.elapsed().as_secs_f64();
    meta(ensemble::KIND, data, options, 0, parameters, cv, seconds).write(out)?;
    let report = TrainReport {
        ranker: ensemble::KIND.into(),
        queries: data.queries.len(),
        rows: data.rows(),
        cv_ndcg10,
        cv_ndcg10_hybrid,
        heads: neural.report.heads.clone(),
        importance: lgbm.report.importance.clone(),
        lgbm_weight: Some(lgbm_weight),
        members: vec![lgbm.report, neural.report],
        seconds,
        ..TrainReport::default()
    };
    Ok(Trained { report, booster: lgbm.booster })
}
