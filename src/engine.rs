//! The engine: one opened index and its rankers, answering [`SearchRequest`]s.
//!
//! Everything that serves searches (the CLI, the HTTP server, the evaluation harness) goes
//! through [`Engine::search`], so they all rank the same way. Rankers:
//!
//! - `bm25`: the lexical index alone;
//! - `dense`: the products nearest to the query's vector (through the HNSW graph, or exact
//!   search over every vector), filtered;
//! - `hybrid`: both candidate lists fused ([`crate::retrieve`]);
//! - `ltr`, `neural`, `ensemble`: the head of the hybrid list described by
//!   [`crate::features`] and reordered by a learned ranker ([`crate::rank`]), then blended
//!   with the shop's other goals ([`crate::rank::utility`]).
//!
//! A search goes gather → fuse → features → rank → fetch.
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

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use tantivy::DocAddress;

use crate::catalog::Product;
use crate::dense::{model, DenseError, Encoder, Precisions};
use crate::features::{self, QueryText, Row, Signals};
use crate::index::{IndexError, Manifest, ShelfIndex};
use crate::kept::Kept;
use crate::lexical::{LexicalHits, QueryPlan};
use crate::rank::utility::{self, Weights};
use crate::rank::{self, Explanation, Inputs, ModelError, Models, Ranker, Scoring};
use crate::retrieve::{fuse, Source};
use crate::search::{Filters, Hit, RankerKind, SearchRequest, SearchResponse, SourceScore, Sources, Timings};

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
    #[error("ranking failed: {0}")]
    Model(#[from] ModelError),
}

/// Why an engine could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

pub struct Engine {
    index: ShelfIndex,
    /// The query encoder, when the index has vectors it can search.
    encoder: Option<Encoder>,
    /// Why dense and hybrid are unavailable, when they are.
    dense_problem: Option<String>,
    /// Vectors of recent queries: shoppers repeat head queries, and evaluation embeds all
    /// its queries in batches up front ([`Engine::embed_queries`]).
    query_vectors: Kept<String, Arc<[f32]>>,
    /// The learned rankers of the loaded model directory ([`Engine::with_model`]).
    models: Models,
    /// Searches running now ([`InFlight`]).
    searching: AtomicUsize,
    /// The catalogue's kinds of product: the stem of each leaf category's last word (from the
    /// categories stored with the vectors), so a search only looks its words up.
    kinds: HashSet<String>,
}

/// One running search, counted while it lives. A search that runs alone shares its
/// candidates' features and scores with the idle cores (Home Depot, `ltr`, one connection:
/// p50 4.1 → 3.5 ms); when others run, the cores are busy and splitting the work only
/// costs (16 connections: −5 to −17 % throughput when always split).
struct InFlight<'a> {
    count: &'a AtomicUsize,
    alone: bool,
}

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicUsize) -> InFlight<'a> {
        let before = count.fetch_add(1, Ordering::Relaxed);
        InFlight { count, alone: before == 0 }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `f` over `items`, in order: on every core when `share_cores`, else on this thread.
fn map_items<T: Send, U: Send>(items: Vec<T>, share_cores: bool, f: impl Fn(T) -> U + Sync + Send) -> Vec<U> {
    match share_cores {
        true => items.into_par_iter().map(f).collect(),
        false => items.into_iter().map(f).collect(),
    }
}

/// A hybrid candidate with its features, ready for the learned ranker.
pub struct Candidate {
    pub id: String,
    pub product: Arc<Product>,
    pub sources: Sources,
    pub features: Row,
}

/// Query vectors kept (384 floats each: about 15 MB).
const QUERY_VECTORS: usize = 10_000;

fn millis(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// What a request's candidate generation found.
#[derive(Default)]
struct Gathered {
    ranked: Vec<Ranked>,
    total: u64,
    fuzzy: bool,
    relaxed: bool,
    facets: Option<crate::search::Facets>,
    timings: Timings,
    /// The query as the lexical index analysed it, when it was searched.
    plan: Option<QueryPlan>,
}

/// What the lexical source of a request found: its list, the search's counts and facets, the
/// analysed query, and the milliseconds it took.
struct LexicalSide {
    list: Vec<Ranked>,
    found: LexicalHits,
    plan: QueryPlan,
    took: f64,
}

/// One ranked product with its sources. Its stored data is read only if it reaches the
/// learned ranker or the results: from `doc` when the lexical index found it.
struct Ranked {
    id: String,
    score: f32,
    sources: Sources,
    product: Option<Arc<Product>>,
    doc: Option<DocAddress>,
}

/// A ranked product with its stored product (`None` for an id the index does not hold).
type WithProduct = (Ranked, Option<Arc<Product>>);

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
        // An index with vectors is served with them or not at all: dense and hybrid (and
        // the learned rankers' features) must never quietly become BM25.
        let (encoder, dense_problem) = match &index.manifest.dense {
            None => (None, Some("the index has no vectors (built without an encoder)".to_string())),
            Some(info) => {
                // Queries as the config says now; products as the index's vectors were made
                // (a changed `product_precision` takes effect at the next build).
                let precisions =
                    Precisions { queries: index.config.dense.query_precision, products: info.encoder.products };
                let encoder = Encoder::load_with(encoder_dir, precisions).map_err(|error| {
                    DenseError::Model(format!("the index has vectors, but their encoder cannot load: {error}"))
                })?;
                if !encoder.made(&info.encoder) {
                    return Err(DenseError::Model(mismatch(&encoder, &info.encoder, encoder_dir)).into());
                }
                (Some(encoder), None)
            }
        };
        let kinds = index
            .vectors
            .as_ref()
            .map(|store| store.centroids().filter_map(|(category, _)| features::category_head(category)).collect())
            .unwrap_or_default();
        Ok(Engine {
            index,
            encoder,
            dense_problem,
            query_vectors: Kept::new(QUERY_VECTORS),
            models: Models::default(),
            searching: AtomicUsize::new(0),
            kinds,
        })
    }

    /// Opens an index with its encoder and, when given, a learned ranker.
    pub fn open_with(dir: &Path, encoder_dir: &Path, model_dir: Option<&Path>) -> Result<Engine, OpenError> {
        let engine = Engine::open_with_encoder(dir, encoder_dir)?;
        Ok(match model_dir {
            Some(model) => engine.with_model(model)?,
            None => engine,
        })
    }

    /// Loads the learned rankers of a model directory (`ltr`, `neural`, or all three for an
    /// ensemble); the best of them becomes the default ranker.
    pub fn with_model(mut self, dir: &Path) -> Result<Engine, ModelError> {
        if let Some(problem) = &self.dense_problem {
            // Its features include the dense scores: without them it would rank on blanks.
            return Err(ModelError::Invalid(format!(
                "cannot serve the learned ranker in {}: it needs the index's vectors, but {problem}",
                dir.display()
            )));
        }
        let models = rank::load(dir)?;
        let index_encoder = self.index.manifest.dense.as_ref().map(|dense| &dense.encoder);
        for ranker in models.rankers() {
            if let (Some(trained), Some(index)) = (&ranker.meta().encoder, index_encoder) {
                if trained != index {
                    return Err(ModelError::Invalid(format!(
                        "the model in {} was trained on an index whose vectors and queries came from another \
                         encoder or query adapter ({}), so its dense features would mean something else here \
                         ({}); retrain it on this index with `shelf train`",
                        dir.display(),
                        describe_encoder(trained),
                        describe_encoder(index)
                    )));
                }
            }
        }
        // Same encoder, other arithmetic for queries: the model still serves, measured a little
        // worse (README, "8-bit queries"), so say so rather than refuse.
        let serving = self.index.config.dense.query_precision;
        let trained = models.rankers().map(|r| r.meta().query_precision).find(|p| *p != serving);
        if let (Some(trained), Some(_)) = (trained, index_encoder) {
            tracing::warn!(
                "the model in {} was trained with {trained} query vectors, but this index encodes queries in \
                 {serving} ([dense] query_precision); retrain it with `shelf train` for its best ranking",
                dir.display()
            );
        }
        self.models = models;
        Ok(self)
    }

    /// The learned rankers loaded.
    pub fn models(&self) -> &Models {
        &self.models
    }

    /// Makes the learned rankers reorder this many hybrid candidates instead of the depth
    /// they were trained for (benchmarks and experiments).
    pub fn set_rerank_depth(&mut self, depth: usize) {
        self.models.set_rerank_depth(depth);
    }

    /// The index's product vectors, when it has them.
    pub fn vectors(&self) -> Option<&crate::dense::VectorStore> {
        self.index.vectors.as_ref()
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
            rankers.extend(self.models.kinds());
        }
        rankers
    }

    /// The ranker used when a request names none: the best learned ranker loaded.
    pub fn default_ranker(&self) -> RankerKind {
        match self.models.best() {
            Some(best) if self.encoder.is_some() => best,
            _ => RankerKind::Bm25,
        }
    }

    pub fn product(&self, id: &str) -> Result<Option<Product>, SearchError> {
        Ok(self.index.lexical.find(id)?.map(Arc::unwrap_or_clone))
    }

    /// Replaces the index's configuration for this engine (tuning experiments).
    pub fn with_config(mut self, config: crate::index::IndexConfig) -> Engine {
        self.index.config = config;
        self
    }

    /// `kind:fingerprint:trained_at` of the model that scores `ranker` (learned rankers):
    /// what an impression records as the model version.
    pub fn model_version(&self, ranker: RankerKind) -> Option<String> {
        let meta = self.models.get(ranker)?.meta();
        Some(format!("{}:{}:{}", meta.ranker, meta.data_fingerprint.get(..12).unwrap_or(""), meta.trained_at))
    }

    pub fn check_ranker(&self, ranker: RankerKind) -> Result<(), SearchError> {
        if self.rankers().contains(&ranker) {
            return Ok(());
        }
        let reason = match (ranker, &self.dense_problem) {
            (_, Some(problem)) if ranker != RankerKind::Bm25 => problem.clone(),
            (_, None) if ranker.is_learned() && self.models.best().is_none() => {
                "no model is loaded: pass --model DIR (train one with `shelf train`)".to_string()
            }
            (_, None) if ranker.is_learned() => format!(
                "the loaded model serves {}; train one with `shelf train --ranker {}`",
                self.models.kinds().iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                ranker.trainer()
            ),
            _ => format!(
                "this index serves {}",
                self.rankers().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        Err(SearchError::RankerUnavailable { ranker, reason })
    }

    /// The encoder that embeds queries, or why dense search is off.
    pub(crate) fn query_encoder(&self) -> Result<&Encoder, SearchError> {
        self.encoder.as_ref().ok_or_else(|| SearchError::RankerUnavailable {
            ranker: RankerKind::Dense,
            reason: self.dense_problem.clone().unwrap_or_default(),
        })
    }

    /// The query's vector.
    pub fn embed_query(&self, text: &str) -> Result<Arc<[f32]>, SearchError> {
        self.query_vectors.get_or_try_insert(text, || Ok(self.query_encoder()?.embed_query(text)?.into()))
    }

    /// Embeds many queries in batches (several times faster than one by one) so that the
    /// searches that follow find their vectors ready; `progress` hears how many were done.
    /// Keeps at most the last 10,000.
    pub fn embed_queries(&self, texts: &[&str], progress: &dyn Fn(usize)) -> Result<(), SearchError> {
        let missing: Vec<&str> = texts.iter().copied().filter(|text| self.query_vectors.get(*text).is_none()).collect();
        let vectors = self.query_encoder()?.embed_queries(&missing, progress)?;
        for (text, vector) in missing.iter().zip(vectors) {
            self.query_vectors.put(text.to_string(), vector.into());
        }
        Ok(())
    }

    /// The `limit` products nearest to `query` that pass `filters` (asked of the lexical
    /// index, which holds the filterable fields).
    fn dense_candidates(&self, query: &[f32], filters: &Filters, limit: usize) -> Result<Vec<Ranked>, SearchError> {
        let Some(store) = &self.index.vectors else { return Ok(Vec::new()) };
        let mut want = if filters.is_empty() { limit } else { limit * 4 };
        loop {
            let nearest = store.search(query, want, &self.index.config.dense);
            let passing = match filters.is_empty() {
                true => None,
                false => {
                    let ids: Vec<String> = nearest.iter().map(|(row, _)| store.id(*row).to_string()).collect();
                    Some(self.index.lexical.passing(filters, &ids)?)
                }
            };
            let mut ranked = Vec::with_capacity(limit);
            for (row, score) in &nearest {
                let id = store.id(*row);
                if passing.as_ref().is_none_or(|passing| passing.contains(id)) {
                    let rank = ranked.len() + 1;
                    let sources = Sources { dense: Some(SourceScore { rank, score: *score }), bm25: None };
                    ranked.push(Ranked { id: id.to_string(), score: *score, sources, product: None, doc: None });
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

    /// The candidates of a request, best first, before they are cut to `k`: the lexical
    /// list for bm25, the dense list for dense, and for hybrid every product either source
    /// proposed within `depth`, fused.
    fn gather(&self, request: &SearchRequest, depth: usize) -> Result<Gathered, SearchError> {
        let lexical = &self.index.lexical;
        let config = &self.index.config;
        let mut gathered = Gathered::default();
        // The two sources run side by side: a cold query's encoder pass overlaps BM25.
        let lexical_side = || -> Result<Option<LexicalSide>, SearchError> {
            if request.ranker == RankerKind::Dense {
                return Ok(None);
            }
            let started = Instant::now();
            let plan = lexical.analyze(&request.query, &config.lexical)?;
            let found = lexical.search(&plan, &request.filters, depth, request.facets, &config.lexical)?;
            let docs: Vec<DocAddress> = found.hits.iter().map(|hit| hit.doc).collect();
            let ids = lexical.ids_of(&docs)?;
            let mut list = Vec::with_capacity(found.hits.len());
            for (at, (hit, id)) in found.hits.iter().zip(ids).enumerate() {
                let sources = Sources { bm25: Some(SourceScore { rank: at + 1, score: hit.score }), dense: None };
                list.push(Ranked { id, score: hit.score, sources, product: None, doc: Some(hit.doc) });
            }
            Ok(Some(LexicalSide { list, found, plan, took: millis(started) }))
        };
        let dense_side = || -> Result<Option<(Vec<Ranked>, f64)>, SearchError> {
            if request.ranker == RankerKind::Bm25 {
                return Ok(None);
            }
            let started = Instant::now();
            let query = self.embed_query(&request.query)?;
            Ok(Some((self.dense_candidates(&query, &request.filters, depth)?, millis(started))))
        };
        let (lexical_found, dense_found) = rayon::join(lexical_side, dense_side);
        let mut lexical_list = Vec::new();
        if let Some(LexicalSide { list, found, plan, took }) = lexical_found? {
            lexical_list = list;
            gathered.plan = Some(plan);
            (gathered.total, gathered.fuzzy, gathered.relaxed, gathered.facets) =
                (found.total, found.fuzzy, found.relaxed, found.facets);
            gathered.timings.lexical = Some(took);
        }
        let mut dense_list = Vec::new();
        if let Some((list, took)) = dense_found? {
            dense_list = list;
            gathered.timings.dense = Some(took);
            if request.ranker == RankerKind::Dense {
                gathered.total = self.index.vectors.as_ref().map_or(0, |v| v.len() as u64);
            }
        }
        gathered.ranked = match request.ranker {
            RankerKind::Bm25 => lexical_list,
            RankerKind::Dense => dense_list,
            _ => {
                let fusion_started = Instant::now();
                fn scores(list: &[Ranked]) -> Vec<(&str, f32)> {
                    list.iter().map(|r| (r.id.as_str(), r.score)).collect()
                }
                let (bm25, dense) = (scores(&lexical_list), scores(&dense_list));
                let fused = fuse(&[(Source::Bm25, &bm25[..]), (Source::Dense, &dense[..])], &config.hybrid);
                let docs: HashMap<String, DocAddress> =
                    lexical_list.into_iter().filter_map(|r| r.doc.map(|doc| (r.id, doc))).collect();
                gathered.total = gathered.total.max(fused.len() as u64);
                gathered.timings.fusion = Some(millis(fusion_started));
                fused
                    .into_iter()
                    .map(|c| Ranked {
                        doc: docs.get(&c.id).copied(),
                        product: None,
                        id: c.id,
                        score: c.score,
                        sources: c.sources,
                    })
                    .collect()
            }
        };
        Ok(gathered)
    }

    /// Candidate generation alone: the ids `ranker` proposes for `query` when each source
    /// looks `depth` deep (hybrid: the union of both sources' lists). Their share of a query's
    /// relevant products is the ceiling of any reranker.
    pub fn candidate_ids(&self, query: &str, ranker: RankerKind, depth: usize) -> Result<Vec<String>, SearchError> {
        self.check_ranker(ranker)?;
        let request = SearchRequest { ranker, ..SearchRequest::new(query) };
        Ok(self.gather(&request, depth)?.ranked.into_iter().map(|r| r.id).collect())
    }

    /// Features of each candidate of `query` (a fused hybrid list from [`Engine::gather`]),
    /// and of the products `extra` that retrieval did not propose (the judged products of
    /// feature logging and of the rerank protocol).
    /// `ranked` gets features; `rest` (the fused list below it) only sets, with it, the
    /// query's reference scores. `plan` is the query as the gathering analysed it (analysed
    /// here when it was not).
    fn featurize(
        &self,
        query: &str,
        plan: Option<QueryPlan>,
        ranked: Vec<Ranked>,
        rest: &[Ranked],
        extra: &[String],
        share_cores: bool,
    ) -> Result<Vec<Candidate>, SearchError> {
        let store = self.index.vectors.as_ref();
        let vector = self.embed_query(query)?;
        let lexical = &self.index.lexical;
        // What the query's lists look like: scores are read relative to them.
        let whole = || ranked.iter().chain(rest);
        let bm25_scores: Vec<f32> = whole().filter_map(|r| r.sources.bm25.map(|s| s.score)).collect();
        let cosines: Vec<f32> = whole().filter_map(|r| r.sources.dense.map(|s| s.score)).collect();
        let top = |v: &[f32]| v.iter().copied().reduce(f32::max);
        let floor = |v: &[f32]| v.iter().copied().reduce(f32::min);
        let mean_sd = (!bm25_scores.is_empty()).then(|| {
            let n = bm25_scores.len() as f32;
            let mean = bm25_scores.iter().sum::<f32>() / n;
            let var = bm25_scores.iter().map(|s| (s - mean).powi(2)).sum::<f32>() / n;
            (mean, var.sqrt())
        });
        let proposed: std::collections::HashSet<String> = whole().map(|r| r.id.clone()).collect();
        let mut items: Vec<(Ranked, Option<usize>)> =
            ranked.into_iter().enumerate().map(|(at, r)| (r, Some(at + 1))).collect();
        for id in extra.iter().filter(|id| !proposed.contains(*id)) {
            let ranked = Ranked { id: id.clone(), score: 0.0, sources: Sources::default(), product: None, doc: None };
            items.push((ranked, None));
        }
        // BM25 of candidates the lexical list did not hold (one search for all of them).
        let unscored: Vec<String> =
            items.iter().filter(|(r, _)| r.sources.bm25.is_none()).map(|(r, _)| r.id.clone()).collect();
        let plan = match plan {
            Some(plan) => plan,
            None => lexical.analyze(query, &self.index.config.lexical)?,
        };
        let bm25_of: HashMap<String, f32> = lexical.score_ids(&plan, &unscored)?.into_iter().collect();
        let affinities = self.category_affinities(&vector);
        let affinity_top = affinities.values().copied().reduce(f32::max);
        let query_text = QueryText::new(query);
        let idf = lexical.title_idf(query_text.stems())?;
        let query_text = query_text.with_idf(idf);
        // A query that names a kind ("vanity") makes every other kind a worse answer, however
        // many of its words a product of that kind holds ("vanity mirror in grey").
        let query_names_kind = query_text.stems().iter().any(|stem| self.kinds.contains(stem));
        // A product the hybrid list did not hold ranks just below its end.
        let beyond = proposed.len() + 1;
        let (items, fused_ranks): (Vec<Ranked>, Vec<Option<usize>>) = items.into_iter().unzip();
        let with_features = |((item, product), fused_rank): (WithProduct, Option<usize>)| {
            let fused_rank = Some(fused_rank.unwrap_or(beyond));
            let product = product?;
            let bm25 = item.sources.bm25;
            let signals = Signals {
                bm25: bm25.map(|s| s.score).or_else(|| bm25_of.get(&item.id).copied()),
                bm25_rank: bm25.map(|s| s.rank),
                cosine: store.and_then(|s| s.row_of(&item.id).map(|row| s.similarity(row, &vector))),
                dense_rank: item.sources.dense.map(|s| s.rank),
                fused_rank,
                bm25_top: top(&bm25_scores),
                bm25_mean_sd: mean_sd,
                bm25_floor: floor(&bm25_scores),
                cosine_top: top(&cosines),
                cosine_floor: floor(&cosines),
                alpha: self.index.config.hybrid.alpha,
                category_affinity: product.category.as_ref().and_then(|c| affinities.get(c.as_str()).copied()),
                category_affinity_top: affinity_top,
                query_names_kind,
            };
            let features = features::extract(&query_text, &product, &signals);
            Some(Candidate { id: item.id, product, sources: item.sources, features })
        };
        let products: Vec<_> = self.with_products(items, share_cores)?.into_iter().zip(fused_ranks).collect();
        Ok(map_items(products, share_cores, with_features).into_iter().flatten().collect())
    }

    /// Each of `items` with its stored product (`None` for an id the index does not hold):
    /// by address when the lexical index found it, else by id.
    fn with_products(&self, items: Vec<Ranked>, share_cores: bool) -> Result<Vec<WithProduct>, SearchError> {
        let lexical = &self.index.lexical;
        let read = |mut item: Ranked| {
            let product = match (item.product.take(), item.doc) {
                (Some(product), _) => Some(product),
                (None, Some(doc)) => Some(lexical.product(doc)?),
                (None, None) => lexical.find(&item.id)?,
            };
            Ok((item, product))
        };
        map_items(items, share_cores, read).into_iter().collect()
    }

    /// Cosine of the query with each category's centroid.
    fn category_affinities(&self, vector: &[f32]) -> HashMap<&str, f32> {
        let Some(store) = &self.index.vectors else { return HashMap::new() };
        store.centroids().map(|(category, centroid)| (category, crate::dense::ann::dot(centroid, vector))).collect()
    }

    /// The learned ranker `kind`, or why it is unavailable.
    fn learned(&self, kind: RankerKind) -> Result<&dyn Ranker, SearchError> {
        self.check_ranker(kind)?;
        self.models
            .get(kind)
            .map(|r| r.as_ref())
            .ok_or_else(|| SearchError::RankerUnavailable { ranker: kind, reason: "no model is loaded".into() })
    }

    /// What a ranker reads of `candidates`: their rows, the query's vector and each
    /// product's vector.
    fn score_candidates(
        &self,
        ranker: &dyn Ranker,
        query: &str,
        candidates: &[Candidate],
        scoring: Scoring,
        explain_first: Option<&[usize]>,
        share_cores: bool,
    ) -> Result<(rank::Scored, Vec<Explanation>), SearchError> {
        let rows: Vec<Row> = candidates.iter().map(|c| c.features).collect();
        let query_vector = self.embed_query(query)?;
        let store = self.index.vectors.as_ref();
        let vectors: Vec<Option<&[f32]>> =
            candidates.iter().map(|c| store.and_then(|s| s.row_of(&c.id).map(|row| s.vector(row)))).collect();
        let inputs = Inputs { share_cores, ..Inputs::new(query, &query_vector, &rows, &vectors) };
        let scored = ranker.score(&inputs, scoring)?;
        let explained = match explain_first {
            Some(positions) => ranker.explain(&inputs, scoring, positions)?,
            None => Vec::new(),
        };
        Ok((scored, explained))
    }

    /// Orders candidates by a learned ranker and the utility blend; with `explain`, each of
    /// the first `k` gets its feature contributions, heads and utility terms.
    fn rerank(
        &self,
        query: &str,
        candidates: Vec<Candidate>,
        settings: &Rerank,
    ) -> Result<(Vec<Ranked>, HashMap<String, serde_json::Value>), SearchError> {
        let ranker = self.learned(settings.ranker)?;
        let (scored, _) =
            self.score_candidates(ranker, query, &candidates, settings.scoring, None, settings.share_cores)?;
        let products: Vec<&Product> = candidates.iter().map(|c| c.product.as_ref()).collect();
        let blended = (!settings.utility.is_relevance_only())
            .then(|| utility::blend(&settings.utility, &scored, &products))
            .transpose()
            .map_err(SearchError::InvalidRequest)?;
        let scores: Vec<f64> = blended.as_ref().map_or_else(|| scored.relevance.clone(), |b| b.totals.clone());
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        order.truncate(settings.k);
        let mut explains = HashMap::new();
        if let Some(from) = settings.explain_from {
            let shown = &order[from.min(order.len())..];
            let (_, explained) =
                self.score_candidates(ranker, query, &candidates, settings.scoring, Some(shown), false)?;
            for (&at, explanation) in shown.iter().zip(explained) {
                let mut json = explanation.to_json(&candidates[at].features);
                if let Some(blend) = &blended {
                    json["utility"] = serde_json::json!({"score": blend.totals[at], "terms": blend.terms[at]});
                }
                explains.insert(candidates[at].id.clone(), json);
            }
        }
        let mut slots: Vec<Option<Candidate>> = candidates.into_iter().map(Some).collect();
        let ranked = order
            .into_iter()
            .filter_map(|at| {
                slots[at].take().map(|c| Ranked {
                    id: c.id,
                    score: scores[at] as f32,
                    sources: c.sources,
                    product: Some(c.product),
                    doc: None,
                })
            })
            .collect();
        Ok((ranked, explains))
    }

    /// Feature logging: the candidates of `query` (hybrid, each source `depth` deep) plus the
    /// products `extra`, with their features.
    pub fn candidates_with_features(
        &self,
        query: &str,
        depth: usize,
        extra: &[String],
    ) -> Result<Vec<Candidate>, SearchError> {
        self.check_ranker(RankerKind::Hybrid)?;
        let request = SearchRequest { ranker: RankerKind::Hybrid, ..SearchRequest::new(query) };
        let gathered = self.gather(&request, depth)?;
        self.featurize(query, gathered.plan, gathered.ranked, &[], extra, false)
    }

    /// Orders the given candidates (from [`Engine::candidates_with_features`]) with a learned
    /// ranker under the index's utility: their ids and scores, best first.
    pub fn rank_candidates(
        &self,
        query: &str,
        candidates: Vec<Candidate>,
        ranker: RankerKind,
        scoring: Scoring,
    ) -> Result<Vec<(String, f32)>, SearchError> {
        let settings = Rerank {
            ranker,
            scoring,
            k: candidates.len(),
            explain_from: None,
            utility: self.index.config.utility.clone(),
            share_cores: false,
        };
        let (ranked, _) = self.rerank(query, candidates, &settings)?;
        Ok(ranked.into_iter().map(|r| (r.id, r.score)).collect())
    }

    /// The learned ranker's explanation of each of the given candidates.
    pub fn explain_candidates(
        &self,
        query: &str,
        candidates: &[Candidate],
        ranker: RankerKind,
        scoring: Scoring,
    ) -> Result<Vec<Explanation>, SearchError> {
        let positions: Vec<usize> = (0..candidates.len()).collect();
        Ok(self.score_candidates(self.learned(ranker)?, query, candidates, scoring, Some(&positions), false)?.1)
    }

    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse, SearchError> {
        let started = Instant::now();
        let in_flight = InFlight::enter(&self.searching);
        let share_cores = in_flight.alone;
        request.validate().map_err(SearchError::InvalidRequest)?;
        self.check_ranker(request.ranker)?;
        if request.utility.is_some() && !request.ranker.is_learned() {
            return Err(SearchError::InvalidRequest(format!(
                "utility weighs a learned ranker's scores; ranker {} has none (use ltr, neural or ensemble)",
                request.ranker
            )));
        }
        // A page is the window `offset..offset + k` of the whole ranking.
        let window = request.offset + request.k;
        // Hybrid gathers a deeper candidate list from each source than it returns.
        let depth = match request.ranker {
            RankerKind::Bm25 | RankerKind::Dense => window,
            _ => self.index.config.hybrid.candidates.max(window),
        };
        let Gathered { mut ranked, total, fuzzy, relaxed, facets, mut timings, plan } = self.gather(request, depth)?;
        let mut explains: HashMap<String, serde_json::Value> = HashMap::new();
        if request.ranker.is_learned() {
            // The model reorders the head of the hybrid list, as deep as it was trained to;
            // the rest follows in hybrid order.
            let depth = self.models.rerank_depth();
            let features_started = Instant::now();
            let tail = ranked.split_off(depth.min(ranked.len()));
            let candidates = self.featurize(&request.query, plan, ranked, &tail, &[], share_cores)?;
            timings.features = Some(millis(features_started));
            let rank_started = Instant::now();
            let settings = Rerank {
                ranker: request.ranker,
                scoring: request.scoring,
                k: window,
                explain_from: request.explain.then_some(request.offset),
                utility: match &request.utility {
                    Some(weights) => self.index.config.utility.overridden_by(weights),
                    None => self.index.config.utility.clone(),
                },
                share_cores,
            };
            let (mut reranked, explained) = self.rerank(&request.query, candidates, &settings)?;
            let floor = reranked.iter().map(|r| r.score).fold(f32::INFINITY, f32::min);
            for (at, mut item) in tail.into_iter().enumerate().take(window.saturating_sub(reranked.len())) {
                item.score = floor - 1.0 - at as f32;
                reranked.push(item);
            }
            ranked = reranked;
            explains = explained;
            timings.rank = Some(millis(rank_started));
        }
        ranked.truncate(window);
        ranked.drain(..request.offset.min(ranked.len()));

        let fetch_started = Instant::now();
        let mut results = Vec::with_capacity(ranked.len());
        for (item, product) in self.with_products(ranked, false)? {
            let Some(product) = product else { continue };
            let at = results.len();
            let explain = explains.remove(&item.id);
            results.push(Hit {
                id: item.id,
                title: product.title.clone(),
                score: item.score,
                rank: request.offset + at + 1,
                sources: item.sources,
                product: Arc::unwrap_or_clone(product),
                explain,
            });
        }
        timings.fetch = Some(millis(fetch_started));
        Ok(SearchResponse {
            impression_id: None,
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
}

/// How a learned ranker reorders one request's candidates.
struct Rerank {
    ranker: RankerKind,
    scoring: Scoring,
    k: usize,
    /// Explain the results from this 0-based position to `k` (the page shown), or none.
    explain_from: Option<usize>,
    utility: Weights,
    /// Whether idle cores may share the scoring ([`InFlight`]).
    share_cores: bool,
}

/// An encoder identity in a few words, for errors.
fn describe_encoder(identity: &crate::dense::EncoderIdentity) -> String {
    let adapter = match &identity.query_adapter {
        Some(adapter) => format!("query adapter {}", short(adapter)),
        None => "no query adapter".to_string(),
    };
    format!("weights {}, {} products, {adapter}", short(&identity.weights_sha256), identity.products)
}

/// Why the encoder in `dir` cannot search vectors of `wanted`, and what to do.
fn mismatch(encoder: &Encoder, wanted: &crate::dense::EncoderIdentity, dir: &Path) -> String {
    let have = encoder.identity(&wanted.text);
    if have.weights_sha256 != wanted.weights_sha256 || have.dim != wanted.dim {
        return format!(
            "the encoder in {} is not the one that made the index's vectors (weights {}, the index's {}); rebuild \
             the index with it, or pass the encoder the index was built with (--encoder DIR)",
            dir.display(),
            short(&have.weights_sha256),
            short(&wanted.weights_sha256)
        );
    }
    match (&have.query_adapter, &wanted.query_adapter) {
        (_, Some(adapter)) => format!(
            "the index's queries go through the query adapter {} (a directory `shelf train --ranker encoder` \
             wrote), which {} does not hold; pass that directory with --encoder, or re-index with this encoder",
            short(adapter),
            dir.display()
        ),
        (Some(adapter), None) => format!(
            "{} holds the query adapter {}, but the index was built without it; run `shelf index --encoder {}` \
             (it reuses every vector) to adopt the adapter",
            dir.display(),
            short(adapter),
            dir.display()
        ),
        (None, None) => format!("the encoder in {} does not match the index's vectors", dir.display()),
    }
}

/// The first 12 hex digits of a sha256: enough to tell files apart in a message.
fn short(digest: &str) -> String {
    digest.chars().take(12).collect()
}
