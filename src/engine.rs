//! The engine: one opened index and its rankers, answering [`SearchRequest`]s.
//!
//! Everything that serves searches (the CLI, the HTTP server, the evaluation harness) goes
//! through [`Engine::search`], so they all rank the same way. Rankers:
//!
//! - `bm25`: the lexical index alone;
//! - `dense`: the products nearest to the query's vector (exact search over the index's
//!   vectors), filtered;
//! - `hybrid`: both candidate lists fused ([`crate::retrieve`]).
//!
//! ```no_run
//! use shelf::engine::Engine;
//! use shelf::search::SearchRequest;
//!
//! let engine = Engine::open("index/demo".as_ref()).unwrap();
//! let response = engine.search(&SearchRequest::new("grey office chair")).unwrap();
//! for hit in &response.results {
//!     println!("{} {} {}", hit.rank, hit.id, hit.title);
//! }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::catalog::Product;
use crate::dense::{model, DenseError, Encoder};
use crate::index::{IndexError, Manifest, ShelfIndex};
use crate::retrieve::fuse;
use crate::search::{Filters, Hit, RankerKind, SearchRequest, SearchResponse, SourceScore, Timings};

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("ranker '{ranker}' is not available: {reason}")]
    RankerUnavailable { ranker: RankerKind, reason: String },
    #[error("search failed: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search failed: {0}")]
    Dense(#[from] DenseError),
}

pub struct Engine {
    index: ShelfIndex,
    /// The query encoder, when the index has vectors it can search.
    encoder: Option<Encoder>,
    /// Why dense and hybrid are unavailable, when they are.
    dense_problem: Option<String>,
}

fn millis(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// One ranked product with its sources, before its stored data is read.
struct Ranked {
    id: String,
    score: f32,
    sources: BTreeMap<String, SourceScore>,
    product: Option<Product>,
}

impl Engine {
    /// Opens an index; its vectors are searched with the encoder in `models/all-MiniLM-L6-v2`
    /// (or `SHELF_ENCODER`).
    pub fn open(dir: &Path) -> Result<Engine, IndexError> {
        let encoder_dir = std::env::var("SHELF_ENCODER").unwrap_or_else(|_| model::DEFAULT_DIR.to_string());
        Engine::open_with_encoder(dir, Path::new(&encoder_dir))
    }

    /// Opens an index whose vectors are searched with the encoder in `encoder_dir`.
    pub fn open_with_encoder(dir: &Path, encoder_dir: &Path) -> Result<Engine, IndexError> {
        let index = ShelfIndex::open(dir)?;
        let (encoder, dense_problem) = match &index.manifest.dense {
            None => (None, Some("the index has no vectors (built without an encoder)".to_string())),
            Some(info) => match Encoder::load(encoder_dir) {
                Err(error) => (None, Some(format!("cannot load the encoder: {error}"))),
                Ok(encoder) if encoder.identity() != info.encoder => (
                    None,
                    Some(format!(
                        "the encoder in {} is not the one that made the index's vectors; rebuild the index",
                        encoder_dir.display()
                    )),
                ),
                Ok(encoder) => (Some(encoder), None),
            },
        };
        if let Some(problem) = &dense_problem {
            if index.manifest.dense.is_some() {
                tracing::warn!(%problem, "dense and hybrid rankers are off");
            }
        }
        Ok(Engine { index, encoder, dense_problem })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.index.manifest
    }

    pub fn index(&self) -> &ShelfIndex {
        &self.index
    }

    /// The rankers this engine can serve.
    pub fn rankers(&self) -> Vec<RankerKind> {
        let mut rankers = vec![RankerKind::Bm25];
        if self.encoder.is_some() {
            rankers.extend([RankerKind::Dense, RankerKind::Hybrid]);
        }
        rankers
    }

    /// The ranker used when a request names none.
    pub fn default_ranker(&self) -> RankerKind {
        RankerKind::Bm25
    }

    pub fn product(&self, id: &str) -> Result<Option<Product>, SearchError> {
        Ok(self.index.lexical.find(id)?)
    }

    /// Replaces the index's configuration for this engine (tuning experiments).
    pub fn with_config(mut self, config: crate::index::IndexConfig) -> Engine {
        self.index.config = config;
        self
    }

    fn check_ranker(&self, ranker: RankerKind) -> Result<(), SearchError> {
        if self.rankers().contains(&ranker) {
            return Ok(());
        }
        let reason = match (ranker, &self.dense_problem) {
            (RankerKind::Dense | RankerKind::Hybrid, Some(problem)) => problem.clone(),
            _ => format!(
                "this index serves {}",
                self.rankers().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        Err(SearchError::RankerUnavailable { ranker, reason })
    }

    /// The query's vector.
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>, SearchError> {
        let encoder = self.encoder.as_ref().ok_or_else(|| SearchError::RankerUnavailable {
            ranker: RankerKind::Dense,
            reason: self.dense_problem.clone().unwrap_or_default(),
        })?;
        Ok(encoder.embed(&[text])?.pop().unwrap_or_default())
    }

    /// The `limit` products nearest to `query` that pass `filters`, with their products.
    fn dense_candidates(&self, query: &[f32], filters: &Filters, limit: usize) -> Result<Vec<Ranked>, SearchError> {
        let Some(store) = &self.index.vectors else { return Ok(Vec::new()) };
        let mut want = if filters.is_empty() { limit } else { limit * 4 };
        loop {
            let nearest = store.nearest(query, want);
            let mut ranked = Vec::with_capacity(limit);
            for (row, score) in &nearest {
                let product = if filters.is_empty() { None } else { self.index.lexical.find(store.id(*row))? };
                if filters.is_empty() || product.as_ref().is_some_and(|p| filters.matches(p)) {
                    let rank = ranked.len() + 1;
                    let sources = BTreeMap::from([("dense".to_string(), SourceScore { rank, score: *score })]);
                    ranked.push(Ranked { id: store.id(*row).to_string(), score: *score, sources, product });
                    if ranked.len() == limit {
                        return Ok(ranked);
                    }
                }
            }
            if nearest.len() < want || want >= store.len() {
                return Ok(ranked);
            }
            want = (want * 4).min(store.len());
        }
    }

    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse, SearchError> {
        let started = Instant::now();
        request.validate().map_err(SearchError::InvalidRequest)?;
        self.check_ranker(request.ranker)?;
        let lexical = &self.index.lexical;
        let config = &self.index.config;
        let mut timings = Timings::default();
        let (mut total, mut fuzzy, mut relaxed, mut facets) = (0, false, false, None);

        // Hybrid gathers a deeper candidate list from each source than it returns.
        let depth =
            if request.ranker == RankerKind::Hybrid { config.hybrid.candidates.max(request.k) } else { request.k };
        let mut lexical_list = Vec::new();
        if request.ranker != RankerKind::Dense {
            let found = lexical.search(&request.query, &request.filters, depth, request.facets, &config.lexical)?;
            let searcher = lexical.searcher();
            for (at, hit) in found.hits.iter().enumerate() {
                let product = lexical.product_with(&searcher, hit.doc)?;
                let sources = BTreeMap::from([("bm25".to_string(), SourceScore { rank: at + 1, score: hit.score })]);
                lexical_list.push(Ranked { id: product.id.clone(), score: hit.score, sources, product: Some(product) });
            }
            (total, fuzzy, relaxed, facets) = (found.total, found.fuzzy, found.relaxed, found.facets);
            timings.lexical = Some(millis(started));
        }
        let mut dense_list = Vec::new();
        if request.ranker != RankerKind::Bm25 {
            let dense_started = Instant::now();
            let query = self.embed_query(&request.query)?;
            dense_list = self.dense_candidates(&query, &request.filters, depth)?;
            timings.dense = Some(millis(dense_started));
            if request.ranker == RankerKind::Dense {
                total = self.index.vectors.as_ref().map_or(0, |v| v.len() as u64);
            }
        }
        let mut ranked = match request.ranker {
            RankerKind::Hybrid => {
                let fusion_started = Instant::now();
                let scores = |list: &[Ranked]| list.iter().map(|r| (r.id.clone(), r.score)).collect::<Vec<_>>();
                let (bm25, dense) = (scores(&lexical_list), scores(&dense_list));
                let fused = fuse(&[("bm25", &bm25), ("dense", &dense)], &config.hybrid);
                let mut products: std::collections::HashMap<String, Option<Product>> =
                    lexical_list.into_iter().chain(dense_list).map(|r| (r.id, r.product)).collect();
                total = total.max(fused.len() as u64);
                let ranked: Vec<Ranked> = fused
                    .into_iter()
                    .take(request.k)
                    .map(|c| Ranked {
                        product: products.remove(&c.id).flatten(),
                        id: c.id,
                        score: c.score,
                        sources: c.sources,
                    })
                    .collect();
                timings.fusion = Some(millis(fusion_started));
                ranked
            }
            RankerKind::Dense => dense_list,
            _ => lexical_list,
        };
        ranked.truncate(request.k);

        let fetch_started = Instant::now();
        let mut results = Vec::with_capacity(ranked.len());
        for (at, item) in ranked.into_iter().enumerate() {
            let product = match item.product {
                Some(product) => product,
                None => match lexical.find(&item.id)? {
                    Some(product) => product,
                    None => continue,
                },
            };
            results.push(Hit {
                id: item.id,
                title: product.title.clone(),
                score: item.score,
                rank: at + 1,
                sources: item.sources,
                product,
                explain: None,
            });
        }
        timings.fetch = Some(millis(fetch_started));
        Ok(SearchResponse {
            query: request.query.clone(),
            ranker: request.ranker,
            took_ms: millis(started),
            total_candidates: total,
            fuzzy,
            relaxed,
            results,
            facets,
            timings_ms: timings,
        })
    }

    /// Scores only the given products for `query` (the rerank protocol). Products the
    /// ranker cannot score are left out; callers rank them last.
    pub fn score_products(
        &self,
        query: &str,
        ranker: RankerKind,
        ids: &[String],
    ) -> Result<Vec<(String, f32)>, SearchError> {
        self.check_ranker(ranker)?;
        let lexical = || self.index.lexical.score_ids(query, ids, &self.index.config.lexical);
        let dense = || -> Result<Vec<(String, f32)>, SearchError> {
            let Some(store) = &self.index.vectors else { return Ok(Vec::new()) };
            let vector = self.embed_query(query)?;
            let mut scored: Vec<(String, f32)> = ids
                .iter()
                .filter_map(|id| store.row_of(id).map(|row| (id.clone(), store.similarity(row, &vector))))
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1));
            Ok(scored)
        };
        Ok(match ranker {
            RankerKind::Dense => dense()?,
            RankerKind::Hybrid => {
                let (bm25, dense) = (lexical()?, dense()?);
                fuse(&[("bm25", &bm25), ("dense", &dense)], &self.index.config.hybrid)
                    .into_iter()
                    .map(|c| (c.id, c.score))
                    .collect()
            }
            _ => lexical()?,
        })
    }
}
