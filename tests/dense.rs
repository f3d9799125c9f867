//! Dense and hybrid retrieval on the demo shop: vectors in the index, semantic matches,
//! filters, fusion, reuse of unchanged vectors.

mod common;

use shelf::catalog::{import_file, Format, ImportOptions};
use shelf::dense::{Encoder, Precision};
use shelf::engine::{Engine, SearchError};
use shelf::index::{build_with, BuildOptions, Manifest};
use shelf::search::{RankerKind, SearchRequest};

fn request(q: &str, ranker: RankerKind, k: usize) -> SearchRequest {
    let mut request = SearchRequest::new(q).with_k(k);
    request.ranker = ranker;
    request
}

fn engine() -> Engine {
    Engine::open_with_encoder(common::demo_index(), &common::encoder_dir()).unwrap()
}

/// The demo index opened from a copy whose config has `from` (the default a build writes
/// down) changed to `to`: settings that need no rebuild. The directory lives as long as the
/// engine is used.
fn demo_index_with(from: &str, to: &str) -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("index");
    common::copy_dir(common::demo_index(), &copy);
    let config = std::fs::read_to_string(copy.join("config.toml")).unwrap();
    assert!(config.contains(from), "a built index writes the default down: {from}");
    std::fs::write(copy.join("config.toml"), config.replace(from, to)).unwrap();
    let engine = Engine::open_with_encoder(&copy, &common::encoder_dir()).unwrap();
    (dir, engine)
}

#[test]
fn dense_finds_meaning_that_words_miss() {
    let engine = engine();
    assert_eq!(engine.rankers(), [RankerKind::Bm25, RankerKind::Dense, RankerKind::Hybrid]);
    let manifest = engine.manifest();
    let dense = manifest.dense.as_ref().expect("the demo index has vectors");
    assert_eq!(dense.vectors, manifest.counts.products);
    assert_eq!(dense.encoder.dim, 384);

    // No title says "couch" for most sofas; the vectors know they are the same thing.
    let response = engine.search(&request("comfy couch for the living room", RankerKind::Dense, 10)).unwrap();
    let sofas =
        response.results.iter().filter(|h| h.product.category.as_deref().unwrap_or("").contains("Sofa")).count();
    assert!(sofas >= 7, "{:?}", response.results.iter().map(|h| &h.title).collect::<Vec<_>>());
    assert!(response.results.iter().all(|h| h.sources.dense.is_some() && h.sources.bm25.is_none()));
    assert!(response.timings_ms.dense.is_some() && response.timings_ms.lexical.is_none());

    // Filters hold for dense results too.
    let mut filtered = request("comfy couch for the living room", RankerKind::Dense, 10);
    filtered.filters.add_clause("price:..600").unwrap();
    filtered.filters.add_clause("brand:northwood").unwrap();
    let response = engine.search(&filtered).unwrap();
    assert!(!response.results.is_empty());
    for hit in &response.results {
        assert!(hit.product.price.unwrap() <= 600.0 && hit.product.brand.as_deref() == Some("Northwood"));
    }
}

/// Each category's centroid is made when the index is built (opening reads no product):
/// one per category of the catalogue, unit length, nearer its own products than the others.
#[test]
fn category_centroids_are_built_with_the_index() {
    let engine = engine();
    let store = engine.vectors().expect("the demo index has vectors");
    let catalog =
        import_file(&common::repo_root().join(shelf::demo::CATALOG_PATH), &ImportOptions::new(Format::Jsonl), &|_| {})
            .unwrap();
    let categories: std::collections::BTreeSet<&str> =
        catalog.products.iter().filter_map(|p| p.category.as_deref()).collect();
    let centroids: std::collections::BTreeMap<&str, &[f32]> = store.centroids().collect();
    assert_eq!(centroids.keys().copied().collect::<std::collections::BTreeSet<_>>(), categories);
    for centroid in centroids.values() {
        let norm = centroid.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let (mut nearest_own, mut with_category) = (0, 0);
    for product in &catalog.products {
        let (Some(category), Some(row)) = (product.category.as_deref(), store.row_of(&product.id)) else { continue };
        with_category += 1;
        let vector = store.vector(row);
        let best = centroids.iter().max_by(|a, b| dot(a.1, vector).total_cmp(&dot(b.1, vector))).map(|(c, _)| *c);
        nearest_own += usize::from(best == Some(category));
    }
    assert!(nearest_own * 10 >= with_category * 7, "{nearest_own} of {with_category}");
}

#[test]
fn hybrid_fuses_both_sources() {
    let engine = engine();
    let response = engine.search(&request("36 in vanity grey", RankerKind::Hybrid, 20)).unwrap();
    assert_eq!(response.results.len(), 20);
    assert!(response.results.iter().any(|h| h.sources.count() == 2), "some products come from both lists");
    for hit in &response.results {
        for source in [hit.sources.bm25, hit.sources.dense].into_iter().flatten() {
            assert!(source.rank >= 1);
        }
    }
    let scores: Vec<f32> = response.results.iter().map(|h| h.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    assert!(response.timings_ms.fusion.is_some());

    // The rerank protocol scores exactly the given products.
    let ids: Vec<String> = response.results.iter().take(5).map(|h| h.id.clone()).collect();
    for ranker in [RankerKind::Dense, RankerKind::Hybrid] {
        let scored = shelf::eval::scoring::score_products(&engine, "36 in vanity grey", ranker, &ids).unwrap();
        assert_eq!(scored.len(), 5, "{ranker}");
        assert!(scored.iter().all(|(id, _)| ids.contains(id)));
    }
}

/// Writes `jsonl` as the catalogue in `dir` and builds it, with vectors, into `dir/idx`
/// (over the index there, reusing what it can).
fn build_catalogue(dir: &std::path::Path, jsonl: &str, encoder: &Encoder) -> (shelf::catalog::Catalog, Manifest) {
    let catalog_path = dir.join("c.jsonl");
    std::fs::write(&catalog_path, jsonl).unwrap();
    let catalog = import_file(&catalog_path, &ImportOptions::new(Format::Jsonl), &|_| {}).unwrap();
    let manifest =
        build_with(&catalog, &BuildOptions::new("c", Format::Jsonl, "f"), Some(encoder), &dir.join("idx")).unwrap();
    (catalog, manifest)
}

#[test]
fn unchanged_products_reuse_their_vectors_and_lexical_indexes_refuse_dense() {
    let dir = tempfile::tempdir().unwrap();
    let encoder = Encoder::load(&common::encoder_dir()).unwrap();
    let (_, first) = build_catalogue(
        dir.path(),
        "{\"id\": \"1\", \"title\": \"Grey Sofa\"}\n{\"id\": \"2\", \"title\": \"Oak Desk\"}\n",
        &encoder,
    );
    assert_eq!(first.dense.unwrap().reused, 0);
    let changed = "{\"id\": \"1\", \"title\": \"Grey Sofa\"}\n{\"id\": \"2\", \"title\": \"Oak Writing Desk\"}\n";
    let (catalog, second) = build_catalogue(dir.path(), changed, &encoder);
    assert_eq!(second.dense.unwrap().reused, 1, "the sofa's text did not change");
    let options = BuildOptions::new("c", Format::Jsonl, "f");

    let lexical_only = dir.path().join("lex");
    shelf::index::build(&catalog, &options, &lexical_only).unwrap();
    let engine = Engine::open_with_encoder(&lexical_only, &common::encoder_dir()).unwrap();
    match engine.search(&request("sofa", RankerKind::Dense, 5)) {
        Err(SearchError::RankerUnavailable { reason, .. }) => assert!(reason.contains("no vectors"), "{reason}"),
        other => panic!("expected ranker_unavailable, got {other:?}"),
    }
}

/// Products with the same text can hold vectors a rounding apart (embedded in batches padded
/// differently). A rebuild that reuses them must write back each product's own, bit for bit:
/// otherwise it trains another learned ranker than the build it repeats.
#[test]
fn a_rebuild_writes_back_each_products_own_vector() {
    let dir = tempfile::tempdir().unwrap();
    let encoder = Encoder::load(&common::encoder_dir()).unwrap();
    let jsonl = "{\"id\": \"1\", \"title\": \"Grey Sofa\"}\n{\"id\": \"2\", \"title\": \"Oak Desk\"}\n{\"id\": \"3\", \"title\": \"Grey Sofa\"}\n";
    build_catalogue(dir.path(), jsonl, &encoder);
    // Product 3 (the third row) a rounding away from product 1, as another batch would leave it.
    let vectors = dir.path().join("idx/dense/vectors.f32");
    let mut bytes = std::fs::read(&vectors).unwrap();
    let third = 2 * encoder.dim() * 4;
    let nudged = f32::from_le_bytes(bytes[third..third + 4].try_into().unwrap()).to_bits() ^ 1;
    bytes[third..third + 4].copy_from_slice(&nudged.to_le_bytes());
    std::fs::write(&vectors, &bytes).unwrap();

    let (_, again) = build_catalogue(dir.path(), jsonl, &encoder);
    assert_eq!(again.dense.unwrap().reused, 3);
    assert!(std::fs::read(&vectors).unwrap() == bytes, "every product got its own vector back, bit for bit");
}

#[test]
fn the_hnsw_graph_finds_what_exact_search_finds() {
    let engine = engine();
    let store = engine.vectors().expect("vectors");
    assert!(store.has_ann(), "the index stores its HNSW graph");
    let ann = engine.manifest().dense.as_ref().and_then(|d| d.ann.as_ref()).expect("the manifest records the graph");
    assert_eq!(ann.params, shelf::dense::AnnParams::default());
    let (queries, _) = common::demo_judgments();
    let texts: Vec<&str> = queries.iter().take(200).map(|(_, text)| text.as_str()).collect();
    engine.embed_queries(&texts, &|_| {}).unwrap();
    let vectors: Vec<_> = texts.iter().map(|text| engine.embed_query(text).unwrap()).collect();
    let vectors: Vec<&[f32]> = vectors.iter().map(|v| v.as_ref()).collect();
    let float = shelf::dense::ann::measure_recall(store, &vectors, 100, 200, Precision::Fp32);
    assert!(float.recall >= 0.98, "recall@100 at ef 200: {:.4}", float.recall);
    assert_eq!(float.queries, 200);
    // Guided by 8-bit vectors, the walk keeps the float walk's recall.
    let int8 = shelf::dense::ann::measure_recall(store, &vectors, 100, 200, Precision::Int8);
    assert!(int8.recall >= float.recall - 0.005, "8-bit walk {:.4}, float {:.4}", int8.recall, float.recall);
}

/// `walk = "int8"` in an index's config guides the graph walk by 8-bit vectors (no rebuild):
/// the results keep their float cosines, and the same products come first.
#[test]
fn an_index_can_walk_its_graph_in_8_bits() {
    let (_dir, int8) = demo_index_with("walk = \"fp32\"", "walk = \"int8\"");
    let float = engine();
    assert_eq!(int8.index().config.dense.walk, Precision::Int8);
    let (queries, _) = common::demo_judgments();
    let (mut shared, mut shown) = (0, 0);
    for (_, query) in queries.iter().take(50) {
        let results = |engine: &Engine| engine.search(&request(query, RankerKind::Dense, 10)).unwrap().results;
        let (expected, found) = (results(&float), results(&int8));
        for hit in &found {
            let cosine = hit.sources.dense.expect("a dense result has its cosine").score;
            if let Some(same) = expected.iter().find(|e| e.id == hit.id) {
                assert_eq!(same.sources.dense.unwrap().score, cosine, "{query}: {} keeps its float cosine", hit.id);
                shared += 1;
            }
        }
        shown += expected.len();
    }
    assert!(shared as f64 >= 0.97 * shown as f64, "{shared} of {shown} float results found by the 8-bit walk");
}

#[test]
fn a_damaged_graph_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("index");
    common::copy_dir(common::demo_index(), &copy);
    let graph = copy.join("dense/hnsw.hnsw.graph");
    let bytes = std::fs::read(&graph).unwrap();
    std::fs::write(&graph, &bytes[..bytes.len() / 3]).unwrap();
    let message = Engine::open_with_encoder(&copy, &common::encoder_dir()).err().expect("refused").to_string();
    assert!(message.contains("HNSW graph") && message.contains("rebuild"), "{message}");
}

/// `query_precision = "int8"` in an index's config sends its queries through the 8-bit
/// graph (no rebuild: the products' vectors are the float ones), and dense search still
/// finds what the float queries find.
#[test]
fn an_index_can_encode_its_queries_in_8_bits() {
    let (_dir, int8) = demo_index_with("query_precision = \"fp32\"", "query_precision = \"int8\"");
    let float = engine();
    assert_eq!(int8.index().config.dense.query_precision, shelf::dense::Precision::Int8);

    let query = "comfy couch for the living room";
    let (a, b) = (float.embed_query(query).unwrap(), int8.embed_query(query).unwrap());
    let cosine: f32 = a.iter().zip(b.iter()).map(|(x, y)| x * y).sum();
    assert!(cosine > 0.95 && cosine < 0.99999, "8-bit query vector: cosine {cosine} to the float one");
    let ids = |engine: &Engine| -> Vec<String> {
        let response = engine.search(&request(query, RankerKind::Dense, 10)).unwrap();
        response.results.into_iter().map(|h| h.id).collect()
    };
    let (expected, found) = (ids(&float), ids(&int8));
    let shared = found.iter().filter(|id| expected.contains(id)).count();
    assert!(shared >= 8, "float {expected:?}, 8-bit {found:?}");
}

/// `product_precision = "int8"` embeds the catalogue on the 8-bit graph: the manifest says
/// so, a build of the other kind reuses none of its vectors, the engine serves it (with
/// float queries), and dense search finds much what the float vectors find.
#[test]
fn an_index_can_embed_its_products_in_8_bits() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::repo_root().join(shelf::demo::CATALOG_PATH);
    let mut catalog = import_file(&path, &ImportOptions::new(Format::Jsonl), &|_| {}).unwrap();
    catalog.products.truncate(300);
    let build = |products: Precision, out: &std::path::Path| {
        let mut options = BuildOptions::new("demo", Format::Jsonl, "f");
        options.config.dense.product_precision = products;
        let encoder = Encoder::load_with(&common::encoder_dir(), options.config.dense.precisions()).unwrap();
        build_with(&catalog, &options, Some(&encoder), out).unwrap().dense.unwrap()
    };
    let (float_dir, int8_dir) = (dir.path().join("float"), dir.path().join("int8"));
    assert_eq!(build(Precision::Fp32, &float_dir).encoder.products, Precision::Fp32);
    let int8 = build(Precision::Int8, &int8_dir);
    assert_eq!((int8.encoder.products, int8.reused), (Precision::Int8, 0));
    let again = build(Precision::Int8, &int8_dir);
    assert_eq!(again.reused, 300, "same texts, same arithmetic: every vector is reused");

    let ids = |dir: &std::path::Path| -> Vec<String> {
        let engine = Engine::open_with_encoder(dir, &common::encoder_dir()).unwrap();
        let response = engine.search(&request("comfy couch for the living room", RankerKind::Dense, 10)).unwrap();
        response.results.into_iter().map(|h| h.id).collect()
    };
    let (expected, found) = (ids(&float_dir), ids(&int8_dir));
    let shared = found.iter().filter(|id| expected.contains(id)).count();
    assert!(shared >= 8, "float {expected:?}, 8-bit {found:?}");

    // A float build over the 8-bit index re-embeds every product.
    assert_eq!(build(Precision::Fp32, &int8_dir).reused, 0);

    // The library refuses an encoder loaded for other product vectors than the config asks.
    let mut options = BuildOptions::new("demo", Format::Jsonl, "f");
    options.config.dense.product_precision = Precision::Int8;
    let float = Encoder::load(&common::encoder_dir()).unwrap();
    let error = build_with(&catalog, &options, Some(&float), &dir.path().join("mixed")).err().unwrap().to_string();
    assert!(error.contains("product_precision"), "{error}");
}
