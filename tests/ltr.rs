//! The learned ranker on the demo shop: training, the model directory, schema checks,
//! explained scores, and whether it ranks better than its own inputs.

mod common;

use shelf::engine::Engine;
use shelf::eval::{evaluate, EvalOptions, Protocol};
use shelf::features;
use shelf::ltr::{LtrModel, ModelError, META_FILE, MODEL_FILE};
use shelf::search::{RankerKind, SearchRequest};
use shelf::train::{log_features, train, LogOptions, TrainOptions, Unjudged};

fn engine() -> Engine {
    Engine::open_with(common::demo_index(), &common::encoder_dir(), Some(common::demo_model())).unwrap()
}

#[test]
fn a_saved_model_scores_exactly_as_the_trained_one() {
    let engine = Engine::open_with_encoder(common::demo_index(), &common::encoder_dir()).unwrap();
    let (queries, qrels) = common::demo_judgments();
    let options = LogOptions { unjudged: Unjudged::Drop, ..LogOptions::default() };
    let logged = log_features(&engine, &queries[..120], &qrels, &options).unwrap();
    assert!(logged.iter().all(|q| q.rows.iter().all(|r| r.judged)), "drop keeps judged products only");
    let dir = tempfile::tempdir().unwrap();
    let trained = train(&logged, &TrainOptions { folds: 3, ..TrainOptions::default() }, dir.path()).unwrap();
    assert_eq!(trained.report.queries, logged.len());
    // A directory holding something else is never replaced.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("notes.txt"), "mine").unwrap();
    let refused = train(&logged, &TrainOptions { folds: 3, ..TrainOptions::default() }, other.path());
    assert!(refused.err().expect("refused").to_string().contains("not a model directory"));
    assert!(other.path().join("notes.txt").exists());

    let loaded = LtrModel::load(dir.path()).unwrap();
    assert_eq!(loaded.meta.feature_names, features::NAMES);
    let rows: Vec<features::Row> = logged.iter().flat_map(|q| q.rows.iter().map(|r| r.features)).take(300).collect();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let in_memory = trained.booster.predict(&flat, features::COUNT as i32, true).unwrap();
    // A query the model never saw is scored by the full model.
    let from_disk = loaded.score("a query nobody trained on", &rows).unwrap();
    assert_eq!(in_memory, from_disk);
    // A training query is scored by the fold model that held it out, which differs.
    let seen = &logged[0].query;
    assert!(loaded.held_out(seen));
    assert_ne!(loaded.score(seen, &rows).unwrap(), from_disk);
}

#[test]
fn a_model_of_another_feature_schema_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for file in std::fs::read_dir(common::demo_model()).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), dir.path().join(file.file_name())).unwrap();
    }
    let meta_path = dir.path().join(META_FILE);
    let mut meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    let names = meta["feature_names"].as_array_mut().unwrap();
    names.retain(|n| n != "dense_cosine");
    names.push("clicks_last_week".into());
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let error = LtrModel::load(dir.path()).err().expect("refused");
    let message = error.to_string();
    assert!(matches!(error, ModelError::Schema { .. }), "{message}");
    assert!(message.contains("dense_cosine") && message.contains("clicks_last_week"), "{message}");

    // A damaged model file is refused with the path, not a crash.
    std::fs::copy(common::demo_model().join(META_FILE), &meta_path).unwrap();
    std::fs::write(dir.path().join(MODEL_FILE), "tree\nnot a model").unwrap();
    let message = LtrModel::load(dir.path()).err().expect("refused").to_string();
    assert!(message.contains(MODEL_FILE) && message.contains("retrain"), "{message}");
    assert!(matches!(LtrModel::load(&dir.path().join("nothing")), Err(ModelError::NotAModel(_))));
}

#[test]
fn explained_contributions_sum_to_the_score() {
    let engine = engine();
    assert_eq!(engine.default_ranker(), RankerKind::Ltr);
    let mut request = SearchRequest::new("36 in vanity grey").with_k(5);
    request.ranker = RankerKind::Ltr;
    request.explain = true;
    let response = engine.search(&request).unwrap();
    assert_eq!(response.results.len(), 5);
    assert!(response.timings_ms.features.is_some() && response.timings_ms.rank.is_some());
    for hit in &response.results {
        let explain = hit.explain.as_ref().expect("explain on every result");
        let features = explain["features"].as_object().unwrap();
        assert_eq!(features.len(), features::COUNT);
        let sum: f64 = features.values().map(|f| f["contribution"].as_f64().unwrap()).sum::<f64>()
            + explain["bias"].as_f64().unwrap();
        let score = explain["score"].as_f64().unwrap();
        assert!((sum - score).abs() < 1e-6, "{sum} vs {score}");
        assert!((score - hit.score as f64).abs() < 1e-4);
        assert_eq!(explain["top"].as_array().unwrap().len(), 5);
    }
    // Without explain, nothing extra is computed or sent.
    request.explain = false;
    assert!(engine.search(&request).unwrap().results.iter().all(|h| h.explain.is_none()));
}

#[test]
fn the_learned_ranker_beats_its_inputs_on_held_out_demo_queries() {
    let engine = engine();
    let (queries, qrels) = common::demo_judgments();
    let score = |protocol: Protocol, ranker: RankerKind| {
        let options = EvalOptions { ranker, ..EvalOptions::new(protocol) };
        evaluate(&engine, &queries, &qrels, &options).unwrap().mean.ndcg10
    };
    // Every demo query was a training query: each is scored by the fold model that held it out.
    let (ltr, hybrid) = (score(Protocol::Retrieve, RankerKind::Ltr), score(Protocol::Retrieve, RankerKind::Hybrid));
    assert!(ltr > hybrid + 0.02, "retrieve: ltr {ltr:.4} vs hybrid {hybrid:.4}");
    let ltr = score(Protocol::Rerank, RankerKind::Ltr);
    for input in [RankerKind::Bm25, RankerKind::Dense, RankerKind::Hybrid] {
        let other = score(Protocol::Rerank, input);
        assert!(ltr >= other, "rerank: ltr {ltr:.4} vs {input} {other:.4}");
    }
}

#[test]
fn why_splits_a_score_difference_into_features() {
    let engine = engine();
    let mut request = SearchRequest::new("office chair").with_k(5);
    request.ranker = RankerKind::Ltr;
    let results = engine.search(&request).unwrap().results;
    let (winner, loser) = (&results[0], &results[4]);
    let reasons = engine.why("office chair", &winner.id, &loser.id).unwrap();
    assert_eq!(reasons.len(), features::COUNT);
    assert!(reasons.windows(2).all(|pair| pair[0].1 >= pair[1].1), "largest first");
    let total: f64 = reasons.iter().map(|(_, d)| d).sum();
    let gap = (winner.score - loser.score) as f64;
    assert!((total - gap).abs() < 1e-3, "contributions {total} vs score gap {gap}");
}
