//! `manifest.json`: what an index directory holds and how it was built.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::IndexError;

/// The layout of the index directory and of the tantivy schema. Bump it whenever either
/// changes: an index with another version is refused, never misread.
/// 2: product ids are a fast field; category centroids are stored beside the vectors.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    /// The shelf release that built the index.
    pub shelf_version: String,
    /// When the build finished (RFC 3339, UTC).
    pub built_at: String,
    pub build_seconds: f64,
    pub catalog: CatalogSource,
    pub counts: Counts,
    /// Present when the index holds product vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dense: Option<DenseInfo>,
    /// How BM25 ranks products with equal scores: [`crate::lexical::TIES`], in the
    /// catalogue's order, the same on every build. Absent in indexes built before
    /// 2026-12-07, whose indexing threads ordered tied products.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ties: Option<String>,
}

/// The vectors of an index and the encoder that made them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseInfo {
    pub encoder: crate::dense::EncoderIdentity,
    pub vectors: u64,
    /// Vectors carried over from the previous build (unchanged text, same encoder).
    pub reused: u64,
    /// Time spent embedding.
    pub seconds: f64,
    /// The HNSW graph over the vectors (absent in indexes built before it existed: they
    /// search exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ann: Option<AnnBuild>,
}

/// How the HNSW graph of an index was built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnBuild {
    pub params: crate::dense::AnnParams,
    pub seconds: f64,
}

/// Where the products came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogSource {
    pub path: String,
    pub format: String,
    /// sha256 of the catalogue file's bytes.
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub products: u64,
    pub records: u64,
    pub skipped: u64,
    pub duplicates: u64,
}

impl Manifest {
    pub const FILE: &'static str = "manifest.json";

    /// Reads the manifest of an index directory and checks its schema version.
    pub fn read(dir: &Path) -> Result<Manifest, IndexError> {
        let path = dir.join(Self::FILE);
        let text = std::fs::read_to_string(&path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => IndexError::NotAnIndex(dir.display().to_string()),
            _ => IndexError::io(&path, error),
        })?;
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let corrupt =
            |e: serde_json::Error| IndexError::Corrupt { path: path.display().to_string(), message: e.to_string() };
        let version: Version = serde_json::from_str(&text).map_err(corrupt)?;
        if version.schema_version != SCHEMA_VERSION {
            return Err(IndexError::SchemaVersion {
                dir: dir.display().to_string(),
                found: version.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        serde_json::from_str(&text).map_err(corrupt)
    }

    pub fn write(&self, dir: &Path) -> Result<(), IndexError> {
        let path = dir.join(Self::FILE);
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| IndexError::Corrupt { path: path.display().to_string(), message: e.to_string() })?;
        std::fs::write(&path, text + "\n").map_err(|e| IndexError::io(&path, e))
    }
}
