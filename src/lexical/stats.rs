//! Range facets: what a shopper can filter by that is a number rather than a name. Over
//! every product that matched, the lowest and highest price, how many have at least 1–4
//! stars, and how many are in stock — read from the fast fields, without loading a document.
//!
//! ```
//! use shelf::lexical::stats::RangeStats;
//!
//! let mut stats = RangeStats::default();
//! stats.add(Some(19.0), Some(4.5), Some(true));
//! stats.add(Some(250.0), Some(3.2), Some(false));
//! stats.add(None, None, None);
//! assert_eq!((stats.price_min, stats.price_max), (Some(19.0), Some(250.0)));
//! assert_eq!(stats.at_least_stars, [2, 2, 2, 1]); // ≥1, ≥2, ≥3, ≥4 stars
//! assert_eq!((stats.in_stock, stats.out_of_stock), (1, 1));
//! ```

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use crate::search::{FacetCount, PriceRange};

/// Counts over the matching products.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RangeStats {
    pub price_min: Option<f64>,
    pub price_max: Option<f64>,
    /// Products rated at least 1, 2, 3 and 4 stars.
    pub at_least_stars: [u64; 4],
    pub in_stock: u64,
    pub out_of_stock: u64,
}

impl RangeStats {
    /// Counts one product.
    pub fn add(&mut self, price: Option<f64>, rating: Option<f64>, in_stock: Option<bool>) {
        if let Some(price) = price.filter(|p| p.is_finite()) {
            self.price_min = Some(self.price_min.map_or(price, |m| m.min(price)));
            self.price_max = Some(self.price_max.map_or(price, |m| m.max(price)));
        }
        if let Some(rating) = rating {
            for (at, count) in self.at_least_stars.iter_mut().enumerate() {
                *count += u64::from(rating >= (at + 1) as f64);
            }
        }
        match in_stock {
            Some(true) => self.in_stock += 1,
            Some(false) => self.out_of_stock += 1,
            None => {}
        }
    }

    fn merge(&mut self, other: &RangeStats) {
        let pick = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        self.price_min = pick(self.price_min, other.price_min, f64::min);
        self.price_max = pick(self.price_max, other.price_max, f64::max);
        for (mine, theirs) in self.at_least_stars.iter_mut().zip(other.at_least_stars) {
            *mine += theirs;
        }
        self.in_stock += other.in_stock;
        self.out_of_stock += other.out_of_stock;
    }

    /// The price range, when any matching product has a price.
    pub fn price(&self) -> Option<PriceRange> {
        Some(PriceRange { min: self.price_min?, max: self.price_max? })
    }

    /// `4`, `3`, `2`, `1` (at least that many stars) with their counts, best first; empty
    /// when no matching product is rated.
    pub fn rating(&self) -> Vec<FacetCount> {
        (1..=4)
            .rev()
            .map(|stars| FacetCount { value: stars.to_string(), count: self.at_least_stars[stars - 1] })
            .filter(|facet| facet.count > 0)
            .collect()
    }

    /// `true` and `false` with their counts; empty when no product says.
    pub fn stock(&self) -> Vec<FacetCount> {
        [("true", self.in_stock), ("false", self.out_of_stock)]
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(value, count)| FacetCount { value: value.into(), count })
            .collect()
    }
}

/// The collector of [`RangeStats`] over the documents a query matches.
pub struct RangeStatsCollector;

pub struct RangeStatsSegment {
    price: Option<Column<f64>>,
    rating: Option<Column<f64>>,
    in_stock: Option<Column<bool>>,
    stats: RangeStats,
}

impl Collector for RangeStatsCollector {
    type Fruit = RangeStats;
    type Child = RangeStatsSegment;

    fn for_segment(&self, _: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<RangeStatsSegment> {
        let fast = segment.fast_fields();
        Ok(RangeStatsSegment {
            price: fast.f64("price").ok(),
            rating: fast.f64("rating").ok(),
            in_stock: fast.bool("in_stock").ok(),
            stats: RangeStats::default(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<RangeStats>) -> tantivy::Result<RangeStats> {
        let mut total = RangeStats::default();
        for fruit in &fruits {
            total.merge(fruit);
        }
        Ok(total)
    }
}

impl SegmentCollector for RangeStatsSegment {
    type Fruit = RangeStats;

    fn collect(&mut self, doc: DocId, _: Score) {
        let price = self.price.as_ref().and_then(|c| c.first(doc));
        let rating = self.rating.as_ref().and_then(|c| c.first(doc));
        let in_stock = self.in_stock.as_ref().and_then(|c| c.first(doc));
        self.stats.add(price, rating, in_stock);
    }

    fn harvest(self) -> RangeStats {
        self.stats
    }
}
