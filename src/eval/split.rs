//! Tuning and reporting parts of a judged query set.
//!
//! A number tuned on the queries it reports is not a result. Every judged query belongs to
//! one of two parts by a hash of its text (trimmed, lowercased), so the split needs no file,
//! is the same on every machine, and puts repeated query texts in the same part. Choices
//! (hyperparameters, blend weights) are made on the `tune` part; results are reported on
//! the `report` part (`shelf eval --part report`).
//!
//! ```
//! use shelf::eval::split::Part;
//!
//! let part = Part::of("deck over");
//! assert_eq!(part, Part::of("  Deck Over "));
//! assert!(matches!(part, Part::Tune | Part::Report));
//! ```

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Tune,
    Report,
}

impl Part {
    /// The part a query text belongs to: the low bit of its hash's first byte.
    pub fn of(query: &str) -> Part {
        let digest = Sha256::digest(query.trim().to_lowercase().as_bytes());
        if digest[0] & 1 == 0 {
            Part::Tune
        } else {
            Part::Report
        }
    }

    /// The queries of `queries` in this part.
    pub fn select(self, queries: &[(String, String)]) -> Vec<(String, String)> {
        queries.iter().filter(|(_, text)| Part::of(text) == self).cloned().collect()
    }
}

impl FromStr for Part {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tune" => Ok(Part::Tune),
            "report" => Ok(Part::Report),
            other => Err(format!("unknown part '{other}' (tune or report)")),
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Tune => "tune",
            Part::Report => "report",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_stable_balanced_and_disjoint() {
        let queries: Vec<(String, String)> =
            (0..2000).map(|i| (format!("q{i}"), format!("query number {i}"))).collect();
        let (tune, report) = (Part::Tune.select(&queries), Part::Report.select(&queries));
        assert_eq!(tune.len() + report.len(), queries.len());
        assert!((900..1100).contains(&tune.len()), "{} of 2000 in tune", tune.len());
        assert!(tune.iter().all(|t| !report.iter().any(|r| r.1 == t.1)), "no query text in both parts");
        // Fixed by the text alone: the same answer on every machine and run.
        assert_eq!(Part::of("36 in vanity grey"), Part::of("36 IN VANITY GREY "));
        let known: Vec<Part> =
            ["deck over", "office chair", "grey sofa", "led bulb"].iter().map(|q| Part::of(q)).collect();
        assert_eq!(
            known,
            [Part::Tune, Part::Report, Part::Tune, Part::Report],
            "the split must not change between versions: reported numbers depend on it"
        );
    }
}
