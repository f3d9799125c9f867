//! Lexical retrieval's knobs: field boosts, typo tolerance and which products match at all.
//! They are the `[lexical]` table of an index's `config.toml` ([`crate::index::IndexConfig`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LexicalConfig {
    /// Weight of each field's BM25 score in the sum that ranks products.
    pub boosts: FieldBoosts,
    pub fuzzy: FuzzyConfig,
    pub matching: MatchConfig,
    /// When fewer products than this match, the search widens: every word may also match
    /// fuzzily, and one word of the query is enough.
    pub min_hits: usize,
    /// Distinct query terms used per field; the rest of a very long query is ignored.
    pub max_query_terms: usize,
}

impl Default for LexicalConfig {
    fn default() -> Self {
        LexicalConfig {
            boosts: FieldBoosts::default(),
            fuzzy: FuzzyConfig::default(),
            matching: MatchConfig::default(),
            min_hits: 10,
            max_query_terms: 32,
        }
    }
}

/// How many of the query's words a product must contain (in any field) to match at all.
/// Scores do not change; this decides what counts as a result, and so the totals and facets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchConfig {
    /// Queries of up to this many words need every word.
    pub all_up_to: usize,
    /// Longer queries need this share of their words, rounded up.
    pub share: f64,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig { all_up_to: 2, share: 0.75 }
    }
}

/// Per-field boosts; 0 leaves a field out of matching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldBoosts {
    /// The title, English-stemmed ("chairs" matches "chair").
    pub title: f32,
    /// The title unstemmed, with letter/digit runs split ("36in" matches "36 in").
    pub title_raw: f32,
    /// Two adjacent query words written together in the unstemmed title: "deck over"
    /// finds "DeckOver". A compound hit stands for two words, so it weighs about as much as
    /// both words' title matches.
    pub joined: f32,
    pub description: f32,
    pub brand: f32,
    pub category: f32,
    pub attributes: f32,
}

impl Default for FieldBoosts {
    fn default() -> Self {
        FieldBoosts {
            title: 2.0,
            title_raw: 0.75,
            joined: 3.0,
            description: 0.6,
            brand: 1.0,
            category: 1.5,
            attributes: 1.0,
        }
    }
}

/// Typo tolerance: query terms also match titles within a small edit distance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FuzzyConfig {
    /// A word that no title contains is always matched fuzzily; other words only when the
    /// search widens (see `LexicalConfig::min_hits`).
    pub enabled: bool,
    /// Terms shorter than this are never fuzzy (too many near neighbours).
    pub min_term_len: usize,
    /// Score of a fuzzy match (an exact BM25 term match scores about 2 to 10). High, because
    /// a word no title contains is usually the word the shopper cares about, misspelled.
    pub boost: f32,
}

impl Default for FuzzyConfig {
    fn default() -> Self {
        FuzzyConfig { enabled: true, min_term_len: 4, boost: 10.0 }
    }
}

impl LexicalConfig {
    /// Refuses values no search could use.
    pub fn validate(&self) -> Result<(), String> {
        let b = &self.boosts;
        for (name, value) in [
            ("title", b.title),
            ("title_raw", b.title_raw),
            ("joined", b.joined),
            ("description", b.description),
            ("brand", b.brand),
            ("category", b.category),
            ("attributes", b.attributes),
            ("fuzzy.boost", self.fuzzy.boost),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(format!("lexical.boosts.{name} must be a non-negative number, got {value}"));
            }
        }
        let share = self.matching.share;
        if !(0.0..=1.0).contains(&share) {
            return Err(format!("lexical.matching.share must be between 0 and 1, got {share}"));
        }
        if self.max_query_terms == 0 {
            return Err("lexical.max_query_terms must be at least 1".into());
        }
        Ok(())
    }
}
