//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod server;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use shelf::catalog::{import_file, Format, ImportOptions};
use shelf::dense::Encoder;
use shelf::index::{build_with, fingerprint_file, BuildOptions, IndexConfig};

/// The checkout under test. `cargo test` also sets `CARGO_MANIFEST_DIR` when it runs a test:
/// that one wins over the path compiled in, because checkouts sharing a target directory (CI's
/// fresh clones) reuse each other's test binaries when their sources are the same.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// `../shared/data/<name>`, or `None` (with a printed reason) when it is absent.
/// With `SHELF_REQUIRE_SHARED_DATA=1` an absent data set fails the test instead.
pub fn shared_data(name: &str) -> Option<PathBuf> {
    let dir = repo_root().join("../shared/data").join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("SHELF_REQUIRE_SHARED_DATA").is_ok_and(|v| v == "1") {
        panic!("{} is missing and SHELF_REQUIRE_SHARED_DATA=1", dir.display());
    }
    eprintln!("SKIPPED: {} is absent (set SHELF_REQUIRE_SHARED_DATA=1 to make this a failure)", dir.display());
    None
}

/// The fetched sentence encoder (`./run.sh test` fetches it; by hand: `shelf model fetch`).
pub fn encoder_dir() -> PathBuf {
    let dir = repo_root().join(shelf::dense::model::DEFAULT_DIR);
    assert!(dir.join("model.safetensors").exists(), "{} is missing: run `shelf model fetch`", dir.display());
    dir
}

/// Builds a lexical-only index of a catalogue file into `out` with the repository's config.
pub fn build_index(catalog: &Path, format: Format, out: &Path) {
    build_index_with(catalog, format, None, out);
}

/// Builds an index of a catalogue file, with vectors when `encoder` is given.
pub fn build_index_with(catalog: &Path, format: Format, encoder: Option<&Encoder>, out: &Path) {
    let imported = import_file(catalog, &ImportOptions::new(format), &|_| {}).expect("catalogue imports");
    let mut options = BuildOptions::new(&catalog.display().to_string(), format, &fingerprint_file(catalog).unwrap());
    options.config = IndexConfig::from_file(&repo_root().join("index/shelf.toml")).expect("index/shelf.toml reads");
    build_with(&imported, &options, encoder, out).expect("index builds");
}

/// The bundled demo catalogue with vectors, indexed once per test binary into one place
/// under cargo's scratch directory. Each binary rebuilds it (so it always reflects the code
/// under test) but reuses the vectors of unchanged products, so only the first embeds.
pub fn demo_index() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-index");
        let encoder = Encoder::load(&encoder_dir()).expect("encoder loads");
        build_index_with(&repo_root().join(shelf::demo::CATALOG_PATH), Format::Jsonl, Some(&encoder), &dir);
        dir
    })
}

/// The learned rankers trained on the demo shop's judged queries (5-fold): an ensemble
/// directory, so LightGBM (`lgbm/`), the neural ranker (`neural/`) and their blend. Trained
/// once per state of the code and data: the test binaries of one run share it (a
/// `TRAINED_FROM` file, written last, holds the fingerprint of what trained it).
pub fn demo_model() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-model");
        let stamp = dir.join("TRAINED_FROM");
        let fingerprint = code_and_data_fingerprint();
        if std::fs::read_to_string(&stamp).is_ok_and(|found| found == fingerprint) {
            return dir;
        }
        let _ = std::fs::remove_dir_all(&dir);
        let engine = shelf::engine::Engine::open_with_encoder(demo_index(), &encoder_dir()).expect("demo index opens");
        let (queries, qrels) = demo_judgments();
        let logged = shelf::train::log_features(&engine, &queries, &qrels, &shelf::train::LogOptions::default())
            .expect("features log");
        let options = shelf::train::TrainOptions { ranker: shelf::train::TrainerKind::Ensemble, ..Default::default() };
        shelf::train::train(&logged, engine.vectors(), &options, &dir).expect("model trains");
        std::fs::write(&stamp, fingerprint).unwrap();
        dir
    })
}

/// A digest of everything a trained demo model depends on: the library's sources, the
/// locked dependencies, the demo catalogue and its judgments.
fn code_and_data_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let root = repo_root();
    let mut paths = Vec::new();
    files(&root.join("src"), &mut paths);
    paths.sort();
    paths.extend(
        [
            "Cargo.lock",
            "index/shelf.toml",
            shelf::demo::CATALOG_PATH,
            shelf::demo::QUERIES_PATH,
            shelf::demo::QRELS_PATH,
        ]
        .map(|file| root.join(file)),
    );
    let mut hash = Sha256::new();
    for path in paths {
        hash.update(path.strip_prefix(&root).unwrap_or(&path).to_string_lossy().as_bytes());
        hash.update(std::fs::read(&path).unwrap_or_default());
    }
    format!("{:x}", hash.finalize())
}

/// The demo shop's judged queries.
pub fn demo_judgments() -> (Vec<(String, String)>, shelf::eval::trec::Qrels) {
    let open = |path: &str| std::io::BufReader::new(std::fs::File::open(repo_root().join(path)).unwrap());
    let queries = shelf::eval::trec::read_queries(open(shelf::demo::QUERIES_PATH)).unwrap();
    let qrels = shelf::eval::trec::read_qrels(open(shelf::demo::QRELS_PATH)).unwrap();
    (queries, qrels)
}

/// Copies a directory tree (an index, say, to damage or rebuild without touching the shared one).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Serves `state` on a free loopback port for the rest of the test; its base URL.
pub async fn serve(state: std::sync::Arc<shelf::server::AppState>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = shelf::server::router(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// `value` percent-encoded for a query string.
pub fn urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)]).unwrap().trim_start_matches("v=").to_string()
}
