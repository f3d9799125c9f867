//! The learned ranker's cost: features and LightGBM scores for 200 candidates per query.
//!
//! Needs an index with vectors and a model: by default the demo's (`./run.sh demo` builds
//! `index/demo` and `models/demo`), or `SHELF_BENCH_INDEX` and `SHELF_BENCH_MODEL`. Run with
//! `cargo bench --bench rerank`. Three searches over the same query cycle, measured in one
//! run: hybrid (candidate generation alone), ltr reordering the first 200 hybrid candidates,
//! and the model's scoring of 200 feature rows alone. ltr − hybrid is the cost of features
//! and scoring.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use shelf::engine::Engine;
use shelf::eval::trec::read_queries;
use shelf::search::{RankerKind, SearchRequest};

fn setting(name: &str, default: &str) -> PathBuf {
    std::env::var(name).map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(default))
}

fn rerank(c: &mut Criterion) {
    let (index, model) = (setting("SHELF_BENCH_INDEX", "index/demo"), setting("SHELF_BENCH_MODEL", "models/demo"));
    let encoder = setting("SHELF_ENCODER", shelf::dense::model::DEFAULT_DIR);
    let queries_path = setting("SHELF_BENCH_QUERIES", shelf::demo::QUERIES_PATH);
    let engine = match Engine::open_with(&index, &encoder, Some(&model)) {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("SKIPPED: {error} (run `./run.sh demo` first, or set SHELF_BENCH_INDEX and SHELF_BENCH_MODEL)");
            return;
        }
    };
    // Sources 150 deep give a hybrid union of more than 200 candidates.
    let mut config = engine.index().config.clone();
    config.hybrid.candidates = 150;
    let mut engine = engine.with_config(config);
    engine.set_rerank_depth(200);
    let file = std::fs::File::open(&queries_path).expect("queries");
    let queries: Vec<String> = read_queries(std::io::BufReader::new(file))
        .expect("queries parse")
        .into_iter()
        .map(|(_, q)| q)
        .take(300)
        .collect();
    let texts: Vec<&str> = queries.iter().map(String::as_str).collect();
    // Query vectors come from the cache, as for a repeated query: this measures ranking, not
    // the encoder (see `cargo bench --bench encoder`).
    engine.embed_queries(&texts, &|_| {}).expect("queries embed");

    let mut group = c.benchmark_group("rerank");
    for ranker in [RankerKind::Hybrid, RankerKind::Ltr] {
        let mut next = 0;
        group.bench_function(format!("{ranker}_k10_200_candidates"), |b| {
            b.iter(|| {
                let text = &queries[next % queries.len()];
                next += 1;
                let mut request = SearchRequest::new(text.clone());
                request.ranker = ranker;
                engine.search(&request).expect("search")
            })
        });
    }
    let rows: Vec<Vec<shelf::features::Row>> = queries
        .iter()
        .take(50)
        .map(|q| {
            let rows: Vec<_> =
                engine.candidates_with_features(q, 100, &[]).expect("features").iter().map(|c| c.features).collect();
            rows.iter().cycle().take(200).copied().collect()
        })
        .collect();
    let model = engine.model().expect("model");
    let mut next = 0;
    group.bench_function("score_200_rows", |b| {
        b.iter(|| {
            next += 1;
            model.score("bench", &rows[next % rows.len()]).expect("scores")
        })
    });
    group.finish();
}

criterion_group!(benches, rerank);
criterion_main!(benches);
