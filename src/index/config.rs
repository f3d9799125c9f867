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
    pub lexical: crate::lexical::LexicalConfig,
    pub hybrid: crate::retrieve::HybridConfig,
    pub dense: crate::dense::DenseConfig,
    /// The utility blend's weights (learned rankers).
    pub utility: crate::rank::utility::Weights,
    /// Exploration of the served order, for learning from engagement (off by default).
    pub explore: crate::events::explore::ExploreConfig,
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
        self.lexical.validate()?;
        self.utility.validate()?;
        self.explore.validate()?;
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
        assert_eq!(config.lexical.boosts.brand, crate::lexical::FieldBoosts::default().brand);
        assert!(toml::from_str::<IndexConfig>("[lexical.boosts]\ntitel = 5.0\n").is_err());
        let int8: IndexConfig = toml::from_str("[dense]\nquery_precision = \"int8\"\n").unwrap();
        assert_eq!(int8.dense.query_precision, crate::dense::Precision::Int8);
        assert!(toml::from_str::<IndexConfig>("[dense]\nquery_precision = \"int4\"\n").is_err());
        assert_eq!(IndexConfig::default().dense.walk, crate::dense::Precision::Fp32);
        let int8_walk: IndexConfig = toml::from_str("[dense]\nwalk = \"int8\"\n").unwrap();
        assert_eq!(int8_walk.dense.walk, crate::dense::Precision::Int8);
        let round_trip: IndexConfig = toml::from_str(&IndexConfig::default().to_toml()).unwrap();
        assert_eq!(round_trip, IndexConfig::default());
        // The checkout running the test (cargo sets it at run time too), not only the one compiled.
        let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
        let shipped = IndexConfig::from_file(&std::path::Path::new(&root).join("index/shelf.toml"));
        assert_eq!(shipped.unwrap(), IndexConfig::default(), "index/shelf.toml holds the defaults");
    }
}
