//! Training the neural ranker ([`crate::rank::neural`]) on CPU with candle.
//!
//! Each batch holds whole queries: the relevance head is trained **listwise** on each
//! query's logged candidates, with one of two losses ([`RelevanceLoss`]):
//!
//! - `softmax`: cross-entropy between the softmax of the scores and the grades made a
//!   distribution (linear gains, as the evaluation's nDCG) — ListNet's top-one form;
//! - `approx_ndcg`: the nDCG of ranks approximated by sigmoids of score differences
//!   (ApproxNDCG), maximised directly.
//!
//! Product-quality heads (`rating`, `in_stock`, `popularity`) learn the catalogue's own
//! signals, read from the candidates' features (stars / 5, stock, log popularity / its
//! largest value), with a binary cross-entropy masked to the rows that have the signal; a
//! head whose signal too few rows carry, or that never varies, is switched off and
//! `meta.json` says why. Engagement heads (`click`, `add_to_cart`, `purchase`) train when
//! the model learns from an engagement log (`shelf train --events`; judged training has no
//! such data and leaves them off), with the same masked cross-entropy, from each shown
//! product's counts ([`crate::events::labels::Rates`], position bias divided out). They
//! form a chain of conditional links, each trained where its event can happen: a click per
//! examination (weighted by exposure), an add-to-cart per click (weighted by clicks), a
//! purchase per add-to-cart (weighted by add-to-carts); a head's probability is the product
//! of the links up to it. A purchase head trained on purchases per examination learns
//! little: purchases are rare, and what sways them after the cart is drowned by what brings
//! the click (measured in the README).
//!
//! Training is deterministic for a seed: weights start from a seeded generator, batches
//! are shuffled by one, and each fold's network early-stops on validation nDCG@10 and
//! keeps its best epoch.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{
    candidates_ndcg, cross_validate, finish, FoldTrainer, LoggedRow, Prepared, TrainError, TrainOptions, Trained,
};
use crate::dense::VectorStore;
use crate::features;
use crate::rank::neural::{self, Architecture, HeadInfo, Network, NeuralMeta, HEADS};

/// Rows with a click (or an add-to-cart) that the add-to-cart (purchase) link needs to train.
const MIN_LINK_ROWS: usize = 100;

/// The listwise loss of the relevance head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelevanceLoss {
    Softmax,
    ApproxNdcg,
}

/// The neural ranker's knobs (a `[neural]` table in `shelf train --config FILE`; every
/// key optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NeuralParams {
    /// Widths of the shared trunk's hidden layers.
    pub hidden: Vec<usize>,
    /// Width of the query ⊙ product embedding projection; 0 leaves embeddings out.
    pub embedding: usize,
    pub loss: RelevanceLoss,
    /// ApproxNDCG's temperature: how sharply a score difference becomes a rank step.
    pub temperature: f64,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Share of hidden activations dropped at random in training.
    pub dropout: f64,
    /// Queries per batch.
    pub batch_queries: usize,
    pub max_epochs: usize,
    /// Stop when validation nDCG@10 has not improved for this many epochs.
    pub patience: usize,
    /// Share of each fold's training queries held out for early stopping.
    pub validation_share: f64,
    /// Weight of each product-quality head's loss beside relevance's.
    pub head_weight: f64,
    /// Weight of each engagement head's loss beside relevance's.
    pub engagement_weight: f64,
    /// Least share of training rows that must carry a signal for its head to train (the
    /// add-to-cart and purchase links need 100 rows with clicks, add-to-carts instead).
    pub min_head_share: f64,
}

impl Default for NeuralParams {
    fn default() -> Self {
        NeuralParams {
            hidden: vec![64, 32],
            embedding: 16,
            loss: RelevanceLoss::Softmax,
            temperature: 0.1,
            learning_rate: 0.003,
            weight_decay: 1e-4,
            dropout: 0.2,
            batch_queries: 16,
            max_epochs: 40,
            patience: 6,
            validation_share: 0.1,
            head_weight: 0.2,
            engagement_weight: 1.0,
            min_head_share: 0.05,
        }
    }
}

/// Where a head's target comes from.
#[derive(Clone, Copy)]
enum Source {
    /// A product-quality head: a feature, scaled to 0..1.
    Feature(usize, Scale),
    /// An engagement head, the link at this index of the chain
    /// ([`neural::ENGAGEMENT`]): a click per examination, an add-to-cart per click, a
    /// purchase per add-to-cart.
    Engagement(usize),
}

impl Source {
    fn of(head: &str) -> Option<Source> {
        let feature = |name: &str, scale| features::index_of(name).map(|at| Source::Feature(at, scale));
        match head {
            "rating" => feature("rating", Scale::Divide(5.0)),
            "in_stock" => feature("in_stock", Scale::Divide(1.0)),
            "popularity" => feature("log_popularity", Scale::ByLargest),
            _ => neural::ENGAGEMENT.iter().position(|link| *link == head).map(Source::Engagement),
        }
    }

    /// The raw signal of a row (NaN: the row does not have it).
    fn raw(self, row: &LoggedRow) -> f32 {
        match self {
            Source::Feature(at, _) => row.features[at],
            Source::Engagement(0) => row.engagement.map_or(f32::NAN, |e| e.rates[0] as f32),
            Source::Engagement(k) => match row.engagement {
                Some(e) if e.reached[k - 1] > 0.0 => (e.reached[k] / e.reached[k - 1]) as f32,
                _ => f32::NAN,
            },
        }
    }

    /// How much a row's target counts: a link's rate measured over more trials (the
    /// examinations, clicks or add-to-carts before it) is surer, and its weighted
    /// cross-entropy is the binomial likelihood of what shoppers did.
    fn weight(self, row: &LoggedRow) -> f32 {
        match self {
            Source::Feature(..) => 1.0,
            Source::Engagement(0) => row.engagement.map_or(0.0, |e| e.exposure as f32),
            Source::Engagement(k) => row.engagement.map_or(0.0, |e| e.reached[k - 1] as f32),
        }
    }

    /// What the signal is called in a head's reason for being off.
    fn describe(self) -> String {
        match self {
            Source::Feature(at, _) => features::NAMES[at].to_string(),
            Source::Engagement(0) => "click rate".to_string(),
            Source::Engagement(k) => format!("{} per {}", neural::ENGAGEMENT[k], neural::ENGAGEMENT[k - 1]),
        }
    }
}

#[derive(Clone, Copy)]
enum Scale {
    Divide(f32),
    /// Divided by the largest value in the training rows.
    ByLargest,
}

/// The data every fit of one training run shares: encoded inputs and targets.
pub(crate) struct NeuralTrainer<'a> {
    data: &'a Prepared<'a>,
    vectors: Option<&'a VectorStore>,
    params: &'a NeuralParams,
    seed: u64,
    pub architecture: Architecture,
    pub heads: Vec<HeadInfo>,
    mean: Vec<f32>,
    sd: Vec<f32>,
    /// Each query's encoded feature rows `[rows × 2F]`.
    encoded: Vec<Vec<f32>>,
    /// Each query's rows' targets for the heads after relevance, with their weights (a
    /// NaN target: unknown).
    targets: Vec<Vec<Vec<(f32, f32)>>>,
    /// The loss weight of each head after relevance.
    head_weights: Vec<f32>,
}

impl<'a> NeuralTrainer<'a> {
    pub fn new(
        data: &'a Prepared<'a>,
        vectors: Option<&'a VectorStore>,
        params: &'a NeuralParams,
        seed: u64,
    ) -> Result<Self, TrainError> {
        if params.hidden.is_empty() || params.hidden.contains(&0) || params.batch_queries == 0 {
            return Err(TrainError::Invalid("neural: hidden widths and batch_queries must be at least 1".into()));
        }
        // Input statistics over every logged row (no labels are read, so folds may share them).
        let (mut sum, mut squares, mut count) =
            (vec![0f64; features::COUNT], vec![0f64; features::COUNT], vec![0usize; features::COUNT]);
        for row in data.queries.iter().flat_map(|q| &q.rows) {
            for (at, value) in row.features.iter().enumerate().filter(|(_, v)| !v.is_nan()) {
                sum[at] += *value as f64;
                squares[at] += (*value as f64).powi(2);
                count[at] += 1;
            }
        }
        let mean: Vec<f32> = (0..features::COUNT).map(|at| (sum[at] / count[at].max(1) as f64) as f32).collect();
        let sd: Vec<f32> = (0..features::COUNT)
            .map(|at| {
                let n = count[at].max(1) as f64;
                let variance = (squares[at] / n - (sum[at] / n).powi(2)).max(0.0);
                if variance.sqrt() > 1e-6 {
                    variance.sqrt() as f32
                } else {
                    1.0
                }
            })
            .collect();

        let dim = vectors.map_or(0, |store| store.identity.dim);
        let embedding = if dim > 0 { params.embedding } else { 0 };
        let rows = data.rows();
        let mut heads = vec![HeadInfo { name: "relevance".into(), on: true, rows, reason: None }];
        let engaged = data.queries.iter().flat_map(|q| &q.rows).any(|r| r.engagement.is_some());
        // Each trained head's source and the divisor that brings its signal to 0..1.
        let mut sources = Vec::new();
        for name in HEADS.iter().skip(1) {
            let Some(source) = Source::of(name) else { continue };
            let values: Vec<f32> =
                data.queries.iter().flat_map(|q| &q.rows).map(|r| source.raw(r)).filter(|v| !v.is_nan()).collect();
            let varies = values.iter().any(|v| *v != values[0]);
            // A later link's trials (clicks, add-to-carts) are rare by nature: it needs
            // enough of them, not a share of every row.
            let enough = match source {
                Source::Engagement(k) if k > 0 => values.len() >= MIN_LINK_ROWS,
                _ => values.len() as f64 >= params.min_head_share * rows as f64 && values.len() >= 20,
            };
            let signal = source.describe();
            // An engagement head is a link of a chain (see `neural::ENGAGEMENT`): it needs
            // every link before it.
            let broken = match source {
                Source::Engagement(k) if k > 0 && engaged => {
                    heads.iter().find(|h| h.name == neural::ENGAGEMENT[k - 1] && !h.on)
                }
                _ => None,
            };
            if let Some(before) = broken {
                let reason = Some(format!("the {} head before it in the chain is off", before.name));
                heads.push(HeadInfo { name: name.to_string(), on: false, rows: values.len(), reason });
                continue;
            }
            let reason = match (source, engaged, enough, varies) {
                (Source::Engagement(_), false, _, _) => {
                    Some("no engagement in the training data (train with --events to learn it)".to_string())
                }
                (_, _, false, _) => Some(format!("only {} of {rows} training rows have a {signal}", values.len())),
                (_, _, true, false) => Some(format!("{signal} never varies in the training rows")),
                (_, _, true, true) => None,
            };
            if reason.is_none() {
                let largest = values.iter().copied().fold(0f32, f32::max).max(f32::MIN_POSITIVE);
                let divisor = match source {
                    Source::Feature(_, Scale::Divide(by)) => by,
                    Source::Feature(_, Scale::ByLargest) => largest,
                    Source::Engagement(_) => 1.0,
                };
                sources.push((source, divisor));
            }
            heads.push(HeadInfo { name: name.to_string(), on: reason.is_none(), rows: values.len(), reason });
        }
        let architecture = Architecture {
            hidden: params.hidden.clone(),
            embedding,
            embedding_dim: if embedding > 0 { dim } else { 0 },
            heads: heads.iter().filter(|h| h.on).map(|h| h.name.clone()).collect(),
        };
        let shell = Network::init(architecture.clone(), mean.clone(), sd.clone(), seed)?;
        let encoded = data
            .queries
            .iter()
            .map(|q| shell.encode_rows(&q.rows.iter().map(|r| r.features).collect::<Vec<_>>()))
            .collect();
        let targets = data
            .queries
            .iter()
            .map(|q| {
                q.rows
                    .iter()
                    .map(|r| {
                        sources
                            .iter()
                            .map(|(source, divisor)| ((source.raw(r) / divisor).clamp(0.0, 1.0), source.weight(r)))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let head_weights = sources
            .iter()
            .map(|(source, _)| match source {
                Source::Feature(..) => params.head_weight as f32,
                Source::Engagement(_) => params.engagement_weight as f32,
            })
            .collect();
        Ok(NeuralTrainer { data, vectors, params, seed, architecture, heads, mean, sd, encoded, targets, head_weights })
    }

    /// The inputs of some queries' rows, padded to `width` rows each (`None`: unpadded,
    /// rows one after another).
    fn inputs(&self, queries: &[usize], width: Option<usize>) -> Result<(Tensor, Option<Tensor>), TrainError> {
        let f = self.architecture.feature_inputs();
        let dim = self.architecture.embedding_dim;
        let (mut x, mut e) = (Vec::new(), Vec::new());
        let mut count = 0;
        for &q in queries {
            let query = self.data.queries[q];
            let n = query.rows.len();
            let pad = width.map_or(0, |w| w.saturating_sub(n));
            x.extend_from_slice(&self.encoded[q]);
            x.extend(std::iter::repeat_n(0.0, pad * f));
            if dim > 0 {
                let store = self.vectors;
                let vectors: Vec<Option<&[f32]>> =
                    query.rows.iter().map(|r| store.and_then(|s| s.row_of(&r.id).map(|row| s.vector(row)))).collect();
                e.extend(self.architecture.encode_embeddings(&query.query_vector, &vectors));
                e.extend(std::iter::repeat_n(0.0, pad * dim));
            }
            count += n + pad;
        }
        let x = Tensor::from_vec(x, (count, f), &Device::Cpu)?;
        let e = if dim > 0 { Some(Tensor::from_vec(e, (count, dim), &Device::Cpu)?) } else { None };
        Ok((x, e))
    }

    /// One batch's loss: listwise relevance plus the quality and engagement heads.
    fn batch_loss(
        &self,
        network: &Network,
        queries: &[usize],
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Result<Tensor, TrainError> {
        let width = queries.iter().map(|&q| self.data.queries[q].rows.len()).max().unwrap_or(1);
        let b = queries.len();
        let (x, e) = self.inputs(queries, Some(width))?;
        // Dropout masks come from the seeded generator, so training stays reproducible.
        let keep = 1.0 - self.params.dropout.clamp(0.0, 0.9);
        let mut dropout = |h: &Tensor| -> Result<Option<Tensor>, crate::rank::ModelError> {
            if keep >= 1.0 {
                return Ok(None);
            }
            let (rows, width) = h.dims2()?;
            let mask: Vec<f32> =
                (0..rows * width).map(|_| if rng.random_bool(keep) { (1.0 / keep) as f32 } else { 0.0 }).collect();
            Ok(Some(Tensor::from_vec(mask, (rows, width), &Device::Cpu)?))
        };
        let out = network.forward_with(&x, e.as_ref(), &mut dropout)?;
        let (mut mask, mut gains) = (vec![0f32; b * width], vec![0f32; b * width]);
        let extra = self.architecture.heads.len() - 1;
        let (mut targets, mut known) = (vec![0f32; b * width * extra], vec![0f32; b * width * extra]);
        for (slot, &q) in queries.iter().enumerate() {
            for (at, row) in self.data.queries[q].rows.iter().enumerate() {
                let i = slot * width + at;
                mask[i] = 1.0;
                gains[i] = row.label.max(0) as f32;
                for (k, (target, weight)) in self.targets[q][at].iter().enumerate() {
                    if !target.is_nan() {
                        targets[i * extra + k] = *target;
                        known[i * extra + k] = *weight;
                    }
                }
            }
        }
        let cpu = &Device::Cpu;
        let mask = Tensor::from_vec(mask, (b, width), cpu)?;
        let gains = Tensor::from_vec(gains, (b, width), cpu)?;
        let scores = out.narrow(1, 0, 1)?.reshape((b, width))?;
        let mut loss = match self.params.loss {
            RelevanceLoss::Softmax => softmax_loss(&scores, &gains, &mask)?,
            RelevanceLoss::ApproxNdcg => approx_ndcg_loss(&scores, &gains, &mask, self.params.temperature)?,
        };
        if extra > 0 {
            let logits = out.narrow(1, 1, extra)?;
            let targets = Tensor::from_vec(targets, (b * width, extra), cpu)?;
            let known = Tensor::from_vec(known, (b * width, extra), cpu)?;
            // Binary cross-entropy with logits, stable form: max(z, 0) − z·t + ln(1 + e^−|z|).
            let bce = ((logits.relu()? - logits.mul(&targets)?)? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
            // Each head's weighted mean over the rows that have its signal.
            let per_head = bce.mul(&known)?.sum(0)?.broadcast_div(&(known.sum(0)? + 1.0)?)?;
            let weights = Tensor::new(self.head_weights.as_slice(), cpu)?;
            loss = (loss + per_head.mul(&weights)?.sum_all()?)?;
        }
        Ok(loss)
    }

    /// Relevance scores of each query's logged rows.
    fn score_queries(&self, network: &Network, queries: &[usize]) -> Result<Vec<Vec<f64>>, TrainError> {
        let mut scores = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(256) {
            let (x, e) = self.inputs(chunk, None)?;
            let relevance: Vec<f32> = network.forward(&x, e.as_ref())?.narrow(1, 0, 1)?.flatten_all()?.to_vec1()?;
            let mut at = 0;
            for &q in chunk {
                let n = self.data.queries[q].rows.len();
                scores.push(relevance[at..at + n].iter().map(|v| *v as f64).collect());
                at += n;
            }
        }
        Ok(scores)
    }

    fn validation_ndcg(&self, network: &Network, valid: &[usize], depth: usize) -> Result<f64, TrainError> {
        let scores = self.score_queries(network, valid)?;
        let by_query: BTreeMap<usize, &Vec<f64>> = valid.iter().copied().zip(&scores).collect();
        Ok(candidates_ndcg(self.data, valid, depth, &|q, at| by_query[&q][at]))
    }
}

/// Softmax cross-entropy against the grades as a distribution; queries without a
/// relevant-graded row carry no signal and are left out.
fn softmax_loss(scores: &Tensor, gains: &Tensor, mask: &Tensor) -> Result<Tensor, TrainError> {
    let masked = (scores + ((mask - 1.0)? * 1e4)?)?;
    let log_p = candle_nn::ops::log_softmax(&masked, 1)?;
    let total = gains.sum_keepdim(1)?;
    let target = gains.broadcast_div(&total.clamp(1e-6, f64::MAX)?)?;
    let useful = total.gt(0.0)?.to_dtype(candle_core::DType::F32)?.sum_all()?;
    let loss = target.mul(&log_p)?.mul(mask)?.sum_all()?.neg()?;
    Ok(loss.broadcast_div(&(useful + 1e-6)?)?)
}

/// 1 − ApproxNDCG: ranks from sigmoids of score differences, the query's ideal DCG from
/// its grades sorted.
fn approx_ndcg_loss(scores: &Tensor, gains: &Tensor, mask: &Tensor, temperature: f64) -> Result<Tensor, TrainError> {
    let (b, width) = scores.dims2()?;
    // above[b, i, j] = sigmoid((s_j − s_i) / T): how surely j ranks above i.
    let diff = scores.unsqueeze(1)?.broadcast_sub(&scores.unsqueeze(2)?)?;
    let above = candle_nn::ops::sigmoid(&(diff / temperature)?)?.broadcast_mul(&mask.unsqueeze(1)?)?;
    // Remove each row's comparison with itself (sigmoid(0) = 0.5).
    let ranks = ((above.sum(2)? - (mask * 0.5)?)? + 1.0)?;
    let discount = ((ranks + 1.0)?.log()?.recip()? * std::f64::consts::LN_2)?;
    let dcg = gains.mul(&discount)?.mul(mask)?.sum(1)?;
    let grades: Vec<Vec<f32>> = gains.to_vec2()?;
    let ideal: Vec<f32> = grades
        .iter()
        .map(|row| {
            let mut sorted = row.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            sorted.iter().enumerate().map(|(at, g)| g / ((at as f32) + 2.0).log2()).sum()
        })
        .collect();
    let useful = ideal.iter().filter(|v| **v > 0.0).count().max(1) as f64;
    let inverse: Vec<f32> = ideal.iter().map(|v| if *v > 0.0 { 1.0 / v } else { 0.0 }).collect();
    let inverse = Tensor::from_vec(inverse, b, &Device::Cpu)?;
    let ndcg = (dcg.mul(&inverse)?.sum_all()? / useful)?;
    debug_assert_eq!(width, grades.first().map_or(width, Vec::len));
    Ok(ndcg.neg()?.affine(1.0, 1.0)?)
}

impl FoldTrainer for NeuralTrainer<'_> {
    type Model = (Network, usize);

    fn fit(&self, fit: &[usize], valid: Option<&[usize]>, epochs: usize) -> Result<(Network, usize), TrainError> {
        let mut network = Network::init(self.architecture.clone(), self.mean.clone(), self.sd.clone(), self.seed)?;
        let mut vars = Vec::new();
        for tensor in network.weights.values_mut() {
            let var = Var::from_tensor(tensor)?;
            *tensor = var.as_tensor().clone();
            vars.push(var);
        }
        let params = ParamsAdamW {
            lr: self.params.learning_rate,
            weight_decay: self.params.weight_decay,
            ..ParamsAdamW::default()
        };
        let mut optimizer = AdamW::new(vars.clone(), params)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed ^ fit.len() as u64);
        let mut order = fit.to_vec();
        let mut best: Option<(f64, usize, BTreeMap<String, Tensor>)> = None;
        let mut epoch = 0;
        while epoch < epochs {
            epoch += 1;
            order.shuffle(&mut rng);
            let mut total = 0.0;
            for batch in order.chunks(self.params.batch_queries) {
                let loss = self.batch_loss(&network, batch, &mut rng)?;
                total += loss.to_scalar::<f32>()? as f64;
                optimizer.backward_step(&loss)?;
            }
            let batches = order.len().div_ceil(self.params.batch_queries).max(1);
            tracing::debug!(epoch, loss = total / batches as f64, "neural training epoch");
            if let Some(valid) = valid {
                let ndcg = self.validation_ndcg(&network, valid, usize::MAX)?;
                tracing::debug!(epoch, validation_ndcg10 = ndcg, "neural validation");
                if best.as_ref().is_none_or(|(score, _, _)| ndcg > *score + 1e-6) {
                    best = Some((ndcg, epoch, snapshot(&network)?));
                } else if best.as_ref().is_some_and(|(_, at, _)| epoch - at >= self.params.patience) {
                    break;
                }
            }
        }
        let (kept, weights) = match best {
            Some((_, at, weights)) => (at, weights),
            None => (epoch, snapshot(&network)?),
        };
        network.weights = weights;
        Ok((network, kept))
    }

    fn rounds(&self, model: &(Network, usize)) -> usize {
        model.1
    }

    fn max_rounds(&self) -> usize {
        self.params.max_epochs
    }

    fn score(&self, model: &(Network, usize), query: usize) -> Result<Vec<f64>, TrainError> {
        Ok(self.score_queries(&model.0, &[query])?.pop().unwrap_or_default())
    }

    fn save(&self, model: &(Network, usize), dir: &Path, fold: Option<usize>) -> Result<(), TrainError> {
        let name = fold.map_or_else(|| neural::MODEL_FILE.to_string(), neural::fold_file);
        Ok(model.0.save(&dir.join(name))?)
    }

    fn parameters(&self, _rounds: usize) -> serde_json::Value {
        let described = NeuralMeta { architecture: self.architecture.clone(), heads: self.heads.clone() };
        let mut value = serde_json::to_value(described).unwrap_or_default();
        value["training"] = serde_json::to_value(self.params).unwrap_or_default();
        value["seed"] = serde_json::json!(self.seed);
        value
    }
}

/// The network's weights as they are now, detached from training.
fn snapshot(network: &Network) -> Result<BTreeMap<String, Tensor>, TrainError> {
    network.weights.iter().map(|(name, t)| Ok((name.clone(), t.copy()?.detach()))).collect()
}

/// Trains the neural ranker with cross-validation into `out`; also returns every logged
/// row's held-out score.
pub(crate) fn train(
    data: &Prepared,
    vectors: Option<&VectorStore>,
    options: &TrainOptions,
    out: &Path,
) -> Result<(Trained, Vec<Vec<f64>>), TrainError> {
    let started = Instant::now();
    let trainer = NeuralTrainer::new(data, vectors, &options.neural, options.seed)?;
    let validated = cross_validate(&trainer, data, options, options.neural.validation_share, out)?;
    let parameters = trainer.parameters(validated.rounds);
    let mut report = finish(neural::KIND, data, options, &validated, parameters, started, out)?;
    report.heads = trainer.heads.clone();
    Ok((Trained { report, booster: None }, validated.held_out))
}
