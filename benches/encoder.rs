//! Sentence encoder speed: a batch of product titles and one short query, each in float and
//! on the 8-bit graph, side by side.
//! Needs the fetched model (`shelf model fetch`). Run with `cargo bench --bench encoder`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shelf::catalog::{import_file, Format, ImportOptions};
use shelf::dense::{model, Encoder, Precision, Precisions};

fn encoder(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join(model::DEFAULT_DIR);
    let Ok(encoder) = Encoder::load(&dir) else {
        eprintln!("{} is absent: run `shelf model fetch` first; skipping the encoder benchmark", dir.display());
        return;
    };
    let catalog = import_file(&root.join(shelf::demo::CATALOG_PATH), &ImportOptions::new(Format::Jsonl), &|_| {})
        .expect("demo catalogue");
    let titles: Vec<&str> = catalog.products.iter().take(256).map(|p| p.title.as_str()).collect();
    let mut group = c.benchmark_group("encoder");
    group.sample_size(10);
    group.throughput(Throughput::Elements(titles.len() as u64));
    group.bench_function("256_titles", |b| b.iter(|| encoder.embed(&titles).expect("embed")));
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_query", |b| b.iter(|| encoder.embed_query("grey office chair").expect("embed")));
    match Encoder::load_with(&dir, Precisions { queries: Precision::Int8, products: Precision::Int8 }) {
        Ok(int8) => {
            group.throughput(Throughput::Elements(titles.len() as u64));
            group.bench_function("256_titles_int8", |b| b.iter(|| int8.embed(&titles).expect("embed")));
            group.throughput(Throughput::Elements(1));
            group
                .bench_function("one_query_int8", |b| b.iter(|| int8.embed_query("grey office chair").expect("embed")));
        }
        Err(error) => eprintln!("skipping the 8-bit graph ({error})"),
    }
    group.finish();
}

criterion_group!(benches, encoder);
criterion_main!(benches);
