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
//! use shelf::retrieve::Source;
//!
//! let bm25 = [("a", 9.0), ("b", 7.0)];
//! let dense = [("b", 0.8), ("c", 0.7)];
//! let config = HybridConfig { fusion: Fusion::Rrf, ..HybridConfig::default() };
//! let fused = fuse(&[(Source::Bm25, &bm25[..]), (Source::Dense, &dense[..])], &config);
//! assert_eq!(fused[0].id, "b"); // proposed by both
//! assert_eq!(fused[0].sources.dense.map(|s| s.rank), Some(1));
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::search::{SourceScore, Sources};

/// Where a ranked list of candidates comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Bm25,
    Dense,
}

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
    pub sources: Sources,
}

/// Fuses ranked lists (best first) of `(product id, score)`, each from its source.
pub fn fuse<Id: AsRef<str>>(lists: &[(Source, &[(Id, f32)])], config: &HybridConfig) -> Vec<Candidate> {
    let mut by_id: HashMap<&str, Candidate> = HashMap::new();
    for (source, list) in lists {
        let (weight, share) = match source {
            Source::Bm25 => (config.bm25_weight, 1.0 - config.alpha),
            Source::Dense => (config.dense_weight, config.alpha),
        };
        let (low, high) = list.iter().fold((f32::MAX, f32::MIN), |(lo, hi), (_, s)| (lo.min(*s), hi.max(*s)));
        for (at, (id, score)) in list.iter().enumerate() {
            let rank = at + 1;
            let contribution = match config.fusion {
                Fusion::Rrf => weight / (config.rrf_k + rank as f32),
                Fusion::Convex => share * if high > low { (score - low) / (high - low) } else { 1.0 },
            };
            let id = id.as_ref();
            let candidate = by_id.entry(id).or_insert_with(|| Candidate {
                id: id.to_string(),
                score: 0.0,
                sources: Sources::default(),
            });
            candidate.score += contribution;
            let slot = match source {
                Source::Bm25 => &mut candidate.sources.bm25,
                Source::Dense => &mut candidate.sources.dense,
            };
            *slot = Some(SourceScore { rank, score: *score });
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
        let bm25 = [("a", 20.0), ("b", 10.0)];
        let dense = [("b", 0.9), ("a", 0.5)];
        let config = HybridConfig { fusion: Fusion::Convex, alpha: 0.75, ..HybridConfig::default() };
        let fused = fuse(&[(Source::Bm25, &bm25[..]), (Source::Dense, &dense[..])], &config);
        assert_eq!(fused[0].id, "b");
        assert!((fused[0].score - 0.75).abs() < 1e-6 && (fused[1].score - 0.25).abs() < 1e-6);
        let config = HybridConfig { fusion: Fusion::Convex, alpha: 0.25, ..config };
        assert_eq!(fuse(&[(Source::Bm25, &bm25[..]), (Source::Dense, &dense[..])], &config)[0].id, "a");
    }
}
