//! The sentence encoder: BERT in candle, attention-masked mean pooling, L2 normalisation.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::DenseError;

/// Texts encoded together. Texts are sorted by length first, so a batch pads little.
const BATCH: usize = 32;
/// Longest input in tokens when the model directory does not say (sentence-transformers' default).
const DEFAULT_MAX_TOKENS: usize = 256;

/// A loaded sentence encoder.
pub struct Encoder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
    weights_sha256: String,
}

impl Encoder {
    /// Loads a BERT-style sentence-transformers directory (`config.json`, `tokenizer.json`,
    /// `model.safetensors`, optionally `sentence_bert_config.json`).
    pub fn load(dir: &Path) -> Result<Encoder, DenseError> {
        let need = |name: &str| {
            let path = dir.join(name);
            if path.exists() {
                Ok(path)
            } else {
                Err(DenseError::Model(format!(
                    "{} is missing: {} is not a sentence-transformers model directory (run `shelf model fetch`)",
                    path.display(),
                    dir.display()
                )))
            }
        };
        let config_path = need("config.json")?;
        let text = std::fs::read_to_string(&config_path).map_err(|e| DenseError::io(&config_path, e))?;
        let config: Config = serde_json::from_str(&text)
            .map_err(|e| DenseError::Model(format!("{} is not a BERT config: {e}", config_path.display())))?;

        let max_tokens = max_tokens(dir).min(config.max_position_embeddings);
        let mut tokenizer =
            Tokenizer::from_file(need("tokenizer.json")?).map_err(|e| DenseError::Tokenizer(e.to_string()))?;
        // The shipped tokenizer pads everything to 128 tokens; pad to the longest text of a
        // batch instead, so a short query costs a few tokens, not 128.
        let padding = tokenizer.get_padding().cloned().unwrap_or_default();
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..padding }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..Default::default() }))
            .map_err(|e| DenseError::Tokenizer(e.to_string()))?;

        let device = Device::Cpu;
        let weights = need("model.safetensors")?;
        let weights_sha256 = super::model::sha256_file(&weights)?;
        // Safety: the weights file is memory-mapped read-only; shelf never writes it while loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &device)? };
        let model = BertModel::load(vb, &config)
            .map_err(|e| DenseError::Model(format!("{} does not hold BERT weights: {e}", dir.display())))?;
        Ok(Encoder { model, tokenizer, device, dim: config.hidden_size, weights_sha256 })
    }

    /// What vectors made by this encoder from texts of `recipe` are compatible with.
    pub fn identity(&self, recipe: &str) -> super::EncoderIdentity {
        super::EncoderIdentity { weights_sha256: self.weights_sha256.clone(), dim: self.dim, text: recipe.to_string() }
    }

    /// Whether this encoder made vectors of `identity` (whatever their text), so it can
    /// embed queries to search them.
    pub fn made(&self, identity: &super::EncoderIdentity) -> bool {
        self.weights_sha256 == identity.weights_sha256 && self.dim == identity.dim
    }

    /// Vector length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Unit-length vectors of `texts`, in the same order.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, DenseError> {
        self.embed_with_progress(texts, &|_| {})
    }

    /// As [`Encoder::embed`], calling `progress` with the number of texts done after each batch.
    pub fn embed_with_progress<S: AsRef<str>>(
        &self,
        texts: &[S],
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Vec<f32>>, DenseError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&at| texts[at].as_ref().len());
        let mut vectors = vec![Vec::new(); texts.len()];
        for batch in order.chunks(BATCH) {
            let inputs: Vec<&str> = batch.iter().map(|&at| texts[at].as_ref()).collect();
            for (&at, vector) in batch.iter().zip(self.embed_batch(&inputs)?) {
                vectors[at] = vector;
            }
            progress(batch.len());
        }
        Ok(vectors)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, DenseError> {
        let encodings =
            self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| DenseError::Tokenizer(e.to_string()))?;
        let ids: Vec<Tensor> =
            encodings.iter().map(|e| Tensor::new(e.get_ids(), &self.device)).collect::<Result<_, _>>()?;
        let masks: Vec<Tensor> =
            encodings.iter().map(|e| Tensor::new(e.get_attention_mask(), &self.device)).collect::<Result<_, _>>()?;
        let ids = Tensor::stack(&ids, 0)?;
        let mask = Tensor::stack(&masks, 0)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &token_types, Some(&mask))?;
        // Mean over real tokens only: padding must not dilute short texts.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}

/// `max_seq_length` from sentence_bert_config.json, or the sentence-transformers default.
fn max_tokens(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|config| config["max_seq_length"].as_u64())
        .map_or(DEFAULT_MAX_TOKENS, |n| n as usize)
}
