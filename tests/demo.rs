//! The bundled demo shop: deterministic, committed as generated, and graded by intent.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use shelf::catalog::{import_file, Format, ImportOptions};
use shelf::demo;
use shelf::engine::Engine;
use shelf::eval::trec::{read_qrels, read_queries};
use shelf::search::SearchRequest;

#[test]
fn committed_demo_files_are_exactly_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    demo::generate().write(dir.path()).unwrap();
    for file in [demo::CATALOG_PATH, demo::QUERIES_PATH, demo::QRELS_PATH] {
        let fresh = std::fs::read(dir.path().join(file)).unwrap();
        let committed = std::fs::read(common::repo_root().join(file)).unwrap();
        assert!(fresh == committed, "{file} differs from the generator's output: run `shelf demo generate`");
    }
}

/// The unmet queries were added after the others, from their own stream: the first 542
/// queries and their judgments are byte for byte what they were before (commit a8dd868), so
/// numbers measured on that set stay comparable.
#[test]
fn the_original_542_queries_and_their_judgments_never_change() {
    use sha2::{Digest, Sha256};
    let root = common::repo_root();
    let digest = |path: &str, keep: &dyn Fn(&str) -> bool| {
        let text = std::fs::read_to_string(root.join(path)).unwrap();
        let mut hasher = Sha256::new();
        for line in text.lines().filter(|l| keep(l)) {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
        format!("{:x}", hasher.finalize())
    };
    let original = |line: &str| {
        let qid = line.split(['\t', ' ']).next().unwrap_or("");
        qid.strip_prefix("demo").and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n <= 542)
    };
    assert_eq!(
        digest(demo::QUERIES_PATH, &original),
        "030cc7b87c6a7658355b9502cd8d4191e02a0473430ec6ae1eb9274a07b041d3"
    );
    assert_eq!(digest(demo::QRELS_PATH, &original), "0961c11733a2dba8161752e76e1c6f3de0ec5dfc32833bab42b78c7700b709b0");
}

#[test]
fn demo_shop_has_the_promised_breadth() {
    let root = common::repo_root();
    let catalog = import_file(&root.join(demo::CATALOG_PATH), &ImportOptions::new(Format::Jsonl), &|_| {}).unwrap();
    assert_eq!(catalog.report.skipped, 0);
    assert!(catalog.products.len() >= 5000);
    let categories: BTreeSet<_> = catalog.products.iter().filter_map(|p| p.category.clone()).collect();
    assert!(categories.len() >= 20, "{} categories", categories.len());
    for p in &catalog.products {
        assert!(p.brand.is_some() && p.price.is_some() && p.description.is_some() && !p.attributes.is_empty(), "{p:?}");
    }
    assert!(catalog.products.iter().filter(|p| p.rating.is_some() && p.review_count.is_some()).count() > 4000);

    let queries =
        read_queries(std::io::BufReader::new(std::fs::File::open(root.join(demo::QUERIES_PATH)).unwrap())).unwrap();
    let qrels = read_qrels(std::io::BufReader::new(std::fs::File::open(root.join(demo::QRELS_PATH)).unwrap())).unwrap();
    assert!(queries.len() >= 200);
    let ids: BTreeSet<&str> = catalog.products.iter().map(|p| p.id.as_str()).collect();
    let mut grades = BTreeMap::new();
    let classes: BTreeMap<String, String> = std::fs::read_to_string(root.join(demo::QUERIES_PATH))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            Some((cols.first()?.to_string(), cols.get(2)?.to_string()))
        })
        .collect();
    let unmet = classes.values().filter(|c| *c == "unmet").count();
    assert!(unmet >= 100, "{unmet} unmet queries");
    for (qid, _) in &queries {
        let judged = &qrels[qid];
        // An unmet query's best answers are near misses (grade 3 or 4): nothing fits perfectly.
        let best = if classes[qid] == "unmet" { 3 } else { 4 };
        assert!(judged.values().any(|&g| g >= best), "{qid} has a product graded {best} or more");
        assert!(judged.values().any(|&g| g <= 1), "{qid} has a judged non-relevant product");
        for (doc, grade) in judged {
            assert!(ids.contains(doc.as_str()));
            *grades.entry(*grade).or_insert(0) += 1;
        }
    }
    assert_eq!(
        grades.keys().copied().collect::<Vec<_>>(),
        (0..=6).collect::<Vec<_>>(),
        "every grade is used: {grades:?}"
    );
}

/// The grades follow intent, not words: a synonym or vague query has relevant products that
/// share no word with it, and a word-matching decoy of the wrong kind is graded low.
#[test]
fn grades_follow_intent_rather_than_term_overlap() {
    let root = common::repo_root();
    let catalog = import_file(&root.join(demo::CATALOG_PATH), &ImportOptions::new(Format::Jsonl), &|_| {}).unwrap();
    let titles: BTreeMap<&str, String> =
        catalog.products.iter().map(|p| (p.id.as_str(), p.title.to_lowercase())).collect();
    let queries = std::fs::read_to_string(root.join(demo::QUERIES_PATH)).unwrap();
    let qrels = read_qrels(std::io::BufReader::new(std::fs::File::open(root.join(demo::QRELS_PATH)).unwrap())).unwrap();
    let (mut relevant_without_overlap, mut decoys) = (0, 0);
    for line in queries.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let words: Vec<&str> = cols[1].split(' ').filter(|w| w.len() > 3).collect();
        for (doc, grade) in &qrels[cols[0]] {
            let overlap = words.iter().any(|w| titles[doc.as_str()].contains(w));
            if *grade >= 4 && !overlap {
                relevant_without_overlap += 1;
            }
            if *grade == 0 && overlap {
                decoys += 1;
            }
        }
    }
    assert!(relevant_without_overlap > 1000, "{relevant_without_overlap}");
    assert!(decoys > 500, "{decoys}");

    // The real index answers "something to put my tv on" poorly with words alone: that gap is
    // what the dense and learned rankers are for. The judged set knows the answer.
    let engine = Engine::open(common::demo_index()).unwrap();
    let response = engine.search(&SearchRequest::new("36 in vanity grey").with_k(3)).unwrap();
    assert!(response.results.iter().all(|h| h.title.contains("Vanity")));
}

/// `shelf demo` builds what is missing and keeps what is current: a second run trains
/// nothing, and changed judgments train the model again (without rebuilding the index). Run
/// on a small cut of the demo shop, so it takes seconds.
#[test]
fn the_demo_retrains_its_model_when_the_judgments_change() {
    let root = common::repo_root();
    let dir = tempfile::tempdir().unwrap();
    let shop = dir.path();
    std::fs::create_dir_all(shop.join("demo")).unwrap();
    std::fs::create_dir_all(shop.join("queries")).unwrap();
    // Every kind's first few products, and the first queries with their judgments of them.
    let catalogue = std::fs::read_to_string(root.join(demo::CATALOG_PATH)).unwrap();
    let kept: Vec<&str> = catalogue.lines().take(400).collect();
    std::fs::write(shop.join(demo::CATALOG_PATH), kept.join("\n") + "\n").unwrap();
    let ids: BTreeSet<String> = kept
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    let queries = std::fs::read_to_string(root.join(demo::QUERIES_PATH)).unwrap();
    let queries: Vec<&str> = queries.lines().take(60).collect();
    std::fs::write(shop.join(demo::QUERIES_PATH), queries.join("\n") + "\n").unwrap();
    let qids: BTreeSet<&str> = queries.iter().map(|l| l.split('\t').next().unwrap()).collect();
    let qrels = std::fs::read_to_string(root.join(demo::QRELS_PATH)).unwrap();
    let judged: Vec<&str> = qrels
        .lines()
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            qids.contains(cols[0]) && ids.contains(cols[2])
        })
        .collect();
    std::fs::write(shop.join(demo::QRELS_PATH), judged.join("\n") + "\n").unwrap();

    let demo = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_shelf"))
            .args(["demo", "--no-serve", "--root", shop.to_str().unwrap()])
            .args(["--encoder", common::encoder_dir().to_str().unwrap()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        stdout
    };
    let first = demo();
    assert!(first.contains("built the demo index") && first.contains("trained the demo model"), "{first}");
    let current = |out: &str| out.matches("is up to date").count() == 2 && !out.contains("trained");
    let second = demo();
    assert!(current(&second), "{second}");

    // One grade changes: the index stays, the model is trained again.
    let regraded: Vec<String> = judged
        .iter()
        .enumerate()
        .map(|(at, line)| match at {
            0 => {
                let mut cols: Vec<&str> = line.split_whitespace().collect();
                let grade = if cols[3] == "0" { "1" } else { "0" };
                cols[3] = grade;
                cols.join(" ")
            }
            _ => line.to_string(),
        })
        .collect();
    std::fs::write(shop.join(demo::QRELS_PATH), regraded.join("\n") + "\n").unwrap();
    let third = demo();
    assert!(third.contains("demo index") && third.contains("is up to date"), "{third}");
    assert!(third.contains("judged queries changed") && third.contains("trained the demo model"), "{third}");
    let fourth = demo();
    assert!(current(&fourth), "the retrained model is current again: {fourth}");

    // A model without its stamp (a run cut short while training) is trained again.
    std::fs::remove_file(shop.join("models/demo/TRAINED_FROM")).unwrap();
    let fifth = demo();
    assert!(fifth.contains("trained the demo model") && !fifth.contains("judged queries changed"), "{fifth}");

    // An index from before BM25 ties followed the catalogue's order is built again, and its
    // model trained again.
    let manifest_path = shop.join("index/demo/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["ties"], "catalogue order");
    manifest.as_object_mut().unwrap().remove("ties");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let sixth = demo();
    assert!(sixth.contains("built the demo index") && sixth.contains("trained the demo model"), "{sixth}");
    assert!(current(&demo()), "the rebuilt index and its model are current");
}
