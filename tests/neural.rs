//! The neural multi-head ranker on the demo shop: which heads train, determinism, what it
//! learns, and refusing models it cannot serve.

mod common;

use shelf::engine::Engine;
use shelf::rank::neural::{NeuralRanker, MODEL_FILE};
use shelf::rank::{Inputs, ModelError, Ranker, Scoring, META_FILE};
use shelf::train::neural::{NeuralParams, RelevanceLoss};
use shelf::train::{log_features, train, LogOptions, LoggedQuery, TrainOptions, TrainReport, TrainerKind};

fn logged(limit: usize) -> (Engine, Vec<LoggedQuery>) {
    let engine = Engine::open_with_encoder(common::demo_index(), &common::encoder_dir()).unwrap();
    let (queries, qrels) = common::demo_judgments();
    let logged = log_features(&engine, &queries[..limit], &qrels, &LogOptions::default()).unwrap();
    (engine, logged)
}

fn options(neural: NeuralParams) -> TrainOptions {
    TrainOptions { ranker: TrainerKind::Neural, folds: 3, neural, ..TrainOptions::default() }
}

fn quick() -> NeuralParams {
    NeuralParams { max_epochs: 12, ..NeuralParams::default() }
}

fn train_into(engine: &Engine, logged: &[LoggedQuery], options: &TrainOptions, dir: &std::path::Path) -> TrainReport {
    train(logged, engine.vectors(), options, dir).unwrap().report
}

#[test]
fn heads_train_where_the_catalogue_has_the_signal_and_say_why_not_elsewhere() {
    let (engine, logged) = logged(150);
    let dir = tempfile::tempdir().unwrap();
    let report = train_into(&engine, &logged, &options(quick()), dir.path());
    let status: Vec<(&str, bool)> = report.heads.iter().map(|h| (h.name.as_str(), h.on)).collect();
    assert_eq!(
        status,
        [
            ("relevance", true),
            ("rating", true),
            ("in_stock", true),
            ("popularity", true),
            ("click", false),
            ("add_to_cart", false),
            ("purchase", false)
        ]
    );
    for head in report.heads.iter().filter(|h| !h.on) {
        assert!(head.reason.as_deref().unwrap_or("").contains("engagement"), "{head:?}");
    }
    let ranker = NeuralRanker::load(dir.path()).unwrap();
    assert_eq!(ranker.heads(), ["rating", "in_stock", "popularity"]);

    // Each head predicts for every candidate, in its own units.
    let rows: Vec<shelf::features::Row> = logged[0].rows.iter().map(|r| r.features).collect();
    let store = engine.vectors().unwrap();
    let vectors: Vec<Option<&[f32]>> =
        logged[0].rows.iter().map(|r| store.row_of(&r.id).map(|row| store.vector(row))).collect();
    let inputs = Inputs::new(&logged[0].query, &logged[0].query_vector, &rows, &vectors);
    let scored = ranker.score(&inputs, Scoring::Final).unwrap();
    assert_eq!(scored.relevance.len(), rows.len());
    let stars = &scored.heads["rating"];
    assert!(stars.iter().all(|s| (0.0..=5.0).contains(s)), "{stars:?}");
    assert!(scored.heads["in_stock"].iter().all(|p| (0.0..=1.0).contains(p)));

    // A catalogue without ratings (here: the feature withheld) trains no rating head, and
    // says why instead of learning from made-up zeros.
    let without = TrainOptions { without: vec!["rating".into()], ..options(quick()) };
    let dir = tempfile::tempdir().unwrap();
    let report = train_into(&engine, &logged, &without, dir.path());
    let rating = report.heads.iter().find(|h| h.name == "rating").unwrap();
    assert!(!rating.on && rating.rows == 0, "{rating:?}");
    assert!(rating.reason.as_deref().unwrap().contains("rating"), "{rating:?}");
    assert_eq!(NeuralRanker::load(dir.path()).unwrap().heads(), ["in_stock", "popularity"]);
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let (engine, logged) = logged(90);
    let params = NeuralParams { max_epochs: 4, ..NeuralParams::default() };
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = train_into(&engine, &logged, &options(params.clone()), a.path());
    let again = train_into(&engine, &logged, &options(params.clone()), b.path());
    let read = |dir: &tempfile::TempDir| std::fs::read(dir.path().join(MODEL_FILE)).unwrap();
    assert_eq!(read(&a), read(&b), "the same seed gives the same network");
    assert_eq!((first.cv_ndcg10, first.fold_rounds.clone()), (again.cv_ndcg10, again.fold_rounds.clone()));
    train_into(&engine, &logged, &TrainOptions { seed: 7, ..options(params) }, c.path());
    assert_ne!(read(&a), read(&c), "another seed, another network");

    // Live traffic gets the final network; evaluation gets the fold that never saw the query.
    let ranker = NeuralRanker::load(a.path()).unwrap();
    let rows: Vec<shelf::features::Row> = logged[0].rows.iter().map(|r| r.features).collect();
    let vectors = vec![None; rows.len()];
    let inputs = Inputs::new(&logged[0].query, &logged[0].query_vector, &rows, &vectors);
    let final_scores = ranker.score(&inputs, Scoring::Final).unwrap().relevance;
    assert_ne!(final_scores, ranker.score(&inputs, Scoring::HeldOut).unwrap().relevance);
    let unseen = Inputs { query: "a query nobody trained on", ..inputs };
    assert_eq!(final_scores, ranker.score(&unseen, Scoring::HeldOut).unwrap().relevance);
}

#[test]
fn both_listwise_losses_learn_to_beat_the_hybrid_order() {
    // The bar: the reranked candidates ordered better than the hybrid order that
    // proposed them. The size of the gain on the demo's 542 queries moves with the seed and
    // with float rounding on another CPU: +0.003 to +0.030 over six seeds and both losses
    // here, and seed 42's ApproxNDCG gave +0.020 here but +0.004 on CI's machine. So the test
    // asks for a gain, not for a size of it.
    let (engine, logged) = logged(common::demo_judgments().0.len());
    for loss in [RelevanceLoss::Softmax, RelevanceLoss::ApproxNdcg] {
        let dir = tempfile::tempdir().unwrap();
        let options = TrainOptions { folds: 5, ..options(NeuralParams { loss, ..NeuralParams::default() }) };
        let report = train_into(&engine, &logged, &options, dir.path());
        assert!(
            report.cv_ndcg10 > report.cv_ndcg10_hybrid,
            "{loss:?}: held-out nDCG@10 {:.4} vs the hybrid order's {:.4}",
            report.cv_ndcg10,
            report.cv_ndcg10_hybrid
        );
    }
}

#[test]
fn a_neural_model_it_cannot_serve_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for file in std::fs::read_dir(common::demo_model().join("neural")).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), dir.path().join(file.file_name())).unwrap();
    }
    assert!(NeuralRanker::load(dir.path()).is_ok());
    let meta_path = dir.path().join(META_FILE);
    let original = std::fs::read_to_string(&meta_path).unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&original).unwrap();
    meta["feature_names"].as_array_mut().unwrap().retain(|n| n != "bm25_rel");
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let error = NeuralRanker::load(dir.path()).err().expect("refused");
    assert!(matches!(error, ModelError::Schema { .. }) && error.to_string().contains("bm25_rel"), "{error}");

    std::fs::write(&meta_path, &original).unwrap();
    std::fs::write(dir.path().join("fold-1.safetensors"), b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage").unwrap();
    let message = NeuralRanker::load(dir.path()).err().expect("refused").to_string();
    assert!(message.contains("fold-1.safetensors") && message.contains("retrain"), "{message}");

    // An engine asked to serve it refuses to start, rather than serving something weaker.
    let opened = Engine::open_with(common::demo_index(), &common::encoder_dir(), Some(dir.path()));
    assert!(opened.err().expect("refused").to_string().contains("fold-1.safetensors"));
}
