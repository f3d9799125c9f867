//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use shelf::catalog::{import_file, Format, ImportOptions};
use shelf::index::{build, fingerprint_file, BuildOptions, IndexConfig};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

/// Builds an index of a catalogue file into `out` with the repository's config.
pub fn build_index(catalog: &Path, format: Format, out: &Path) {
    let imported = import_file(catalog, &ImportOptions::new(format), &|_| {}).expect("catalogue imports");
    let mut options = BuildOptions::new(&catalog.display().to_string(), format, &fingerprint_file(catalog).unwrap());
    options.config = IndexConfig::from_file(&repo_root().join("index/shelf.toml")).expect("index/shelf.toml reads");
    build(&imported, &options, out).expect("index builds");
}

/// The bundled demo catalogue, indexed once per test binary (under cargo's scratch
/// directory for integration tests, so nothing is left in /tmp).
pub fn demo_index() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let binary = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("demo-index-{}", binary.unwrap_or_default()));
        build_index(&repo_root().join(shelf::demo::CATALOG_PATH), Format::Jsonl, &dir);
        dir
    })
}
