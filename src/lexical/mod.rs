//! Lexical retrieval: a tantivy BM25 index over the product fields.
//!
//! User text is never parsed as a query language. It is cut into terms by each field's own
//! analyzer (stemmed English for titles, descriptions and attributes; unstemmed with split
//! letter/digit runs for model numbers and units), and every term of every field adds its
//! boosted BM25 score. Quotes, colons, `-`, `*` or emoji are just characters.
//!
//! A term that no title contains, or any term when the exact terms match too few products,
//! is also matched within a small edit distance (typo tolerance). Filters restrict the match
//! without changing scores; facet counts describe everything that matched.
//!
//! ```
//! use shelf::catalog::Product;
//! use shelf::index::IndexConfig;
//! use shelf::lexical::LexicalIndex;
//! use shelf::search::Filters;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let products = vec![
//!     Product { id: "1".into(), title: "Oak Writing Desk".into(), ..Default::default() },
//!     Product { id: "2".into(), title: "Grey Office Chair".into(), ..Default::default() },
//! ];
//! let index = LexicalIndex::create(dir.path(), &products, &indicatif::ProgressBar::hidden()).unwrap();
//! let config = IndexConfig::default().lexical;
//! let query = index.analyze("office chairs", &config).unwrap();
//! let found = index.search(&query, &Filters::default(), 10, false, &config).unwrap();
//! assert_eq!(index.product(found.hits[0].doc).unwrap().id, "2");
//! ```

mod config;
mod fuzzy;
mod query;
mod schema;
pub mod stats;
pub mod text;

pub use config::{FieldBoosts, FuzzyConfig, LexicalConfig, MatchConfig};
use fuzzy::FuzzyCache;
pub use query::QueryPlan;
pub use schema::Fields;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{EnableScoring, Query};
use tantivy::schema::{Facet, TantivyDocument, Value};
use tantivy::{DocAddress, DocSet, Index, IndexReader, ReloadPolicy, Searcher, TantivyError, Term};

use crate::catalog::{category_path, Product};
use crate::kept::Kept;
use crate::search::{FacetCount, Facets, Filters};

/// Facet values returned per facet.
const FACET_VALUES: usize = 20;
/// Parsed products kept in memory (see [`LexicalIndex::product`]).
pub const PRODUCTS_KEPT: usize = 100_000;
/// How BM25 ranks products with equal scores (recorded in the index's manifest): in the
/// catalogue's order, see [`LexicalIndex::create`].
pub const TIES: &str = "catalogue order";
/// Memory for the index writer: a catalogue whose postings fit in it becomes one segment.
const WRITER_HEAP: usize = 256 * 1024 * 1024;

/// An opened lexical index.
pub struct LexicalIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// Lowercased brand name → the facet as indexed, for case-insensitive brand filters.
    brands: HashMap<String, Facet>,
    /// Lowercased `a > b` path → the facet as indexed.
    categories: HashMap<String, Facet>,
    /// Each segment's product ids by document, read from the id column at open: a hit's id
    /// is then a lookup (about 40 bytes a product).
    ids: Vec<Vec<Box<str>>>,
    /// The live document of each product id: products named by id (dense candidates, judged
    /// products) are read and scored without a search (about 70 bytes a product).
    docs: HashMap<Box<str>, DocAddress>,
    /// The products each typo-tolerant term matched, remembered across searches.
    fuzzy: Arc<FuzzyCache>,
    /// Products read from the document store, kept parsed.
    stored: Kept<DocAddress, Arc<Product>>,
}

/// One product that matched, with its BM25 score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LexicalHit {
    pub doc: DocAddress,
    pub score: f32,
}

/// The outcome of a lexical search.
#[derive(Debug, Clone, Default)]
pub struct LexicalHits {
    /// Best first.
    pub hits: Vec<LexicalHit>,
    /// How many products matched in all.
    pub total: u64,
    pub fuzzy: bool,
    /// True when too few products held enough of the query's words, so one word sufficed.
    pub relaxed: bool,
    pub facets: Option<Facets>,
}

impl LexicalIndex {
    /// Builds a new index of `products` in the empty directory `dir`.
    pub fn create(
        dir: &Path,
        products: &[Product],
        progress: &indicatif::ProgressBar,
    ) -> tantivy::Result<LexicalIndex> {
        Self::create_with_heap(dir, products, progress, WRITER_HEAP).map(|(index, _)| index)
    }

    /// [`LexicalIndex::create`] with the writer's memory given: a catalogue whose postings
    /// outgrow `heap` is written in several segments, then merged into one. Also returns how
    /// many segments were written.
    fn create_with_heap(
        dir: &Path,
        products: &[Product],
        progress: &indicatif::ProgressBar,
        heap: usize,
    ) -> tantivy::Result<(LexicalIndex, usize)> {
        let (schema, fields) = Fields::schema();
        let index = Index::create_in_dir(dir, schema)?;
        // One indexing thread, so products keep the catalogue's order. BM25 breaks ties by
        // that order: on several threads it came from the threads' race, so each build
        // ranked tied products differently and trained a different learned ranker. Indexing
        // is a second for Home Depot's catalogue either way.
        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, heap)?;
        // Segments are merged once, below, in the catalogue's order; a merge the policy
        // started on its own would stack them in whatever order it found them.
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        for product in products {
            writer.add_document(document(&fields, product))?;
            progress.inc(1);
        }
        writer.commit()?;
        // One segment searches fastest; the catalogue is written once, so merge now.
        let segments = index.searchable_segment_ids()?;
        if segments.len() > 1 {
            writer.merge(&segments_in_catalogue_order(&index, products)?).wait()?;
        }
        writer.wait_merging_threads()?;
        Ok((LexicalIndex::open(dir)?, segments.len()))
    }

    pub fn open(dir: &Path) -> tantivy::Result<LexicalIndex> {
        const STORE_CACHE_BLOCKS: usize = 2048;
        let index = Index::open_in_dir(dir)?;
        let (expected, fields) = Fields::schema();
        if index.schema() != expected {
            return Err(TantivyError::SchemaError(
                "the lexical index does not have the schema this shelf expects".into(),
            ));
        }
        // Every search reads its candidates' stored products: keep up to 2,048 decompressed
        // blocks (≤ 32 MiB) so a warm catalogue is not decompressed again per request.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .doc_store_cache_num_blocks(STORE_CACHE_BLOCKS)
            .try_into()?;
        let searcher = reader.searcher();
        let brands = facet_values(&searcher, fields.brand_facet)?;
        let categories = facet_values(&searcher, fields.category_facet)?;
        let ids: Vec<Vec<Box<str>>> =
            searcher.segment_readers().iter().map(segment_ids).collect::<tantivy::Result<_>>()?;
        let mut docs = HashMap::with_capacity(searcher.num_docs() as usize);
        for (segment_ord, (segment, ids)) in searcher.segment_readers().iter().zip(&ids).enumerate() {
            for (doc_id, id) in ids.iter().enumerate() {
                let doc_id = doc_id as u32;
                if segment.alive_bitset().is_none_or(|alive| alive.is_alive(doc_id)) {
                    docs.insert(id.clone(), DocAddress::new(segment_ord as u32, doc_id));
                }
            }
        }
        let largest = searcher.segment_readers().iter().map(|s| s.max_doc()).max().unwrap_or(0);
        let fuzzy = Arc::new(FuzzyCache::new(largest));
        let stored = Kept::new(PRODUCTS_KEPT);
        Ok(LexicalIndex { index, reader, fields, brands, categories, ids, docs, fuzzy, stored })
    }

    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    pub fn num_products(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// Analyses a query text into the terms each field searches.
    pub fn analyze(&self, text: &str, config: &LexicalConfig) -> tantivy::Result<QueryPlan> {
        QueryPlan::new(self, &self.reader.searcher(), text, config)
    }

    /// The best `limit` products for the analysed query under `filters`.
    pub fn search(
        &self,
        plan: &QueryPlan,
        filters: &Filters,
        limit: usize,
        with_facets: bool,
        config: &LexicalConfig,
    ) -> tantivy::Result<LexicalHits> {
        let searcher = self.reader.searcher();
        if plan.is_empty() {
            return Ok(LexicalHits { facets: with_facets.then(Facets::default), ..Default::default() });
        }
        let filter_query = query::filters(self, filters);
        let word_filter = plan.word_filter(plan.required_words(&config.matching));
        let strict = plan.query(&[filter_query.as_deref(), word_filter.as_deref()]);
        let mut found = self.collect(&searcher, &strict, limit, filters, with_facets)?;
        found.fuzzy = plan.has_fuzzy();
        let can_widen = word_filter.is_some() || (config.fuzzy.enabled && plan.can_widen());
        if found.hits.len() >= limit || !can_widen {
            return Ok(found);
        }
        // Too few products hold enough of the query's words: widen (one word suffices, every
        // word may match fuzzily) and rank the wider matches after the strict ones.
        let wider = if config.fuzzy.enabled { plan.widened() } else { plan.clone() };
        let widened = (found.total as usize) < config.min_hits;
        let mut more =
            self.collect(&searcher, &wider.query(&[filter_query.as_deref()]), limit, filters, with_facets && widened)?;
        let strict_docs: std::collections::HashSet<DocAddress> = found.hits.iter().map(|h| h.doc).collect();
        let floor = found.hits.last().map(|h| h.score);
        let top = more.hits.first().map_or(1.0, |h| h.score).max(f32::MIN_POSITIVE);
        for hit in more.hits.iter().filter(|h| !strict_docs.contains(&h.doc)) {
            if found.hits.len() >= limit {
                break;
            }
            // Keep scores descending: a wider match scores below the last strict match.
            let score = match floor {
                Some(floor) => floor * 0.999 * hit.score / top,
                None => hit.score,
            };
            found.hits.push(LexicalHit { doc: hit.doc, score });
        }
        if widened {
            found.total = more.total;
            found.facets = more.facets.take();
            found.relaxed = word_filter.is_some();
            found.fuzzy = wider.has_fuzzy();
        }
        Ok(found)
    }

    fn collect(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        limit: usize,
        filters: &Filters,
        with_facets: bool,
    ) -> tantivy::Result<LexicalHits> {
        let top = TopDocs::with_limit(limit.max(1)).order_by_score();
        let to_hits =
            |docs: Vec<(f32, DocAddress)>| docs.into_iter().map(|(score, doc)| LexicalHit { doc, score }).collect();
        if !with_facets {
            let (docs, total) = searcher.search(query, &(top, Count))?;
            return Ok(LexicalHits { hits: to_hits(docs), total: total as u64, facets: None, ..Default::default() });
        }
        let mut brands = FacetCollector::for_field("brand_facet");
        brands.add_facet(Facet::root());
        let mut categories = FacetCollector::for_field("category_facet");
        categories.add_facet(Facet::root());
        // Children of the filtered category need their own collector: one collector may not
        // hold a facet and its ancestor.
        let chosen_category = filters.category.as_deref().and_then(|c| self.category(c));
        let children = chosen_category.as_ref().map(|chosen| {
            let mut collector = FacetCollector::for_field("category_facet");
            collector.add_facet(chosen.clone());
            collector
        });
        let ((docs, total), brand_counts, category_counts, (children_counts, ranges)) =
            searcher.search(query, &((top, Count), brands, categories, (children, stats::RangeStatsCollector)))?;
        let counts = |counts: &tantivy::collector::FacetCounts, facet: &Facet| -> Vec<FacetCount> {
            counts
                .top_k(facet.clone(), FACET_VALUES)
                .into_iter()
                .map(|(facet, count)| FacetCount { value: facet.to_path().join(" > "), count })
                .collect()
        };
        let mut category = counts(&category_counts, &Facet::root());
        if let (Some(chosen), Some(children_counts)) = (&chosen_category, &children_counts) {
            category.extend(counts(children_counts, chosen));
        }
        let facets = Facets {
            brand: counts(&brand_counts, &Facet::root()),
            category,
            price: ranges.price(),
            rating: ranges.rating(),
            in_stock: ranges.stock(),
        };
        Ok(LexicalHits { hits: to_hits(docs), total: total as u64, facets: Some(facets), ..Default::default() })
    }

    /// The facet of a brand name, whatever its case.
    fn brand(&self, name: &str) -> Option<&Facet> {
        self.brands.get(&name.trim().to_lowercase())
    }

    /// The facet of a category path written `a > b`, whatever its case.
    fn category(&self, path: &str) -> Option<Facet> {
        self.categories.get(&category_path(path).join(" > ").to_lowercase()).cloned()
    }

    /// BM25 scores of the given products only (those the text does not match are left out),
    /// best first: how the rerank protocol orders a query's judged products, and the BM25
    /// of dense candidates the lexical list did not hold.
    pub fn score_ids(&self, plan: &QueryPlan, ids: &[String]) -> tantivy::Result<Vec<(String, f32)>> {
        if plan.is_empty() || ids.is_empty() {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let docs: Vec<DocAddress> = ids.iter().filter_map(|id| self.address(id)).collect();
        let mut scored = matching(&searcher, plan.query(&[]).as_ref(), true, &docs)?;
        scored.sort_by(|(a_doc, a), (b_doc, b)| b.total_cmp(a).then(a_doc.cmp(b_doc)));
        let addresses: Vec<DocAddress> = scored.iter().map(|(doc, _)| *doc).collect();
        let ids = self.ids_of(&addresses)?;
        Ok(ids.into_iter().zip(scored).map(|(id, (_, score))| (id, score)).collect())
    }

    /// The document of a product id, if the index holds it.
    pub fn address(&self, id: &str) -> Option<DocAddress> {
        self.docs.get(id).copied()
    }

    /// The product ids of documents (no stored product is read).
    pub fn ids_of(&self, docs: &[DocAddress]) -> tantivy::Result<Vec<String>> {
        docs.iter()
            .map(|doc| {
                self.ids
                    .get(doc.segment_ord as usize)
                    .and_then(|segment| segment.get(doc.doc_id as usize))
                    .map(|id| id.to_string())
                    .ok_or_else(|| TantivyError::InvalidArgument(format!("no document {doc:?}")))
            })
            .collect()
    }

    /// Which of the products `ids` pass `filters`, decided by the index (no stored product
    /// is read).
    pub fn passing(&self, filters: &Filters, ids: &[String]) -> tantivy::Result<HashSet<String>> {
        let Some(filter) = query::filters(self, filters) else { return Ok(ids.iter().cloned().collect()) };
        let docs: Vec<DocAddress> = ids.iter().filter_map(|id| self.address(id)).collect();
        let passed: Vec<DocAddress> =
            matching(&self.reader.searcher(), filter.as_ref(), false, &docs)?.into_iter().map(|(doc, _)| doc).collect();
        Ok(self.ids_of(&passed)?.into_iter().collect())
    }

    /// The stored product of a document: read and parsed the first time, then kept in memory.
    ///
    /// A learned-ranker search reads the product of each of its ~60 candidates and of the
    /// results it returns; from the document store that is a block lookup (cached), the
    /// document decoded and its JSON parsed, about 4 µs each. Shops search the same products
    /// over and over, so up to [`PRODUCTS_KEPT`] parsed products are kept and shared, the
    /// least recently read leaving first: Home Depot's 54,667 take 33 MiB, and a larger
    /// catalogue keeps its popular part. The index is never written after it is opened, so a
    /// kept product cannot go stale.
    pub fn product(&self, doc: DocAddress) -> tantivy::Result<Arc<Product>> {
        self.stored.get_or_try_insert(&doc, || {
            let document: TantivyDocument = self.reader.searcher().doc(doc)?;
            let json = document.get_first(self.fields.product).and_then(|v| v.as_str()).unwrap_or("{}");
            let product = serde_json::from_str(json)
                .map_err(|e| TantivyError::InternalError(format!("stored product is not readable: {e}")))?;
            Ok(Arc::new(product))
        })
    }

    /// Inverse document frequency in titles of each stemmed word, `ln(1 + N / (1 + df))`.
    pub fn title_idf(&self, stems: &[String]) -> tantivy::Result<Vec<f32>> {
        let searcher = self.reader.searcher();
        let n = searcher.num_docs() as f32;
        stems
            .iter()
            .map(|stem| {
                let df = searcher.doc_freq(&Term::from_field_text(self.fields.title, stem))? as f32;
                Ok((1.0 + n / (1.0 + df)).ln())
            })
            .collect()
    }

    /// Finds a product by id.
    pub fn find(&self, id: &str) -> tantivy::Result<Option<Arc<Product>>> {
        self.address(id).map(|doc| self.product(doc)).transpose()
    }

    pub(crate) fn tantivy(&self) -> &Index {
        &self.index
    }
}

/// Each of `docs` that `query` matches, with its score (0 unless `scoring`): the query's
/// scorer seeks each document in turn, so no other product is visited or scored.
fn matching(
    searcher: &Searcher,
    query: &dyn Query,
    scoring: bool,
    docs: &[DocAddress],
) -> tantivy::Result<Vec<(DocAddress, f32)>> {
    let mode = if scoring {
        EnableScoring::enabled_from_searcher(searcher)
    } else {
        EnableScoring::disabled_from_searcher(searcher)
    };
    let weight = query.weight(mode)?;
    let mut sorted = docs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut found = Vec::with_capacity(sorted.len());
    for segment in sorted.chunk_by(|a, b| a.segment_ord == b.segment_ord) {
        let mut scorer = weight.scorer(searcher.segment_reader(segment[0].segment_ord), 1.0)?;
        for doc in segment {
            if scorer.doc() < doc.doc_id {
                scorer.seek(doc.doc_id);
            }
            if scorer.doc() == doc.doc_id {
                found.push((*doc, if scoring { scorer.score() } else { 0.0 }));
            }
        }
    }
    Ok(found)
}

/// The index's segments, in the order their products come in the catalogue.
///
/// A writer flushes a segment each time its memory fills, so each segment holds a run of
/// the catalogue; but tantivy lists segments in no set order (by random ids), and a merge
/// stacks them as listed. Merged in this order, documents keep the catalogue's order, and
/// BM25 ties rank the same on every build however many segments a catalogue needed.
fn segments_in_catalogue_order(index: &Index, products: &[Product]) -> tantivy::Result<Vec<tantivy::index::SegmentId>> {
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(products.len());
    for (at, product) in products.iter().enumerate() {
        position.entry(product.id.as_str()).or_insert(at);
    }
    let searcher = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?.searcher();
    let mut segments = Vec::new();
    for segment in searcher.segment_readers() {
        // The catalogue has unique ids (import replaces duplicates), so a segment's first
        // product places the whole run.
        let first = segment_ids(segment)?.first().and_then(|id| position.get(&**id).copied()).unwrap_or(usize::MAX);
        segments.push((first, segment.segment_id()));
    }
    segments.sort();
    Ok(segments.into_iter().map(|(_, id)| id).collect())
}

/// The product id of each document of a segment, from its id column: the dictionary is
/// read once, in order, instead of once per document.
fn segment_ids(segment: &tantivy::SegmentReader) -> tantivy::Result<Vec<Box<str>>> {
    let column = segment
        .fast_fields()
        .str("id")?
        .ok_or_else(|| TantivyError::SchemaError("the index has no id column; rebuild it".to_string()))?;
    let mut by_ord: Vec<Box<str>> = Vec::with_capacity(column.num_terms());
    let mut terms = column.dictionary().stream()?;
    while terms.advance() {
        by_ord.push(String::from_utf8_lossy(terms.key()).into());
    }
    (0..segment.max_doc())
        .map(|doc| {
            let ord = column.term_ords(doc).next();
            Ok(ord.and_then(|ord| by_ord.get(ord as usize).cloned()).unwrap_or_default())
        })
        .collect()
}

/// Every facet value of a field, keyed by its lowercased `a > b` path.
fn facet_values(searcher: &Searcher, field: tantivy::schema::Field) -> tantivy::Result<HashMap<String, Facet>> {
    let mut values = HashMap::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(field)?;
        let mut stream = inverted.terms().stream()?;
        while stream.advance() {
            if let Ok(facet) = Facet::from_encoded(stream.key().to_vec()) {
                if !facet.is_root() {
                    values.insert(facet.to_path().join(" > ").to_lowercase(), facet);
                }
            }
        }
    }
    Ok(values)
}

fn document(fields: &Fields, product: &Product) -> TantivyDocument {
    let mut doc = TantivyDocument::new();
    doc.add_text(fields.id, &product.id);
    doc.add_text(fields.title, &product.title);
    doc.add_text(fields.title_raw, text::split_letters_and_digits(&product.title));
    if let Some(description) = &product.description {
        doc.add_text(fields.description, description);
    }
    if let Some(brand) = &product.brand {
        doc.add_text(fields.brand, brand);
        doc.add_facet(fields.brand_facet, Facet::from_path([brand.as_str()]));
    }
    if let Some(category) = &product.category {
        let path = category_path(category);
        doc.add_text(fields.category, path.join(" "));
        doc.add_facet(fields.category_facet, Facet::from_path(path));
    }
    if !product.attributes.is_empty() {
        doc.add_text(fields.attributes, product.attribute_text());
    }
    if let Some(price) = product.price {
        doc.add_f64(fields.price, price);
    }
    if let Some(rating) = product.rating {
        doc.add_f64(fields.rating, rating);
    }
    if let Some(reviews) = product.review_count {
        doc.add_u64(fields.review_count, reviews);
    }
    if let Some(popularity) = product.popularity {
        doc.add_f64(fields.popularity, popularity);
    }
    if let Some(in_stock) = product.in_stock {
        doc.add_bool(fields.in_stock, in_stock);
    }
    doc.add_text(fields.product, serde_json::to_string(product).unwrap_or_default());
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexConfig;

    /// Products with the same text score the same; the catalogue's order ranks them, so every
    /// build of a catalogue gives the same lists (and a learned ranker the same training data).
    #[test]
    fn tied_products_rank_in_catalogue_order() {
        // Ids that do not sort like the catalogue's order, so neither id order nor chance passes.
        let ids: Vec<String> = (0..300).map(|i| format!("p{}", (i * 7919) % 1000)).collect();
        let products: Vec<Product> = ids
            .iter()
            .map(|id| Product { id: id.clone(), title: "Grey Linen Sofa".into(), ..Default::default() })
            .collect();
        let config = IndexConfig::default().lexical;
        for build in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            let index = LexicalIndex::create(dir.path(), &products, &indicatif::ProgressBar::hidden()).unwrap();
            let query = index.analyze("grey sofa", &config).unwrap();
            let found = index.search(&query, &Filters::default(), 300, false, &config).unwrap();
            let ranked: Vec<String> = found.hits.iter().map(|hit| index.product(hit.doc).unwrap().id.clone()).collect();
            assert_eq!(ranked, ids, "build {build}");
        }
    }

    /// A catalogue too large for the writer's memory is written in several segments; merged,
    /// its tied products still rank in the catalogue's order, on every build.
    #[test]
    fn tied_products_keep_catalogue_order_across_segments() {
        const PRODUCTS: usize = 6_000;
        let ids: Vec<String> = (0..PRODUCTS).map(|i| format!("p{}", (i * 7919) % 10_007)).collect();
        // Words of their own fill the writer's memory; the title is what every product shares.
        let products: Vec<Product> = ids
            .iter()
            .map(|id| Product {
                id: id.clone(),
                title: "Grey Linen Sofa".into(),
                description: Some((0..60).map(|w| format!("w{id}x{w}")).collect::<Vec<_>>().join(" ")),
                ..Default::default()
            })
            .collect();
        let config = IndexConfig::default().lexical;
        for build in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            // The least memory tantivy lets a writer thread have (15 MB).
            let heap = 15_000_000;
            let (index, segments) =
                LexicalIndex::create_with_heap(dir.path(), &products, &indicatif::ProgressBar::hidden(), heap).unwrap();
            assert!(segments >= 3, "build {build} wrote {segments} segments: the test needs several");
            assert_eq!(index.searcher().segment_readers().len(), 1, "merged into one segment");
            let query = index.analyze("grey sofa", &config).unwrap();
            let found = index.search(&query, &Filters::default(), PRODUCTS, false, &config).unwrap();
            let ranked: Vec<String> = found.hits.iter().map(|hit| index.product(hit.doc).unwrap().id.clone()).collect();
            assert_eq!(ranked.len(), PRODUCTS, "build {build}");
            // Named by the first product out of place: the whole list is too long to print.
            let misplaced = ranked.iter().zip(&ids).position(|(got, wanted)| got != wanted);
            assert_eq!(misplaced, None, "build {build}: products out of catalogue order from this rank on");
        }
    }
}
