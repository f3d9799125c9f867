//! The learned rankers' cost: features and scores for 200 candidates per query, and the
//! neural network beside LightGBM on the 60 candidates the shipped models reorder.
//!
//! Needs an index with vectors and a model: by default the demo's (`./run.sh demo` builds
//! `index/demo` and `models/demo`), or `SHELF_BENCH_INDEX` and `SHELF_BENCH_MODEL`. Run with
//! `cargo bench --bench rerank`. Measured in one run over the same query cycle: hybrid
//! (candidate generation alone), each learned ranker reordering the first 200 hybrid
//! candidates, and each model scoring 60 and 200 candidates alone (features already
//! computed). A learned ranker − hybrid is the cost of features and scoring. The model
//! must be an ensemble directory (the demo's is) to compare all three.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use shelf::engine::Engine;
use shelf::eval::trec::read_queries;
use shelf::rank::{Inputs, Scoring};
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
    let rankers: Vec<RankerKind> = [RankerKind::Hybrid, RankerKind::Ltr, RankerKind::Neural, RankerKind::Ensemble]
        .into_iter()
        .filter(|r| engine.rankers().contains(r))
        .collect();
    for &ranker in &rankers {
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
    // Candidates with features, for scoring alone.
    let candidates: Vec<(String, Vec<shelf::engine::Candidate>)> = queries
        .iter()
        .take(50)
        .map(|q| (q.clone(), engine.candidates_with_features(q, 100, &[]).expect("features")))
        .filter(|(_, c)| c.len() >= 60)
        .collect();
    let store = engine.vectors().expect("vectors");
    for &ranker in rankers.iter().filter(|r| r.is_learned()) {
        let model = engine.models().get(ranker).expect("model").clone();
        for size in [60, 200] {
            let inputs: Vec<(String, Vec<shelf::features::Row>, Vec<usize>)> = candidates
                .iter()
                .map(|(q, c)| {
                    let cycle: Vec<&shelf::engine::Candidate> = c.iter().cycle().take(size).collect();
                    let rows = cycle.iter().map(|c| c.features).collect();
                    let vector_rows = cycle.iter().map(|c| store.row_of(&c.id).expect("vector")).collect();
                    (q.clone(), rows, vector_rows)
                })
                .collect();
            let vectors: Vec<std::sync::Arc<[f32]>> =
                inputs.iter().map(|(q, _, _)| engine.embed_query(q).expect("vector")).collect();
            let mut next = 0;
            group.bench_function(format!("{ranker}_score_{size}"), |b| {
                b.iter(|| {
                    let at = next % inputs.len();
                    next += 1;
                    let (query, rows, vector_rows) = &inputs[at];
                    let products: Vec<Option<&[f32]>> =
                        vector_rows.iter().map(|&row| Some(store.vector(row))).collect();
                    let inputs = Inputs::new(query, &vectors[at], rows, &products);
                    model.score(&inputs, Scoring::Final).expect("scores")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, rerank);
criterion_main!(benches);
