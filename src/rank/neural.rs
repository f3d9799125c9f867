//! The neural multi-head ranker (`neural`): one shared network predicting several things
//! about a product for a query.
//!
//! Each candidate enters as its [`crate::features`] row (standardised with the training
//! rows' statistics, a missing value as 0 plus a "missing" flag) and, when the index has
//! vectors, the element-wise product of the query and product embeddings (what the cosine
//! sums, kept per dimension) through a small projection. A shared trunk of ReLU layers
//! feeds one output per **head**:
//!
//! - `relevance`: trained listwise on the judged grades; it orders the results;
//! - `rating`, `in_stock`, `popularity`: product-quality heads, trained on the catalogue's
//!   own signals where a catalogue has them (a product without a rating gets an estimate);
//! - `click`, `add_to_cart`, `purchase`: engagement heads, trained from logged events: the
//!   probability that an examined product is clicked, added to the cart, bought, each as a
//!   chain of conditional links ([`ENGAGEMENT`]).
//!
//! A head without data for a catalogue is switched off at training, and `meta.json` says
//! why; it is never trained on made-up zeros. Explanations are integrated gradients of the
//! relevance head from an all-average candidate (every feature at its training mean), so
//! each feature's contribution is how much moving from average to this value changed the
//! score; with the bias they sum to the score, up to a small `residual`.
//!
//! ```text
//! models/<name>/
//!   model.safetensors   the network trained on every judged query (weights + input statistics)
//!   fold-N.safetensors  each cross-validation fold's network
//!   meta.json           as LightGBM's, with the architecture and heads in `parameters`
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{check_schema, read_meta, Explanation, Inputs, ModelError, ModelMeta, Ranker, Scored, Scoring};
use crate::features::{self, Row};
use crate::search::RankerKind;

/// `meta.json`'s `ranker` for this kind.
pub const KIND: &str = "neural";
pub const MODEL_FILE: &str = "model.safetensors";
/// Every head a network may have, relevance first.
pub const HEADS: [&str; 7] = ["relevance", "rating", "in_stock", "popularity", "click", "add_to_cart", "purchase"];
/// The engagement heads, in the order of their chain: each one's output is conditional on
/// the one before (click; add-to-cart given a click; purchase given an add-to-cart), and
/// the head's probability is the product of the chain's sigmoids up to it.
pub const ENGAGEMENT: [&str; 3] = ["click", "add_to_cart", "purchase"];
/// Steps of the integrated-gradients path.
const IG_STEPS: usize = 64;
/// A standardised feature value is clipped to this many standard deviations.
const CLIP: f32 = 5.0;

/// The file of fold `fold`'s network.
pub fn fold_file(fold: usize) -> String {
    format!("fold-{fold}.safetensors")
}

/// Whether a head was trained, and why not when it was not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadInfo {
    pub name: String,
    pub on: bool,
    /// Training rows with a target for this head.
    pub rows: usize,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

/// The network's shape (saved in `meta.json`'s `parameters.architecture`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// Widths of the shared trunk's hidden layers.
    pub hidden: Vec<usize>,
    /// Width of the embedding projection; 0 leaves embeddings out.
    pub embedding: usize,
    /// Embedding dimension the network was trained with (0 when without).
    pub embedding_dim: usize,
    /// The heads that are on, in output order (relevance first).
    pub heads: Vec<String>,
}

impl Architecture {
    /// How many engagement heads the network has (they are its last outputs).
    pub fn engagement_heads(&self) -> usize {
        self.heads.iter().filter(|h| ENGAGEMENT.contains(&h.as_str())).count()
    }

    /// Inputs from the feature rows: a standardised value and a missing flag per feature.
    pub fn feature_inputs(&self) -> usize {
        2 * features::COUNT
    }

    /// Embedding inputs: the query and product vectors multiplied element-wise and scaled
    /// by the dimension (so each input is about as large as the cosine), zeros for a
    /// product without a vector.
    pub fn encode_embeddings(&self, query: &[f32], vectors: &[Option<&[f32]>]) -> Vec<f32> {
        let dim = self.embedding_dim;
        let scale = dim as f32;
        let mut out = Vec::with_capacity(vectors.len() * dim);
        for vector in vectors {
            match vector.filter(|v| v.len() == dim && query.len() == dim) {
                Some(vector) => out.extend(query.iter().zip(vector).map(|(q, p)| q * p * scale)),
                None => out.extend(std::iter::repeat_n(0.0, dim)),
            }
        }
        out
    }
}

/// A network's weights: plain tensors when serving, the tensors of trainable variables
/// when training.
#[derive(Clone)]
pub struct Network {
    pub architecture: Architecture,
    /// Training means and standard deviations of each feature.
    pub mean: Vec<f32>,
    pub sd: Vec<f32>,
    /// Named weight tensors: `embed.w`, `embed.b`, `layer{i}.w`, `layer{i}.b`, `heads.w`,
    /// `heads.b`.
    pub weights: BTreeMap<String, Tensor>,
}

impl Network {
    /// A freshly initialised network (He-uniform weights, zero biases) from `seed`.
    pub fn init(architecture: Architecture, mean: Vec<f32>, sd: Vec<f32>, seed: u64) -> Result<Network, ModelError> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut weights = BTreeMap::new();
        let mut layer = |name: &str, inputs: usize, outputs: usize| -> Result<(), ModelError> {
            let bound = (6.0 / inputs.max(1) as f64).sqrt() as f32;
            let values: Vec<f32> = (0..inputs * outputs).map(|_| rng.random_range(-bound..bound)).collect();
            weights.insert(format!("{name}.w"), Tensor::from_vec(values, (inputs, outputs), &Device::Cpu)?);
            weights.insert(format!("{name}.b"), Tensor::zeros(outputs, DType::F32, &Device::Cpu)?);
            Ok(())
        };
        let mut width = architecture.feature_inputs();
        if architecture.embedding > 0 {
            layer("embed", architecture.embedding_dim, architecture.embedding)?;
            width += architecture.embedding;
        }
        for (at, &hidden) in architecture.hidden.iter().enumerate() {
            layer(&format!("layer{at}"), width, hidden)?;
            width = hidden;
        }
        layer("heads", width, architecture.heads.len())?;
        Ok(Network { architecture, mean, sd, weights })
    }

    fn weight(&self, name: &str) -> Result<&Tensor, ModelError> {
        self.weights.get(name).ok_or_else(|| ModelError::Invalid(format!("the network has no tensor {name}")))
    }

    fn linear(&self, x: &Tensor, name: &str) -> Result<Tensor, ModelError> {
        Ok(x.matmul(self.weight(&format!("{name}.w"))?)?.broadcast_add(self.weight(&format!("{name}.b"))?)?)
    }

    /// The heads' raw outputs `[n, heads]` for feature inputs `[n, 2F]` and embedding
    /// inputs `[n, D]` (when the network uses embeddings).
    pub fn forward(&self, features: &Tensor, embeddings: Option<&Tensor>) -> Result<Tensor, ModelError> {
        self.forward_with(features, embeddings, &mut |_| Ok(None))
    }

    /// [`Network::forward`] with a hidden layer's activations multiplied by the mask
    /// `dropout` returns for it (training's dropout).
    pub fn forward_with(
        &self,
        features: &Tensor,
        embeddings: Option<&Tensor>,
        dropout: &mut dyn FnMut(&Tensor) -> Result<Option<Tensor>, ModelError>,
    ) -> Result<Tensor, ModelError> {
        let mut h = features.clone();
        if let Some(embeddings) = embeddings.filter(|_| self.architecture.embedding > 0) {
            h = Tensor::cat(&[&h, &self.linear(embeddings, "embed")?], 1)?;
        }
        for at in 0..self.architecture.hidden.len() {
            h = self.linear(&h, &format!("layer{at}"))?.relu()?;
            if let Some(mask) = dropout(&h)? {
                h = h.mul(&mask)?;
            }
        }
        self.linear(&h, "heads")
    }

    /// Feature rows as network inputs: `[n, 2F]` values, row-major.
    pub fn encode_rows(&self, rows: &[Row]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * 2 * features::COUNT);
        for row in rows {
            for (at, value) in row.iter().enumerate() {
                out.push(if value.is_nan() { 0.0 } else { ((value - self.mean[at]) / self.sd[at]).clamp(-CLIP, CLIP) });
            }
            out.extend(row.iter().map(|v| if v.is_nan() { 1.0 } else { 0.0 }));
        }
        out
    }

    /// Input tensors for a query's candidates.
    pub fn inputs(&self, inputs: &Inputs) -> Result<(Tensor, Option<Tensor>), ModelError> {
        let n = inputs.rows.len();
        let x = Tensor::from_vec(self.encode_rows(inputs.rows), (n, self.architecture.feature_inputs()), &Device::Cpu)?;
        let e = if self.architecture.embedding > 0 {
            let dim = self.architecture.embedding_dim;
            if inputs.query_vector.len() != dim {
                return Err(ModelError::Invalid(format!(
                    "the neural ranker was trained with {dim}-dimensional embeddings but the query vector has {}; \
                     serve it with the index and encoder it was trained on",
                    inputs.query_vector.len()
                )));
            }
            Some(Tensor::from_vec(
                self.architecture.encode_embeddings(inputs.query_vector, inputs.vectors),
                (n, dim),
                &Device::Cpu,
            )?)
        } else {
            None
        };
        Ok((x, e))
    }

    /// Saves weights and input statistics as safetensors.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let mut tensors: HashMap<String, Tensor> =
            self.weights.iter().map(|(name, tensor)| (name.clone(), tensor.clone())).collect();
        tensors.insert("input.mean".into(), Tensor::new(self.mean.as_slice(), &Device::Cpu)?);
        tensors.insert("input.sd".into(), Tensor::new(self.sd.as_slice(), &Device::Cpu)?);
        candle_core::safetensors::save(&tensors, path).map_err(|e| ModelError::corrupt(path, e))
    }

    /// Loads a network saved by [`Network::save`], checking every tensor's shape.
    pub fn load(path: &Path, architecture: &Architecture) -> Result<Network, ModelError> {
        if !path.exists() {
            return Err(ModelError::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)));
        }
        let mut tensors =
            candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| ModelError::corrupt(path, e))?;
        let mut take_vector = |name: &str| -> Result<Vec<f32>, ModelError> {
            let tensor = tensors.remove(name).ok_or_else(|| ModelError::corrupt(path, format!("no tensor {name}")))?;
            let values = tensor.to_vec1::<f32>().map_err(|e| ModelError::corrupt(path, e))?;
            if values.len() != features::COUNT || values.iter().any(|v| !v.is_finite()) {
                return Err(ModelError::corrupt(path, format!("{name} is not {} finite numbers", features::COUNT)));
            }
            Ok(values)
        };
        let (mean, sd) = (take_vector("input.mean")?, take_vector("input.sd")?);
        let expected = Network::init(architecture.clone(), mean.clone(), sd.clone(), 0)?;
        let mut weights = BTreeMap::new();
        for (name, shape) in expected.weights.iter().map(|(n, t)| (n.clone(), t.dims().to_vec())) {
            let tensor = tensors.remove(&name).ok_or_else(|| ModelError::corrupt(path, format!("no tensor {name}")))?;
            if tensor.dims() != shape.as_slice() || tensor.dtype() != DType::F32 {
                let message = format!("{name} has shape {:?}, the architecture needs {shape:?}", tensor.dims());
                return Err(ModelError::corrupt(path, message));
            }
            weights.insert(name, tensor);
        }
        Ok(Network { architecture: architecture.clone(), mean, sd, weights })
    }

    /// Head outputs in the units `Scored::heads` promises: relevance raw, the others as
    /// probabilities, with `rating` in stars.
    fn outputs(&self, raw: &Tensor) -> Result<Scored, ModelError> {
        let raw: Vec<Vec<f32>> = raw.to_vec2()?;
        let mut relevance = Vec::with_capacity(raw.len());
        let mut heads: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for row in &raw {
            // The probability of getting this far along the engagement chain.
            let mut reached = 1.0;
            for (name, value) in self.architecture.heads.iter().zip(row) {
                let value = *value as f64;
                if name == "relevance" {
                    relevance.push(value);
                    continue;
                }
                let probability = 1.0 / (1.0 + (-value).exp());
                let unit = match name.as_str() {
                    "rating" => 5.0 * probability,
                    name if ENGAGEMENT.contains(&name) => {
                        reached *= probability;
                        reached
                    }
                    _ => probability,
                };
                heads.entry(name.clone()).or_default().push(unit);
            }
        }
        Ok(Scored { relevance, heads })
    }
}

/// The training parameters and architecture, as `meta.json` records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuralMeta {
    pub architecture: Architecture,
    pub heads: Vec<HeadInfo>,
}

/// A loaded neural model directory.
pub struct NeuralRanker {
    pub meta: ModelMeta,
    pub heads: Vec<HeadInfo>,
    network: Network,
    folds: Vec<Network>,
}

impl NeuralRanker {
    pub fn load(dir: &Path) -> Result<NeuralRanker, ModelError> {
        let meta = read_meta(dir)?;
        check_schema(dir, &meta)?;
        let meta_path = dir.join(super::META_FILE);
        if meta.ranker != KIND {
            return Err(ModelError::corrupt(&meta_path, format!("a {} model, not neural", meta.ranker)));
        }
        let described: NeuralMeta =
            serde_json::from_value(meta.parameters.clone()).map_err(|e| ModelError::corrupt(&meta_path, e))?;
        let architecture = &described.architecture;
        if architecture.heads.first().map(String::as_str) != Some("relevance") {
            return Err(ModelError::corrupt(&meta_path, "the first head must be relevance"));
        }
        // The engagement chain: its links come last, from the first, none missing.
        let chain = architecture.engagement_heads();
        let tail: Vec<&str> = architecture.heads.iter().rev().take(chain).rev().map(String::as_str).collect();
        if tail != ENGAGEMENT[..chain] {
            return Err(ModelError::corrupt(
                &meta_path,
                "the engagement heads must come last, in the order click, add_to_cart, purchase",
            ));
        }
        let network = Network::load(&dir.join(MODEL_FILE), architecture)?;
        let folds = (0..meta.fold_count())
            .map(|fold| Network::load(&dir.join(fold_file(fold)), architecture))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NeuralRanker { meta, heads: described.heads, network, folds })
    }

    /// A ranker from a network in memory (training reports and tests).
    pub fn from_network(meta: ModelMeta, heads: Vec<HeadInfo>, network: Network) -> NeuralRanker {
        NeuralRanker { meta, heads, network, folds: Vec::new() }
    }

    fn network_for(&self, query: &str, scoring: Scoring) -> &Network {
        let fold = match scoring {
            Scoring::Final => None,
            Scoring::HeldOut => self.meta.fold_of(query).and_then(|fold| self.folds.get(fold)),
        };
        fold.unwrap_or(&self.network)
    }

    /// Integrated gradients of the relevance head for one candidate: the contribution of
    /// each feature (its value and missing flag together) and of the embedding inputs, and
    /// the score of the all-average baseline.
    fn integrated_gradients(
        network: &Network,
        x: &Tensor,
        e: Option<&Tensor>,
    ) -> Result<(Vec<f64>, f64, f64), ModelError> {
        let steps: Vec<f32> = (0..IG_STEPS).map(|s| (s as f32 + 0.5) / IG_STEPS as f32).collect();
        let alphas = Tensor::new(steps.as_slice(), &Device::Cpu)?.unsqueeze(1)?;
        let path = |input: &Tensor| -> Result<Var, ModelError> {
            Ok(Var::from_tensor(&input.broadcast_as((IG_STEPS, input.dim(1)?))?.broadcast_mul(&alphas)?)?)
        };
        let x_path = path(x)?;
        let e_path = e.map(path).transpose()?;
        let outputs = network.forward(x_path.as_tensor(), e_path.as_ref().map(|v| v.as_tensor()))?;
        let relevance = outputs.narrow(1, 0, 1)?.sum_all()?;
        let grads = relevance.backward()?;
        let attribution = |var: &Var, input: &Tensor| -> Result<Vec<f32>, ModelError> {
            let grad = grads.get(var).ok_or_else(|| ModelError::Invalid("no gradient for the inputs".into()))?;
            let mean_grad = (grad.sum(0)? / IG_STEPS as f64)?;
            Ok(mean_grad.mul(&input.squeeze(0)?)?.to_vec1()?)
        };
        let x_attr = attribution(&x_path, x)?;
        let mut contributions: Vec<f64> =
            (0..features::COUNT).map(|at| (x_attr[at] + x_attr[features::COUNT + at]) as f64).collect();
        if let (Some(var), Some(input)) = (&e_path, e) {
            contributions.push(attribution(var, input)?.iter().map(|v| *v as f64).sum());
        }
        let baseline_x = x.zeros_like()?;
        let baseline_e = e.map(|e| e.zeros_like()).transpose()?;
        let bias = network.forward(&baseline_x, baseline_e.as_ref())?.narrow(1, 0, 1)?.sum_all()?.to_scalar::<f32>()?;
        let score = network.forward(x, e)?.narrow(1, 0, 1)?.sum_all()?.to_scalar::<f32>()?;
        Ok((contributions, bias as f64, score as f64))
    }
}

impl Ranker for NeuralRanker {
    fn kind(&self) -> RankerKind {
        RankerKind::Neural
    }

    fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    fn heads(&self) -> Vec<String> {
        self.network.architecture.heads.iter().skip(1).cloned().collect()
    }

    fn score(&self, inputs: &Inputs, scoring: Scoring) -> Result<Scored, ModelError> {
        if inputs.rows.is_empty() {
            return Ok(Scored::default());
        }
        let network = self.network_for(inputs.query, scoring);
        let (x, e) = network.inputs(inputs)?;
        network.outputs(&network.forward(&x, e.as_ref())?)
    }

    fn explain(&self, inputs: &Inputs, scoring: Scoring, positions: &[usize]) -> Result<Vec<Explanation>, ModelError> {
        let network = self.network_for(inputs.query, scoring);
        let (x, e) = network.inputs(inputs)?;
        let heads = network.outputs(&network.forward(&x, e.as_ref())?)?.heads;
        let mut names: Vec<String> = features::NAMES.iter().map(|n| n.to_string()).collect();
        if e.is_some() {
            names.push("embedding".into());
        }
        positions
            .iter()
            .map(|&at| {
                let row_x = x.narrow(0, at, 1)?;
                let row_e = e.as_ref().map(|e| e.narrow(0, at, 1)).transpose()?;
                let (contributions, bias, score) = Self::integrated_gradients(network, &row_x, row_e.as_ref())?;
                let explained: f64 = contributions.iter().sum();
                Ok(Explanation {
                    score,
                    bias,
                    residual: score - bias - explained,
                    contributions: names.iter().cloned().zip(contributions).collect(),
                    method: "integrated_gradients",
                    heads: heads.iter().filter_map(|(name, v)| v.get(at).map(|v| (name.clone(), *v))).collect(),
                    members: BTreeMap::new(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn architecture(embedding: usize) -> Architecture {
        Architecture {
            hidden: vec![16, 8],
            embedding,
            embedding_dim: if embedding > 0 { 4 } else { 0 },
            heads: vec!["relevance".into(), "rating".into()],
        }
    }

    #[test]
    fn save_and_load_give_the_same_outputs_and_shapes_are_checked() {
        let network =
            Network::init(architecture(3), vec![0.5; features::COUNT], vec![2.0; features::COUNT], 7).unwrap();
        let mut rows = vec![[0.0f32; features::COUNT]; 3];
        rows[1][0] = f32::NAN;
        rows[2][5] = 40.0;
        let vectors: Vec<Option<&[f32]>> = vec![Some(&[0.5, 0.5, 0.5, 0.5]), None, Some(&[1.0, 0.0, 0.0, 0.0])];
        let inputs = Inputs::new("q", &[0.5, 0.5, 0.5, 0.5], &rows, &vectors);
        let (x, e) = network.inputs(&inputs).unwrap();
        let before: Vec<Vec<f32>> = network.forward(&x, e.as_ref()).unwrap().to_vec2().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.safetensors");
        network.save(&path).unwrap();
        let loaded = Network::load(&path, &architecture(3)).unwrap();
        let after: Vec<Vec<f32>> = loaded.forward(&x, e.as_ref()).unwrap().to_vec2().unwrap();
        assert_eq!(before, after);
        let refused = Network::load(&path, &architecture(5)).err().unwrap().to_string();
        assert!(refused.contains("embed.") && refused.contains("shape"), "{refused}");
        std::fs::write(&path, b"not safetensors").unwrap();
        assert!(matches!(Network::load(&path, &architecture(3)), Err(ModelError::Corrupt { .. })));
    }

    #[test]
    fn engagement_heads_multiply_along_their_chain() {
        let architecture = Architecture {
            heads: vec!["relevance".into(), "click".into(), "add_to_cart".into(), "purchase".into()],
            ..architecture(0)
        };
        let network = Network::init(architecture, vec![0.0; features::COUNT], vec![1.0; features::COUNT], 5).unwrap();
        let raw = Tensor::new(&[[0.3f32, 2.0, 0.0, -1.0]], &Device::Cpu).unwrap();
        let scored = network.outputs(&raw).unwrap();
        let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
        let click = sigmoid(2.0);
        assert!((scored.heads["click"][0] - click).abs() < 1e-6);
        assert!((scored.heads["add_to_cart"][0] - click * 0.5).abs() < 1e-6);
        assert!((scored.heads["purchase"][0] - click * 0.5 * sigmoid(-1.0)).abs() < 1e-6);
        assert!((scored.relevance[0] - 0.3).abs() < 1e-6);
    }

    #[test]
    fn integrated_gradients_add_up_to_the_score() {
        let network =
            Network::init(architecture(3), vec![0.0; features::COUNT], vec![1.0; features::COUNT], 3).unwrap();
        let mut row = [0.0f32; features::COUNT];
        for (at, value) in row.iter_mut().enumerate() {
            *value = (at as f32 * 0.37).sin() * 2.0;
        }
        row[3] = f32::NAN;
        let rows = [row];
        let vectors: Vec<Option<&[f32]>> = vec![Some(&[0.1, 0.7, 0.7, 0.1])];
        let inputs = Inputs::new("q", &[0.5, 0.5, 0.5, 0.5], &rows, &vectors);
        let (x, e) = network.inputs(&inputs).unwrap();
        let (contributions, bias, score) = NeuralRanker::integrated_gradients(&network, &x, e.as_ref()).unwrap();
        assert_eq!(contributions.len(), features::COUNT + 1);
        let sum: f64 = contributions.iter().sum::<f64>() + bias;
        assert!((sum - score).abs() < 0.02 * (score - bias).abs().max(0.1), "{sum} vs {score}");
        // A feature at its mean and not missing contributes nothing.
        assert_eq!(row[0], 0.0);
        assert!(contributions[0].abs() < 1e-9);
    }
}
