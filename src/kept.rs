//! What a search works out and a later search will want again, kept: a bounded map shared by
//! every thread, the least recently used entry leaving first.
//!
//! Three things are worth keeping between searches: a query's vector (the encoder is most
//! of a new query's time), the products a misspelt word matches (a walk of the whole title
//! dictionary), and a stored product once parsed. Each is a [`Kept`] map from what names it
//! to a shared value (an `Arc`), so a hit costs a lookup and a clone of a pointer.
//!
//! ```
//! use shelf::kept::Kept;
//!
//! let squares: Kept<u32, u64> = Kept::new(2);
//! assert_eq!(squares.get_or_try_insert(&3, || Ok::<_, ()>(9)), Ok(9));
//! // Kept: the second call does not compute.
//! assert_eq!(squares.get_or_try_insert(&3, || Err("not called")), Ok(9));
//! ```
//!
//! A lock that another thread poisoned by panicking is treated as an empty map: the value is
//! worked out again, which is always correct, and nothing else fails with it.

use std::borrow::Borrow;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

/// A bounded map of values worth keeping, least recently used evicted first.
pub struct Kept<K: Hash + Eq, V> {
    map: Mutex<LruCache<K, V>>,
}

impl<K: Hash + Eq, V: Clone> Kept<K, V> {
    /// An empty map that keeps at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Kept<K, V> {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Kept { map: Mutex::new(LruCache::new(capacity)) }
    }

    /// The value kept for `key`, which becomes the most recently used.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.lock().ok()?.get(key).cloned()
    }

    /// Keeps `value` for `key`, evicting the least recently used entry when full.
    pub fn put(&self, key: K, value: V) {
        if let Ok(mut map) = self.map.lock() {
            map.put(key, value);
        }
    }

    /// The value kept for `key`, or else the one `make` works out, then kept. A failure is
    /// returned and nothing is kept, so the next call tries again. The lock is not held while
    /// `make` runs: two threads missing the same key may both work it out.
    pub fn get_or_try_insert<Q, E>(&self, key: &Q, make: impl FnOnce() -> Result<V, E>) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(value) = self.get(key) {
            return Ok(value);
        }
        let value = make()?;
        self.put(key.to_owned(), value.clone());
        Ok(value)
    }

    /// Entries kept now.
    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |map| map.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries kept.
    pub fn capacity(&self) -> usize {
        self.map.lock().map_or(0, |map| map.cap().get())
    }

    /// Whether `key` is kept (without making it recent).
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.lock().is_ok_and(|map| map.contains(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_worked_out_once_and_then_kept() {
        let kept: Kept<String, u32> = Kept::new(10);
        let mut made = 0;
        let first = kept.get_or_try_insert("seven", || -> Result<_, ()> {
            made += 1;
            Ok(7)
        });
        let again = kept.get_or_try_insert("seven", || -> Result<_, ()> {
            made += 1;
            Ok(0)
        });
        assert_eq!((made, first, again), (1, Ok(7), Ok(7)));
    }

    #[test]
    fn the_least_recently_used_entry_leaves_first() {
        let kept: Kept<u32, u32> = Kept::new(2);
        let use_ = |key: u32| kept.get_or_try_insert(&key, || Ok::<_, ()>(key * 10)).unwrap();
        use_(1);
        use_(2);
        use_(1); // 1 is now the most recent
        use_(3); // 2 leaves
        assert_eq!(kept.len(), 2);
        assert_eq!([1, 2, 3].map(|key| kept.contains(&key)), [true, false, true]);
        assert_eq!(kept.capacity(), 2);
    }

    #[test]
    fn a_failure_keeps_nothing_and_is_tried_again() {
        let kept: Kept<u32, u32> = Kept::new(4);
        assert_eq!(kept.get_or_try_insert(&1, || Err("corrupt")), Err("corrupt"));
        assert!(kept.is_empty());
        assert_eq!(kept.get_or_try_insert(&1, || Ok::<_, &str>(5)), Ok(5));
    }

    #[test]
    fn a_capacity_of_zero_still_keeps_one() {
        let kept: Kept<u32, u32> = Kept::new(0);
        kept.put(1, 1);
        assert_eq!((kept.capacity(), kept.get(&1)), (1, Some(1)));
    }
}
