//! Approximate nearest neighbours: an HNSW graph over the product vectors.
//!
//! Exact search compares the query with every product: 55k products × 384 dimensions take
//! about 11 ms on a 2-core machine, and it grows with the catalogue. The graph (hnsw_rs, a
//! Hierarchical Navigable Small World graph) visits a few thousand products instead. Two knobs trade speed for
//! recall: `m` and `ef_construction` shape the graph at build time, `ef_search` is how wide
//! each query looks (read from the index config at open, so it can be retuned without a
//! rebuild). `shelf ann-recall` measures recall against exact search.
//!
//! ```
//! use shelf::dense::{AnnIndex, AnnParams, EncoderIdentity, Precision, VectorStore};
//!
//! let identity = EncoderIdentity {
//!     weights_sha256: "-".into(),
//!     dim: 2,
//!     text: "-".into(),
//!     query_adapter: None,
//!     products: Precision::Fp32,
//! };
//! let mut store = VectorStore::new(identity);
//! for (at, angle) in [0.0f32, 0.5, 1.0, 1.5].iter().enumerate() {
//!     store.push(&format!("p{at}"), String::new(), &[angle.cos(), angle.sin()]);
//! }
//! let ann = AnnIndex::build(&store, &AnnParams::default(), &|_| ());
//! let nearest = ann.nearest_rows(&store, &[1.0, 0.0], 2, 16, Precision::Int8);
//! assert_eq!(nearest.iter().map(|(row, _)| *row).collect::<Vec<_>>(), vec![0, 1]);
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;
use std::sync::OnceLock;

use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{AnnT, Distance, Hnsw};
use serde::{Deserialize, Serialize};

use super::{DenseError, Precision, VectorStore};

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
    /// Insert products on every core. Faster, but the threads' race changes a few links
    /// from one build to the next, and with them the learned rankers trained on the index;
    /// one at a time (the default), the same catalogue always gives the same graph.
    pub parallel: bool,
}

impl Default for AnnParams {
    fn default() -> Self {
        AnnParams { m: 16, ef_construction: 200, parallel: false }
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
///
/// On a CPU with AVX2 the same lanes run as one 256-bit register instead of two 128-bit ones
/// (the baseline x86-64 target has only SSE2): the same operations in the same order, so the
/// same result to the bit. A Home Depot query's graph walk (ef 200, `shelf ann-recall`,
/// alternating) fell from p50 1.50 / 1.53 ms to 1.21 / 1.38 ms.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, the only requirement of `dot_avx2`.
        return unsafe { dot_avx2(a, b) };
    }
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
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
///
/// hnsw_rs builds the graph and reads and writes its files; searches walk
/// `Layers`, a read-only copy of its neighbour lists, over the store's own vectors.
/// hnsw_rs's search is made for a graph that is still growing: a lock, a reference count
/// and a hashed set entry for every point it visits. A served graph never changes, so the
/// copy walks plain arrays: about half the time per query on Home Depot (p50 2.0 → 1.1 ms
/// at ef 200), the same products (see the README's ANN table).
pub struct AnnIndex {
    /// The graph as hnsw_rs holds it, kept after a build so that it can be saved; a loaded
    /// index does not need it.
    built: Option<Hnsw<'static, f32, UnitCosine>>,
    layers: Layers,
    /// The store's vectors in 8 bits, for a walk that reads a quarter of the bytes (21 MB
    /// for Home Depot's 54,667 products): made by [`AnnIndex::prepare`] when an index is
    /// opened to walk in 8 bits, else at the first such walk.
    codes: OnceLock<Codes>,
}

impl AnnIndex {
    /// Builds the graph over every row of `store` (in parallel if `params` says so);
    /// `progress` hears how many rows were just inserted.
    pub fn build(store: &VectorStore, params: &AnnParams, progress: &dyn Fn(usize)) -> AnnIndex {
        let m = params.m.clamp(2, 255);
        let graph = Hnsw::new(m, store.len().max(1), MAX_LAYERS, params.ef_construction.max(m), UnitCosine);
        let rows: Vec<(&[f32], usize)> = (0..store.len()).map(|row| (store.vector(row), row)).collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            if params.parallel {
                graph.parallel_insert_slice(&chunk.to_vec());
            } else {
                chunk.iter().for_each(|row| graph.insert_slice(*row));
            }
            progress(chunk.len());
        }
        let layers = Layers::of(&graph, store.len()).expect("the graph was built from the store's rows");
        AnnIndex { built: Some(graph), layers, codes: OnceLock::new() }
    }

    /// Makes now what a walk of `walk`'s precision over `store` needs, so that the first
    /// search does not pay for it.
    pub fn prepare(&self, store: &VectorStore, walk: Precision) {
        if walk == Precision::Int8 {
            self.codes(store);
        }
    }

    fn codes(&self, store: &VectorStore) -> &Codes {
        self.codes.get_or_init(|| Codes::of(store))
    }

    /// How many products the graph links.
    pub fn len(&self) -> usize {
        self.layers.rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows of the (about) `k` products of `store` nearest to `query`, nearest first,
    /// with their cosine; `ef` is how many candidates the search keeps while walking the
    /// graph (at least `k`), `walk` the arithmetic of the similarities that guide it.
    ///
    /// The walk is bound by memory: each step reads the vectors of a product's neighbours.
    /// An 8-bit walk (`[dense] walk = "int8"`) reads a quarter of the bytes, then gives the
    /// products it kept their float cosines and order: on Home Depot (ef 200) 6–25 % faster
    /// per query (more when memory is busy), recall@100 against exact search 0.9814 against 0.9815, and the same dense
    /// nDCG@10 on 9,335 of 9,341 queries. The few products it finds differently still change
    /// what a learned ranker is trained on, so float stays the default.
    pub fn nearest_rows(
        &self,
        store: &VectorStore,
        query: &[f32],
        k: usize,
        ef: usize,
        walk: Precision,
    ) -> Vec<(usize, f32)> {
        if k == 0 || self.is_empty() || store.len() < self.len() {
            return Vec::new();
        }
        let vector = |row: u32| store.vector(row as usize);
        let exact = |row: u32| dot(vector(row), query);
        let mut found = match walk {
            Precision::Fp32 => self.layers.search(exact, |row| prefetch(vector(row)), ef.max(k)),
            Precision::Int8 => {
                let (query_codes, scale) = quantize(query);
                let codes = self.codes(store);
                let mut found = self.layers.search(
                    |row| codes.similarity(row, &query_codes, scale),
                    |row| prefetch(codes.row(row)),
                    ef.max(k),
                );
                // The walk chose the products; their order and cosines are the float ones.
                for (similarity, row) in &mut found {
                    *similarity = exact(*row);
                }
                found.sort_by(best_first);
                found
            }
        };
        found.truncate(k);
        found.into_iter().map(|(similarity, row)| (row as usize, similarity)).collect()
    }

    /// Writes the graph of [`AnnIndex::build`] into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), DenseError> {
        let Some(graph) = &self.built else {
            return Err(DenseError::Model("only a graph built in this process can be saved".into()));
        };
        let written = graph
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

    /// Loads the graph saved in `dir`, which must link the `rows` products of a store.
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
        let layers = Layers::of(&graph, rows).ok_or_else(|| damaged(format!("point ids beyond the {rows} vectors")))?;
        Ok(AnnIndex { built: None, layers, codes: OnceLock::new() })
    }
}

/// The graph's neighbour lists, layer by layer, as compressed sparse rows: the neighbours
/// of `row` in `layer` are `targets[layer][offsets[layer][row]..offsets[layer][row + 1]]`.
/// Layer 0 links every product; each layer above links a thinning subset, and the search
/// enters at the top.
struct Layers {
    entry: u32,
    offsets: Vec<Vec<u32>>,
    targets: Vec<Vec<u32>>,
}

impl Layers {
    /// Copies hnsw_rs's graph of `rows` products (its data ids are the store's rows), or
    /// `None` when it names a product at or past `rows`.
    fn of(graph: &Hnsw<'static, f32, UnitCosine>, rows: usize) -> Option<Layers> {
        let points = graph.get_point_indexation();
        let top = points.get_max_level_observed() as usize;
        let mut lists: Vec<Vec<Vec<u32>>> = vec![vec![Vec::new(); rows]; top + 1];
        let row_of = |id: usize| (id < rows).then_some(id as u32);
        for point in points {
            let row = row_of(point.get_origin_id())? as usize;
            for (layer, neighbours) in point.get_neighborhood_id().into_iter().enumerate().take(top + 1) {
                lists[layer][row] = neighbours.iter().map(|n| row_of(n.d_id)).collect::<Option<_>>()?;
            }
        }
        // hnsw_rs enters at the first point that reached the top layer.
        let entry = points.get_layer_iterator(top).next().map_or(0, |p| p.get_origin_id() as u32);
        let (mut offsets, mut targets) = (Vec::with_capacity(top + 1), Vec::with_capacity(top + 1));
        for layer in lists {
            let mut starts = Vec::with_capacity(rows + 1);
            starts.push(0u32);
            let mut flat = Vec::new();
            for neighbours in layer {
                flat.extend_from_slice(&neighbours);
                starts.push(flat.len() as u32);
            }
            offsets.push(starts);
            targets.push(flat);
        }
        Some(Layers { entry, offsets, targets })
    }

    fn rows(&self) -> usize {
        self.offsets[0].len() - 1
    }

    fn neighbours(&self, layer: usize, row: u32) -> &[u32] {
        let starts = &self.offsets[layer];
        &self.targets[layer][starts[row as usize] as usize..starts[row as usize + 1] as usize]
    }

    /// The best `ef` rows by `similarity` that the walk meets, best first: a descent
    /// through the upper layers towards the query, then a best-first search
    /// of layer 0 that keeps the `ef` best seen so far and stops when its nearest unexplored
    /// candidate is worse than all of them.
    fn search(&self, similarity: impl Fn(u32) -> f32, prefetch: impl Fn(u32), ef: usize) -> Vec<(f32, u32)> {
        let mut at = self.entry;
        let mut best = similarity(at);
        for layer in (1..self.offsets.len()).rev() {
            // One step per layer, as hnsw_rs takes it (so both walks find the same products).
            for &next in self.neighbours(layer, at) {
                let s = similarity(next);
                if s > best {
                    (at, best) = (next, s);
                }
            }
        }
        let mut visited = Visited(vec![0u64; self.rows().div_ceil(64)]);
        visited.insert(at);
        // `frontier` pops the most similar candidate; `kept` pops the least similar kept.
        let mut frontier = BinaryHeap::from([Scored(best, at)]);
        let mut kept = BinaryHeap::from([Reverse(Scored(best, at))]);
        while let Some(Scored(s, row)) = frontier.pop() {
            let worst = kept.peek().map_or(f32::NEG_INFINITY, |Reverse(w)| w.0);
            if kept.len() >= ef && s < worst {
                break;
            }
            // Fetching the unseen neighbours' vectors from memory all at once overlaps the
            // waits (the walk is bound by memory, not arithmetic): 8 % faster on Home Depot.
            for &next in self.neighbours(0, row) {
                if !visited.contains(next) {
                    prefetch(next);
                }
            }
            for &next in self.neighbours(0, row) {
                if !visited.insert(next) {
                    continue;
                }
                let s = similarity(next);
                let worst = kept.peek().map_or(f32::NEG_INFINITY, |Reverse(w)| w.0);
                if kept.len() < ef || s > worst {
                    frontier.push(Scored(s, next));
                    kept.push(Reverse(Scored(s, next)));
                    if kept.len() > ef {
                        kept.pop();
                    }
                }
            }
        }
        let mut found: Vec<(f32, u32)> = kept.into_iter().map(|Reverse(Scored(s, row))| (s, row)).collect();
        found.sort_by(best_first);
        found
    }
}

/// The store's vectors as 8-bit integers, each with its own scale (its largest magnitude /
/// 127): 384 bytes a product instead of 1,536, for the graph walk.
struct Codes {
    dim: usize,
    values: Vec<i8>,
    scales: Vec<f32>,
}

impl Codes {
    fn of(store: &VectorStore) -> Codes {
        let dim = store.identity.dim;
        let (mut values, mut scales) = (Vec::with_capacity(store.len() * dim), Vec::with_capacity(store.len()));
        for row in 0..store.len() {
            let (codes, scale) = quantize(store.vector(row));
            values.extend_from_slice(&codes);
            scales.push(scale);
        }
        Codes { dim, values, scales }
    }

    fn row(&self, row: u32) -> &[i8] {
        &self.values[row as usize * self.dim..(row as usize + 1) * self.dim]
    }

    /// About the cosine of `row` with a query quantised as `codes` × `scale`.
    fn similarity(&self, row: u32, codes: &[i8], scale: f32) -> f32 {
        self.scales[row as usize] * scale * dot_i8(self.row(row), codes) as f32
    }
}

/// `vector` as 8-bit integers and the scale that multiplies them back.
fn quantize(vector: &[f32]) -> (Vec<i8>, f32) {
    let largest = vector.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
    (vector.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8).collect(), scale)
}

/// Dot product of 8-bit vectors, exact in 32-bit integers (so the same on every instruction
/// set).
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, the only requirement of `dot_i8_avx2`.
        return unsafe { dot_i8_avx2(a, b) };
    }
    dot_i8_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    dot_i8_lanes(a, b)
}

#[inline(always)]
fn dot_i8_lanes(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(x, y)| i32::from(*x) * i32::from(*y)).sum()
}

/// Most similar first, then the lower row.
fn best_first(a: &(f32, u32), b: &(f32, u32)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// Asks the CPU to start loading `values` into its cache (a hint: nothing on other
/// architectures than x86-64).
#[inline]
fn prefetch<T>(values: &[T]) {
    #[cfg(target_arch = "x86_64")]
    for line in values.chunks(64 / std::mem::size_of::<T>().max(1)) {
        // SAFETY: a prefetch never faults and reads nothing; the address lies in `values`.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

/// The rows a search has met, one bit each.
struct Visited(Vec<u64>);

impl Visited {
    fn contains(&self, row: u32) -> bool {
        self.0[row as usize / 64] & (1 << (row % 64)) != 0
    }

    /// Marks `row`; whether it was new.
    fn insert(&mut self, row: u32) -> bool {
        let new = !self.contains(row);
        self.0[row as usize / 64] |= 1 << (row % 64);
        new
    }
}

/// A row and its similarity to the query, ordered by similarity (then row, for a total
/// order).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored(f32, u32);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// How close graph search comes to exact search, and how fast each is.
#[derive(Debug, Clone, Serialize)]
pub struct RecallReport {
    pub ef_search: usize,
    pub walk: Precision,
    pub k: usize,
    pub queries: usize,
    /// Mean share of the exact top k that the graph search also returned.
    pub recall: f64,
    pub ann_p50_ms: f64,
    pub ann_p95_ms: f64,
    pub exact_p50_ms: f64,
}

/// The share of the rows of `truth` that `found` holds.
fn share_found(found: &[(usize, f32)], truth: &[(usize, f32)]) -> f64 {
    let truth: std::collections::HashSet<usize> = truth.iter().map(|(row, _)| *row).collect();
    found.iter().filter(|(row, _)| truth.contains(row)).count() as f64 / truth.len().max(1) as f64
}

/// Searches every query vector both ways and compares the top `k` lists.
pub fn measure_recall(
    store: &VectorStore,
    queries: &[&[f32]],
    k: usize,
    ef_search: usize,
    walk: Precision,
) -> RecallReport {
    let config = super::DenseConfig { search: super::DenseSearch::Ann, ef_search, walk, ..Default::default() };
    let (mut ann_ms, mut exact_ms, mut recall) = (Vec::new(), Vec::new(), 0.0);
    for query in queries {
        let started = std::time::Instant::now();
        let exact = store.nearest(query, k);
        exact_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let started = std::time::Instant::now();
        let approximate = store.search(query, k, &config);
        ann_ms.push(started.elapsed().as_secs_f64() * 1e3);
        recall += share_found(&approximate, &exact);
    }
    let (ann, exact) = (crate::latency::Summary::of(ann_ms), crate::latency::Summary::of(exact_ms));
    RecallReport {
        ef_search,
        walk,
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
    use crate::dense::EncoderIdentity;

    #[test]
    fn dot_matches_the_plain_sum_on_odd_lengths() {
        let a: Vec<f32> = (0..19).map(|x| x as f32 * 0.1).collect();
        let b: Vec<f32> = (0..19).map(|x| 1.0 - x as f32 * 0.05).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-5);
    }

    #[test]
    fn dot_gives_the_same_bits_on_every_instruction_set() {
        let store = store_of(50, 384, 3);
        for row in 1..store.len() {
            let (a, b) = (store.vector(0), store.vector(row));
            assert_eq!(dot(a, b).to_bits(), dot_lanes(a, b).to_bits());
        }
    }

    /// `count` random unit vectors of `dim` dimensions.
    fn store_of(count: usize, dim: usize, seed: u64) -> VectorStore {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let identity = EncoderIdentity {
            weights_sha256: "-".into(),
            dim,
            text: "-".into(),
            query_adapter: None,
            products: Precision::Fp32,
        };
        let mut store = VectorStore::new(identity);
        for row in 0..count {
            let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            store.push(&format!("p{row}"), String::new(), &v.iter().map(|x| x / norm).collect::<Vec<_>>());
        }
        store
    }

    #[test]
    fn the_walk_is_hnsw_rs_s_and_wide_open_it_is_exact() {
        let store = store_of(4000, 48, 7);
        let queries = store_of(200, 48, 8);
        let ann = AnnIndex::build(&store, &AnnParams::default(), &|_| ());
        let graph = ann.built.as_ref().expect("a built graph");
        let rows = |found: &[(usize, f32)]| found.iter().map(|(row, _)| *row).collect::<Vec<_>>();
        let mut ours = 0.0;
        for q in 0..queries.len() {
            let query = queries.vector(q);
            let exact = store.nearest(query, 10);
            let found = ann.nearest_rows(&store, query, 10, 12, Precision::Fp32);
            assert_eq!(found.len(), 10);
            assert!(found.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
            for (row, similarity) in &found {
                assert_eq!(*similarity, dot(store.vector(*row), query), "the cosine of the row");
            }
            ours += share_found(&found, &exact);
            let theirs: Vec<usize> = graph.search(query, 10, 12).into_iter().map(|n| n.d_id).collect();
            assert_eq!(rows(&found), theirs, "the same walk as hnsw_rs's own search");
            // Keeping every product in view is exact search.
            let everything = ann.nearest_rows(&store, query, 10, store.len(), Precision::Fp32);
            assert_eq!(rows(&everything), rows(&exact));
        }
        // A narrow walk (ef 12) misses some: the graph, not the copy, decides how many.
        let ours = ours / queries.len() as f64;
        assert!(ours > 0.6, "recall@10 {ours:.3}");
    }

    #[test]
    fn an_8_bit_walk_finds_what_the_float_walk_finds_and_reports_float_cosines() {
        let store = store_of(4000, 48, 7);
        let queries = store_of(200, 48, 8);
        let ann = AnnIndex::build(&store, &AnnParams::default(), &|_| ());
        let (mut float_recall, mut int8_recall, mut agreement) = (0.0, 0.0, 0.0);
        for q in 0..queries.len() {
            let query = queries.vector(q);
            let exact = store.nearest(query, 10);
            let float = ann.nearest_rows(&store, query, 10, 40, Precision::Fp32);
            let found = ann.nearest_rows(&store, query, 10, 40, Precision::Int8);
            assert_eq!(found.len(), 10);
            assert!(found.windows(2).all(|w| w[0].1 >= w[1].1), "best first by the float cosine");
            for (row, similarity) in &found {
                assert_eq!(*similarity, dot(store.vector(*row), query), "the float cosine of the row");
            }
            float_recall += share_found(&float, &exact);
            int8_recall += share_found(&found, &exact);
            agreement += share_found(&found, &float);
            let everything = ann.nearest_rows(&store, query, 10, store.len(), Precision::Int8);
            let rows = |found: &[(usize, f32)]| found.iter().map(|(row, _)| *row).collect::<Vec<_>>();
            assert_eq!(rows(&everything), rows(&exact), "wide open, the 8-bit walk is exact search");
        }
        let n = queries.len() as f64;
        let (float_recall, int8_recall, agreement) = (float_recall / n, int8_recall / n, agreement / n);
        assert!(
            int8_recall > float_recall - 0.02,
            "recall@10 {int8_recall:.3} against the float walk's {float_recall:.3}"
        );
        assert!(agreement > 0.95, "{agreement:.3} of the float walk's products found");
    }

    #[test]
    fn quantised_vectors_keep_their_cosines_and_the_8_bit_dot_is_exact() {
        let store = store_of(200, 384, 11);
        let codes = Codes::of(&store);
        let (query, scale) = quantize(store.vector(0));
        assert_eq!(query.iter().map(|c| c.unsigned_abs()).max(), Some(127), "the largest component uses the range");
        for row in 0..store.len() {
            let plain: i32 = codes.row(row as u32).iter().zip(&query).map(|(a, b)| i32::from(*a) * i32::from(*b)).sum();
            assert_eq!(dot_i8(codes.row(row as u32), &query), plain);
            let error = (codes.similarity(row as u32, &query, scale) - store.similarity(row, store.vector(0))).abs();
            assert!(error < 0.01, "row {row}: cosine off by {error}");
        }
        assert_eq!(quantize(&[0.0; 4]), (vec![0; 4], 1.0), "a zero vector stays zero");
    }

    #[test]
    fn one_at_a_time_the_same_vectors_give_the_same_graph() {
        let store = store_of(3000, 8, 5);
        let params = AnnParams { m: 8, ef_construction: 32, parallel: false };
        let saved: Vec<Vec<Vec<u8>>> = (0..2)
            .map(|_| {
                let dir = tempfile::tempdir().expect("a temporary directory");
                AnnIndex::build(&store, &params, &|_| ()).save(dir.path()).expect("saved");
                let mut files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|f| f.unwrap().path()).collect();
                files.sort();
                files.iter().map(|file| std::fs::read(file).unwrap()).collect()
            })
            .collect();
        assert!(!saved[0].is_empty());
        assert_eq!(saved[0], saved[1], "byte for byte");
    }

    #[test]
    fn a_saved_graph_loads_and_searches_the_same() {
        let store = store_of(500, 8, 3);
        let ann = AnnIndex::build(&store, &AnnParams { m: 8, ef_construction: 32, parallel: true }, &|_| ());
        let dir = tempfile::tempdir().expect("a temporary directory");
        ann.save(dir.path()).expect("saved");
        let loaded = AnnIndex::load(dir.path(), store.len()).expect("loaded");
        assert!(loaded.save(dir.path()).is_err(), "a loaded graph is not written back");
        loaded.prepare(&store, Precision::Fp32);
        assert!(loaded.codes.get().is_none(), "a float walk needs no 8-bit copy");
        loaded.prepare(&store, Precision::Int8);
        assert!(loaded.codes.get().is_some(), "made before the first 8-bit search");
        for q in 0..20 {
            let query = store.vector(q * 7);
            for walk in [Precision::Fp32, Precision::Int8] {
                let found = loaded.nearest_rows(&store, query, 5, 16, walk);
                assert_eq!(found, ann.nearest_rows(&store, query, 5, 16, walk));
                assert_eq!(found[0].0, q * 7, "a product is its own nearest");
            }
        }
        assert!(AnnIndex::load(dir.path(), store.len() + 1).is_err(), "a graph of other vectors is refused");
    }

    #[test]
    fn distance_of_a_vector_to_itself_is_zero_not_negative() {
        let v = [0.6f32, 0.8];
        assert_eq!(UnitCosine.eval(&v, &v), 0.0);
    }
}
