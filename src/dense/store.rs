//! Product vectors on disk and exact nearest-neighbour search over them.
//!
//! An index directory's `dense/` folder holds one unit vector per product (`vectors.f32`,
//! little-endian, row-major), the product ids in row order and a hash of the text each was
//! embedded from (`rows.json`), and what made them (`meta.json`: the encoder's identity and
//! the text recipe). Rebuilding an index reuses the vector of every product whose text and
//! encoder did not change. Each category's centroid (the unit mean of its products' vectors:
//! `centroids.json` names them, `centroids.f32` holds them) is computed at build time, so
//! opening an index reads it instead of every product. Beside them, an HNSW graph
//! ([`AnnIndex`]) answers approximate nearest-neighbour queries without comparing the query
//! with every product.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ndarray::{ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::Product;

use super::{AnnIndex, AnnParams, DenseConfig, DenseError, DenseSearch, Precision};

const VECTORS: &str = "vectors.f32";
const ROWS: &str = "rows.json";
const META: &str = "meta.json";
const CENTROID_NAMES: &str = "centroids.json";
const CENTROIDS: &str = "centroids.f32";

/// Which encoder made the vectors: vectors of different encoders never mix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderIdentity {
    /// sha256 of the weights file.
    pub weights_sha256: String,
    pub dim: usize,
    /// How a product becomes text, e.g. `title | brand | category`.
    pub text: String,
    /// sha256 of the query adapter the index's queries go through, if any. It changes how
    /// queries are embedded, not products: vectors are reused across adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_adapter: Option<String>,
    /// The arithmetic products were encoded in (`int8`: the 8-bit graph). Vectors made
    /// before the choice existed are float.
    #[serde(default, skip_serializing_if = "Precision::is_fp32")]
    pub products: Precision,
}

impl EncoderIdentity {
    /// Whether `other` embeds products exactly as this does (same weights, text and
    /// arithmetic), so its product vectors can be reused, whatever adapter its queries go
    /// through.
    pub fn same_products(&self, other: &EncoderIdentity) -> bool {
        self.weights_sha256 == other.weights_sha256
            && self.dim == other.dim
            && self.text == other.text
            && self.products == other.products
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Row {
    id: String,
    /// Hash of the embedded text, to reuse the vector when the text is unchanged.
    text: String,
}

/// Vectors of a catalogue's products.
pub struct VectorStore {
    pub identity: EncoderIdentity,
    rows: Vec<Row>,
    data: Vec<f32>,
    by_id: HashMap<String, usize>,
    /// The graph over the vectors, when one was built.
    ann: Option<AnnIndex>,
    /// Category names, and their centroids in the same order (row-major).
    categories: Vec<String>,
    centroids: Vec<f32>,
}

/// The vectors of a previous build, for products whose embedded text is unchanged.
pub struct Reusable<'a> {
    store: &'a VectorStore,
    by_text: HashMap<&'a str, usize>,
}

impl<'a> Reusable<'a> {
    /// The product's own vector when its text is unchanged, else another product's with the
    /// same text. Its own first: products with the same text may hold vectors a rounding
    /// apart (embedded in different batches), and a rebuild must write back what it read,
    /// bit for bit, or it trains another learned ranker than the build it repeats.
    pub fn get(&self, id: &str, text_hash: &str) -> Option<&'a [f32]> {
        let own = self.store.row_of(id).filter(|&row| self.store.rows[row].text == text_hash);
        own.or_else(|| self.by_text.get(text_hash).copied()).map(|row| self.store.vector(row))
    }
}

/// A short, stable hash of an embedded text.
pub fn text_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl VectorStore {
    pub fn new(identity: EncoderIdentity) -> Self {
        VectorStore {
            identity,
            rows: Vec::new(),
            data: Vec::new(),
            by_id: HashMap::new(),
            ann: None,
            categories: Vec::new(),
            centroids: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn push(&mut self, id: &str, text_hash: String, vector: &[f32]) {
        self.by_id.insert(id.to_string(), self.rows.len());
        self.rows.push(Row { id: id.to_string(), text: text_hash });
        self.data.extend_from_slice(vector);
    }

    pub fn vector(&self, row: usize) -> &[f32] {
        &self.data[row * self.identity.dim..(row + 1) * self.identity.dim]
    }

    pub fn id(&self, row: usize) -> &str {
        &self.rows[row].id
    }

    pub fn row_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The stored vectors, for reuse when rebuilding with the same encoder.
    pub fn reusable(&self) -> Reusable<'_> {
        Reusable { store: self, by_text: self.rows.iter().enumerate().map(|(row, r)| (r.text.as_str(), row)).collect() }
    }

    /// Computes each category's centroid: the unit-length mean of its products' vectors.
    pub fn compute_centroids(&mut self, products: &[Product]) {
        let dim = self.identity.dim;
        let mut sums: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
        for product in products {
            let (Some(category), Some(row)) = (&product.category, self.row_of(&product.id)) else { continue };
            let sum = sums.entry(category.as_str()).or_insert_with(|| vec![0.0; dim]);
            for (s, v) in sum.iter_mut().zip(self.vector(row)) {
                *s += v;
            }
        }
        self.categories = sums.keys().map(|c| c.to_string()).collect();
        self.centroids = sums
            .into_values()
            .flat_map(|mut sum| {
                let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
                sum.iter_mut().for_each(|x| *x /= norm);
                sum
            })
            .collect();
    }

    /// Each category with its centroid.
    pub fn centroids(&self) -> impl Iterator<Item = (&str, &[f32])> {
        self.categories.iter().map(String::as_str).zip(self.centroids.chunks_exact(self.identity.dim.max(1)))
    }

    /// Cosine similarity of `query` (unit length) with the product in `row`.
    pub fn similarity(&self, row: usize, query: &[f32]) -> f32 {
        super::ann::dot(self.vector(row), query)
    }

    /// Builds the HNSW graph over the vectors (replacing any); `progress` hears how many
    /// rows were just inserted.
    pub fn build_ann(&mut self, params: &AnnParams, progress: &dyn Fn(usize)) {
        self.ann = None;
        self.ann = Some(AnnIndex::build(self, params, progress));
    }

    /// Makes now what searches walking the graph in `walk`'s precision need (see
    /// [`AnnIndex::prepare`]).
    pub fn prepare_walk(&self, walk: super::Precision) {
        if let Some(ann) = &self.ann {
            ann.prepare(self, walk);
        }
    }

    pub fn has_ann(&self) -> bool {
        self.ann.is_some()
    }

    /// The `k` rows nearest to `query`, best first, with their cosine: through the graph
    /// when `config` asks for it and the index has one, else exact. Asking for a large share
    /// of the catalogue is answered exactly, which is then as fast and never misses.
    pub fn search(&self, query: &[f32], k: usize, config: &DenseConfig) -> Vec<(usize, f32)> {
        match &self.ann {
            Some(ann) if config.search == DenseSearch::Ann && k.saturating_mul(4) < self.len() => {
                ann.nearest_rows(self, query, k, config.ef_search, config.walk)
            }
            _ => self.nearest(query, k),
        }
    }

    /// Cosine similarity of `query` (unit length) with every product, as rows.
    pub fn similarities(&self, query: &[f32]) -> Vec<f32> {
        let dim = self.identity.dim;
        match ArrayView2::from_shape((self.rows.len(), dim), &self.data) {
            Ok(matrix) if query.len() == dim => matrix.dot(&ArrayView1::from(query)).to_vec(),
            _ => vec![0.0; self.rows.len()],
        }
    }

    /// The `k` most similar rows, best first (exact search).
    pub fn nearest(&self, query: &[f32], k: usize) -> Vec<(usize, f32)> {
        let scores = self.similarities(query);
        let mut rows: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
        let k = k.min(rows.len());
        if k == 0 {
            return Vec::new();
        }
        rows.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
        rows.truncate(k);
        rows.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        rows
    }

    pub fn save(&self, dir: &Path) -> Result<(), DenseError> {
        std::fs::create_dir_all(dir).map_err(|e| DenseError::io(dir, e))?;
        let floats = |values: &[f32]| -> Vec<u8> { values.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| DenseError::io(&path, e))
        };
        write(VECTORS, &floats(&self.data))?;
        write(CENTROIDS, &floats(&self.centroids))?;
        write(CENTROID_NAMES, serde_json::to_string(&self.categories).unwrap_or_default().as_bytes())?;
        write(ROWS, serde_json::to_string(&self.rows).unwrap_or_default().as_bytes())?;
        write(META, serde_json::to_string_pretty(&self.identity).unwrap_or_default().as_bytes())?;
        match &self.ann {
            Some(ann) => ann.save(dir),
            None => Ok(()),
        }
    }

    pub fn load(dir: &Path) -> Result<VectorStore, DenseError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| DenseError::io(&path, e))
        };
        let damaged =
            |what: String| DenseError::Model(format!("{} is damaged: {what}; rebuild the index", dir.display()));
        let identity: EncoderIdentity = serde_json::from_slice(&read(META)?).map_err(|e| damaged(e.to_string()))?;
        let rows: Vec<Row> = serde_json::from_slice(&read(ROWS)?).map_err(|e| damaged(e.to_string()))?;
        // Vectors written before centroids were stored (schema 1) can still be reused by a
        // rebuild; an index of schema 2 always has them.
        let categories: Vec<String> = match dir.join(CENTROID_NAMES).exists() {
            true => serde_json::from_slice(&read(CENTROID_NAMES)?).map_err(|e| damaged(e.to_string()))?,
            false => Vec::new(),
        };
        let floats = |name: &str, count: usize, what: &str| -> Result<Vec<f32>, DenseError> {
            let bytes = read(name)?;
            if bytes.len() != count * identity.dim * 4 {
                return Err(damaged(format!("{} bytes of {what} for {count} rows of {}", bytes.len(), identity.dim)));
            }
            Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        };
        let data = floats(VECTORS, rows.len(), "vectors")?;
        let centroids =
            if categories.is_empty() { Vec::new() } else { floats(CENTROIDS, categories.len(), "centroids")? };
        let by_id = rows.iter().enumerate().map(|(row, r)| (r.id.clone(), row)).collect();
        let ann = if AnnIndex::exists(dir) { Some(AnnIndex::load(dir, rows.len())?) } else { None };
        Ok(VectorStore { identity, rows, data, by_id, ann, categories, centroids })
    }
}
