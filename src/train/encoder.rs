//! Teaching the sentence encoder a shop's language from its judged queries.
//!
//! A stock encoder puts "deck over" near texts that read alike; a shop's judgments say which
//! products its shoppers meant. [`train_adapter`] fits a [`QueryAdapter`] (a residual linear
//! map of the stock query vector, see [`crate::dense::adapter`]) so that each judged query
//! lands near its relevant products:
//!
//! - **pairs**: (query, product graded at least [`AdapterParams::min_grade`]), one per
//!   relevant product;
//! - **loss**: InfoNCE with in-batch negatives — each query's positive must outscore the
//!   other queries' positives in its batch (and, with [`AdapterParams::hard_negatives`],
//!   products the stock index ranks high for it that the judgments do not call relevant:
//!   its dense list or its hybrid list, see [`Mining`]);
//!   a column judged at least [`AdapterParams::mask_grade`] for the row's query is never
//!   its negative;
//! - **early stopping** on a held-out share of the training queries (by a hash of their
//!   text), scored as serving would: the adapted query searches the index's vectors and
//!   nDCG@10 is taken over the judgments; then a refit on every training query for the
//!   best number of epochs.
//!
//! Products keep their vectors, so the trained encoder directory (the base encoder's files,
//! linked, plus the adapter and a `meta.json`) searches an existing index after `shelf
//! index --encoder DIR` reuses every vector. Train on the tuning part of the judged queries
//! (`shelf train --ranker encoder --part tune`) and report on the other.
//!
//! ```no_run
//! use shelf::engine::Engine;
//! use shelf::eval::trec::{read_qrels, read_queries};
//! use shelf::train::encoder::{train_adapter, EncoderTrainOptions};
//!
//! let base = std::path::Path::new("models/all-MiniLM-L6-v2");
//! let engine = Engine::open_with_encoder("index/demo".as_ref(), base).unwrap();
//! let queries = read_queries(std::io::BufReader::new(std::fs::File::open("queries/demo.tsv").unwrap())).unwrap();
//! let qrels = read_qrels(std::io::BufReader::new(std::fs::File::open("queries/demo.qrels").unwrap())).unwrap();
//! let report =
//!     train_adapter(&engine, base, &queries, &qrels, &EncoderTrainOptions::default(), "models/demo-encoder".as_ref())
//!         .unwrap();
//! println!("held-out nDCG@10 {:.4} -> {:.4}", report.stock_holdout_ndcg10, report.best_holdout_ndcg10);
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Instant, SystemTime};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{io, TrainError};
use crate::dense::adapter::write_encoder_dir;
use crate::dense::{model, QueryAdapter, VectorStore};
use crate::engine::{Engine, SearchError};
use crate::eval::metrics::Metrics;
use crate::eval::trec::Qrels;
use crate::rank::META_FILE;
use crate::search::{RankerKind, SearchRequest, MAX_K};

/// What `meta.json` of a trained encoder calls its kind.
pub const KIND: &str = "query-adapter";

/// How the adapter is trained (the `[encoder]` table of a training configuration file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdapterParams {
    /// Most passes over the pairs.
    pub max_epochs: usize,
    /// Stop after this many epochs without a better held-out nDCG@10.
    pub patience: usize,
    pub learning_rate: f64,
    /// Pairs per step; every other pair of the batch is a negative.
    pub batch: usize,
    /// Softmax temperature of the contrastive loss (lower: sharper).
    pub temperature: f64,
    /// Weight of ‖A‖², which holds the map near the stock encoder.
    pub l2: f64,
    /// A product graded at least this is a positive for its query.
    pub min_grade: i32,
    /// A product graded at least this for a query is never one of its negatives.
    pub mask_grade: i32,
    /// Negatives per query drawn from the top [`AdapterParams::mining_depth`] of the stock
    /// index's list ([`AdapterParams::mining`]) that are not graded `mask_grade` or more
    /// (0: in-batch negatives only).
    pub hard_negatives: usize,
    pub mining_depth: usize,
    /// Which list hard negatives come from.
    pub mining: Mining,
    /// Share of the training queries held out for early stopping.
    pub holdout: f64,
}

impl Default for AdapterParams {
    fn default() -> Self {
        AdapterParams {
            max_epochs: 30,
            patience: 5,
            learning_rate: 3e-4,
            batch: 512,
            temperature: 0.05,
            l2: 1e-2,
            min_grade: crate::eval::DEFAULT_THRESHOLD,
            mask_grade: 2,
            hard_negatives: 0,
            mining_depth: 50,
            mining: Mining::Dense,
            holdout: 0.2,
        }
    }
}

/// Where hard negatives are mined: a list the stock index proposes for the query, minus the
/// products judged relevant to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mining {
    /// The stock encoder's nearest products: texts that read like the query.
    Dense,
    /// The hybrid list (BM25 fused with the stock vectors, the index's `[hybrid]` settings):
    /// what the first stage really puts in front of the ranker, mostly products that share
    /// the query's words. Teaches the finer separation fusion needs.
    Hybrid,
}

#[derive(Debug, Clone)]
pub struct EncoderTrainOptions {
    pub params: AdapterParams,
    pub seed: u64,
    pub show_progress: bool,
}

impl Default for EncoderTrainOptions {
    fn default() -> Self {
        EncoderTrainOptions { params: AdapterParams::default(), seed: 42, show_progress: false }
    }
}

/// One epoch of the early-stopping run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Epoch {
    /// Mean training loss over the epoch's steps.
    pub loss: f64,
    pub holdout_ndcg10: f64,
}

/// What adapter training measured; also the body of the trained encoder's `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EncoderReport {
    pub kind: String,
    /// sha256 of the base encoder's weights (the vectors it makes are unchanged).
    pub base_weights_sha256: String,
    /// sha256 of the adapter file.
    pub adapter_sha256: String,
    /// sha256 over the training queries and their judgments.
    pub data_fingerprint: String,
    /// Training queries that have a positive with a vector, and their pairs.
    pub queries: usize,
    pub pairs: usize,
    /// Of those, the queries held out for early stopping.
    pub holdout_queries: usize,
    /// Training queries the search box refused while mining hybrid negatives (blank, too
    /// long): they trained on in-batch negatives only.
    #[serde(default)]
    pub refused_by_search: usize,
    /// Held-out nDCG@10 with the stock encoder, and after the best epoch.
    pub stock_holdout_ndcg10: f64,
    pub best_holdout_ndcg10: f64,
    /// Epochs of the final fit (the best of the early-stopping run).
    pub epochs: usize,
    pub history: Vec<Epoch>,
    pub params: AdapterParams,
    pub seed: u64,
    pub trained_at: String,
    pub train_seconds: f64,
}

/// Judged queries ready to train on: their stock vectors and which product rows count as
/// what for them.
pub struct PairSet {
    queries: Vec<TrainQuery>,
    dim: usize,
    fingerprint: String,
    /// Judged queries the search box refused while mining (blank, too long).
    refused: usize,
}

struct TrainQuery {
    text: String,
    vector: Vec<f32>,
    /// Rows graded at least `min_grade`.
    positives: Vec<usize>,
    /// Rows graded at least `mask_grade`: never a negative of this query.
    masked: HashSet<usize>,
    /// Rows the stock encoder ranks high that are not masked.
    hard: Vec<usize>,
    judged: BTreeMap<String, i32>,
}

impl PairSet {
    /// Embeds the judged `queries` with the engine's encoder as it comes (no adapter) and
    /// pairs them with their judged products that have a vector in the engine's index.
    pub fn build(
        engine: &Engine,
        queries: &[(String, String)],
        qrels: &Qrels,
        params: &AdapterParams,
        show_progress: bool,
    ) -> Result<PairSet, TrainError> {
        let store = vectors(engine)?;
        let encoder = engine.query_encoder()?;
        let judged: Vec<(&str, &BTreeMap<String, i32>)> =
            queries.iter().filter_map(|(qid, text)| qrels.get(qid).map(|grades| (text.as_str(), grades))).collect();
        let texts: Vec<&str> = judged.iter().map(|(text, _)| *text).collect();
        let progress = crate::progress::bar(texts.len() as u64, "queries", show_progress);
        let stock = encoder
            .embed_with_progress(&texts, &|done| progress.inc(done as u64))
            .map_err(|e| TrainError::Invalid(format!("embedding the training queries: {e}")))?;
        progress.finish_and_clear();
        let dense = &engine.index().config.dense;
        let mut hasher = Sha256::new();
        let mut prepared: Vec<TrainQuery> = judged
            .into_iter()
            .zip(stock)
            .map(|((text, grades), vector)| {
                let rows =
                    |min: i32| grades.iter().filter(move |(_, &g)| g >= min).filter_map(|(id, _)| store.row_of(id));
                let positives: Vec<usize> = rows(params.min_grade).collect();
                let masked: HashSet<usize> = rows(params.mask_grade).collect();
                TrainQuery {
                    text: text.to_string(),
                    vector,
                    positives,
                    masked,
                    hard: Vec::new(),
                    judged: grades.clone(),
                }
            })
            .filter(|q| !q.positives.is_empty())
            .collect();
        for query in &prepared {
            hasher.update(query.text.as_bytes());
            for (id, grade) in &query.judged {
                hasher.update(id.as_bytes());
                hasher.update(grade.to_le_bytes());
            }
        }
        let mut refused_by_search = 0;
        if params.hard_negatives > 0 {
            if params.mining == Mining::Hybrid && !(1..=MAX_K).contains(&params.mining_depth) {
                return Err(TrainError::Invalid(format!(
                    "mining_depth must be between 1 and {MAX_K} to mine the hybrid list, got {}",
                    params.mining_depth
                )));
            }
            let progress = crate::progress::bar(prepared.len() as u64, "mining negatives", show_progress);
            let refused = std::sync::atomic::AtomicUsize::new(0);
            prepared.par_iter_mut().try_for_each(|query| {
                let listed: Vec<usize> = match params.mining {
                    Mining::Dense => store
                        .search(&query.vector, params.mining_depth, dense)
                        .into_iter()
                        .map(|(row, _)| row)
                        .collect(),
                    Mining::Hybrid => {
                        let request = SearchRequest {
                            ranker: RankerKind::Hybrid,
                            ..SearchRequest::new(query.text.as_str()).with_k(params.mining_depth)
                        };
                        match engine.search(&request) {
                            Ok(found) => found.results.iter().filter_map(|hit| store.row_of(&hit.id)).collect(),
                            // A judged query the search box refuses (blank, too long) keeps its
                            // pairs, with in-batch negatives only.
                            Err(SearchError::InvalidRequest(_)) => {
                                refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                Vec::new()
                            }
                            Err(e) => {
                                return Err(TrainError::Invalid(format!(
                                    "mining hard negatives for {:?}: {e}",
                                    query.text
                                )))
                            }
                        }
                    }
                };
                query.hard = listed.into_iter().filter(|row| !query.masked.contains(row)).collect();
                progress.inc(1);
                Ok::<(), TrainError>(())
            })?;
            progress.finish_and_clear();
            refused_by_search = refused.into_inner();
        }
        if prepared.is_empty() {
            return Err(TrainError::Invalid(format!(
                "no judged query has a product graded {} or more in the index: nothing to train the encoder on",
                params.min_grade
            )));
        }
        Ok(PairSet {
            queries: prepared,
            dim: store.identity.dim,
            fingerprint: format!("{:x}", hasher.finalize()),
            refused: refused_by_search,
        })
    }

    pub fn queries(&self) -> usize {
        self.queries.len()
    }

    pub fn pairs(&self) -> usize {
        self.queries.iter().map(|q| q.positives.len()).sum()
    }

    /// The (query, positive row) pairs of the queries at `which`.
    pub fn pairs_of(&self, which: &[usize]) -> Vec<(usize, usize)> {
        which.iter().flat_map(|&q| self.queries[q].positives.iter().map(move |&row| (q, row))).collect()
    }

    pub fn text(&self, query: usize) -> &str {
        &self.queries[query].text
    }

    /// sha256 over the training queries and their judgments.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Judged queries the search box refused while mining hybrid negatives (blank, too long):
    /// they train on in-batch negatives only.
    pub fn refused_by_search(&self) -> usize {
        self.refused
    }

    /// The hard negatives mined for the query at `query` (product rows, best ranked first).
    pub fn hard_negatives(&self, query: usize) -> &[usize] {
        &self.queries[query].hard
    }

    /// Every product row a pair or a hard negative names.
    pub fn rows(&self) -> std::collections::BTreeSet<usize> {
        self.queries.iter().flat_map(|q| q.positives.iter().chain(&q.hard).copied()).collect()
    }

    /// The columns a batch of pairs is scored against — its positives, then `hard` hard
    /// negatives of each query — and the additive mask (row-major, rows × columns) that
    /// keeps a row's other relevant products from counting as its negatives.
    pub fn columns(
        &self,
        batch: &[(usize, usize)],
        hard: usize,
        rng: &mut rand::rngs::StdRng,
    ) -> (Vec<usize>, Vec<f32>) {
        let mut columns: Vec<usize> = batch.iter().map(|&(_, row)| row).collect();
        for &(q, _) in batch {
            let mined = &self.queries[q].hard;
            columns.extend(mined.choose_multiple(rng, hard.min(mined.len())).copied());
        }
        // Where each product sits among the columns, so each row visits only its own masked
        // products (a handful) rather than every column.
        let mut at: HashMap<usize, Vec<usize>> = HashMap::with_capacity(columns.len());
        for (j, &row) in columns.iter().enumerate() {
            at.entry(row).or_default().push(j);
        }
        let mut mask = vec![0f32; batch.len() * columns.len()];
        for (i, &(q, own)) in batch.iter().enumerate() {
            let masked = self.queries[q].masked.iter().chain(std::iter::once(&own));
            for &j in masked.filter_map(|row| at.get(row)).flatten() {
                if j != i {
                    mask[i * columns.len() + j] = -1e9;
                }
            }
        }
        (columns, mask)
    }

    /// Splits query positions into (training, held out for early stopping) by a hash of each
    /// query's text; an error when either side would be empty.
    pub fn split(&self, share: f64) -> Result<(Vec<usize>, Vec<usize>), TrainError> {
        let (train, held): (Vec<usize>, Vec<usize>) = (0..self.queries.len()).partition(|&at| {
            let digest = Sha256::digest(format!("holdout:{}", self.queries[at].text.trim().to_lowercase()));
            f64::from(digest[0]) / 256.0 >= share
        });
        if held.is_empty() || train.is_empty() {
            return Err(TrainError::Invalid(format!(
                "{} training queries are too few to hold some out for early stopping (holdout = {share})",
                self.queries()
            )));
        }
        Ok((train, held))
    }
}

/// The outcome of [`fit`]: the map and its epochs.
pub struct Fitted {
    pub adapter: QueryAdapter,
    pub history: Vec<Epoch>,
    /// The epoch with the best held-out nDCG@10 (0: none beat the stock encoder), when
    /// fitted with a holdout.
    pub best_epoch: usize,
    pub stock_holdout_ndcg10: f64,
}

/// Fits an adapter on the queries at `train`. With a `holdout`, scores it after every epoch,
/// stops when `patience` epochs bring nothing better and returns the best epoch's map;
/// without, runs exactly `epochs` epochs.
pub fn fit(
    set: &PairSet,
    engine: &Engine,
    train: &[usize],
    holdout: Option<&[usize]>,
    epochs: usize,
    options: &EncoderTrainOptions,
    progress: &dyn Fn(&Epoch),
) -> Result<Fitted, TrainError> {
    let params = &options.params;
    let store = vectors(engine)?;
    let dim = set.dim;
    let device = Device::Cpu;
    let a = Var::zeros((dim, dim), DType::F32, &device)?;
    let mut optimizer = AdamW::new(
        vec![a.clone()],
        ParamsAdamW { lr: params.learning_rate, weight_decay: 0.0, ..ParamsAdamW::default() },
    )?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let mut pairs = set.pairs_of(train);
    let score = |matrix: Vec<f32>| -> Result<f64, TrainError> {
        let adapter = QueryAdapter::new(dim, matrix).map_err(|e| TrainError::Invalid(e.to_string()))?;
        Ok(holdout.map_or(0.0, |held| holdout_ndcg10(set, engine, store, held, Some(&adapter))))
    };
    let stock = holdout.map_or(0.0, |held| holdout_ndcg10(set, engine, store, held, None));
    let (mut best, mut best_epoch, mut best_matrix) = (stock, 0, vec![0.0; dim * dim]);
    let mut history = Vec::new();
    for epoch in 1..=epochs {
        pairs.shuffle(&mut rng);
        let mut losses = Vec::new();
        for batch in pairs.chunks(params.batch.max(2)) {
            let loss = step(set, store, batch, &a, params, &mut rng)?;
            optimizer.backward_step(&loss)?;
            losses.push(loss.to_scalar::<f32>()? as f64);
        }
        let matrix = a.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let holdout_ndcg10 = score(matrix.clone())?;
        let stats = Epoch { loss: losses.iter().sum::<f64>() / losses.len().max(1) as f64, holdout_ndcg10 };
        progress(&stats);
        history.push(stats);
        match holdout {
            Some(_) if holdout_ndcg10 > best => (best, best_epoch, best_matrix) = (holdout_ndcg10, epoch, matrix),
            Some(_) if epoch - best_epoch >= params.patience => break,
            Some(_) => {}
            None => best_matrix = matrix,
        }
    }
    let adapter = QueryAdapter::new(dim, best_matrix).map_err(|e| TrainError::Invalid(e.to_string()))?;
    Ok(Fitted { adapter, history, best_epoch, stock_holdout_ndcg10: stock })
}

/// The contrastive loss of one batch of (query, positive row) pairs.
fn step(
    set: &PairSet,
    store: &VectorStore,
    batch: &[(usize, usize)],
    a: &Var,
    params: &AdapterParams,
    rng: &mut rand::rngs::StdRng,
) -> Result<Tensor, TrainError> {
    let device = Device::Cpu;
    let dim = set.dim;
    let (columns, mask) = set.columns(batch, params.hard_negatives, rng);
    let queries: Vec<f32> = batch.iter().flat_map(|&(q, _)| set.queries[q].vector.iter().copied()).collect();
    let products: Vec<f32> = columns.iter().flat_map(|&row| store.vector(row).iter().copied()).collect();
    let queries = Tensor::from_vec(queries, (batch.len(), dim), &device)?;
    let products = Tensor::from_vec(products, (columns.len(), dim), &device)?;
    let mask = Tensor::from_vec(mask, (batch.len(), columns.len()), &device)?;
    // q' = normalize(q + A q), for every row at once.
    let moved = (&queries + queries.matmul(&a.as_tensor().t()?)?)?;
    let norm = moved.sqr()?.sum_keepdim(1)?.sqrt()?;
    let adapted = moved.broadcast_div(&norm)?;
    let logits = ((adapted.matmul(&products.t()?)? / params.temperature)? + mask)?;
    let targets = Tensor::arange(0u32, batch.len() as u32, &device)?;
    let contrastive = candle_nn::loss::cross_entropy(&logits, &targets)?;
    let penalty = (a.as_tensor().sqr()?.sum_all()? * params.l2)?;
    Ok((contrastive + penalty)?)
}

/// Mean nDCG@10 of the queries at `held`, each searching the index's vectors as serving does.
fn holdout_ndcg10(
    set: &PairSet,
    engine: &Engine,
    store: &VectorStore,
    held: &[usize],
    adapter: Option<&QueryAdapter>,
) -> f64 {
    let dense = &engine.index().config.dense;
    let total: f64 = held
        .par_iter()
        .map(|&at| {
            let query = &set.queries[at];
            let mut vector = query.vector.clone();
            if let Some(adapter) = adapter {
                adapter.apply(&mut vector);
            }
            let ranking: Vec<String> =
                store.search(&vector, 10, dense).into_iter().map(|(row, _)| store.id(row).to_string()).collect();
            Metrics::compute(&ranking, &query.judged, crate::eval::DEFAULT_THRESHOLD).ndcg10
        })
        .sum();
    total / held.len().max(1) as f64
}

/// Trains a query adapter on the judged `queries` with the engine's encoder (loaded from
/// `base`) and index, and writes the encoder directory `out`: `base`'s files (hard-linked
/// where the file system allows), the adapter and `meta.json`. Refuses to write an adapter
/// that no epoch made better than the stock encoder on the held-out queries.
pub fn train_adapter(
    engine: &Engine,
    base: &Path,
    queries: &[(String, String)],
    qrels: &Qrels,
    options: &EncoderTrainOptions,
    out: &Path,
) -> Result<EncoderReport, TrainError> {
    let started = Instant::now();
    let params = &options.params;
    if !(0.0..1.0).contains(&params.holdout) || params.batch < 2 || params.max_epochs == 0 {
        return Err(TrainError::Invalid(
            "encoder training needs 0 <= holdout < 1, a batch of at least 2 and at least one epoch".into(),
        ));
    }
    // Before minutes of work, not after.
    super::check_replaceable(out)?;
    let set = PairSet::build(engine, queries, qrels, params, options.show_progress)?;
    let (train, held) = set.split(params.holdout)?;
    let bar = crate::progress::bar(params.max_epochs as u64, "epochs", options.show_progress);
    let searching = fit(&set, engine, &train, Some(&held), params.max_epochs, options, &|epoch| {
        bar.set_message(format!("held-out nDCG@10 {:.4}", epoch.holdout_ndcg10));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    if searching.best_epoch == 0 {
        return Err(TrainError::Invalid(format!(
            "no epoch beat the stock encoder on the {} held-out queries (nDCG@10 {:.4}); nothing written (try \
             another learning_rate or more judged queries)",
            held.len(),
            searching.stock_holdout_ndcg10
        )));
    }
    // The final map learns from every training query, for the epochs the holdout chose.
    let everyone: Vec<usize> = (0..set.queries()).collect();
    let fitted = fit(&set, engine, &everyone, None, searching.best_epoch, options, &|_| {})?;
    let best = searching.history.get(searching.best_epoch - 1).map_or(0.0, |e| e.holdout_ndcg10);
    super::write_model_dir(out, |staging| {
        let path = write_encoder_dir(base, &fitted.adapter, staging).map_err(|e| TrainError::Invalid(e.to_string()))?;
        let encoder = engine.query_encoder()?;
        let report = EncoderReport {
            kind: KIND.to_string(),
            base_weights_sha256: encoder.identity("").weights_sha256,
            adapter_sha256: model::sha256_file(&path).map_err(|e| TrainError::Invalid(e.to_string()))?,
            data_fingerprint: set.fingerprint.clone(),
            queries: set.queries(),
            pairs: set.pairs(),
            holdout_queries: held.len(),
            refused_by_search: set.refused_by_search(),
            stock_holdout_ndcg10: searching.stock_holdout_ndcg10,
            best_holdout_ndcg10: best,
            epochs: searching.best_epoch,
            history: searching.history.clone(),
            params: params.clone(),
            seed: options.seed,
            trained_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            train_seconds: started.elapsed().as_secs_f64(),
        };
        super::encoder::write_meta(staging, &report)?;
        Ok(report)
    })
}

/// Writes a trained encoder's report as its directory's `meta.json`.
pub(crate) fn write_meta(dir: &Path, report: &impl Serialize) -> Result<(), TrainError> {
    let meta = dir.join(META_FILE);
    let text = serde_json::to_string_pretty(report).map_err(|e| TrainError::Invalid(e.to_string()))?;
    std::fs::write(&meta, text).map_err(io(&meta))
}

fn vectors(engine: &Engine) -> Result<&VectorStore, TrainError> {
    engine.vectors().ok_or_else(|| {
        TrainError::Invalid("the index has no vectors: build it with an encoder to train the encoder on it".into())
    })
}
