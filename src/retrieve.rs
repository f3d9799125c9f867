//! Hybrid candidates: the lexical and the dense top lists merged into one ranking.
//!
//! Each source proposes its top `candidates` products; the union is ranked by
//!
//! - **reciprocal rank fusion** (`rrf`): `Σ weight_s / (k + rank_s)` over the sources that
//!   proposed the product, or
//! - a **convex combination** (`convex`): `alpha · dense + (1 − alpha) · bm25`, each score
//!   min-max normalised over its own list, 0 where a source did not propose the product.
//!
//! Every candidate keeps its rank and score in each source (`sources` in the API).
//!
//! ```
//! use shelf::retrieve::{fuse, Fusion, HybridConfig};
//!
//! let bm25 = vec![("a".to_string(), 9.0), ("b".to_string(), 7.0)];
//! let dense = vec![("b".to_string(), 0.8), ("c".to_string(), 0.7)];
//! let config = HybridConfig { fusion: Fusion::Rrf, ..HybridConfig::default() };
//! let fused = fuse(&[("bm25", &bm25), ("dense", &dense)], &config);
//! assert_eq!(fused[0].id, "b"); // proposed by both
//! assert_eq!(fused[0].sources["dense"].rank, 1);
//! ```

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::search::SourceScore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    Rrf,
    Convex,
}

/// How hybrid candidates are gathered and fused (the `[hybrid]` table of the index config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HybridConfig {
    pub fusion: Fusion,
    /// Products each source proposes.
    pub candidates: usize,
    /// RRF's rank offset.
    pub rrf_k: f32,
    pub bm25_weight: f32,
    pub dense_weight: f32,
    /// Convex combination: the dense share.
    pub alpha: f32,
}

impl Default for HybridConfig {
    fn default() -> Self {
        HybridConfig {
            fusion: Fusion::Convex,
            candidates: 100,
            rrf_k: 60.0,
            bm25_weight: 1.0,
            dense_weight: 1.0,
            alpha: 0.2,
        }
    }
}

/// A fused candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub score: f32,
    pub sources: BTreeMap<String, SourceScore>,
}

/// Fuses ranked lists (best first) of `(product id, score)` named by source.
pub fn fuse(lists: &[(&str, &[(String, f32)])], config: &HybridConfig) -> Vec<Candidate> {
    let mut by_id: HashMap<&str, Candidate> = HashMap::new();
    for (source, list) in lists {
        let weight = if *source == "dense" { config.dense_weight } else { config.bm25_weight };
        let share = if *source == "dense" { config.alpha } else { 1.0 - config.alpha };
        let (low, high) = list.iter().fold((f32::MAX, f32::MIN), |(lo, hi), (_, s)| (lo.min(*s), hi.max(*s)));
        for (at, (id, score)) in list.iter().enumerate() {
            let rank = at + 1;
            let contribution = match config.fusion {
                Fusion::Rrf => weight / (config.rrf_k + rank as f32),
                Fusion::Convex => share * if high > low { (score - low) / (high - low) } else { 1.0 },
            };
            let candidate = by_id.entry(id.as_str()).or_insert_with(|| Candidate {
                id: id.clone(),
                score: 0.0,
                sources: BTreeMap::new(),
            });
            candidate.score += contribution;
            candidate.sources.insert(source.to_string(), SourceScore { rank, score: *score });
        }
    }
    let mut fused: Vec<Candidate> = by_id.into_values().collect();
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convex_normalises_each_list() {
        let bm25 = vec![("a".to_string(), 20.0), ("b".to_string(), 10.0)];
        let dense = vec![("b".to_string(), 0.9), ("a".to_string(), 0.5)];
        let config = HybridConfig { fusion: Fusion::Convex, alpha: 0.75, ..HybridConfig::default() };
        let fused = fuse(&[("bm25", &bm25), ("dense", &dense)], &config);
        assert_eq!(fused[0].id, "b");
        assert!((fused[0].score - 0.75).abs() < 1e-6 && (fused[1].score - 0.25).abs() < 1e-6);
        let config = HybridConfig { fusion: Fusion::Convex, alpha: 0.25, ..config };
        assert_eq!(fuse(&[("bm25", &bm25), ("dense", &dense)], &config)[0].id, "a");
    }
}
