//! The query adapter: a shop's correction to where the sentence encoder puts its queries.
//!
//! A general-purpose encoder places "deck over" or "36 in vanity" near texts that read
//! alike, not near the products a shop's shoppers mean. The adapter is a learned residual
//! map applied to the stock query vector only, `q' = normalize(q + A·q)`: products keep
//! their vectors, so a shop adopts a trained adapter without re-embedding its catalogue,
//! and an `A` of zeros is the stock encoder exactly. `shelf train --ranker encoder` fits
//! `A` ([`crate::train::encoder`]) and writes it into an encoder directory as
//! [`ADAPTER_FILE`], where [`crate::dense::Encoder`] finds it and applies it to queries.
//!
//! ```
//! use shelf::dense::QueryAdapter;
//!
//! // The zero map leaves a unit vector as it is.
//! let adapter = QueryAdapter::new(2, vec![0.0; 4]).unwrap();
//! let mut query = vec![0.6, 0.8];
//! adapter.apply(&mut query);
//! assert_eq!(query, [0.6, 0.8]);
//! ```

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::DenseError;

/// The adapter's file in an encoder directory.
pub const ADAPTER_FILE: &str = "query_adapter.safetensors";
/// The tensor's name inside the file.
const TENSOR: &str = "adapter.weight";

/// A residual linear map over query vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryAdapter {
    dim: usize,
    /// `A`, row-major `dim × dim`.
    matrix: Vec<f32>,
}

impl QueryAdapter {
    /// An adapter of `dim`-long vectors with the row-major matrix `A`.
    pub fn new(dim: usize, matrix: Vec<f32>) -> Result<QueryAdapter, DenseError> {
        if matrix.len() != dim * dim {
            return Err(DenseError::Model(format!(
                "a query adapter of {dim} dimensions needs {} numbers, not {}",
                dim * dim,
                matrix.len()
            )));
        }
        if matrix.iter().any(|v| !v.is_finite()) {
            return Err(DenseError::Model("the query adapter holds a number that is not finite".into()));
        }
        Ok(QueryAdapter { dim, matrix })
    }

    /// Reads an adapter written by [`QueryAdapter::save`]; a damaged file or a wrong shape
    /// is an error naming the file.
    pub fn load(path: &Path) -> Result<QueryAdapter, DenseError> {
        let bad = |why: String| DenseError::Model(format!("{} is not a query adapter: {why}", path.display()));
        let tensors = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| bad(e.to_string()))?;
        let tensor = tensors.get(TENSOR).ok_or_else(|| bad(format!("it has no tensor '{TENSOR}'")))?;
        let (rows, cols) = tensor.dims2().map_err(|e| bad(e.to_string()))?;
        if rows != cols {
            return Err(bad(format!("its matrix is {rows} × {cols}, not square")));
        }
        let matrix = tensor
            .to_dtype(candle_core::DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| bad(e.to_string()))?;
        QueryAdapter::new(rows, matrix).map_err(|e| bad(e.to_string()))
    }

    pub fn save(&self, path: &Path) -> Result<(), DenseError> {
        let failed = |e: candle_core::Error| DenseError::Model(format!("cannot write {}: {e}", path.display()));
        let tensor = Tensor::from_slice(&self.matrix, (self.dim, self.dim), &Device::Cpu).map_err(failed)?;
        candle_core::safetensors::save(&HashMap::from([(TENSOR.to_string(), tensor)]), path).map_err(failed)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The row-major matrix `A`.
    pub fn matrix(&self) -> &[f32] {
        &self.matrix
    }

    /// Maps a unit query vector to `normalize(q + A·q)` in place. A vector of another length
    /// is left alone (the encoder checks lengths when it loads the adapter).
    pub fn apply(&self, query: &mut [f32]) {
        if query.len() != self.dim {
            return;
        }
        let moved: Vec<f32> = self
            .matrix
            .chunks_exact(self.dim)
            .zip(query.iter())
            .map(|(row, q)| q + row.iter().zip(query.iter()).map(|(a, x)| a * x).sum::<f32>())
            .collect();
        let norm = moved.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            query.iter_mut().zip(moved).for_each(|(q, m)| *q = m / norm);
        }
    }
}

/// Writes the encoder directory `out`: every file of the encoder directory `base` (hard
/// links where the file system allows, as the weights are 90 MB; else copies), except a
/// trained directory's own adapter and `meta.json`, plus `adapter`. Returns the adapter's
/// path.
pub fn write_encoder_dir(base: &Path, adapter: &QueryAdapter, out: &Path) -> Result<std::path::PathBuf, DenseError> {
    super::model::link_files(base, out, &[ADAPTER_FILE, "meta.json"])?;
    let path = out.join(ADAPTER_FILE);
    adapter.save(&path)?;
    Ok(path)
}
