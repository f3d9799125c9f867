//! The learned rankers on the demo shop: training, the model directory, schema checks,
//! explained scores, and whether they rank better than their own inputs.

mod common;

use shelf::dense::Precision;
use shelf::engine::Engine;
use shelf::eval::{evaluate, EvalOptions, Protocol};
use shelf::features;
use shelf::rank::lgbm::{LgbmRanker, MODEL_FILE};
use shelf::rank::{ModelError, ModelMeta, Scoring, META_FILE};
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
    // Trained as if on an index that encodes queries in 8 bits.
    let options = TrainOptions { folds: 3, query_precision: Precision::Int8, ..TrainOptions::default() };
    let trained = train(&logged, None, &options, dir.path()).unwrap();
    assert_eq!(trained.report.queries, logged.len());
    // A directory holding something else is never replaced.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("notes.txt"), "mine").unwrap();
    let refused = train(&logged, None, &TrainOptions { folds: 3, ..TrainOptions::default() }, other.path());
    assert!(refused.err().expect("refused").to_string().contains("not a model directory"));
    assert!(other.path().join("notes.txt").exists());
    // Nor is a file.
    let file = other.path().join("notes.txt");
    let refused = train(&logged, None, &TrainOptions { folds: 3, ..TrainOptions::default() }, &file);
    assert!(refused.err().expect("refused").to_string().contains("it is a file"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");

    let loaded = LgbmRanker::load(dir.path()).unwrap();
    assert_eq!(loaded.meta.feature_names, features::NAMES);
    // The query precision is recorded; a model from before the setting reads as float.
    assert_eq!(loaded.meta.query_precision, Precision::Int8);
    let mut old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(META_FILE)).unwrap()).unwrap();
    assert_eq!(old.as_object_mut().unwrap().remove("query_precision"), Some("int8".into()));
    assert_eq!(serde_json::from_value::<ModelMeta>(old).unwrap().query_precision, Precision::Fp32);
    let rows: Vec<features::Row> = logged.iter().flat_map(|q| q.rows.iter().map(|r| r.features)).take(300).collect();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let in_memory = trained.booster.expect("a LightGBM booster").predict(&flat, features::COUNT as i32, true).unwrap();
    // Live traffic is scored by the final model, whatever the query.
    let seen = &logged[0].query;
    let from_disk = loaded.score_rows(seen, &rows, Scoring::Final, false).unwrap();
    assert_eq!(in_memory, from_disk);
    // Split between cores, the 300 rows score the same, in the same order.
    assert_eq!(rows.len(), 300);
    assert_eq!(loaded.score_rows(seen, &rows, Scoring::Final, true).unwrap(), from_disk);
    assert_eq!(loaded.score_rows("a query nobody trained on", &rows, Scoring::HeldOut, false).unwrap(), from_disk);
    // Evaluation scores a training query with the fold model that held it out, which differs.
    assert!(loaded.held_out(seen));
    assert_ne!(loaded.score_rows(seen, &rows, Scoring::HeldOut, false).unwrap(), from_disk);
}

#[test]
fn a_model_of_another_feature_schema_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for file in std::fs::read_dir(common::demo_model().join("lgbm")).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), dir.path().join(file.file_name())).unwrap();
    }
    let meta_path = dir.path().join(META_FILE);
    let mut meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    let names = meta["feature_names"].as_array_mut().unwrap();
    names.retain(|n| n != "dense_cosine");
    names.push("clicks_last_week".into());
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let error = LgbmRanker::load(dir.path()).err().expect("refused");
    let message = error.to_string();
    assert!(matches!(error, ModelError::Schema { .. }), "{message}");
    assert!(message.contains("dense_cosine") && message.contains("clicks_last_week"), "{message}");

    // A damaged model file is refused with the path, not a crash.
    std::fs::copy(common::demo_model().join("lgbm").join(META_FILE), &meta_path).unwrap();
    std::fs::write(dir.path().join(MODEL_FILE), "tree\nnot a model").unwrap();
    let message = LgbmRanker::load(dir.path()).err().expect("refused").to_string();
    assert!(message.contains(MODEL_FILE) && message.contains("retrain"), "{message}");
    // A NUL byte (a truncated copy, a disk error) is refused the same way.
    std::fs::write(dir.path().join(MODEL_FILE), "tree\nversion=v4\0\0\0").unwrap();
    let message = LgbmRanker::load(dir.path()).err().expect("refused").to_string();
    assert!(message.contains(MODEL_FILE) && message.contains("NUL"), "{message}");
    assert!(matches!(LgbmRanker::load(&dir.path().join("nothing")), Err(ModelError::NotAModel(_))));
    // An engine refuses a damaged model at start, rather than serving something weaker.
    let opened = Engine::open_with(common::demo_index(), &common::encoder_dir(), Some(dir.path()));
    assert!(opened.err().expect("refused").to_string().contains(MODEL_FILE));
}

/// The README's first example has no perfect answer (no grey vanity is 36 inches). The learned
/// rankers put the wanted kind first, not the grey 36-inch vanity mirror that names every word:
/// what the demo's unmet queries and `category_head_match` teach.
#[test]
fn the_wanted_kind_comes_before_a_related_kind_that_names_every_word() {
    let engine = engine();
    for ranker in [RankerKind::Ltr, RankerKind::Neural, RankerKind::Ensemble] {
        let mut request = SearchRequest::new("36 in vanity grey").with_k(3);
        request.ranker = ranker;
        let response = engine.search(&request).unwrap();
        let kinds: Vec<&str> = response
            .results
            .iter()
            .map(|h| h.product.category.as_deref().unwrap_or("").rsplit(" > ").next().unwrap_or(""))
            .collect();
        assert_eq!(kinds[0], "Vanities", "{ranker}: {kinds:?}");
        assert!(response.results.iter().all(|h| !h.title.contains("Mirror")), "{ranker}: {kinds:?}");
    }
}

#[test]
fn explained_contributions_sum_to_the_score() {
    let engine = engine();
    assert_eq!(engine.default_ranker(), RankerKind::Ensemble);
    for ranker in [RankerKind::Ltr, RankerKind::Neural, RankerKind::Ensemble] {
        let mut request = SearchRequest::new("36 in vanity grey").with_k(5);
        request.ranker = ranker;
        request.explain = true;
        let response = engine.search(&request).unwrap();
        assert_eq!(response.results.len(), 5);
        assert!(response.timings_ms.features.is_some() && response.timings_ms.rank.is_some());
        for hit in &response.results {
            let explain = hit.explain.as_ref().expect("explain on every result");
            let features = explain["features"].as_object().unwrap();
            // The neural ranker also reads the embeddings: one more input to credit.
            let inputs = if ranker == RankerKind::Ltr { features::COUNT } else { features::COUNT + 1 };
            assert_eq!(features.len(), inputs, "{ranker}");
            let sum: f64 = features.values().map(|f| f["contribution"].as_f64().unwrap()).sum::<f64>()
                + explain["bias"].as_f64().unwrap();
            let score = explain["score"].as_f64().unwrap();
            let residual = explain["residual"].as_f64().unwrap_or(0.0);
            assert!((sum + residual - score).abs() < 1e-6, "{ranker}: {sum} + {residual} vs {score}");
            // Integrated gradients leave little unexplained; SHAP leaves nothing.
            let spread = (score - explain["bias"].as_f64().unwrap()).abs().max(0.5);
            assert!(residual.abs() <= 0.05 * spread, "{ranker}: residual {residual} of {spread}");
            assert!((score - hit.score as f64).abs() < 1e-4, "{ranker}");
            assert_eq!(explain["top"].as_array().unwrap().len(), 5);
        }
    }
    let mut request = SearchRequest::new("36 in vanity grey").with_k(5);
    request.ranker = RankerKind::Ltr;
    // Without explain, nothing extra is computed or sent.
    request.explain = false;
    assert!(engine.search(&request).unwrap().results.iter().all(|h| h.explain.is_none()));
}

#[test]
fn the_command_line_prints_explanations_as_text() {
    let shelf = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_shelf"))
            .args(["search", "--index", common::demo_index().to_str().unwrap()])
            .args(["--encoder", common::encoder_dir().to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        (String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
    };
    let model = common::demo_model().to_str().unwrap();
    let args =
        ["--model", model, "--ranker", "ensemble", "-k", "3", "--explain", "--utility", "relevance:1,rating:0.2"];
    let (out, _) = shelf(&[&args[..], &["36 in vanity grey"]].concat());
    // Under each of the three results: how its score was made, the members, heads and utility.
    for (prefix, count) in
        [("blend: bias ", 3), ("members: ltr ", 3), ("heads: ", 3), ("utility: relevance 1.000 × ", 3)]
    {
        assert_eq!(out.lines().filter(|l| l.trim_start().starts_with(prefix)).count(), count, "{prefix}\n{out}");
    }
    // Five features per result, each with its contribution and value.
    let first = out.lines().find(|l| l.trim_start().starts_with("blend: ")).unwrap();
    assert_eq!(first.matches(" (= ").count(), 5, "{first}");
    // A ranker without explanations says so instead of printing nothing.
    let (out, err) = shelf(&["--ranker", "bm25", "-k", "2", "--explain", "36 in vanity grey"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(err.contains("bm25 has none"), "{err}");
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
    let hybrid = score(Protocol::Retrieve, RankerKind::Hybrid);
    let inputs: Vec<(RankerKind, f64)> = [RankerKind::Bm25, RankerKind::Dense, RankerKind::Hybrid]
        .into_iter()
        .map(|input| (input, score(Protocol::Rerank, input)))
        .collect();
    // The neural ranker gains less on this small set (542 queries) than LightGBM does, and
    // its gain depends on the seed (and on the CPU's float rounding, which acts like one):
    // +0.001 to +0.019 over hybrid across five seeds in retrieve, +0.02 or more in rerank.
    // So it must win, by no set margin. LightGBM and the ensemble gain about +0.02 (measured:
    // ltr 0.5432 and ensemble 0.5453 against hybrid 0.5218 on one machine, ltr 0.5415 on
    // another, as LightGBM's float sums differ between CPUs): they must win by half that.
    for (learned, margin) in [(RankerKind::Ltr, 0.01), (RankerKind::Neural, 0.0), (RankerKind::Ensemble, 0.01)] {
        let retrieve = score(Protocol::Retrieve, learned);
        let rerank = score(Protocol::Rerank, learned);
        eprintln!("{learned}: retrieve {retrieve:.4} (hybrid {hybrid:.4}), rerank {rerank:.4} (inputs {inputs:?})");
        assert!(retrieve > hybrid + margin, "retrieve: {learned} {retrieve:.4} vs hybrid {hybrid:.4}");
        for (input, other) in &inputs {
            assert!(rerank >= *other, "rerank: {learned} {rerank:.4} vs {input} {other:.4}");
        }
    }
}

#[test]
fn why_splits_a_score_difference_into_features() {
    let engine = engine();
    let mut request = SearchRequest::new("office chair").with_k(5);
    request.ranker = RankerKind::Ltr;
    // `why` explains evaluation runs, where a training query gets its held-out fold model.
    request.scoring = Scoring::HeldOut;
    let results = engine.search(&request).unwrap().results;
    let (winner, loser) = (&results[0], &results[4]);
    let reasons = shelf::eval::scoring::why(&engine, RankerKind::Ltr, "office chair", &winner.id, &loser.id).unwrap();
    assert_eq!(reasons.len(), features::COUNT);
    assert!(reasons.windows(2).all(|pair| pair[0].1 >= pair[1].1), "largest first");
    let total: f64 = reasons.iter().map(|(_, d)| d).sum();
    let gap = (winner.score - loser.score) as f64;
    assert!((total - gap).abs() < 1e-3, "contributions {total} vs score gap {gap}");
}

#[test]
fn a_utility_sweep_trades_relevance_for_rating_and_marks_the_pareto_front() {
    let engine = engine();
    let (queries, qrels) = common::demo_judgments();
    let options = EvalOptions { ranker: RankerKind::Ensemble, ..EvalOptions::new(Protocol::Retrieve) };
    let spec: shelf::eval::sweep::SweepSpec = "utility.rating=0,0.5,2".parse().unwrap();
    let points = shelf::eval::sweep::run(&engine, &queries, &qrels, &options, &spec, &|_| {}).unwrap();
    assert_eq!(points.iter().map(|p| p.value).collect::<Vec<_>>(), [0.0, 0.5, 2.0]);
    // Weighing rating raises the top 10's mean rating, step by step …
    assert!(points.windows(2).all(|w| w[1].secondary > w[0].secondary), "{points:?}");
    // … and a heavy weight costs relevance against a moderate one.
    assert!(points[2].relevance < points[1].relevance, "{points:?}");
    // The highest rating is always on the front; a point is off it only when another beats it on both.
    assert!(points[2].pareto, "{points:?}");
    for p in points.iter().filter(|p| !p.pareto) {
        assert!(points.iter().any(|q| q.relevance >= p.relevance && q.secondary >= p.secondary), "{points:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("trade-off.svg");
    shelf::eval::sweep::write_svg(&points, &plot, "ensemble", "nDCG@10", "mean rating of the top 10").unwrap();
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.contains("<svg") && svg.contains("mean rating of the top 10"));

    // Only a learned ranker has a utility to sweep.
    let bm25 = EvalOptions { ranker: RankerKind::Bm25, ..options };
    assert!(shelf::eval::sweep::run(&engine, &queries, &qrels, &bm25, &spec, &|_| {}).is_err());
}
