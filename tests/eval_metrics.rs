//! Metrics agree with trec_eval / ir_measures on a committed fixture of real runs
//! (see tests/fixtures/eval/make_expected.py for the command that made expected.json).

mod common;

use std::path::PathBuf;

use serde_json::Value;
use shelf::eval::evaluate_run;
use shelf::eval::metrics::NAMES;
use shelf::eval::trec::{read_qrels, read_run};

fn fixture(name: &str) -> PathBuf {
    common::repo_root().join("tests/fixtures/eval").join(name)
}

fn reader(name: &str) -> std::io::BufReader<std::fs::File> {
    std::io::BufReader::new(std::fs::File::open(fixture(name)).unwrap())
}

#[test]
fn per_query_metrics_match_ir_measures() {
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let run = read_run(reader("run.txt")).unwrap();
    for variant in ["graded", "binary"] {
        let case = &expected[variant];
        let qrels = read_qrels(reader(case["qrels"].as_str().unwrap())).unwrap();
        let threshold = case["threshold"].as_i64().unwrap() as i32;
        // ir_measures scores a judged query that the run misses as 0, like `trec_eval -c`.
        let ours = evaluate_run(&run, &qrels, threshold, true);
        let theirs = case["queries"].as_object().unwrap();
        let our_qids: Vec<&String> = ours.keys().collect();
        let their_qids: Vec<&String> = theirs.keys().collect();
        assert_eq!(our_qids, their_qids, "{variant}: the same queries are evaluated");
        assert!(ours.len() >= 30);
        for (qid, metrics) in &ours {
            for name in NAMES {
                let want = theirs[qid][name].as_f64().unwrap();
                let got = metrics.get(name).unwrap();
                assert!((got - want).abs() < 1e-9, "{variant} {qid} {name}: ours {got}, ir_measures {want}");
            }
        }
    }
}

#[test]
fn edge_cases_behave_like_trec_eval() {
    let run = read_run(reader("run.txt")).unwrap();
    let qrels = read_qrels(reader("qrels.txt")).unwrap();
    // A judged query the run misses is left out by default and scores 0 with `complete` (-c).
    assert!(!evaluate_run(&run, &qrels, 4, false).contains_key("edge-missing"));
    let complete = evaluate_run(&run, &qrels, 4, true);
    assert_eq!(complete["edge-missing"], Default::default());
    // No relevant product: every relevance metric is 0, judged@10 is not.
    let norel = complete["edge-norel"];
    assert_eq!((norel.ndcg10, norel.map, norel.rr10, norel.recall100), (0.0, 0.0, 0.0, 0.0));
    assert!((norel.judged10 - 2.0 / 3.0).abs() < 1e-12);
    // Ties: decreasing docid puts t99, t12, t11 first, so the first relevant (t11) is third.
    assert!((complete["edge-ties"].rr10 - 1.0 / 3.0).abs() < 1e-12);
}
