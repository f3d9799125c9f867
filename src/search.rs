//! What a search asks for and what it answers: the request and response types shared by the
//! CLI, the HTTP API and the evaluation harness.
//!
//! Filters have one text form, used by `shelf search --filter` and `GET /search?filter=`:
//!
//! ```
//! use shelf::search::Filters;
//!
//! let mut filters = Filters::default();
//! for clause in ["brand:Acme", "category:Furniture > Chairs", "price:10..150", "rating:4", "in_stock:true"] {
//!     filters.add_clause(clause).unwrap();
//! }
//! assert_eq!(filters.price_max, Some(150.0));
//! assert!(filters.add_clause("colour:red").unwrap_err().contains("unknown filter field"));
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::Product;

/// The most results one request may ask for.
pub const MAX_K: usize = 200;
/// Deepest a page may start (`offset`): shoppers rarely page further, and each page ranks
/// everything above it.
pub const MAX_OFFSET: usize = 1000;
/// Longest query accepted, in bytes and in words: a pasted page must not cost seconds of
/// fuzzy matching. Judged shop queries are far shorter (Home Depot: 12 words, 60 bytes at most).
pub const MAX_QUERY_BYTES: usize = 1024;
pub const MAX_QUERY_WORDS: usize = 64;
/// Results returned when a request does not say.
pub const DEFAULT_K: usize = 10;

/// Which ranking pipeline orders the results: `bm25` (lexical), `dense` (embedding
/// similarity), `hybrid` (the two fused), and the learned rankers over hybrid candidates:
/// `ltr` (LightGBM LambdaMART), `neural` (the multi-head network), `ensemble` (both blended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RankerKind {
    /// Lexical BM25 over the weighted product fields.
    Bm25,
    /// Embedding similarity (approximate nearest neighbours).
    Dense,
    /// BM25 and dense candidates fused.
    Hybrid,
    /// A LightGBM LambdaMART model over hybrid candidates.
    Ltr,
    /// The neural multi-head ranker over hybrid candidates.
    Neural,
    /// LightGBM and the neural ranker blended.
    Ensemble,
}

impl RankerKind {
    pub const NAMES: &'static str = "bm25, dense, hybrid, ltr, neural, ensemble";

    /// Whether the ranker needs the query's vector.
    pub fn uses_vectors(self) -> bool {
        self != RankerKind::Bm25
    }

    /// Whether a trained model orders the results (`ltr`, `neural`, `ensemble`).
    pub fn is_learned(self) -> bool {
        matches!(self, RankerKind::Ltr | RankerKind::Neural | RankerKind::Ensemble)
    }

    /// The `shelf train --ranker` value that trains this ranker.
    pub fn trainer(self) -> &'static str {
        match self {
            RankerKind::Neural => "neural",
            RankerKind::Ensemble => "ensemble",
            _ => "lgbm",
        }
    }
}

impl FromStr for RankerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bm25" => Ok(RankerKind::Bm25),
            "dense" => Ok(RankerKind::Dense),
            "hybrid" => Ok(RankerKind::Hybrid),
            "ltr" => Ok(RankerKind::Ltr),
            "neural" => Ok(RankerKind::Neural),
            "ensemble" => Ok(RankerKind::Ensemble),
            other => Err(format!("unknown ranker '{other}' (rankers: {})", RankerKind::NAMES)),
        }
    }
}

impl fmt::Display for RankerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            RankerKind::Bm25 => "bm25",
            RankerKind::Dense => "dense",
            RankerKind::Hybrid => "hybrid",
            RankerKind::Ltr => "ltr",
            RankerKind::Neural => "neural",
            RankerKind::Ensemble => "ensemble",
        };
        f.write_str(name)
    }
}

/// Restrictions on which products may be returned. All set restrictions must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Filters {
    /// Any of these brands (case-insensitive).
    pub brand: Vec<String>,
    /// This category or any below it: `Furniture` or `Furniture > Chairs` (case-insensitive).
    pub category: Option<String>,
    /// Lowest price, inclusive.
    pub price_min: Option<f64>,
    /// Highest price, inclusive.
    pub price_max: Option<f64>,
    /// Lowest mean rating, in stars.
    #[schema(minimum = 0, maximum = 5)]
    pub min_rating: Option<f64>,
    /// Only products in stock (`true`) or out of stock (`false`).
    pub in_stock: Option<bool>,
}

impl Filters {
    pub const FIELDS: &'static str = "brand, category, price, rating, in_stock";

    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    /// Adds one `field:value` clause: `brand:NAME` (repeat for several brands),
    /// `category:A > B`, `price:MIN..MAX` (either end may be left out), `rating:MIN`,
    /// `in_stock:true|false`.
    /// A clause that fails leaves the filters as they were.
    pub fn add_clause(&mut self, clause: &str) -> Result<(), String> {
        let mut next = self.clone();
        next.apply_clause(clause)?;
        next.validate()?;
        *self = next;
        Ok(())
    }

    fn apply_clause(&mut self, clause: &str) -> Result<(), String> {
        let (field, value) = clause
            .split_once(':')
            .ok_or_else(|| format!("filter '{clause}' must look like field:value (fields: {})", Self::FIELDS))?;
        let value = value.trim();
        let number = |text: &str, what: &str| -> Result<Option<f64>, String> {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            match text.parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(Some(n)),
                _ => Err(format!("filter {what}: '{text}' is not a number")),
            }
        };
        match field.trim().to_ascii_lowercase().as_str() {
            "brand" if !value.is_empty() => self.brand.push(value.to_string()),
            "category" if !value.is_empty() => self.category = Some(value.to_string()),
            "price" => {
                let (min, max) = value.split_once("..").unwrap_or((value, value));
                self.price_min = number(min, "price")?;
                self.price_max = number(max, "price")?;
            }
            "rating" | "min_rating" => self.min_rating = number(value, "rating")?,
            "in_stock" => {
                self.in_stock = Some(match value.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" => true,
                    "false" | "no" | "0" => false,
                    other => return Err(format!("filter in_stock: expected true or false, got '{other}'")),
                })
            }
            "brand" | "category" => return Err(format!("filter {field}: the value is empty")),
            other => return Err(format!("unknown filter field '{other}' (fields: {})", Self::FIELDS)),
        }
        Ok(())
    }

    /// Checks ranges that no product could satisfy because they are written wrongly.
    pub fn validate(&self) -> Result<(), String> {
        if let (Some(min), Some(max)) = (self.price_min, self.price_max) {
            if min > max {
                return Err(format!("filter price: minimum {min} is above maximum {max}"));
            }
        }
        for price in [self.price_min, self.price_max].into_iter().flatten() {
            if !price.is_finite() {
                return Err("filter price: not a finite number".into());
            }
        }
        if let Some(rating) = self.min_rating {
            if !(0.0..=5.0).contains(&rating) {
                return Err(format!("filter rating: must be between 0 and 5, got {rating}"));
            }
        }
        Ok(())
    }
}

/// One search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub query: String,
    pub k: usize,
    /// Results skipped before the `k` returned (pagination): ranks start at `offset + 1`.
    pub offset: usize,
    pub ranker: RankerKind,
    pub filters: Filters,
    /// Count brands and categories over all matching products.
    pub facets: bool,
    pub explain: bool,
    /// Utility weights overriding the index's `[utility]` for this request (learned
    /// rankers only).
    pub utility: Option<crate::rank::utility::Weights>,
    /// Which model scores: the final one, or for evaluation the fold model that never saw
    /// the query.
    pub scoring: crate::rank::Scoring,
}

impl SearchRequest {
    pub fn new(query: impl Into<String>) -> Self {
        SearchRequest {
            query: query.into(),
            k: DEFAULT_K,
            offset: 0,
            ranker: RankerKind::Bm25,
            filters: Filters::default(),
            facets: false,
            explain: false,
            utility: None,
            scoring: crate::rank::Scoring::Final,
        }
    }

    pub fn with_k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// Checks the limits every entry point shares.
    pub fn validate(&self) -> Result<(), String> {
        if self.query.trim().is_empty() {
            return Err("q must not be empty".into());
        }
        if crate::lexical::text::is_blank(&self.query) {
            // Control and zero-width characters (a NUL from a broken client, a pasted U+200B)
            // match no word, and the encoder would place them anywhere: better said than
            // answered with arbitrary neighbours.
            return Err("q has no visible characters (only control or zero-width ones)".into());
        }
        if self.query.len() > MAX_QUERY_BYTES {
            return Err(format!("q is {} bytes long; the limit is {MAX_QUERY_BYTES}", self.query.len()));
        }
        let words = self.query.split_whitespace().count();
        if words > MAX_QUERY_WORDS {
            return Err(format!("q has {words} words; the limit is {MAX_QUERY_WORDS}"));
        }
        if self.k == 0 || self.k > MAX_K {
            return Err(format!("k must be between 1 and {MAX_K}, got {}", self.k));
        }
        if self.offset > MAX_OFFSET {
            return Err(format!("offset must be at most {MAX_OFFSET}, got {}", self.offset));
        }
        self.filters.validate()
    }
}

/// The rank and score a result had in one candidate source.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SourceScore {
    /// 1-based rank within that source.
    pub rank: usize,
    /// The source's own score (BM25, or cosine similarity).
    pub score: f32,
}

/// The candidate sources that proposed a product, each with the product's rank and score
/// there; a source that did not propose it is absent (in JSON: `{"bm25": {rank, score},
/// "dense": {rank, score}}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bm25: Option<SourceScore>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dense: Option<SourceScore>,
}

impl Sources {
    /// How many sources proposed the product (0, 1 or 2).
    pub fn count(&self) -> usize {
        usize::from(self.bm25.is_some()) + usize::from(self.dense.is_some())
    }
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Hit {
    pub id: String,
    pub title: String,
    /// The ranker's score (the utility's, when weights other than relevance alone are in
    /// force); results come in descending order of it.
    pub score: f32,
    /// 1-based rank in this response.
    pub rank: usize,
    /// Each candidate source that proposed this product (`bm25`, `dense`), with its rank there.
    pub sources: Sources,
    pub product: Product,
    /// With `explain=true` under a learned ranker: `{score, bias, method, features: {NAME:
    /// {value, contribution}}, top: [{feature, contribution}], heads?, members?, residual?,
    /// utility?}`. The contributions and the bias sum to the ranker's score (method `shap`
    /// for ltr: exact; `integrated_gradients` for neural and `blend` for ensemble: up to
    /// `residual`). `heads`: the neural ranker's other heads (rating in stars; in_stock,
    /// popularity, and the engagement heads click, add_to_cart and purchase as
    /// probabilities). `utility` (when weights other than relevance alone are in force):
    /// `{score, terms: [{term, value, weight, contribution, note?}]}`, whose contributions
    /// sum to the result's score.
    // Free-form: its keys depend on the ranker and the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub explain: Option<serde_json::Value>,
}

/// How many matching products have one brand or category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

/// What every product that matched offers to filter by: counts of brands and categories,
/// the price range, ratings and stock.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Facets {
    pub brand: Vec<FacetCount>,
    /// Top-level categories, and the children of the filtered category when there is one.
    pub category: Vec<FacetCount>,
    /// The lowest and highest price; absent when no matching product has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub price: Option<PriceRange>,
    /// Products with at least `4`, `3`, `2`, `1` stars (the values of `filter=rating:N`),
    /// best first; a value no product reaches is left out.
    #[serde(default)]
    pub rating: Vec<FacetCount>,
    /// Products in stock (`true`) and out of stock (`false`).
    #[serde(default)]
    pub in_stock: Vec<FacetCount>,
}

/// The prices of the matching products span this range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PriceRange {
    pub min: f64,
    pub max: f64,
}

/// Milliseconds spent in each stage; a stage the ranker did not use is left out.
// `nullable = false`: a stage left out is absent, never `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Timings {
    /// BM25 retrieval (with facets).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub lexical: Option<f64>,
    /// Embedding the query and the nearest-neighbour search.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub dense: Option<f64>,
    /// Fusing the BM25 and dense candidates.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub fusion: Option<f64>,
    /// Computing a learned ranker's features.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub features: Option<f64>,
    /// Scoring by a learned ranker.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub rank: Option<f64>,
    /// Reading the returned products from the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub fetch: Option<f64>,
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    /// Names this answer in `POST /events` (set by the server; absent from the CLI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub impression_id: Option<String>,
    pub query: String,
    /// The ranker that ordered the results.
    pub ranker: RankerKind,
    /// Time spent in the server on this search, in milliseconds.
    pub took_ms: f64,
    /// Products that matched before the cut to `k`; the facets count exactly these.
    pub total_candidates: u64,
    /// True when typo tolerance (fuzzy matching) took part.
    pub fuzzy: bool,
    /// True when too few products held enough of the query's words, so one word sufficed.
    pub relaxed: bool,
    pub results: Vec<Hit>,
    /// Absent when the request turned facets off, and under the `dense` ranker.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub facets: Option<Facets>,
    pub timings_ms: Timings,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_clauses_parse_and_bad_ones_say_why() {
        let mut filters = Filters::default();
        filters.add_clause("price:..50").unwrap();
        assert_eq!((filters.price_min, filters.price_max), (None, Some(50.0)));
        filters.add_clause("price:20..").unwrap();
        assert_eq!((filters.price_min, filters.price_max), (Some(20.0), None));
        filters.add_clause("brand:A:B Co").unwrap();
        assert_eq!(filters.brand, ["A:B Co"]);
        assert!(filters.add_clause("price:50..10").unwrap_err().contains("above maximum"));
        assert!(filters.add_clause("price:cheap").unwrap_err().contains("not a number"));
        assert!(filters.add_clause("rating:9").unwrap_err().contains("between 0 and 5"));
        assert!(filters.add_clause("in_stock:maybe").is_err());
        assert!(filters.add_clause("nocolon").unwrap_err().contains("field:value"));
        assert!(filters.add_clause("brand:").is_err());
    }

    #[test]
    fn request_limits() {
        assert!(SearchRequest::new("chair").validate().is_ok());
        assert!(SearchRequest::new("  ").validate().is_err());
        for invisible in ["\0\0", "\u{200B}\u{200B}", " \u{FEFF}\t"] {
            let error = SearchRequest::new(invisible).validate().unwrap_err();
            assert!(error.contains("no visible characters"), "{invisible:?}: {error}");
        }
        assert!(SearchRequest::new("\u{FEFF}chair\0").validate().is_ok(), "visible words around them are kept");
        assert!(SearchRequest::new("chair").with_k(0).validate().is_err());
        assert!(SearchRequest::new("chair").with_k(MAX_K + 1).validate().is_err());
        assert!("BM25".parse::<RankerKind>().is_ok());
        assert!("magic".parse::<RankerKind>().unwrap_err().contains("unknown ranker"));
    }
}
