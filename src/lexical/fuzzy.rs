//! Typo tolerance that remembers: the products a word matches within an edit distance.
//!
//! Matching "vanty" within one edit walks the whole title dictionary with a Levenshtein
//! automaton and unions the postings of every term it accepts ("vanity", "vant", …). Under
//! load that walk was the largest single cost of a lexical search, and the same words come
//! back query after query ("paint", "white", "door"). A [`FuzzyCache`] keeps the set of
//! products each (segment, term, distance) matched, bounded in bytes and evicting the least
//! recently used; [`CachedFuzzyQuery`] matches exactly what tantivy's `FuzzyTermQuery` matches
//! (a constant score, boosted by the caller), reading the set from the cache when it can.
//!
//! An index is never written after it is opened, so a remembered set cannot go stale; a
//! reload opens a new index with an empty cache.

use std::fmt;
use std::sync::Arc;

use tantivy::index::SegmentId;
use tantivy::query::{BitSetDocSet, ConstScorer, EnableScoring, Explanation, FuzzyTermQuery, Query, Scorer, Weight};
use tantivy::{BitSet, DocId, DocSet, Score, SegmentReader, Term, TERMINATED};

use crate::kept::Kept;

/// Memory the remembered sets may take: a set costs one bit per product of its segment
/// (6.7 KiB for 54,000 products, so about 10,000 sets; 122 KiB for a million).
const BUDGET_BYTES: usize = 64 * 1024 * 1024;

type Key = (SegmentId, Term, u8);

/// The products each fuzzy term matched, per segment, least recently used evicted first.
pub struct FuzzyCache {
    sets: Kept<Key, Arc<BitSet>>,
}

impl FuzzyCache {
    /// A cache sized so that sets over segments of up to `max_doc` products fit the budget.
    pub fn new(max_doc: u32) -> FuzzyCache {
        let bytes_per_set = (max_doc as usize).div_ceil(8).max(1);
        FuzzyCache { sets: Kept::new((BUDGET_BYTES / bytes_per_set).max(16)) }
    }
}

impl fmt::Debug for FuzzyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FuzzyCache").field("sets", &self.sets.len()).finish()
    }
}

/// Matches the products whose `term`'s field holds a term within `distance` edits of it
/// (a swap of neighbours is one edit), scoring each 1 × boost.
#[derive(Clone, Debug)]
pub struct CachedFuzzyQuery {
    term: Term,
    distance: u8,
    cache: Arc<FuzzyCache>,
}

impl CachedFuzzyQuery {
    pub fn new(term: Term, distance: u8, cache: Arc<FuzzyCache>) -> CachedFuzzyQuery {
        CachedFuzzyQuery { term, distance, cache }
    }

    fn uncached(&self) -> FuzzyTermQuery {
        FuzzyTermQuery::new(self.term.clone(), self.distance, true)
    }
}

impl Query for CachedFuzzyQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for CachedFuzzyQuery {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let key = (reader.segment_id(), self.term.clone(), self.distance);
        let set = self.cache.sets.get_or_try_insert(&key, || {
            let weight = self.uncached().weight(EnableScoring::disabled_from_schema(reader.schema()))?;
            let mut matched = weight.scorer(reader, 1.0)?;
            let mut set = BitSet::with_max_value(reader.max_doc());
            let mut doc = matched.doc();
            while doc != TERMINATED {
                set.insert(doc);
                doc = matched.advance();
            }
            Ok::<_, tantivy::TantivyError>(Arc::new(set))
        })?;
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(BitSet::clone(&set)), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.uncached().weight(EnableScoring::disabled_from_schema(reader.schema()))?.explain(reader, doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Product;
    use crate::lexical::LexicalIndex;
    use tantivy::collector::DocSetCollector;

    #[test]
    fn matches_what_the_fuzzy_term_query_matches_cached_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let titles = ["Vanity Grey 36 in", "Vanty Mirror", "Bath Van", "Oak Desk", "Vanities Set", "Vinity"];
        let products: Vec<Product> = titles
            .iter()
            .enumerate()
            .map(|(i, t)| Product { id: i.to_string(), title: t.to_string(), ..Default::default() })
            .collect();
        let index = LexicalIndex::create(dir.path(), &products, &indicatif::ProgressBar::hidden()).unwrap();
        let searcher = index.searcher();
        let cache = Arc::new(FuzzyCache::new(searcher.segment_reader(0).max_doc()));
        for (word, distance) in [("vanity", 1), ("vanity", 2), ("vant", 1), ("desk", 1), ("zzzz", 1)] {
            let term = Term::from_field_text(index.fields().title_raw, word);
            let expected =
                searcher.search(&FuzzyTermQuery::new(term.clone(), distance, true), &DocSetCollector).unwrap();
            let query = CachedFuzzyQuery::new(term, distance, cache.clone());
            let first = searcher.search(&query, &DocSetCollector).unwrap();
            let again = searcher.search(&query, &DocSetCollector).unwrap();
            assert_eq!(first, expected, "{word} within {distance}");
            assert_eq!(again, expected, "{word} within {distance}, from the cache");
        }
        assert_eq!(cache.sets.len(), 5, "one set per segment, term and distance");
    }

    #[test]
    fn the_budget_bounds_the_number_of_sets() {
        let small = FuzzyCache::new(1_000);
        let large = FuzzyCache::new(10_000_000);
        let capacity = |c: &FuzzyCache| c.sets.capacity();
        assert_eq!(capacity(&small), BUDGET_BYTES / 125);
        assert_eq!(capacity(&large), BUDGET_BYTES / 1_250_000);
    }
}
