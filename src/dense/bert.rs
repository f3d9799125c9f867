//! The sentence encoder as a trainable network, for fine-tuning on a shop's judged queries.
//!
//! Serving runs the encoder's ONNX export ([`super::Encoder`]); training needs gradients, so
//! this module holds the same BERT (post-layer-norm, GELU, absolute positions, token type
//! 0), attention-masked mean pooling and L2 normalisation in candle, with every weight of
//! the transformer layers a [`Var`]. The word, position and token-type embedding tables
//! stay fixed: they are half the weights and change little in fine-tuning. Weights load
//! from and save to a sentence-transformers `model.safetensors` under the same names, so a
//! trained file goes through the same ONNX export as the shipped one.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var, D};

use super::DenseError;

/// A BERT sentence encoder whose transformer weights are trainable.
pub struct TrainableBert {
    /// Every tensor of the weights file, by name; the trainable ones are also in `vars`.
    fixed: HashMap<String, Tensor>,
    vars: HashMap<String, Var>,
    layers: usize,
    heads: usize,
    eps: f64,
}

impl TrainableBert {
    /// Loads `model.safetensors` and `config.json` of a sentence-transformers directory.
    pub fn load(dir: &Path) -> Result<TrainableBert, DenseError> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| DenseError::io(&config_path, e))?;
        let config: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| DenseError::Model(format!("{} is not a model config: {e}", config_path.display())))?;
        let number = |key: &str| {
            config[key]
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| DenseError::Model(format!("{} has no {key}", config_path.display())))
        };
        let (layers, heads) = (number("num_hidden_layers")?, number("num_attention_heads")?);
        let eps = config["layer_norm_eps"].as_f64().unwrap_or(1e-12);
        let weights = dir.join("model.safetensors");
        let fixed = candle_core::safetensors::load(&weights, &Device::Cpu)
            .map_err(|e| DenseError::Model(format!("cannot read {}: {e}", weights.display())))?;
        let mut vars = HashMap::new();
        for (name, tensor) in &fixed {
            if name.starts_with("encoder.") || name.starts_with("embeddings.LayerNorm") {
                let var = Var::from_tensor(&tensor.to_dtype(DType::F32).map_err(candle)?).map_err(candle)?;
                vars.insert(name.clone(), var);
            }
        }
        let bert = TrainableBert { fixed, vars, layers, heads, eps };
        for layer in 0..layers {
            bert.get(&format!("encoder.layer.{layer}.output.dense.weight"))?;
        }
        bert.get("embeddings.word_embeddings.weight")?;
        Ok(bert)
    }

    /// The trainable weights.
    pub fn vars(&self) -> Vec<Var> {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        names.into_iter().map(|name| self.vars[name].clone()).collect()
    }

    /// A copy of the trainable weights, to [`TrainableBert::restore`] later (training goes on
    /// changing the network in place).
    pub fn snapshot(&self) -> Result<Vec<Tensor>, DenseError> {
        self.vars().iter().map(|var| var.as_tensor().copy().map_err(candle)).collect()
    }

    /// Puts back the weights of a [`TrainableBert::snapshot`] of this network.
    pub fn restore(&self, snapshot: &[Tensor]) -> Result<(), DenseError> {
        let vars = self.vars();
        if vars.len() != snapshot.len() {
            return Err(DenseError::Model(format!(
                "a snapshot of {} weights cannot restore a network of {}",
                snapshot.len(),
                vars.len()
            )));
        }
        vars.iter().zip(snapshot).try_for_each(|(var, tensor)| var.set(tensor).map_err(candle))
    }

    /// Writes every weight (trained and fixed) under its original name.
    pub fn save(&self, path: &Path) -> Result<(), DenseError> {
        let mut tensors = self.fixed.clone();
        for (name, var) in &self.vars {
            tensors.insert(name.clone(), var.as_tensor().clone());
        }
        candle_core::safetensors::save(&tensors, path)
            .map_err(|e| DenseError::Model(format!("cannot write {}: {e}", path.display())))
    }

    fn get(&self, name: &str) -> Result<Tensor, DenseError> {
        match self.vars.get(name) {
            Some(var) => Ok(var.as_tensor().clone()),
            None => self
                .fixed
                .get(name)
                .cloned()
                .ok_or_else(|| DenseError::Model(format!("the weights have no tensor '{name}'"))),
        }
    }

    /// Unit-length sentence vectors of a padded batch: `ids` and `mask` are `[batch, tokens]`
    /// (u32), `mask` 1 on real tokens.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor, DenseError> {
        self.forward_inner(ids, mask).map_err(candle)
    }

    fn forward_inner(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let get = |name: &str| self.get(name).map_err(|e| candle_core::Error::Msg(e.to_string()));
        let (batch, tokens) = ids.dims2()?;
        let words = get("embeddings.word_embeddings.weight")?.index_select(&ids.flatten_all()?, 0)?;
        let positions = get("embeddings.position_embeddings.weight")?.narrow(0, 0, tokens)?;
        let types = get("embeddings.token_type_embeddings.weight")?.narrow(0, 0, 1)?;
        let hidden = words.reshape((batch, tokens, ()))?.broadcast_add(&positions)?.broadcast_add(&types)?;
        let mut x = self.layer_norm(&hidden, "embeddings.LayerNorm")?;
        let dim = x.dim(D::Minus1)?;
        let head = dim / self.heads;
        let mask_f = mask.to_dtype(DType::F32)?;
        // Padded keys get a large negative score, so they take no attention.
        let additive = ((mask_f.clone() - 1.0)? * 1e9)?.reshape((batch, 1, 1, tokens))?;
        for layer in 0..self.layers {
            let name = |part: &str| format!("encoder.layer.{layer}.{part}");
            let split = |t: Tensor| -> candle_core::Result<Tensor> {
                t.reshape((batch, tokens, self.heads, head))?.transpose(1, 2)?.contiguous()
            };
            let q = split(self.linear(&x, &name("attention.self.query"))?)?;
            let k = split(self.linear(&x, &name("attention.self.key"))?)?;
            let v = split(self.linear(&x, &name("attention.self.value"))?)?;
            let scores = (q.matmul(&k.t()?)? / (head as f64).sqrt())?.broadcast_add(&additive)?;
            let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((batch, tokens, dim))?;
            let attended = (self.linear(&context, &name("attention.output.dense"))? + &x)?;
            let attended = self.layer_norm(&attended, &name("attention.output.LayerNorm"))?;
            let inner = self.linear(&attended, &name("intermediate.dense"))?.gelu_erf()?;
            let out = (self.linear(&inner, &name("output.dense"))? + &attended)?;
            x = self.layer_norm(&out, &name("output.LayerNorm"))?;
        }
        let weights = mask_f.unsqueeze(2)?;
        let summed = x.broadcast_mul(&weights)?.sum(1)?;
        let counts = weights.sum(1)?.clamp(1e-9, f64::MAX)?;
        let pooled = summed.broadcast_div(&counts)?;
        let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        pooled.broadcast_div(&norm)
    }

    fn linear(&self, x: &Tensor, prefix: &str) -> candle_core::Result<Tensor> {
        let get = |name: String| self.get(&name).map_err(|e| candle_core::Error::Msg(e.to_string()));
        let (weight, bias) = (get(format!("{prefix}.weight"))?, get(format!("{prefix}.bias"))?);
        let (batch, tokens, dim) = x.dims3()?;
        let flat = x.reshape((batch * tokens, dim))?.matmul(&weight.t()?)?.broadcast_add(&bias)?;
        flat.reshape((batch, tokens, ()))
    }

    /// Layer normalisation from differentiable operations (candle's fused kernel has no
    /// backward pass).
    fn layer_norm(&self, x: &Tensor, prefix: &str) -> candle_core::Result<Tensor> {
        let get = |name: String| self.get(&name).map_err(|e| candle_core::Error::Msg(e.to_string()));
        let (weight, bias) = (get(format!("{prefix}.weight"))?, get(format!("{prefix}.bias"))?);
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred.broadcast_div(&(variance + self.eps)?.sqrt()?)?.broadcast_mul(&weight)?.broadcast_add(&bias)
    }
}

fn candle(e: candle_core::Error) -> DenseError {
    DenseError::Model(format!("encoder network: {e}"))
}
