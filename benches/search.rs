//! Search latency: BM25 over a real catalogue with a real query log.
//!
//! Uses the Home Depot catalogue and the 480 WANDS queries from `../shared/data` when they
//! are there, else the bundled demo shop and its queries. Run with `cargo bench --bench search`.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use shelf::catalog::{import_file, Format, ImportOptions};
use shelf::engine::Engine;
use shelf::eval::trec::read_queries;
use shelf::index::{build, BuildOptions};
use shelf::search::SearchRequest;

fn inputs() -> (PathBuf, PathBuf, &'static str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/data");
    if shared.join("homedepot/products.jsonl").exists() && shared.join("wands/queries.tsv").exists() {
        (shared.join("homedepot/products.jsonl"), shared.join("wands/queries.tsv"), "homedepot+wands")
    } else {
        eprintln!("../shared/data is absent: benchmarking the demo shop instead");
        (root.join(shelf::demo::CATALOG_PATH), root.join(shelf::demo::QUERIES_PATH), "demo")
    }
}

fn search(c: &mut Criterion) {
    let (catalog_path, queries_path, name) = inputs();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("index");
    let options = ImportOptions::new(Format::Jsonl);
    let mut group = c.benchmark_group(format!("index/{name}"));
    group.sample_size(10);
    group.bench_function("import+build", |b| {
        b.iter(|| {
            let catalog = import_file(&catalog_path, &options, &|_| {}).expect("catalogue");
            build(&catalog, &BuildOptions::new("bench", Format::Jsonl, "-"), &out).expect("index")
        })
    });
    group.finish();

    let engine = Engine::open(&out).expect("index opens");
    let file = std::fs::File::open(&queries_path).expect("queries");
    let queries = read_queries(std::io::BufReader::new(file)).expect("queries parse");
    let mut group = c.benchmark_group(format!("search/{name}"));
    // One iteration = one query, cycling through the whole log.
    let mut next = 0;
    group.bench_function("bm25_k10", |b| {
        b.iter(|| {
            let (_, text) = &queries[next % queries.len()];
            next += 1;
            engine.search(&SearchRequest::new(text.clone())).expect("search")
        })
    });
    let mut next = 0;
    group.bench_function("bm25_k100_facets", |b| {
        b.iter(|| {
            let (_, text) = &queries[next % queries.len()];
            next += 1;
            let mut request = SearchRequest::new(text.clone()).with_k(100);
            request.facets = true;
            engine.search(&request).expect("search")
        })
    });
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
