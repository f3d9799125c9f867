//! Index directories: manifests, schema versions, rebuilds.

use shelf::catalog::{import_reader, Format, ImportOptions};
use shelf::engine::Engine;
use shelf::index::{build, BuildOptions, IndexError, Manifest, ShelfIndex, SCHEMA_VERSION};
use shelf::search::SearchRequest;

fn catalog(jsonl: &str) -> shelf::catalog::Catalog {
    import_reader(jsonl.as_bytes(), &ImportOptions::new(Format::Jsonl)).unwrap()
}

#[test]
fn an_index_of_another_schema_version_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("idx");
    build(&catalog(r#"{"id": "1", "title": "Oak Desk"}"#), &BuildOptions::new("c", Format::Jsonl, "f"), &out).unwrap();
    let mut manifest = Manifest::read(&out).unwrap();
    assert_eq!(manifest.schema_version, SCHEMA_VERSION);
    manifest.schema_version = SCHEMA_VERSION + 1;
    manifest.write(&out).unwrap();
    let error = ShelfIndex::open(&out).err().expect("refused");
    assert!(matches!(error, IndexError::SchemaVersion { .. }));
    let message = error.to_string();
    assert!(
        message.contains(&format!("schema version {}", SCHEMA_VERSION + 1)) && message.contains("rebuild"),
        "{message}"
    );

    std::fs::write(out.join("manifest.json"), "{not json").unwrap();
    assert!(matches!(ShelfIndex::open(&out), Err(IndexError::Corrupt { .. })));
}

#[test]
fn rebuilding_replaces_the_index_and_a_bad_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("idx");
    build(&catalog(r#"{"id": "1", "title": "Oak Desk"}"#), &BuildOptions::new("c", Format::Jsonl, "f1"), &out).unwrap();
    let engine = Engine::open(&out).unwrap();
    build(
        &catalog("{\"id\": \"2\", \"title\": \"Lamp\"}\n{\"id\": \"3\", \"title\": \"Desk Lamp\"}"),
        &BuildOptions::new("c", Format::Jsonl, "f2"),
        &out,
    )
    .unwrap();
    // The engine opened before the rebuild still answers from its own files.
    assert_eq!(engine.search(&SearchRequest::new("desk")).unwrap().results[0].id, "1");
    let engine = Engine::open(&out).unwrap();
    assert_eq!(engine.manifest().catalog.fingerprint, "f2");
    let ids: Vec<_> =
        engine.search(&SearchRequest::new("desk lamp")).unwrap().results.into_iter().map(|h| h.id).collect();
    assert_eq!(ids, ["3", "2"]);
    assert!(!dir.path().join(".idx.building").exists() && !dir.path().join(".idx.old").exists());

    std::fs::write(out.join("config.toml"), "[lexical.boosts]\ntitle = -1\n").unwrap();
    let error = ShelfIndex::open(&out).err().expect("refused");
    assert!(error.to_string().contains("lexical.boosts.title"), "{error}");
}
