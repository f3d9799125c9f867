//! The query adapter: its file, the encoder directory that carries it, the index's refusal
//! of an encoder its vectors were not made for, and its training on the demo shop.

mod common;

use rand::{Rng, SeedableRng};
use shelf::dense::adapter::{write_encoder_dir, ADAPTER_FILE};
use shelf::dense::{Encoder, QueryAdapter};
use shelf::engine::Engine;
use shelf::eval::split::Part;
use shelf::search::{RankerKind, SearchRequest, MAX_QUERY_BYTES};
use shelf::train::encoder::{fit, train_adapter, AdapterParams, EncoderTrainOptions, Mining, PairSet};
use shelf::train::read_params;
use shelf::train::{log_features, train, LogOptions, TrainOptions};

/// A small random map, far enough from zero to move queries.
fn random_adapter(dim: usize, seed: u64) -> QueryAdapter {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    QueryAdapter::new(dim, (0..dim * dim).map(|_| rng.random_range(-0.05..0.05)).collect()).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn an_adapter_survives_its_file_and_moves_queries_only() {
    let adapter = random_adapter(384, 7);
    let dir = tempfile::tempdir().unwrap();
    let encoder_dir = dir.path().join("encoder");
    let path = write_encoder_dir(&common::encoder_dir(), &adapter, &encoder_dir).unwrap();
    assert_eq!(QueryAdapter::load(&path).unwrap(), adapter);

    let stock = Encoder::load(&common::encoder_dir()).unwrap();
    let adapted = Encoder::load(&encoder_dir).unwrap();
    // Products are embedded as the stock encoder does …
    let product = "Glacier Bay 36 in. Vanity in Grey";
    assert_eq!(adapted.embed(&[product, "deck over"]).unwrap(), stock.embed(&[product, "deck over"]).unwrap());
    // … queries go through the adapter, one at a time or in a batch.
    let mut expected = stock.embed_query("deck over").unwrap();
    adapter.apply(&mut expected);
    let one = adapted.embed_query("deck over").unwrap();
    let batch = adapted.embed_queries(&["deck over", "36 in vanity grey"], &|_| {}).unwrap();
    assert!(cosine(&one, &expected) > 0.9999);
    assert!(cosine(&batch[0], &expected) > 0.999);
    assert!(cosine(&one, &stock.embed_query("deck over").unwrap()) < 0.999, "the adapter moved nothing");
    assert!((cosine(&one, &one) - 1.0).abs() < 1e-5, "adapted queries stay unit length");
    let identity = adapted.identity("title");
    assert_eq!(identity.query_adapter.as_deref(), Some(shelf::dense::model::sha256_file(&path).unwrap().as_str()));
    assert!(identity.same_products(&stock.identity("title")));

    // A damaged adapter file is refused, naming the file; so is one of another size.
    std::fs::write(&path, b"not a safetensors file").unwrap();
    let error = Encoder::load(&encoder_dir).err().expect("a damaged adapter is refused").to_string();
    assert!(error.contains(ADAPTER_FILE), "{error}");
    random_adapter(8, 1).save(&path).unwrap();
    let error = Encoder::load(&encoder_dir).err().expect("an adapter of another size is refused").to_string();
    assert!(error.contains("8-long"), "{error}");
}

#[test]
fn an_index_serves_only_the_queries_its_vectors_were_made_for() {
    let dir = tempfile::tempdir().unwrap();
    let encoder_dir = dir.path().join("encoder");
    write_encoder_dir(&common::encoder_dir(), &random_adapter(384, 3), &encoder_dir).unwrap();

    // The stock index refuses the adapter: its queries would land where nothing was tuned.
    let error = Engine::open_with_encoder(common::demo_index(), &encoder_dir).err().expect("refused").to_string();
    assert!(error.contains("query adapter") && error.contains("shelf index --encoder"), "{error}");

    // Re-indexing with the adapter keeps every product vector and records the adapter …
    let index = dir.path().join("index");
    common::copy_dir(common::demo_index(), &index);
    let adapted = Encoder::load(&encoder_dir).unwrap();
    common::build_index_with(
        &common::repo_root().join(shelf::demo::CATALOG_PATH),
        shelf::catalog::Format::Jsonl,
        Some(&adapted),
        &index,
    );
    let engine = Engine::open_with_encoder(&index, &encoder_dir).unwrap();
    let dense = engine.manifest().dense.as_ref().unwrap();
    assert_eq!(dense.reused, dense.vectors, "an adapter re-embeds no product");
    assert!(dense.encoder.query_adapter.is_some());
    let mut request = SearchRequest::new("grey sofa").with_k(5);
    request.ranker = RankerKind::Dense;
    assert_eq!(engine.search(&request).unwrap().results.len(), 5);

    // … after which the stock encoder is the one refused.
    let error = Engine::open_with_encoder(&index, &common::encoder_dir()).err().expect("refused").to_string();
    assert!(error.contains("query adapter"), "{error}");

    // A ranker trained on the stock index serves it, and is refused on the adapter's index,
    // whose dense features mean something else.
    let stock = Engine::open_with_encoder(common::demo_index(), &common::encoder_dir()).unwrap();
    let (queries, qrels) = common::demo_judgments();
    let logged = log_features(&stock, &queries[..60], &qrels, &LogOptions::default()).unwrap();
    let model = dir.path().join("model");
    train(&logged, stock.vectors(), &TrainOptions { folds: 2, ..TrainOptions::default() }, &model).unwrap();
    assert!(stock.with_model(&model).is_ok());
    let error = engine.with_model(&model).err().expect("refused").to_string();
    assert!(error.contains("retrain it on this index"), "{error}");
}

#[test]
fn training_lowers_the_loss_and_a_seed_reproduces_it() {
    let engine = Engine::open_with_encoder(common::demo_index(), &common::encoder_dir()).unwrap();
    let (queries, qrels) = common::demo_judgments();
    let params = AdapterParams { batch: 64, learning_rate: 1e-3, ..AdapterParams::default() };
    let set = PairSet::build(&engine, &Part::Tune.select(&queries), &qrels, &params, false).unwrap();
    assert!(set.queries() > 100 && set.pairs() >= set.queries(), "{} queries, {} pairs", set.queries(), set.pairs());
    let everyone: Vec<usize> = (0..set.queries()).collect();
    let run = |seed: u64| {
        let options = EncoderTrainOptions { params: params.clone(), seed, show_progress: false };
        fit(&set, &engine, &everyone, None, 4, &options, &|_| {}).unwrap()
    };
    let (first, again, other) = (run(1), run(1), run(2));
    let losses: Vec<f64> = first.history.iter().map(|e| e.loss).collect();
    assert_eq!(losses.len(), 4);
    assert!(losses[3] < losses[0] * 0.95, "the contrastive loss should fall: {losses:?}");
    assert_eq!(first.adapter, again.adapter, "the same seed must give the same map");
    assert_ne!(first.adapter, other.adapter, "another seed shuffles the pairs otherwise");
    assert!(first.adapter.matrix().iter().any(|&v| v != 0.0));

    // Hard negatives (products the stock encoder ranks high that are not relevant) make the
    // task harder: the same map scores a higher loss against them.
    let hard = AdapterParams { hard_negatives: 4, ..params.clone() };
    let hard_set = PairSet::build(&engine, &Part::Tune.select(&queries), &qrels, &hard, false).unwrap();
    let one_epoch = |set: &PairSet, params: &AdapterParams| {
        let options = EncoderTrainOptions { params: params.clone(), seed: 1, show_progress: false };
        fit(set, &engine, &everyone, None, 1, &options, &|_| {}).unwrap()
    };
    let (with_hard, without) = (one_epoch(&hard_set, &hard), one_epoch(&set, &params));
    assert!(with_hard.history[0].loss > without.history[0].loss, "{:?} vs {:?}", with_hard.history, without.history);
}

#[test]
fn hard_negatives_are_mined_from_the_list_the_config_names() {
    let engine = Engine::open_with_encoder(common::demo_index(), &common::encoder_dir()).unwrap();
    let (queries, qrels) = common::demo_judgments();
    let tune = Part::Tune.select(&queries);

    // The configuration file names the list; a list shelf cannot mine is refused by name.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("train.toml");
    std::fs::write(&config, "[encoder]\nhard_negatives = 1\nmining = \"hybrid\"\nmining_depth = 20\n").unwrap();
    let hybrid = read_params(&config).unwrap().encoder;
    assert_eq!((hybrid.mining, hybrid.mining_depth, hybrid.hard_negatives), (Mining::Hybrid, 20, 1));
    std::fs::write(&config, "[encoder]\nmining = \"bm25\"\n").unwrap();
    let error = read_params(&config).expect_err("an unknown list is refused").to_string();
    assert!(error.contains("bm25") && error.contains("hybrid"), "{error}");
    let dense = AdapterParams { mining: Mining::Dense, ..hybrid.clone() };
    let too_deep = AdapterParams { mining_depth: 5_000, ..hybrid.clone() };
    let error = PairSet::build(&engine, &tune, &qrels, &too_deep, false).err().expect("refused").to_string();
    assert!(error.contains("mining_depth") && error.contains("5000"), "{error}");

    let from_hybrid = PairSet::build(&engine, &tune, &qrels, &hybrid, false).unwrap();
    let from_dense = PairSet::build(&engine, &tune, &qrels, &dense, false).unwrap();
    assert_eq!(from_hybrid.queries(), from_dense.queries());
    let store = engine.vectors().unwrap();
    let qid_of: std::collections::HashMap<&str, &str> =
        tune.iter().map(|(id, text)| (text.as_str(), id.as_str())).collect();
    let (mut differ, mut mined) = (0, 0);
    for at in 0..from_hybrid.queries() {
        let text = from_hybrid.text(at);
        let grades = &qrels[qid_of[text]];
        // Exactly the hybrid list's top 20, in its order, minus what the judges call
        // relevant (grade >= mask_grade) for this query.
        let request = SearchRequest { ranker: RankerKind::Hybrid, ..SearchRequest::new(text).with_k(20) };
        let listed = engine.search(&request).unwrap().results;
        let expected: Vec<usize> = listed
            .iter()
            .filter(|hit| grades.get(&hit.id).is_none_or(|&grade| grade < hybrid.mask_grade))
            .filter_map(|hit| store.row_of(&hit.id))
            .collect();
        assert_eq!(from_hybrid.hard_negatives(at), expected.as_slice(), "{text:?}");
        mined += usize::from(!expected.is_empty());
        differ += usize::from(from_hybrid.hard_negatives(at) != from_dense.hard_negatives(at));
    }
    assert_eq!(from_hybrid.refused_by_search(), 0);
    let queries = from_hybrid.queries();
    assert!(mined * 10 >= queries * 9, "hybrid negatives for only {mined} of {queries} queries");
    assert!(
        differ * 2 >= queries,
        "the two lists gave the same negatives for {} of {queries} queries",
        queries - differ
    );

    // A judged query the search box refuses (too long) keeps its pairs, trains without hard
    // negatives, and is counted.
    let (qid, text) = tune.iter().find(|(qid, _)| qrels[qid].values().any(|&g| g >= 4)).unwrap();
    let long = format!("{text} ").repeat(1 + MAX_QUERY_BYTES / (text.len() + 1));
    let mut judged = qrels.clone();
    judged.insert("long".into(), qrels[qid].clone());
    let both = [(qid.clone(), text.clone()), ("long".to_string(), long.clone())];
    let set = PairSet::build(&engine, &both, &judged, &hybrid, false).unwrap();
    assert_eq!((set.queries(), set.refused_by_search()), (2, 1));
    let (short, long) = if set.text(0) == long { (1, 0) } else { (0, 1) };
    assert!(set.hard_negatives(long).is_empty() && !set.hard_negatives(short).is_empty());
    assert_eq!(set.pairs_of(&[long]).len(), set.pairs_of(&[short]).len());
}

#[test]
fn an_adapter_trained_on_the_tune_part_writes_an_encoder_directory() {
    let engine = Engine::open_with_encoder(common::demo_index(), &common::encoder_dir()).unwrap();
    let (queries, qrels) = common::demo_judgments();
    let tune = Part::Tune.select(&queries);
    assert!(tune.iter().all(|(_, text)| Part::of(text) == Part::Tune));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo-encoder");
    let options = EncoderTrainOptions {
        params: AdapterParams {
            batch: 64,
            learning_rate: 1e-3,
            max_epochs: 6,
            patience: 2,
            ..AdapterParams::default()
        },
        ..EncoderTrainOptions::default()
    };
    let report = train_adapter(&engine, &common::encoder_dir(), &tune, &qrels, &options, &out).unwrap();
    // Every tune query with a product graded 4 or more trains it; no report query does.
    let with_positive =
        tune.iter().filter(|(qid, _)| qrels.get(qid).is_some_and(|grades| grades.values().any(|&g| g >= 4))).count();
    assert_eq!(report.queries, with_positive);
    assert!(report.best_holdout_ndcg10 > report.stock_holdout_ndcg10, "{report:?}");
    assert!(report.epochs >= 1 && report.epochs <= 6);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["kind"], "query-adapter");
    assert_eq!(meta["adapter_sha256"], shelf::dense::model::sha256_file(&out.join(ADAPTER_FILE)).unwrap());
    assert_eq!(meta["base_weights_sha256"], engine.vectors().unwrap().identity.weights_sha256);
    // The directory is an encoder: it loads and embeds.
    let encoder = Encoder::load(&out).unwrap();
    assert_eq!(encoder.embed_query("grey sofa").unwrap().len(), 384);
    // A directory that is not a model is never replaced (and training does not start).
    let error = train_adapter(&engine, &common::encoder_dir(), &tune, &qrels, &options, dir.path()).unwrap_err();
    assert!(error.to_string().contains("refusing to replace"), "{error}");
}
