//! Stored products, parsed once: the products a search has read stay in memory, ready for the
//! next search that proposes them.
//!
//! Every learned-ranker search reads the stored product of each of its ~60 candidates (their
//! titles, attributes and signals feed the features) and of the results it returns. Reading
//! one from tantivy's document store means finding its block (cached), decoding the document
//! and parsing the product's JSON: about 4 µs each, a quarter of a millisecond a search.
//! Shops search the same products over and over, so the parsed products are kept, shared
//! (`Arc`), up to [`PRODUCTS_KEPT`], the least recently read leaving first. A catalogue of
//! that size or less stays entirely in memory once read (Home Depot's 54,667 products took 33
//! MiB, 0.6 KB each); a larger one keeps its popular part.
//!
//! The lexical index is opened once and never reloaded in place (a new catalogue is a new
//! index and a new engine), so a kept product can never be stale.

use std::sync::{Arc, Mutex};

use lru::LruCache;
use tantivy::DocAddress;

use crate::catalog::Product;

/// Parsed products kept in memory.
pub const PRODUCTS_KEPT: usize = 100_000;

/// The parsed products most recently read, by document.
pub(crate) struct StoredProducts {
    kept: Mutex<LruCache<DocAddress, Arc<Product>>>,
}

impl StoredProducts {
    pub(crate) fn new(capacity: usize) -> StoredProducts {
        let capacity = std::num::NonZeroUsize::new(capacity).unwrap_or(std::num::NonZeroUsize::MIN);
        StoredProducts { kept: Mutex::new(LruCache::new(capacity)) }
    }

    /// The product of `doc`, from memory or else read by `read` and kept.
    pub(crate) fn get_or_read<E>(
        &self,
        doc: DocAddress,
        read: impl FnOnce() -> Result<Product, E>,
    ) -> Result<Arc<Product>, E> {
        // A poisoned lock only means another search panicked mid-update: the cache is still a
        // cache, and reading the store directly is always correct.
        if let Some(product) = self.kept.lock().ok().and_then(|mut kept| kept.get(&doc).cloned()) {
            return Ok(product);
        }
        let product = Arc::new(read()?);
        if let Ok(mut kept) = self.kept.lock() {
            kept.put(doc, Arc::clone(&product));
        }
        Ok(product)
    }

    /// Products in memory now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.kept.lock().map_or(0, |kept| kept.len())
    }

    /// Whether `doc`'s product is in memory (without making it recent).
    #[cfg(test)]
    fn holds(&self, doc: DocAddress) -> bool {
        self.kept.lock().is_ok_and(|kept| kept.contains(&doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: &str) -> Product {
        Product { id: id.into(), title: format!("product {id}"), ..Default::default() }
    }

    #[test]
    fn a_product_is_read_once_and_then_served_from_memory() {
        let stored = StoredProducts::new(10);
        let doc = DocAddress::new(0, 7);
        let mut reads = 0;
        let first = stored.get_or_read(doc, || -> Result<_, ()> {
            reads += 1;
            Ok(product("7"))
        });
        let again = stored.get_or_read(doc, || -> Result<_, ()> {
            reads += 1;
            Ok(product("other"))
        });
        assert_eq!(reads, 1);
        assert_eq!(first.unwrap().id, "7");
        assert_eq!(again.unwrap().id, "7");
    }

    #[test]
    fn the_least_recently_read_product_leaves_first() {
        let stored = StoredProducts::new(2);
        let read = |id: u32| stored.get_or_read(DocAddress::new(0, id), || Ok::<_, ()>(product(&id.to_string())));
        read(1).unwrap();
        read(2).unwrap();
        read(1).unwrap(); // 1 is now the most recent
        read(3).unwrap(); // 2 leaves
        assert_eq!(stored.len(), 2);
        let held: Vec<bool> = [1, 2, 3].map(|id| stored.holds(DocAddress::new(0, id))).to_vec();
        assert_eq!(held, vec![true, false, true]);
    }

    #[test]
    fn a_failed_read_keeps_nothing_and_is_tried_again() {
        let stored = StoredProducts::new(4);
        let doc = DocAddress::new(0, 1);
        assert_eq!(stored.get_or_read(doc, || Err("corrupt")).unwrap_err(), "corrupt");
        assert_eq!(stored.len(), 0);
        assert_eq!(stored.get_or_read(doc, || Ok::<_, &str>(product("1"))).unwrap().id, "1");
    }
}
