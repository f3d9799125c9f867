//! The sentence encoder on ONNX Runtime: the BERT graph exported from the model's own
//! weights (`model.onnx`, made by `shelf model fetch`), with attention-masked mean pooling
//! and L2 normalisation inside the graph.
//!
//! Two kinds of session serve two kinds of work:
//!
//! - **queries** go through one-thread sessions, one per core: a short query runs start to
//!   end on the thread that asked, with no hand-off to a pool and no spinning threads, and
//!   concurrent queries each find a free session;
//! - **catalogues** go through one batched session that uses every core, made the first
//!   time it is needed (a server never needs it).
//!
//! Queries and products each run on the float graph or the 8-bit one (`model.int8.onnx`,
//! [`Precision::Int8`]), as [`Precisions`] says: 8 bits make a query 2–3× faster on one core
//! and a catalogue about 2× faster. The choice for products is part of the vectors'
//! [`identity`](Encoder::identity), so vectors of both kinds never mix in an index.
//!
//! ONNX Runtime itself is a shared library loaded at run time ([`runtime_library`]).
//!
//! A directory that also holds a trained [`QueryAdapter`] ([`super::adapter::ADAPTER_FILE`])
//! applies it to queries, never to products: [`Encoder::embed_query`] and
//! [`Encoder::embed_queries`] adapt, [`Encoder::embed`] does not.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use rayon::prelude::*;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::adapter::{QueryAdapter, ADAPTER_FILE};
use super::{DenseError, Precision, Precisions};

/// Texts encoded together. Texts are sorted by their length in tokens first, so a batch pads little.
const BATCH: usize = 32;
/// Longest input in tokens when the model directory does not say (sentence-transformers' default).
const DEFAULT_MAX_TOKENS: usize = 256;
/// The graph's file in a model directory.
pub const ONNX_FILE: &str = "model.onnx";
/// The same graph with 8-bit weights ([`Precision::Int8`]).
pub const INT8_FILE: &str = "model.int8.onnx";
/// The ONNX Runtime release shelf is built against (the `ort` crate's API level).
pub const RUNTIME_VERSION: &str = "1.31.1";
/// Where `shelf model fetch` puts the ONNX Runtime library unless `ORT_DYLIB_PATH` says otherwise.
pub const RUNTIME_DIR: &str = "models/onnxruntime";

/// The ONNX Runtime library to load: `ORT_DYLIB_PATH` if set, else the one `shelf model
/// fetch` unpacked into [`RUNTIME_DIR`].
pub fn runtime_library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(RUNTIME_DIR).join(format!("libonnxruntime.so.{RUNTIME_VERSION}")),
    }
}

/// Loads ONNX Runtime once per process; every later call gets the first outcome.
fn runtime() -> Result<&'static ort::environment::Environment, DenseError> {
    static LOADED: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    let outcome = LOADED.get_or_init(|| {
        let library = runtime_library();
        if !library.exists() {
            return Err(format!(
                "ONNX Runtime is missing: no {} (run `shelf model fetch`, or point ORT_DYLIB_PATH at \
                 libonnxruntime.so {RUNTIME_VERSION})",
                library.display()
            ));
        }
        let builder = ort::init_from(&library)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", library.display()))?;
        builder.with_name("shelf").build().map_err(|e| format!("cannot start ONNX Runtime: {e}"))
    });
    outcome.as_ref().map_err(|e| DenseError::Runtime(e.clone()))
}

/// Texts as token ids and attention mask (1 on real tokens), row-major `[texts, width]`.
pub struct Tokens {
    pub ids: Vec<u32>,
    pub mask: Vec<u32>,
    pub width: usize,
}

/// What a pass encodes: products and queries each go through the graph of their
/// [`Precision`].
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Products,
    Queries,
}

/// A loaded sentence encoder.
pub struct Encoder {
    /// The float graph and the 8-bit one (when a side uses it), by [`Precision`].
    graphs: [Option<PathBuf>; 2],
    precisions: Precisions,
    tokenizer: Tokenizer,
    /// One-thread sessions on the queries' graph; a query takes the first free one.
    queries: Vec<Mutex<Session>>,
    /// Every-core sessions for batches, by [`Precision`], each made on first use.
    batches: [OnceLock<Mutex<Session>>; 2],
    dim: usize,
    weights_sha256: String,
    /// The shop's query adapter and its file's sha256, when the directory has one.
    adapter: Option<(QueryAdapter, String)>,
}

impl Encoder {
    /// Loads a sentence-transformers model directory that `shelf model fetch` has prepared
    /// (`config.json`, `tokenizer.json`, `model.safetensors` and its export `model.onnx`);
    /// queries and products are encoded in float.
    pub fn load(dir: &Path) -> Result<Encoder, DenseError> {
        Encoder::load_with(dir, Precisions::default())
    }

    /// As [`Encoder::load`], with queries and products encoded at `precisions` (`Int8`
    /// needs `model.int8.onnx`).
    pub fn load_with(dir: &Path, precisions: Precisions) -> Result<Encoder, DenseError> {
        let need = |name: &str| {
            let path = dir.join(name);
            if path.exists() {
                Ok(path)
            } else {
                Err(DenseError::Model(format!(
                    "{} is missing: {} is not a prepared sentence-transformers model directory (run `shelf \
                     model fetch`)",
                    path.display(),
                    dir.display()
                )))
            }
        };
        let config_path = need("config.json")?;
        let text = std::fs::read_to_string(&config_path).map_err(|e| DenseError::io(&config_path, e))?;
        let config: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| DenseError::Model(format!("{} is not a model config: {e}", config_path.display())))?;
        let number = |key: &str| config[key].as_u64().map(|n| n as usize);
        let dim = number("hidden_size")
            .ok_or_else(|| DenseError::Model(format!("{} has no hidden_size", config_path.display())))?;
        let positions = number("max_position_embeddings").unwrap_or(DEFAULT_MAX_TOKENS);

        let max_tokens = max_tokens(dir).min(positions);
        let mut tokenizer =
            Tokenizer::from_file(need("tokenizer.json")?).map_err(|e| DenseError::Tokenizer(e.to_string()))?;
        // The shipped tokenizer pads everything to 128 tokens; pad to the longest text of a
        // batch instead, so a short query costs a few tokens, not 128.
        let padding = tokenizer.get_padding().cloned().unwrap_or_default();
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..padding }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..Default::default() }))
            .map_err(|e| DenseError::Tokenizer(e.to_string()))?;

        let weights_sha256 = super::model::weights_digest(&need("model.safetensors")?)?;
        let adapter = match dir.join(ADAPTER_FILE) {
            path if path.exists() => {
                let adapter = QueryAdapter::load(&path)?;
                if adapter.dim() != dim {
                    return Err(DenseError::Model(format!(
                        "{} maps {}-long vectors, but the encoder makes {dim}-long ones",
                        path.display(),
                        adapter.dim()
                    )));
                }
                Some((adapter, super::model::sha256_file(&path)?))
            }
            _ => None,
        };
        let float = need(ONNX_FILE)?;
        let int8 = [precisions.queries, precisions.products]
            .contains(&Precision::Int8)
            .then(|| need(INT8_FILE))
            .transpose()?;
        let graphs = [Some(float), int8];
        let query_graph = graph_of(&graphs, precisions.queries)?;
        let queries = (0..cores().min(4)).map(|_| session(query_graph, 1).map(Mutex::new)).collect::<Result<_, _>>()?;
        let encoder = Encoder {
            graphs,
            precisions,
            tokenizer,
            queries,
            batches: [OnceLock::new(), OnceLock::new()],
            dim,
            weights_sha256,
            adapter,
        };
        // A session's first run plans its memory: pay for that here, not in the first search.
        for session in &encoder.queries {
            let mut session = session.lock().map_err(|_| poisoned())?;
            encoder.run(&mut session, encoder.graph(precisions.queries)?, &["warm up"])?;
        }
        Ok(encoder)
    }

    /// What vectors made by this encoder from texts of `recipe` are compatible with: the
    /// weights and arithmetic that made them and the adapter its queries go through.
    pub fn identity(&self, recipe: &str) -> super::EncoderIdentity {
        super::EncoderIdentity {
            weights_sha256: self.weights_sha256.clone(),
            dim: self.dim,
            text: recipe.to_string(),
            query_adapter: self.adapter.as_ref().map(|(_, digest)| digest.clone()),
            products: self.precisions.products,
        }
    }

    /// Whether vectors of `identity` (whatever their text) are searched by this encoder's
    /// queries: the same weights made them, and its queries go through the same adapter.
    pub fn made(&self, identity: &super::EncoderIdentity) -> bool {
        self.identity(&identity.text) == *identity
    }

    /// Vector length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// How queries and products are encoded.
    pub fn precisions(&self) -> Precisions {
        self.precisions
    }

    /// The unit-length vector of one query (through the adapter, if any), computed on the
    /// calling thread.
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>, DenseError> {
        let mut vector = self.embed_one(text)?;
        self.adapt(&mut vector);
        Ok(vector)
    }

    /// Vectors of many queries (through the adapter, if any), in the same order: batched
    /// in float, one by one in 8 bits (each as a served query is encoded).
    pub fn embed_queries<S: AsRef<str>>(
        &self,
        texts: &[S],
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Vec<f32>>, DenseError> {
        let mut vectors = self.encode(texts, Side::Queries, progress)?;
        vectors.iter_mut().for_each(|vector| self.adapt(vector));
        Ok(vectors)
    }

    fn adapt(&self, vector: &mut [f32]) {
        if let Some((adapter, _)) = &self.adapter {
            adapter.apply(vector);
        }
    }

    /// The stock vector of one query, on a one-thread session.
    fn embed_one(&self, text: &str) -> Result<Vec<f32>, DenseError> {
        // A free session if there is one, else wait for the first.
        let mut session = self
            .queries
            .iter()
            .find_map(|session| session.try_lock().ok())
            .map_or_else(|| self.queries[0].lock().map_err(|_| poisoned()), Ok)?;
        Ok(self.run(&mut session, self.graph(self.precisions.queries)?, &[text])?.pop().unwrap_or_default())
    }

    /// The graph of `precision`.
    fn graph(&self, precision: Precision) -> Result<&Path, DenseError> {
        graph_of(&self.graphs, precision)
    }

    /// Unit-length vectors of products' `texts`, in the same order, through the products'
    /// graph.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, DenseError> {
        self.embed_with_progress(texts, &|_| {})
    }

    /// As [`Encoder::embed`], calling `progress` with the number of texts done after each batch.
    pub fn embed_with_progress<S: AsRef<str>>(
        &self,
        texts: &[S],
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Vec<f32>>, DenseError> {
        self.encode(texts, Side::Products, progress)
    }

    /// Vectors of `texts` through `side`'s graph: one query on a one-thread session, 8-bit
    /// queries each on its own, else in batches on every core.
    fn encode<S: AsRef<str>>(
        &self,
        texts: &[S],
        side: Side,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Vec<f32>>, DenseError> {
        let precision = match side {
            Side::Queries => self.precisions.queries,
            Side::Products => self.precisions.products,
        };
        match (texts, side) {
            // One text on a query session, when they run the graph this side needs.
            ([one], _) if precision == self.precisions.queries => {
                let vector = self.embed_one(one.as_ref())?;
                progress(1);
                return Ok(vec![vector]);
            }
            // 8-bit activations are quantised with one range per call, so a query's vector
            // would depend on its batch-mates: each goes alone, as a served query does.
            // (Products are batched all the same: a catalogue's batches are fixed by its texts.)
            (_, Side::Queries) if precision == Precision::Int8 => {
                let mut vectors = Vec::with_capacity(texts.len());
                for chunk in texts.chunks(BATCH) {
                    let chunk: Vec<&str> = chunk.iter().map(AsRef::as_ref).collect();
                    let done: Vec<Vec<f32>> =
                        chunk.par_iter().map(|text| self.embed_one(text)).collect::<Result<_, _>>()?;
                    vectors.extend(done);
                    progress(chunk.len());
                }
                return Ok(vectors);
            }
            _ => {}
        }
        let graph = self.graph(precision)?;
        let batches = &self.batches[precision as usize];
        let batches = match batches.get() {
            Some(session) => session,
            None => {
                let made = session(graph, cores())?;
                batches.get_or_init(|| Mutex::new(made))
            }
        };
        // A batch costs its size times its longest text in tokens: batch texts of like token
        // counts together (sorting by characters instead, titles full of numbers and units
        // padded so much that Home Depot's embedded at 0.6 of the speed).
        let counts: Vec<usize> = texts
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<&str>>()
            .par_iter()
            .map(|text| self.token_count(text))
            .collect::<Result<_, _>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&at| counts[at]);
        let mut session = batches.lock().map_err(|_| poisoned())?;
        let mut vectors = vec![Vec::new(); texts.len()];
        for batch in order.chunks(BATCH) {
            let inputs: Vec<&str> = batch.iter().map(|&at| texts[at].as_ref()).collect();
            for (&at, vector) in batch.iter().zip(self.run(&mut session, graph, &inputs)?) {
                vectors[at] = vector;
            }
            progress(batch.len());
        }
        Ok(vectors)
    }

    /// `texts` as the model reads them: token ids and attention mask, row-major
    /// `[texts, width]`, padded to the longest and truncated as the model was trained.
    pub fn tokens(&self, texts: &[&str]) -> Result<Tokens, DenseError> {
        let encodings =
            self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| DenseError::Tokenizer(e.to_string()))?;
        let width = encodings.first().map_or(0, |e| e.get_ids().len());
        let flat = |pick: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings.iter().flat_map(|e| pick(e).iter().copied()).collect()
        };
        Ok(Tokens { ids: flat(&|e| e.get_ids()), mask: flat(&|e| e.get_attention_mask()), width })
    }

    /// How many tokens the model reads of `text` (truncated as it was trained).
    fn token_count(&self, text: &str) -> Result<usize, DenseError> {
        let encoding = self.tokenizer.encode(text, true).map_err(|e| DenseError::Tokenizer(e.to_string()))?;
        Ok(encoding.len())
    }

    /// One forward pass of `graph` over `texts`, padded to the longest of them.
    fn run(&self, session: &mut Session, graph: &Path, texts: &[&str]) -> Result<Vec<Vec<f32>>, DenseError> {
        let tokens = self.tokens(texts)?;
        let shape = [texts.len(), tokens.width];
        let wide = |values: &[u32]| values.iter().map(|&v| v as i64).collect::<Vec<i64>>();
        let ids = Tensor::from_array((shape, wide(&tokens.ids)))?;
        let mask = Tensor::from_array((shape, wide(&tokens.mask)))?;
        let outputs = session.run(ort::inputs!["input_ids" => ids, "attention_mask" => mask])?;
        let (_, values) = outputs["sentence_embedding"].try_extract_tensor::<f32>()?;
        if values.len() != texts.len() * self.dim {
            return Err(DenseError::Model(format!(
                "{} gave {} numbers for {} texts of {} dimensions",
                graph.display(),
                values.len(),
                texts.len(),
                self.dim
            )));
        }
        Ok(values.chunks(self.dim).map(<[f32]>::to_vec).collect())
    }
}

/// A session over `graph` with `threads` intra-op threads. One-thread sessions never spin;
/// the batched session's threads spin between operators, as it keeps them busy.
fn session(graph: &Path, threads: usize) -> Result<Session, DenseError> {
    let failed = |e: ort::Error<_>| DenseError::Runtime(format!("cannot open {}: {e}", graph.display()));
    Session::builder(runtime()?)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(failed)?
        .with_intra_threads(threads)
        .map_err(failed)?
        .with_inter_threads(1)
        .map_err(failed)?
        .with_intra_op_spinning(threads > 1)
        .map_err(failed)?
        .with_inter_op_spinning(false)
        .map_err(failed)?
        .commit_from_file(graph)
        .map_err(|e| DenseError::Runtime(format!("cannot open {}: {e}", graph.display())))
}

/// The graph of `precision` among those an encoder loaded (by [`Precision`]).
fn graph_of(graphs: &[Option<PathBuf>; 2], precision: Precision) -> Result<&Path, DenseError> {
    graphs[precision as usize]
        .as_deref()
        .ok_or_else(|| DenseError::Model(format!("the encoder was loaded without its {precision} graph")))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn poisoned() -> DenseError {
    DenseError::Runtime("an encoder session panicked earlier".into())
}

/// `max_seq_length` from sentence_bert_config.json, or the sentence-transformers default.
fn max_tokens(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|config| config["max_seq_length"].as_u64())
        .map_or(DEFAULT_MAX_TOKENS, |n| n as usize)
}
