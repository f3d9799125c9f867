//! The `shelf` binary end to end: index a small catalogue, search it, and fail clearly.

use std::process::Command;

fn shelf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shelf")).args(args).output().unwrap()
}

#[test]
fn index_and_search_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("shop.csv");
    std::fs::write(
        &catalog,
        "sku,name,brand,price,colour\nA1,Grey Velvet Sofa,Northwood,799,grey\nA2,Oak Desk 48in,Loftline,299,brown\nA3,Broken,Loftline,cheap,red\nA4,Brass Floor Lamp,Lumina,129,gold\n",
    )
    .unwrap();
    let out = dir.path().join("idx");
    let output = shelf(&[
        "index",
        "--catalog",
        catalog.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--map",
        "id=sku,title=name",
        "--json",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["import"]["imported"], 3);
    assert_eq!(summary["import"]["skipped"], 1);
    assert_eq!(summary["import"]["errors"][0]["line"], 4);
    assert_eq!(summary["manifest"]["schema_version"], shelf::index::SCHEMA_VERSION);

    let output = shelf(&["search", "--index", out.to_str().unwrap(), "--json", "-k", "2", "48", "in", "desk"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let response: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(response["results"][0]["id"], "A2");

    let output = shelf(&["search", "--index", out.to_str().unwrap(), "--filter", "brand:lumina", "lamp"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("A4") && !text.contains("A1"), "{text}");

    // A query log with an odd line: the line is named and skipped, the others are timed.
    let queries = dir.path().join("queries.tsv");
    std::fs::write(&queries, "q1\tsofa\nq2\t\u{200B}\u{0}\nq3\tdesk\n").unwrap();
    let output = shelf(&["search", "--index", out.to_str().unwrap(), "--queries", queries.to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let timed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((timed["queries"].as_u64(), timed["refused"].as_u64()), (Some(2), Some(1)), "{timed}");
    let warning = String::from_utf8_lossy(&output.stderr);
    assert!(warning.contains("query q2 skipped") && warning.contains("no visible characters"), "{warning}");

    // --on-error stop names the bad line and fails.
    let output = shelf(&[
        "index",
        "--catalog",
        catalog.to_str().unwrap(),
        "--out",
        dir.path().join("x").to_str().unwrap(),
        "--map",
        "id=sku,title=name",
        "--on-error",
        "stop",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 4: price: expected a number, got 'cheap'"));
}

#[test]
fn mistakes_get_messages_that_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let output = shelf(&["search", "--index", dir.path().to_str().unwrap(), "sofa"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a shelf index") && stderr.contains("shelf index --catalog"), "{stderr}");

    let output = shelf(&["index", "--catalog", "/no/such/file.jsonl", "--out", dir.path().join("i").to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/no/such/file.jsonl"));

    // An existing folder that is not an index is never replaced.
    std::fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
    let catalog = dir.path().join("c.jsonl");
    std::fs::write(&catalog, "{\"id\": \"1\", \"title\": \"Lamp\"}\n").unwrap();
    let output = shelf(&["index", "--catalog", catalog.to_str().unwrap(), "--out", dir.path().to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a shelf index"));
    assert!(dir.path().join("precious.txt").exists());
}

#[test]
fn an_index_with_vectors_refuses_to_serve_without_its_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("shop.jsonl");
    std::fs::write(
        &catalog,
        "{\"id\": \"A1\", \"title\": \"Grey Velvet Sofa\"}\n{\"id\": \"A2\", \"title\": \"Oak Desk\"}\n",
    )
    .unwrap();
    let out = dir.path().join("idx");
    let output = shelf(&["index", "--catalog", catalog.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let index = out.to_str().unwrap();
    let output = shelf(&["search", "--index", index, "--ranker", "dense", "couch"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("A1"));

    // No ONNX Runtime: a clear error, not BM25 passed off as hybrid.
    let output = Command::new(env!("CARGO_BIN_EXE_shelf"))
        .args(["search", "--index", index, "couch"])
        .env("ORT_DYLIB_PATH", dir.path().join("nowhere/libonnxruntime.so"))
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && error.contains("ONNX Runtime is missing"), "{error}");
    // Another encoder than the one that made the vectors: refused too.
    let output = shelf(&["search", "--index", index, "--encoder", dir.path().to_str().unwrap(), "couch"]);
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && error.contains("cannot load"), "{error}");
}
