//! Full fine-tuning: every transformer weight of the sentence encoder learns the shop's
//! judged queries, on both sides (queries and products), so the catalogue is re-embedded.
//!
//! The pairs, negatives and temperature are the query adapter's ([`super::encoder`], the
//! `[encoder]` table); what differs is the network: [`TrainableBert`] (candle, CPU) in place
//! of a linear map, AdamW at a small learning rate, and a wall-clock budget, since an epoch
//! over a large shop's pairs takes many minutes on a small machine. The trained weights are
//! written under their original names and exported to ONNX exactly as the shipped ones
//! (`shelf model fetch`'s export, Python from PyPI), and the export is checked against the
//! network it came from before the directory is written.
//!
//! **Early stopping**: the contrastive loss on a held-out share of the training queries (by a
//! hash of their text) is taken before training and after every epoch (and when the budget
//! ends one early); training stops after [`FinetuneParams::patience`] epochs without a lower
//! held-out loss, and the weights of the best epoch are the ones written. If no epoch beats
//! the stock encoder, nothing is written.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Instant, SystemTime};

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::encoder::{EncoderTrainOptions, PairSet};
use super::TrainError;
use crate::dense::adapter::ADAPTER_FILE;
use crate::dense::bert::TrainableBert;
use crate::dense::{model, Encoder};
use crate::engine::Engine;
use crate::eval::trec::Qrels;
use crate::rank::META_FILE;

/// What `meta.json` of a fine-tuned encoder calls its kind.
pub const KIND: &str = "fine-tuned";

/// How the whole encoder is trained (the `[finetune]` table of a training configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneParams {
    pub epochs: usize,
    /// Training stops after this many minutes, whatever the epoch.
    pub max_minutes: f64,
    pub learning_rate: f64,
    /// Pairs per step (each step runs the network over twice as many texts).
    pub batch: usize,
    pub weight_decay: f64,
    /// Stop after this many epochs without a lower held-out loss.
    pub patience: usize,
}

impl Default for FinetuneParams {
    fn default() -> Self {
        FinetuneParams { epochs: 1, max_minutes: 20.0, learning_rate: 2e-5, batch: 32, weight_decay: 0.01, patience: 1 }
    }
}

/// Why fine-tuning stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// It ran every epoch asked for.
    Epochs,
    /// [`FinetuneParams::patience`] epochs brought no lower held-out loss.
    Patience,
    /// The wall-clock budget ran out, maybe within an epoch.
    Budget,
}

/// What fine-tuning measured; also the body of the encoder's `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneReport {
    pub kind: String,
    pub base_weights_sha256: String,
    pub weights_sha256: String,
    pub onnx_sha256: String,
    pub data_fingerprint: String,
    pub queries: usize,
    pub pairs: usize,
    /// Training queries the search box refused while mining hybrid negatives (blank, too
    /// long): they trained on in-batch negatives only.
    #[serde(default)]
    pub refused_by_search: usize,
    /// Pairs the network saw (fewer than `pairs × epochs` when the budget ran out or training
    /// stopped early).
    pub pairs_seen: usize,
    pub steps: usize,
    /// Mean training loss of the first and the last tenth of the steps.
    pub first_loss: f64,
    pub last_loss: f64,
    /// The contrastive loss on the held-out queries before training, and of the weights
    /// written (the best epoch's).
    pub holdout_loss_before: f64,
    pub holdout_loss_after: f64,
    /// The held-out loss after each epoch trained (the last one cut short when the budget
    /// ran out), and which of them (1-based) was kept. Absent from directories written
    /// before early stopping.
    #[serde(default)]
    pub holdout_losses: Vec<f64>,
    #[serde(default)]
    pub best_epoch: usize,
    /// Absent from directories written before early stopping.
    #[serde(default)]
    pub stopped_by: Option<Stop>,
    /// Lowest cosine between the exported graph's vectors and the trained network's.
    pub export_cosine: f64,
    pub params: FinetuneParams,
    pub pair_params: super::encoder::AdapterParams,
    pub seed: u64,
    pub trained_at: String,
    pub train_seconds: f64,
}

/// Fine-tunes the encoder in `base` on the judged `queries` and writes the encoder directory
/// `out` (weights, their ONNX export, the tokenizer and config, `meta.json`). Index with
/// `shelf index --encoder out`, which re-embeds every product.
pub fn finetune(
    engine: &Engine,
    base: &Path,
    queries: &[(String, String)],
    qrels: &Qrels,
    options: &EncoderTrainOptions,
    params: &FinetuneParams,
    out: &Path,
) -> Result<FinetuneReport, TrainError> {
    let started = Instant::now();
    let pair_params = &options.params;
    // Before minutes of embedding and mining, not after.
    let budget_ok = params.max_minutes.is_finite() && params.max_minutes > 0.0;
    if params.epochs == 0
        || params.patience == 0
        || !budget_ok
        || !(pair_params.holdout > 0.0 && pair_params.holdout < 1.0)
    {
        return Err(TrainError::Invalid(format!(
            "fine-tuning needs epochs >= 1, patience >= 1, max_minutes > 0 and 0 < holdout < 1 (early stopping \
             watches the held-out queries); got epochs = {}, patience = {}, max_minutes = {}, holdout = {}",
            params.epochs, params.patience, params.max_minutes, pair_params.holdout
        )));
    }
    super::check_replaceable(out)?;
    let set = PairSet::build(engine, queries, qrels, pair_params, options.show_progress)?;
    let (train, held) = set.split(pair_params.holdout)?;
    let texts = product_texts(engine, &set)?;
    let encoder = engine.query_encoder()?;
    let bert = TrainableBert::load(base).map_err(|e| TrainError::Invalid(e.to_string()))?;
    let batch = params.batch.max(2);
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let held_pairs: Vec<(usize, usize)> = set.pairs_of(&held);
    let holdout_loss = |bert: &TrainableBert| -> Result<f64, TrainError> {
        let mut losses = Vec::new();
        for chunk in held_pairs.chunks(batch) {
            let loss =
                step_loss(&set, &texts, encoder, bert, chunk, pair_params, &mut rand::rngs::StdRng::seed_from_u64(0))?;
            losses.push(loss.to_scalar::<f32>()? as f64);
        }
        Ok(losses.iter().sum::<f64>() / losses.len().max(1) as f64)
    };
    let before = holdout_loss(&bert)?;
    let mut optimizer = AdamW::new(
        bert.vars(),
        ParamsAdamW { lr: params.learning_rate, weight_decay: params.weight_decay, ..ParamsAdamW::default() },
    )?;
    let mut pairs = set.pairs_of(&train);
    let budget = std::time::Duration::from_secs_f64(params.max_minutes * 60.0);
    let total = (pairs.len() * params.epochs) as u64;
    let bar = crate::progress::bar(total, "pairs", options.show_progress);
    let training = Instant::now();
    let (mut losses, mut seen) = (Vec::new(), 0);
    let mut holdout_losses = Vec::new();
    // The best held-out loss so far, its epoch (0: the stock weights) and, when later epochs
    // have moved the network since, a copy of its weights.
    let (mut best, mut best_epoch, mut best_weights) = (before, 0, None);
    let mut stopped_by = Stop::Epochs;
    for epoch in 1..=params.epochs {
        pairs.shuffle(&mut rng);
        let (mut stepped, mut out_of_time) = (false, false);
        for chunk in pairs.chunks(batch) {
            if training.elapsed() > budget {
                out_of_time = true;
                break;
            }
            let loss = step_loss(&set, &texts, encoder, &bert, chunk, pair_params, &mut rng)?;
            optimizer.backward_step(&loss)?;
            let value = loss.to_scalar::<f32>()? as f64;
            losses.push(value);
            seen += chunk.len();
            stepped = true;
            bar.set_message(format!("epoch {epoch}, loss {value:.3}"));
            bar.inc(chunk.len() as u64);
        }
        if out_of_time {
            stopped_by = Stop::Budget;
        }
        if !stepped {
            break;
        }
        let loss = holdout_loss(&bert)?;
        holdout_losses.push(loss);
        let last = out_of_time || epoch == params.epochs;
        if loss < best {
            (best, best_epoch) = (loss, epoch);
            // Only needed if training goes on.
            best_weights =
                if last { None } else { Some(bert.snapshot().map_err(|e| TrainError::Invalid(e.to_string()))?) };
        } else if epoch - best_epoch >= params.patience && !last {
            stopped_by = Stop::Patience;
            break;
        }
        if last {
            break;
        }
    }
    bar.finish_and_clear();
    if holdout_losses.is_empty() {
        return Err(TrainError::Invalid(format!(
            "the max_minutes budget ({}) ran out before the first step; nothing written",
            params.max_minutes
        )));
    }
    if best_epoch == 0 {
        let budget = if stopped_by == Stop::Budget { ", a larger max_minutes" } else { "" };
        return Err(TrainError::Invalid(format!(
            "no epoch lowered the held-out loss of the stock encoder ({before:.4}; after each epoch: {}); nothing \
             written (try a lower learning_rate{budget} or more judged queries)",
            holdout_losses.iter().map(|l| format!("{l:.4}")).collect::<Vec<_>>().join(", ")
        )));
    }
    let after = match best_weights {
        // Later epochs moved the network: put the best epoch's weights back, and measure
        // them again so the report is of what is written.
        Some(weights) if best_epoch < holdout_losses.len() => {
            bert.restore(&weights).map_err(|e| TrainError::Invalid(e.to_string()))?;
            holdout_loss(&bert)?
        }
        _ => best,
    };
    let tenth = (losses.len() / 10).max(1);
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let (first_loss, last_loss) =
        (mean(&losses[..tenth.min(losses.len())]), mean(&losses[losses.len().saturating_sub(tenth)..]));
    super::write_model_dir(out, |staging| {
        let invalid = |e: crate::dense::DenseError| TrainError::Invalid(e.to_string());
        // The tokenizer and configs; the weights and their export are this training's own.
        let skip = ["model.safetensors", "model.safetensors.sha256", crate::dense::ONNX_FILE, META_FILE, ADAPTER_FILE];
        model::link_files(base, staging, &skip).map_err(invalid)?;
        let weights = staging.join("model.safetensors");
        bert.save(&weights).map_err(invalid)?;
        let onnx_sha256 = model::export_onnx(staging).map_err(invalid)?;
        let export_cosine = check_export(&bert, staging)?;
        let report = FinetuneReport {
            kind: KIND.to_string(),
            base_weights_sha256: encoder.identity("").weights_sha256,
            weights_sha256: model::sha256_file(&weights).map_err(invalid)?,
            onnx_sha256,
            data_fingerprint: set.fingerprint().to_string(),
            queries: set.queries(),
            pairs: set.pairs(),
            refused_by_search: set.refused_by_search(),
            pairs_seen: seen,
            steps: losses.len(),
            first_loss,
            last_loss,
            holdout_loss_before: before,
            holdout_loss_after: after,
            holdout_losses: holdout_losses.clone(),
            best_epoch,
            stopped_by: Some(stopped_by),
            export_cosine,
            params: params.clone(),
            pair_params: pair_params.clone(),
            seed: options.seed,
            trained_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            train_seconds: started.elapsed().as_secs_f64(),
        };
        super::encoder::write_meta(staging, &report)?;
        Ok(report)
    })
}

/// The InfoNCE loss of one batch of (query, positive row) pairs, both sides through the
/// network.
fn step_loss(
    set: &PairSet,
    texts: &HashMap<usize, String>,
    encoder: &Encoder,
    bert: &TrainableBert,
    batch: &[(usize, usize)],
    params: &super::encoder::AdapterParams,
    rng: &mut rand::rngs::StdRng,
) -> Result<Tensor, TrainError> {
    let (columns, mask) = set.columns(batch, params.hard_negatives, rng);
    let query_texts: Vec<&str> = batch.iter().map(|&(q, _)| set.text(q)).collect();
    let product_texts: Vec<&str> = columns.iter().map(|row| texts.get(row).map_or("", String::as_str)).collect();
    let queries = embed(encoder, bert, &query_texts)?;
    let products = embed(encoder, bert, &product_texts)?;
    let device = Device::Cpu;
    let mask = Tensor::from_vec(mask, (batch.len(), columns.len()), &device)?;
    let logits = ((queries.matmul(&products.t()?)? / params.temperature)? + mask)?;
    let targets = Tensor::arange(0u32, batch.len() as u32, &device)?;
    Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
}

/// Unit vectors of `texts` through the trainable network, tokenised as the encoder does.
fn embed(encoder: &Encoder, bert: &TrainableBert, texts: &[&str]) -> Result<Tensor, TrainError> {
    let tokens = encoder.tokens(texts).map_err(|e| TrainError::Invalid(e.to_string()))?;
    let shape = (texts.len(), tokens.width);
    let ids = Tensor::from_vec(tokens.ids, shape, &Device::Cpu)?;
    let mask = Tensor::from_vec(tokens.mask, shape, &Device::Cpu)?;
    bert.forward(&ids, &mask).map_err(|e| TrainError::Invalid(e.to_string()))
}

/// The embedded text of every product a pair or a hard negative names.
fn product_texts(engine: &Engine, set: &PairSet) -> Result<HashMap<usize, String>, TrainError> {
    let store = engine.vectors().ok_or_else(|| TrainError::Invalid("the index has no vectors".into()))?;
    let parts = &engine.index().config.dense.text;
    let mut texts = HashMap::new();
    for row in set.rows() {
        let id = store.id(row);
        let product = engine
            .product(id)?
            .ok_or_else(|| TrainError::Invalid(format!("product {id} has a vector but is not in the index")))?;
        texts.insert(row, crate::dense::product_text(&product, parts));
    }
    Ok(texts)
}

/// Loads the exported directory as a serving encoder and compares its vectors with the
/// trained network's on a few texts: the lowest cosine (an error below 0.999).
fn check_export(bert: &TrainableBert, dir: &Path) -> Result<f64, TrainError> {
    let served = Encoder::load(dir).map_err(|e| TrainError::Invalid(e.to_string()))?;
    let texts = ["36 in vanity grey", "deck over", "Everbilt 3/8 in. zinc-plated hex nut", "a"];
    let trained = embed(&served, bert, &texts)?.to_vec2::<f32>()?;
    let exported = served.embed(&texts).map_err(|e| TrainError::Invalid(e.to_string()))?;
    let lowest = trained
        .iter()
        .zip(&exported)
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum::<f64>())
        .fold(f64::INFINITY, f64::min);
    if lowest < 0.999 {
        return Err(TrainError::Invalid(format!(
            "the ONNX export of the fine-tuned weights disagrees with the trained network (cosine {lowest:.4}); \
             nothing written"
        )));
    }
    Ok(lowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_shows_the_defaults() {
        let readme = include_str!("../../README.md");
        let start = readme.find("```toml\n[finetune]\n").expect("the README shows the [finetune] table") + 8;
        let block = &readme[start..];
        let block = &block[..block.find("```").expect("the block ends")];
        let params: crate::train::TrainParams = toml::from_str(block).unwrap();
        assert_eq!(params.finetune, FinetuneParams::default());
        // Every key, not only the ones it spells out (a missing one would parse to its default).
        let shown: toml::Table = toml::from_str(block).unwrap();
        let shown: Vec<&String> = shown["finetune"].as_table().unwrap().keys().collect();
        let all = toml::Table::try_from(FinetuneParams::default()).unwrap();
        assert_eq!(shown, all.keys().collect::<Vec<_>>());
    }
}
