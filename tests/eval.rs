//! `shelf eval` end to end on the demo shop and on the real Home Depot judgments.

mod common;

use std::process::Command;

use shelf::engine::Engine;
use shelf::eval::trec::{read_qrels, read_queries, read_run};
use shelf::eval::{evaluate, evaluate_run, EvalOptions, Protocol};

fn shelf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shelf")).args(args).output().unwrap()
}

/// `shelf eval` on the demo shop with extra arguments.
fn eval_demo(extra: &[&str]) -> std::process::Output {
    let root = common::repo_root();
    let (queries, qrels) = (root.join(shelf::demo::QUERIES_PATH), root.join(shelf::demo::QRELS_PATH));
    let mut args = vec!["eval", "--index", common::demo_index().to_str().unwrap()];
    args.extend(["--queries", queries.to_str().unwrap(), "--qrels", qrels.to_str().unwrap()]);
    args.extend(extra);
    shelf(&args)
}

fn demo_sets() -> (Vec<(String, String)>, shelf::eval::trec::Qrels) {
    let root = common::repo_root();
    let open = |p: &str| std::io::BufReader::new(std::fs::File::open(root.join(p)).unwrap());
    (read_queries(open(shelf::demo::QUERIES_PATH)).unwrap(), read_qrels(open(shelf::demo::QRELS_PATH)).unwrap())
}

#[test]
fn both_protocols_on_the_demo_shop() {
    let engine = Engine::open(common::demo_index()).unwrap();
    let (queries, qrels) = demo_sets();
    let retrieve = evaluate(&engine, &queries, &qrels, &EvalOptions::new(Protocol::Retrieve)).unwrap();
    let rerank = evaluate(&engine, &queries, &qrels, &EvalOptions::new(Protocol::Rerank)).unwrap();
    assert_eq!(retrieve.queries, queries.len());
    // Rerank orders judged products only: every ranked product is judged, all are ranked.
    assert_eq!(rerank.mean.judged10, 1.0);
    for q in &rerank.per_query {
        assert_eq!(q.ranking.len(), qrels[&q.qid].len(), "{}", q.qid);
    }
    assert!(retrieve.per_query.iter().all(|q| q.ranking.len() <= 100));
    // BM25 is far from perfect on intent-graded queries, and far from random.
    for report in [&retrieve, &rerank] {
        assert!(report.mean.ndcg10 > 0.3 && report.mean.ndcg10 < 0.95, "{:?}", report.mean);
    }
    // Vague queries share few words with what they want: BM25 does worst there.
    let by_class = |class: &str| {
        let classes = std::fs::read_to_string(common::repo_root().join(shelf::demo::QUERIES_PATH)).unwrap();
        let wanted: Vec<&str> =
            classes.lines().filter(|l| l.ends_with(class)).map(|l| l.split('\t').next().unwrap()).collect();
        let values: Vec<f64> =
            retrieve.per_query.iter().filter(|q| wanted.contains(&q.qid.as_str())).map(|q| q.metrics.ndcg10).collect();
        values.iter().sum::<f64>() / values.len() as f64
    };
    assert!(
        by_class("\tvague") < by_class("\tcategory"),
        "vague {} category {}",
        by_class("\tvague"),
        by_class("\tcategory")
    );
}

#[test]
fn cli_eval_json_run_file_and_compare_report() {
    let dir = tempfile::tempdir().unwrap();
    let index = common::demo_index().to_str().unwrap().to_string();
    let root = common::repo_root();
    let queries = root.join(shelf::demo::QUERIES_PATH);
    let qrels = root.join(shelf::demo::QRELS_PATH);
    let run_a = dir.path().join("bm25.run");
    let output = eval_demo(&["--json", "--run", run_a.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("warning"));
    // A threshold above every grade (demo grades are 0–6) is said, not silently all zeros.
    let above = eval_demo(&["--json", "--threshold", "9"]);
    assert!(above.status.success());
    let warned = String::from_utf8_lossy(&above.stderr);
    assert!(warned.contains("no judgment reaches --threshold 9 (the highest grade is 6)"), "{warned}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for field in
        ["protocol", "ranker", "queries", "ndcg@10", "ndcg@100", "mrr@10", "map", "p@10", "recall@100", "judged@10"]
    {
        assert!(!report[field].is_null(), "{field} in {report}");
    }
    // The written run re-evaluates to the same numbers.
    let run = read_run(std::io::BufReader::new(std::fs::File::open(&run_a).unwrap())).unwrap();
    let qrels_map = read_qrels(std::io::BufReader::new(std::fs::File::open(&qrels).unwrap())).unwrap();
    let per_query = evaluate_run(&run, &qrels_map, 4, true);
    let mean = shelf::eval::metrics::Metrics::mean(per_query.values());
    assert!((mean.ndcg10 - report["ndcg@10"].as_f64().unwrap()).abs() < 1e-6);

    // A second system: titles only (no description, attributes, category or brand).
    let config = dir.path().join("titles.toml");
    std::fs::write(&config, "[lexical.boosts]\ndescription = 0.0\nattributes = 0.0\ncategory = 0.0\nbrand = 0.0\n")
        .unwrap();
    let run_b = dir.path().join("titles.run");
    let output = eval_demo(&["--config", config.to_str().unwrap(), "--run", run_b.to_str().unwrap(), "--json"]);
    assert!(output.status.success());
    let markdown = dir.path().join("report.md");
    let output = shelf(&[
        "eval",
        "compare",
        run_a.to_str().unwrap(),
        run_b.to_str().unwrap(),
        "--qrels",
        qrels.to_str().unwrap(),
        "--queries",
        queries.to_str().unwrap(),
        "--markdown",
        markdown.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("paired t-test") && text.contains("randomization test") && text.contains("lost most"),
        "{text}"
    );
    let report = std::fs::read_to_string(&markdown).unwrap();
    assert!(report.contains("| ndcg@10 |") && report.contains("### Lost most"), "{report}");

    let output = shelf(&["eval", "--index", &index, "--queries", queries.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--qrels"));
}

#[test]
fn home_depot_dev_set_in_both_protocols() {
    let Some(data) = common::shared_data("homedepot") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hd");
    common::build_index(&data.join("products.jsonl"), shelf::catalog::Format::Jsonl, &out);
    let engine = Engine::open(&out).unwrap();
    let open = |p: &str| std::io::BufReader::new(std::fs::File::open(data.join(p)).unwrap());
    let (queries, qrels) = (read_queries(open("queries.tsv")).unwrap(), read_qrels(open("qrels.txt")).unwrap());
    let retrieve = evaluate(&engine, &queries, &qrels, &EvalOptions::new(Protocol::Retrieve)).unwrap();
    let rerank = evaluate(&engine, &queries, &qrels, &EvalOptions::new(Protocol::Rerank)).unwrap();
    assert_eq!(retrieve.queries, 9341);
    // The README's baseline numbers, with slack for tuning changes that must update the README.
    assert!(retrieve.mean.ndcg10 > 0.40 && retrieve.mean.recall100 > 0.72, "{:?}", retrieve.mean);
    assert!(rerank.mean.ndcg10 > 0.93, "{:?}", rerank.mean);
}
