//! An index directory: everything shelf needs to search one catalogue.
//!
//! ```text
//! index/<name>/
//!   manifest.json   schema version, catalogue fingerprint, counts, build time
//!   config.toml     boosts and other retrieval knobs (editable; read at open)
//!   lexical/        the tantivy index
//!   dense/          product vectors and their HNSW graph (when built with an encoder)
//! ```
//!
//! [`build`] writes a complete directory next to the target and swaps it in only when it is
//! finished, so a failed build never leaves a half-written index, and a server that still
//! reads the old one keeps working until it reloads.
//!
//! ```
//! use shelf::catalog::{import_reader, Format, ImportOptions};
//! use shelf::index::{build, BuildOptions, ShelfIndex};
//!
//! let jsonl = r#"{"id": "1", "title": "Oak Writing Desk"}"#;
//! let catalog = import_reader(jsonl.as_bytes(), &ImportOptions::new(Format::Jsonl)).unwrap();
//! let dir = tempfile::tempdir().unwrap();
//! let out = dir.path().join("shop");
//! build(&catalog, &BuildOptions::new("inline", Format::Jsonl, "0"), &out).unwrap();
//! let index = ShelfIndex::open(&out).unwrap();
//! assert_eq!(index.manifest.counts.products, 1);
//! ```

mod config;
mod manifest;

pub use crate::lexical::{FieldBoosts, FuzzyConfig, LexicalConfig, MatchConfig};
pub use config::IndexConfig;
pub use manifest::{AnnBuild, CatalogSource, Counts, DenseInfo, Manifest, SCHEMA_VERSION};

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::catalog::{Catalog, Format};
use crate::dense::{self, DenseError, Encoder, VectorStore};
use crate::lexical::LexicalIndex;

const LEXICAL_DIR: &str = "lexical";
const DENSE_DIR: &str = "dense";
/// The configuration file inside an index directory.
pub const CONFIG_FILE: &str = "config.toml";

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{0} is not a shelf index (no manifest.json); build one with `shelf index --catalog FILE --out {0}`")]
    NotAnIndex(String),
    #[error("the index at {dir} has schema version {found}, but this shelf reads version {expected}; rebuild it with `shelf index --catalog FILE --out {dir}`")]
    SchemaVersion { dir: String, found: u32, expected: u32 },
    #[error("{path} is damaged: {message}; rebuild the index")]
    Corrupt { path: String, message: String },
    #[error("config {path}: {message}")]
    Config { path: String, message: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("refusing to replace {0}: it exists and is not a shelf index; choose another --out")]
    NotOurs(String),
    #[error("lexical index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("dense index: {0}")]
    Dense(#[from] DenseError),
}

impl IndexError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> IndexError {
        IndexError::Io { path: path.display().to_string(), source }
    }
}

/// What the build records about its input.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub source: CatalogSource,
    pub config: IndexConfig,
    pub show_progress: bool,
}

impl BuildOptions {
    pub fn new(path: &str, format: Format, fingerprint: &str) -> Self {
        BuildOptions {
            source: CatalogSource { path: path.into(), format: format.to_string(), fingerprint: fingerprint.into() },
            config: IndexConfig::default(),
            show_progress: false,
        }
    }
}

/// sha256 of a file, hex-encoded: identifies the exact catalogue an index was built from.
pub fn fingerprint_file(path: &Path) -> Result<String, IndexError> {
    let mut file = std::fs::File::open(path).map_err(|e| IndexError::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| IndexError::io(path, e))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Builds the index directory `out` from `catalog` without vectors (lexical retrieval only),
/// replacing any index already there.
pub fn build(catalog: &Catalog, options: &BuildOptions, out: &Path) -> Result<Manifest, IndexError> {
    build_with(catalog, options, None, out)
}

/// Builds the index directory `out`, with a vector per product when `encoder` is given.
pub fn build_with(
    catalog: &Catalog,
    options: &BuildOptions,
    encoder: Option<&Encoder>,
    out: &Path,
) -> Result<Manifest, IndexError> {
    let started = Instant::now();
    if out.exists() && !out.join(Manifest::FILE).exists() && !is_empty_dir(out) {
        return Err(IndexError::NotOurs(out.display().to_string()));
    }
    let staging = sibling(out, "building");
    remove_dir(&staging)?;
    std::fs::create_dir_all(staging.join(LEXICAL_DIR)).map_err(|e| IndexError::io(&staging, e))?;

    let progress = crate::progress::bar(catalog.products.len() as u64, "indexing", options.show_progress);
    let result = (|| {
        LexicalIndex::create(&staging.join(LEXICAL_DIR), &catalog.products, &progress)?;
        progress.finish_and_clear();
        std::fs::write(staging.join(CONFIG_FILE), options.config.to_toml()).map_err(|e| IndexError::io(&staging, e))?;
        let dense = match encoder {
            Some(encoder) => Some(embed_catalog(&catalog.products, encoder, out, &staging, options)?),
            None => None,
        };
        let report = &catalog.report;
        let manifest = Manifest {
            schema_version: SCHEMA_VERSION,
            shelf_version: env!("CARGO_PKG_VERSION").to_string(),
            built_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            build_seconds: started.elapsed().as_secs_f64(),
            catalog: options.source.clone(),
            counts: Counts {
                products: catalog.products.len() as u64,
                records: report.records,
                skipped: report.skipped,
                duplicates: report.duplicates,
            },
            dense,
            ties: Some(crate::lexical::TIES.to_string()),
        };
        manifest.write(&staging)?;
        Ok(manifest)
    })();
    let manifest = match result {
        Ok(manifest) => manifest,
        Err(error) => {
            let _ = remove_dir(&staging);
            return Err(error);
        }
    };
    swap_in(&staging, out)?;
    Ok(manifest)
}

/// Embeds every product into `staging/dense`, reusing the vectors of the index at `previous`
/// for products whose text is unchanged and whose encoder is the same.
fn embed_catalog(
    products: &[crate::catalog::Product],
    encoder: &Encoder,
    previous: &Path,
    staging: &Path,
    options: &BuildOptions,
) -> Result<DenseInfo, IndexError> {
    let show_progress = options.show_progress;
    let started = Instant::now();
    let parts = &options.config.dense.text;
    let (wanted, loaded) = (options.config.dense.product_precision, encoder.precisions().products);
    if wanted != loaded {
        return Err(DenseError::Model(format!(
            "the config asks for {wanted} product vectors ([dense] product_precision), but the encoder was \
             loaded to make {loaded} ones"
        ))
        .into());
    }
    let identity = encoder.identity(&dense::text_recipe(parts));
    let old = VectorStore::load(&previous.join(DENSE_DIR)).ok().filter(|store| store.identity.same_products(&identity));
    let reusable = old.as_ref().map(VectorStore::reusable);
    let texts: Vec<String> = products.iter().map(|p| dense::product_text(p, parts)).collect();
    let hashes: Vec<String> = texts.iter().map(|text| dense::store::text_hash(text)).collect();
    let reused: Vec<Option<&[f32]>> =
        (0..products.len()).map(|at| reusable.as_ref().and_then(|r| r.get(&products[at].id, &hashes[at]))).collect();
    let to_embed: Vec<&str> =
        (0..products.len()).filter(|&at| reused[at].is_none()).map(|at| texts[at].as_str()).collect();
    let progress = crate::progress::bar(to_embed.len() as u64, "embedding", show_progress);
    let mut fresh = encoder.embed_with_progress(&to_embed, &|done| progress.inc(done as u64))?.into_iter();
    progress.finish_and_clear();
    let mut store = VectorStore::new(identity.clone());
    for (at, product) in products.iter().enumerate() {
        match reused[at] {
            Some(vector) => store.push(&product.id, hashes[at].clone(), vector),
            None => store.push(&product.id, hashes[at].clone(), &fresh.next().unwrap_or_default()),
        }
    }
    store.compute_centroids(products);
    let embedded = started.elapsed().as_secs_f64();
    let graph_started = Instant::now();
    let params = options.config.dense.ann;
    let progress = crate::progress::bar(products.len() as u64, "ANN graph", show_progress);
    store.build_ann(&params, &|done| progress.inc(done as u64));
    progress.finish_and_clear();
    let ann = AnnBuild { params, seconds: graph_started.elapsed().as_secs_f64() };
    store.save(&staging.join(DENSE_DIR))?;
    Ok(DenseInfo {
        encoder: identity,
        vectors: products.len() as u64,
        reused: (products.len() - to_embed.len()) as u64,
        seconds: embedded,
        ann: Some(ann),
    })
}

/// Replaces `out` with the finished `staging` directory.
fn swap_in(staging: &Path, out: &Path) -> Result<(), IndexError> {
    let old = sibling(out, "old");
    remove_dir(&old)?;
    if out.exists() {
        std::fs::rename(out, &old).map_err(|e| IndexError::io(out, e))?;
    }
    std::fs::rename(staging, out).map_err(|e| IndexError::io(out, e))?;
    remove_dir(&old)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "index".into());
    path.with_file_name(format!(".{name}.{suffix}"))
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).map(|mut entries| entries.next().is_none()).unwrap_or(false)
}

fn remove_dir(path: &Path) -> Result<(), IndexError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(IndexError::io(path, e)),
        _ => Ok(()),
    }
}

/// An opened index directory.
pub struct ShelfIndex {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub config: IndexConfig,
    pub lexical: LexicalIndex,
    /// The product vectors, when the index was built with an encoder.
    pub vectors: Option<VectorStore>,
}

impl ShelfIndex {
    pub fn open(dir: &Path) -> Result<ShelfIndex, IndexError> {
        let manifest = Manifest::read(dir)?;
        let config_path = dir.join(CONFIG_FILE);
        let config = if config_path.exists() { IndexConfig::from_file(&config_path)? } else { IndexConfig::default() };
        let lexical = LexicalIndex::open(&dir.join(LEXICAL_DIR)).map_err(|e| IndexError::Corrupt {
            path: dir.join(LEXICAL_DIR).display().to_string(),
            message: e.to_string(),
        })?;
        let vectors = match &manifest.dense {
            Some(_) => Some(VectorStore::load(&dir.join(DENSE_DIR))?),
            None => None,
        };
        if let Some(store) = &vectors {
            store.prepare_walk(config.dense.walk);
        }
        Ok(ShelfIndex { dir: dir.to_path_buf(), manifest, config, lexical, vectors })
    }
}
