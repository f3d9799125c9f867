//! Approximate nearest neighbours: an HNSW graph over the product vectors.
//!
//! Exact search compares the query with every product: 55k products × 384 dimensions is
//! about 2 ms, and it grows with the catalogue. The graph (hnsw_rs, a Hierarchical Navigable
//! Small World graph) visits a few thousand products instead. Two knobs trade speed for
//! recall: `m` and `ef_construction` shape the graph at build time, `ef_search` is how wide
//! each query looks (read from the index config at open, so it can be retuned without a
//! rebuild). `shelf ann-recall` measures recall against exact search.
//!
//! ```
//! use shelf::dense::{AnnIndex, AnnParams, EncoderIdentity, VectorStore};
//!
//! let identity = EncoderIdentity { weights_sha256: "-".into(), dim: 2, text: "-".into(), query_adapter: None };
//! let mut store = VectorStore::new(identity);
//! for (at, angle) in [0.0f32, 0.5, 1.0, 1.5].iter().enumerate() {
//!     store.push(&format!("p{at}"), String::new(), &[angle.cos(), angle.sin()]);
//! }
//! let ann = AnnIndex::build(&store, &AnnParams::default(), &|_| ());
//! let rows = ann.nearest_rows(&[1.0, 0.0], 2, 16);
//! assert_eq!(rows, vec![0, 1]);
//! ```

use std::path::Path;

use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{AnnT, Distance, Hnsw};
use serde::{Deserialize, Serialize};

use super::{DenseError, VectorStore};

/// Basename of the graph files (`hnsw.hnsw.graph`, `hnsw.hnsw.data`) in `dense/`.
const BASENAME: &str = "hnsw";
/// hnsw_rs's upper bound on the number of graph layers.
const MAX_LAYERS: usize = 16;
/// Products inserted between progress updates.
const INSERT_CHUNK: usize = 1024;

/// How the graph is built (the `[dense.ann]` table of the index config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnnParams {
    /// Neighbours kept per product and layer: more is better recall, a bigger graph and a
    /// slower build.
    pub m: usize,
    /// How wide the build searches for each product's neighbours.
    pub ef_construction: usize,
}

impl Default for AnnParams {
    fn default() -> Self {
        AnnParams { m: 16, ef_construction: 200 }
    }
}

/// Cosine distance between unit vectors: `1 − a·b`, never below 0 (rounding makes the dot
/// product of two equal unit vectors slightly more than 1).
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitCosine;

impl Distance<f32> for UnitCosine {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// Dot product in eight independent lanes, which the compiler turns into SIMD.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (chunks_a, chunks_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = chunks_a.remainder().iter().zip(chunks_b.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// An HNSW graph whose points are the rows of a [`VectorStore`].
pub struct AnnIndex {
    graph: Hnsw<'static, f32, UnitCosine>,
}

impl AnnIndex {
    /// Builds the graph over every row of `store` (in parallel); `progress` hears how many
    /// rows were just inserted.
    pub fn build(store: &VectorStore, params: &AnnParams, progress: &dyn Fn(usize)) -> AnnIndex {
        let m = params.m.clamp(2, 255);
        let graph = Hnsw::new(m, store.len().max(1), MAX_LAYERS, params.ef_construction.max(m), UnitCosine);
        let rows: Vec<(&[f32], usize)> = (0..store.len()).map(|row| (store.vector(row), row)).collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            graph.parallel_insert_slice(&chunk.to_vec());
            progress(chunk.len());
        }
        AnnIndex { graph }
    }

    pub fn len(&self) -> usize {
        self.graph.get_nb_point()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows of the (about) `k` nearest products, nearest first; `ef` is how many
    /// candidates the search keeps while walking the graph (at least `k`).
    pub fn nearest_rows(&self, query: &[f32], k: usize, ef: usize) -> Vec<usize> {
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        self.graph.search(query, k, ef.max(k)).into_iter().map(|n| n.d_id).collect()
    }

    pub fn save(&self, dir: &Path) -> Result<(), DenseError> {
        let written = self
            .graph
            .file_dump(dir, BASENAME)
            .map_err(|e| DenseError::Model(format!("writing the HNSW graph in {}: {e}", dir.display())))?;
        if written != BASENAME {
            return Err(DenseError::Model(format!(
                "the HNSW graph in {} was written as {written}, not {BASENAME}",
                dir.display()
            )));
        }
        Ok(())
    }

    /// Whether `dir` holds a graph.
    pub fn exists(dir: &Path) -> bool {
        dir.join(format!("{BASENAME}.hnsw.graph")).exists()
    }

    /// Loads the graph saved in `dir`, which must describe `rows` products.
    pub fn load(dir: &Path, rows: usize) -> Result<AnnIndex, DenseError> {
        let damaged = |what: String| {
            DenseError::Model(format!("the HNSW graph in {} is damaged ({what}); rebuild the index", dir.display()))
        };
        // The loaded graph may borrow from its loader (when memory-mapped, which shelf does
        // not ask for), so hnsw_rs ties their lifetimes: the small loader is leaked to let the
        // graph live as long as the index. An index is opened once per start or reload.
        let loader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, BASENAME)));
        // hnsw_rs asserts on malformed files instead of returning an error.
        let load = move || {
            let loader = loader;
            loader.load_hnsw::<f32, UnitCosine>()
        };
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(load));
        let graph = match loaded {
            Ok(Ok(graph)) => graph,
            Ok(Err(error)) => return Err(damaged(error.to_string())),
            Err(_) => return Err(damaged("unreadable graph file".to_string())),
        };
        if graph.get_nb_point() != rows {
            return Err(damaged(format!("{} points for {rows} vectors", graph.get_nb_point())));
        }
        Ok(AnnIndex { graph })
    }
}

/// How close graph search comes to exact search, and how fast each is.
#[derive(Debug, Clone, Serialize)]
pub struct RecallReport {
    pub ef_search: usize,
    pub k: usize,
    pub queries: usize,
    /// Mean share of the exact top k that the graph search also returned.
    pub recall: f64,
    pub ann_p50_ms: f64,
    pub ann_p95_ms: f64,
    pub exact_p50_ms: f64,
}

/// Searches every query vector both ways and compares the top `k` lists.
pub fn measure_recall(store: &VectorStore, queries: &[&[f32]], k: usize, ef_search: usize) -> RecallReport {
    let config = super::DenseConfig { search: super::DenseSearch::Ann, ef_search, ..Default::default() };
    let (mut ann_ms, mut exact_ms, mut recall) = (Vec::new(), Vec::new(), 0.0);
    for query in queries {
        let started = std::time::Instant::now();
        let exact = store.nearest(query, k);
        exact_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let started = std::time::Instant::now();
        let approximate = store.search(query, k, &config);
        ann_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let truth: std::collections::HashSet<usize> = exact.iter().map(|(row, _)| *row).collect();
        let found = approximate.iter().filter(|(row, _)| truth.contains(row)).count();
        recall += found as f64 / truth.len().max(1) as f64;
    }
    let (ann, exact) = (crate::latency::Summary::of(ann_ms), crate::latency::Summary::of(exact_ms));
    RecallReport {
        ef_search,
        k,
        queries: queries.len(),
        recall: recall / queries.len().max(1) as f64,
        ann_p50_ms: ann.p50,
        ann_p95_ms: ann.p95,
        exact_p50_ms: exact.p50,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum_on_odd_lengths() {
        let a: Vec<f32> = (0..19).map(|x| x as f32 * 0.1).collect();
        let b: Vec<f32> = (0..19).map(|x| 1.0 - x as f32 * 0.05).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-5);
    }

    #[test]
    fn distance_of_a_vector_to_itself_is_zero_not_negative() {
        let v = [0.6f32, 0.8];
        assert_eq!(UnitCosine.eval(&v, &v), 0.0);
    }
}
