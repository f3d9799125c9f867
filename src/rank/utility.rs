//! Utility: relevance weighed against the shop's other goals.
//!
//! A shop does not only want the most relevant products first: it may prefer well-rated
//! ones, ones in stock, popular ones, or (once engagement heads are trained) ones shoppers
//! will buy. The utility of a candidate is a weighted sum of **terms**, each scaled to
//! about 0..1 within the query's reranked candidates:
//!
//! | term | value |
//! | --- | --- |
//! | `relevance` | the ranker's relevance, min-max scaled over the candidates (1 = the best) |
//! | `rating` | stars / 5; a product without a rating gets the neural `rating` head's estimate, else the candidates' mean |
//! | `in_stock` | 1 or 0; unknown: the neural `in_stock` head's probability, else 0.5 |
//! | `popularity` | ln(1 + popularity) / the candidates' largest; unknown: 0 |
//! | `click`, `add_to_cart`, `purchase` | the neural engagement head's probability, over the candidates' largest (1 = the likeliest; only when trained) |
//!
//! Weights come from the index's `[utility]` table and can be overridden per request
//! (`utility=relevance:1,rating:0.2`). With the default, relevance alone, results keep the
//! ranker's own order and scores.
//!
//! ```
//! use shelf::rank::utility::Weights;
//!
//! let shop: Weights = "relevance:1,in_stock:0.3".parse().unwrap();
//! let request: Weights = "rating:0.2".parse().unwrap();
//! let used = shop.overridden_by(&request);
//! assert_eq!(used.get("rating"), 0.2);
//! assert_eq!(used.get("in_stock"), 0.3);
//! assert_eq!(used.to_string().parse::<Weights>().unwrap(), used);
//! assert!("colour:1".parse::<Weights>().unwrap_err().contains("unknown utility term"));
//! ```

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Scored;
use crate::catalog::Product;

/// Every term a utility may weigh.
pub const TERMS: [&str; 7] = ["relevance", "rating", "in_stock", "popularity", "click", "add_to_cart", "purchase"];
/// Terms that only a ranker's head can supply.
const HEAD_TERMS: [&str; 3] = ["click", "add_to_cart", "purchase"];
/// The largest weight a term may have (a larger one is surely a typo).
const MAX_WEIGHT: f64 = 100.0;

/// Weights of the utility's terms, e.g. `{"relevance": 1, "rating": 0.2}`: an object of
/// term to weight (-100 to 100). Terms: relevance, rating, in_stock, popularity, click,
/// add_to_cart, purchase. A term left out weighs 0, except `relevance` which weighs 1
/// unless set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(example = json!({"relevance": 1, "rating": 0.2}))]
pub struct Weights(BTreeMap<String, f64>);

impl Default for Weights {
    fn default() -> Self {
        Weights(BTreeMap::from([("relevance".to_string(), 1.0)]))
    }
}

impl Weights {
    pub fn get(&self, term: &str) -> f64 {
        match self.0.get(term) {
            Some(weight) => *weight,
            None if term == "relevance" => 1.0,
            None => 0.0,
        }
    }

    pub fn set(&mut self, term: &str, weight: f64) -> Result<(), String> {
        if !TERMS.contains(&term) {
            return Err(format!("unknown utility term '{term}' (terms: {})", TERMS.join(", ")));
        }
        if !weight.is_finite() || weight.abs() > MAX_WEIGHT {
            return Err(format!("utility weight of {term} must be a number between -{MAX_WEIGHT} and {MAX_WEIGHT}"));
        }
        self.0.insert(term.to_string(), weight);
        Ok(())
    }

    /// These weights with every term `other` sets replaced by its weight there.
    pub fn overridden_by(&self, other: &Weights) -> Weights {
        let mut merged = self.clone();
        merged.0.extend(other.0.iter().map(|(term, weight)| (term.clone(), *weight)));
        merged
    }

    /// Whether the utility is relevance alone (results keep the ranker's scores).
    pub fn is_relevance_only(&self) -> bool {
        TERMS.iter().all(|term| if *term == "relevance" { self.get(term) == 1.0 } else { self.get(term) == 0.0 })
    }

    /// The terms with a non-zero weight, in [`TERMS`] order.
    pub fn active(&self) -> Vec<(&'static str, f64)> {
        TERMS.iter().map(|t| (*t, self.get(t))).filter(|(_, w)| *w != 0.0).collect()
    }

    /// Checks every term name and weight (for weights read from a file).
    pub fn validate(&self) -> Result<(), String> {
        let mut checked = Weights(BTreeMap::new());
        self.0.iter().try_for_each(|(term, weight)| checked.set(term, *weight))
    }
}

impl FromStr for Weights {
    type Err = String;

    /// `relevance:1,rating:0.2` (the form of `?utility=`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut weights = Weights(BTreeMap::new());
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (term, weight) = part
                .split_once(':')
                .ok_or_else(|| format!("utility '{part}' must look like term:weight (e.g. rating:0.2)"))?;
            let weight: f64 = weight
                .trim()
                .parse()
                .map_err(|_| format!("utility weight of {term} must be a number, got '{weight}'"))?;
            weights.set(term.trim(), weight)?;
        }
        if weights.0.is_empty() {
            return Err("utility is empty: give term:weight pairs such as relevance:1,rating:0.2".into());
        }
        Ok(weights)
    }
}

impl std::fmt::Display for Weights {
    /// The form [`FromStr`] reads: `rating:0.2,relevance:1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(term, weight)| format!("{term}:{weight}")).collect();
        f.write_str(&parts.join(","))
    }
}

/// One candidate's utility, term by term.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Term {
    pub term: &'static str,
    /// The term's value for this candidate (about 0..1).
    pub value: f64,
    pub weight: f64,
    /// `value × weight`.
    pub contribution: f64,
    /// Where the value came from when the catalogue lacked it (`estimated by the rating
    /// head`, `unknown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

/// The utility of each candidate, with its terms.
pub struct Blend {
    pub totals: Vec<f64>,
    pub terms: Vec<Vec<Term>>,
}

/// Blends a ranker's scores of candidates with the products' signals.
pub fn blend(weights: &Weights, scored: &Scored, products: &[&Product]) -> Result<Blend, String> {
    let n = products.len();
    let active = weights.active();
    for (term, _) in &active {
        if HEAD_TERMS.contains(term) && !scored.heads.contains_key(*term) {
            return Err(format!(
                "utility term '{term}' needs a ranker with a trained {term} head (train one from engagement events)"
            ));
        }
    }
    let relevance = min_max(&scored.relevance);
    let known_ratings: Vec<f64> = products.iter().filter_map(|p| p.rating).collect();
    let mean_rating = if known_ratings.is_empty() {
        None
    } else {
        Some(known_ratings.iter().sum::<f64>() / known_ratings.len() as f64)
    };
    let log_popularity: Vec<Option<f64>> =
        products.iter().map(|p| p.popularity.filter(|v| *v >= 0.0).map(f64::ln_1p)).collect();
    let top_popularity = log_popularity.iter().flatten().copied().fold(0.0f64, f64::max);
    let head = |name: &str, at: usize| scored.heads.get(name).and_then(|values| values.get(at)).copied();
    // Engagement probabilities are small (a purchase is rare): each is scaled by the
    // likeliest candidate's, so its weight means what relevance's does.
    let likeliest: BTreeMap<&str, f64> = active
        .iter()
        .filter(|(term, _)| HEAD_TERMS.contains(term))
        .filter_map(|(term, _)| {
            scored.heads.get(*term).map(|values| (*term, values.iter().copied().fold(0.0, f64::max)))
        })
        .collect();

    let mut totals = Vec::with_capacity(n);
    let mut terms = Vec::with_capacity(n);
    for (at, product) in products.iter().enumerate() {
        let mut row = Vec::with_capacity(active.len());
        for &(term, weight) in &active {
            let (value, note) = match term {
                "relevance" => (relevance.get(at).copied().unwrap_or(0.0), None),
                "rating" => match (product.rating, head("rating", at), mean_rating) {
                    (Some(stars), _, _) => (stars / 5.0, None),
                    (None, Some(stars), _) => (stars / 5.0, Some("estimated by the rating head")),
                    (None, None, Some(mean)) => (mean / 5.0, Some("unknown: the candidates' mean")),
                    (None, None, None) => (0.5, Some("unknown")),
                },
                "in_stock" => match (product.in_stock, head("in_stock", at)) {
                    (Some(stock), _) => (if stock { 1.0 } else { 0.0 }, None),
                    (None, Some(p)) => (p, Some("estimated by the in_stock head")),
                    (None, None) => (0.5, Some("unknown")),
                },
                "popularity" => match log_popularity[at] {
                    Some(p) if top_popularity > 0.0 => (p / top_popularity, None),
                    Some(_) => (0.0, None),
                    None => (0.0, Some("unknown")),
                },
                _ => match (head(term, at), likeliest.get(term)) {
                    (Some(p), Some(&top)) if top > 0.0 => (p / top, None),
                    _ => (0.0, None),
                },
            };
            row.push(Term { term, value, weight, contribution: value * weight, note });
        }
        totals.push(row.iter().map(|t| t.contribution).sum());
        terms.push(row);
    }
    Ok(Blend { totals, terms })
}

/// Scores scaled to 0..1 over the list (all 1 when they are equal).
fn min_max(scores: &[f64]) -> Vec<f64> {
    let low = scores.iter().copied().fold(f64::INFINITY, f64::min);
    let high = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if high - low <= f64::EPSILON {
        return vec![1.0; scores.len()];
    }
    scores.iter().map(|s| (s - low) / (high - low)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(json: &str) -> Product {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn parsing_overrides_and_refusals() {
        let weights: Weights = " relevance:1 , rating:0.25,".parse().unwrap();
        assert_eq!(weights.get("rating"), 0.25);
        assert_eq!(weights.get("popularity"), 0.0);
        assert!(!weights.is_relevance_only());
        assert!(Weights::default().is_relevance_only());
        assert!("rating:0".parse::<Weights>().unwrap().is_relevance_only(), "relevance defaults to 1");
        for (bad, says) in [
            ("rating", "term:weight"),
            ("rating:high", "must be a number"),
            ("rating:NaN", "between"),
            ("rating:1e9", "between"),
            ("stars:1", "unknown utility term"),
            ("", "empty"),
        ] {
            let error = bad.parse::<Weights>().unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
        let shop: Weights = "relevance:0.8,in_stock:0.5".parse().unwrap();
        let used = shop.overridden_by(&"in_stock:0,rating:0.1".parse().unwrap());
        assert_eq!((used.get("relevance"), used.get("in_stock"), used.get("rating")), (0.8, 0.0, 0.1));
    }

    #[test]
    fn the_blend_adds_weighted_terms_and_fills_unknowns() {
        let products = [
            product(r#"{"id":"a","title":"A","rating":5.0,"in_stock":false,"popularity":99}"#),
            product(r#"{"id":"b","title":"B","rating":3.0,"in_stock":true,"popularity":0}"#),
            product(r#"{"id":"c","title":"C"}"#),
        ];
        let refs: Vec<&Product> = products.iter().collect();
        let scored = Scored { relevance: vec![2.0, 1.0, 0.0], ..Scored::default() };
        let weights: Weights = "relevance:1,rating:0.5,in_stock:0.25,popularity:0.1".parse().unwrap();
        let blend = blend(&weights, &scored, &refs).unwrap();
        // a: relevance 1, rating 1, not in stock, most popular.
        assert!((blend.totals[0] - (1.0 + 0.5 + 0.0 + 0.1)).abs() < 1e-12);
        // b: relevance 0.5, rating 0.6, in stock, popularity 0.
        assert!((blend.totals[1] - (0.5 + 0.3 + 0.25)).abs() < 1e-12);
        // c: relevance 0, rating unknown → the mean (4 stars), stock unknown → 0.5.
        assert!((blend.totals[2] - (0.5 * 0.8 + 0.25 * 0.5)).abs() < 1e-12);
        let rating = blend.terms[2].iter().find(|t| t.term == "rating").unwrap();
        assert_eq!(rating.note, Some("unknown: the candidates' mean"));
        for (total, terms) in blend.totals.iter().zip(&blend.terms) {
            assert!((terms.iter().map(|t| t.contribution).sum::<f64>() - total).abs() < 1e-12);
        }

        // A head's estimate fills a missing rating, and engagement terms need their head.
        let with_head =
            Scored { relevance: vec![1.0, 1.0, 1.0], heads: BTreeMap::from([("rating".into(), vec![0.0, 0.0, 4.5])]) };
        let blend = super::blend(&"rating:1".parse().unwrap(), &with_head, &refs).unwrap();
        assert!((blend.totals[2] - (1.0 + 0.9)).abs() < 1e-12, "equal relevance scales to 1");
        let error = super::blend(&"click:1".parse().unwrap(), &with_head, &refs).err().unwrap();
        assert!(error.contains("click head"), "{error}");

        // An engagement head's probability counts relative to the likeliest candidate's.
        let engaged = Scored {
            relevance: vec![1.0, 0.0, 0.0],
            heads: BTreeMap::from([("purchase".into(), vec![0.01, 0.04, 0.02])]),
        };
        let blend = super::blend(&"relevance:1,purchase:2".parse().unwrap(), &engaged, &refs).unwrap();
        let expected = [1.0 + 2.0 * 0.25, 2.0, 2.0 * 0.5];
        for (total, expected) in blend.totals.iter().zip(expected) {
            assert!((total - expected).abs() < 1e-12, "{:?}", blend.totals);
        }
    }
}
