//! Index configuration: the knobs of lexical retrieval, read from a TOML file.
//!
//! `shelf index --config FILE` copies the file into the index directory as `config.toml`;
//! a server or search reads it from there, so editing that copy changes boosts without a
//! rebuild. Every key is optional: missing keys take the defaults shown by
//! `IndexConfig::default()` (and written out in `index/shelf.toml`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::IndexError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    pub lexical: LexicalConfig,
    pub hybrid: crate::retrieve::HybridConfig,
    pub dense: crate::dense::DenseConfig,
}

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

impl IndexConfig {
    pub fn from_file(path: &Path) -> Result<IndexConfig, IndexError> {
        let text = std::fs::read_to_string(path).map_err(|e| IndexError::io(path, e))?;
        let config: IndexConfig = toml::from_str(&text)
            .map_err(|e| IndexError::Config { path: path.display().to_string(), message: e.to_string() })?;
        config.validate().map_err(|message| IndexError::Config { path: path.display().to_string(), message })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let b = &self.lexical.boosts;
        for (name, value) in [
            ("title", b.title),
            ("title_raw", b.title_raw),
            ("joined", b.joined),
            ("description", b.description),
            ("brand", b.brand),
            ("category", b.category),
            ("attributes", b.attributes),
            ("fuzzy.boost", self.lexical.fuzzy.boost),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(format!("lexical.boosts.{name} must be a non-negative number, got {value}"));
            }
        }
        let share = self.lexical.matching.share;
        if !(0.0..=1.0).contains(&share) {
            return Err(format!("lexical.matching.share must be between 0 and 1, got {share}"));
        }
        if self.lexical.max_query_terms == 0 {
            return Err("lexical.max_query_terms must be at least 1".into());
        }
        let dense = &self.dense;
        if dense.ef_search == 0 || dense.ann.ef_construction == 0 {
            return Err("dense.ef_search and dense.ann.ef_construction must be at least 1".into());
        }
        if !dense.text.contains(&crate::dense::TextPart::Title) {
            return Err("dense.text must include \"title\"".into());
        }
        if !(2..=255).contains(&dense.ann.m) {
            return Err(format!("dense.ann.m must be between 2 and 255, got {}", dense.ann.m));
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_files_take_defaults_and_typos_are_refused() {
        let config: IndexConfig = toml::from_str("[lexical.boosts]\ntitle = 5.0\n").unwrap();
        assert_eq!(config.lexical.boosts.title, 5.0);
        assert_eq!(config.lexical.boosts.brand, FieldBoosts::default().brand);
        assert!(toml::from_str::<IndexConfig>("[lexical.boosts]\ntitel = 5.0\n").is_err());
        let round_trip: IndexConfig = toml::from_str(&IndexConfig::default().to_toml()).unwrap();
        assert_eq!(round_trip, IndexConfig::default());
        let shipped =
            IndexConfig::from_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("index/shelf.toml"));
        assert_eq!(shipped.unwrap(), IndexConfig::default(), "index/shelf.toml holds the defaults");
    }
}
