//! The engine: one opened index and its rankers, answering [`SearchRequest`]s.
//!
//! Everything that serves searches (the CLI, the HTTP server, the evaluation harness) goes
//! through [`Engine::search`], so they all rank the same way.
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
use crate::index::{IndexError, Manifest, ShelfIndex};
use crate::search::{Hit, RankerKind, SearchRequest, SearchResponse, SourceScore, Timings};

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("ranker '{ranker}' is not available: {reason}")]
    RankerUnavailable { ranker: RankerKind, reason: String },
    #[error("search failed: {0}")]
    Index(#[from] tantivy::TantivyError),
}

pub struct Engine {
    index: ShelfIndex,
}

fn millis(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

impl Engine {
    pub fn open(dir: &Path) -> Result<Engine, IndexError> {
        Ok(Engine { index: ShelfIndex::open(dir)? })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.index.manifest
    }

    pub fn index(&self) -> &ShelfIndex {
        &self.index
    }

    /// The rankers this engine can serve.
    pub fn rankers(&self) -> Vec<RankerKind> {
        vec![RankerKind::Bm25]
    }

    /// The ranker used when a request names none.
    pub fn default_ranker(&self) -> RankerKind {
        RankerKind::Bm25
    }

    pub fn product(&self, id: &str) -> Result<Option<Product>, SearchError> {
        Ok(self.index.lexical.find(id)?)
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
        Ok(self.index.lexical.score_ids(query, ids, &self.index.config.lexical)?)
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
        Err(SearchError::RankerUnavailable {
            ranker,
            reason: format!(
                "this index serves {}",
                self.rankers().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
        })
    }

    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse, SearchError> {
        let started = Instant::now();
        request.validate().map_err(SearchError::InvalidRequest)?;
        self.check_ranker(request.ranker)?;
        let lexical = &self.index.lexical;
        let found =
            lexical.search(&request.query, &request.filters, request.k, request.facets, &self.index.config.lexical)?;
        let mut timings = Timings { lexical: Some(millis(started)), ..Timings::default() };

        let fetch_started = Instant::now();
        let searcher = lexical.searcher();
        let mut results = Vec::with_capacity(found.hits.len());
        for (at, hit) in found.hits.iter().enumerate() {
            let product = lexical.product_with(&searcher, hit.doc)?;
            let rank = at + 1;
            results.push(Hit {
                id: product.id.clone(),
                title: product.title.clone(),
                score: hit.score,
                rank,
                sources: BTreeMap::from([("bm25".to_string(), SourceScore { rank, score: hit.score })]),
                product,
                explain: None,
            });
        }
        timings.fetch = Some(millis(fetch_started));
        Ok(SearchResponse {
            query: request.query.clone(),
            ranker: request.ranker,
            took_ms: millis(started),
            total_candidates: found.total,
            fuzzy: found.fuzzy,
            relaxed: found.relaxed,
            results,
            facets: found.facets,
            timings_ms: timings,
        })
    }
}
