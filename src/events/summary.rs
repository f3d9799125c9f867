//! What a merchandiser reads off the log first: how click-through falls with position, how
//! much of that fall is position bias (the estimated examination curve), and the queries to
//! act on — those that found nothing, and those whose results nobody clicked.
//!
//! ```
//! use shelf::events::summary::Summary;
//! use shelf::events::store::read_log;
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("log.sqlite");
//! # shelf::events::EventLog::open(&path).unwrap();
//! let summary = Summary::of(&read_log(&path).unwrap(), 10, 10);
//! assert_eq!(summary.impressions, 0);
//! assert!(summary.curve.is_none()); // no exploration logged: no curve
//! ```

use std::collections::HashMap;

use serde::Serialize;

use super::bias::{clicks_by_position, PositionCurve};
use super::labels::query_key;
use super::{EventType, Logged};

/// Bootstrap resamples of the curve's bands: enough for a chart.
const RESAMPLES: usize = 200;

/// Click-through at one position.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PositionRate {
    /// 1-based.
    pub position: usize,
    /// Impressions that showed something at this position.
    pub shown: u64,
    /// Of those, how many had an event (click or stronger) on it.
    pub clicked: u64,
    pub rate: f64,
}

/// A query and how often shoppers searched for it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueryCount {
    /// The query as first logged (grouped case- and space-insensitively).
    pub query: String,
    pub searches: u64,
}

/// The engagement at a glance.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub impressions: u64,
    pub events: u64,
    pub by_position: Vec<PositionRate>,
    /// The examination curve from swapped pairs; absent until exploration with swaps has
    /// drawn clicks on both sides of a pair.
    pub curve: Option<PositionCurve>,
    /// Most-searched queries that returned nothing.
    pub zero_results: Vec<QueryCount>,
    /// Most-searched queries with results but no event on any of them.
    pub no_clicks: Vec<QueryCount>,
}

impl Summary {
    /// Summarises `log` over the first `positions` positions, listing `top` queries each.
    pub fn of(log: &[Logged], positions: usize, top: usize) -> Summary {
        let by_position = clicks_by_position(log, positions)
            .into_iter()
            .enumerate()
            .map(|(at, (shown, clicked))| PositionRate {
                position: at + 1,
                shown,
                clicked,
                rate: if shown > 0 { clicked as f64 / shown as f64 } else { 0.0 },
            })
            .collect();
        let curve = PositionCurve::estimate(log, positions, RESAMPLES, 7);
        let mut zero_results = Tally::default();
        let mut no_clicks = Tally::default();
        for logged in log {
            let query = &logged.impression.query;
            if logged.impression.shown.is_empty() {
                zero_results.add(query);
            } else if !logged.events.iter().any(|e| e.kind >= EventType::Click) {
                no_clicks.add(query);
            }
        }
        Summary {
            impressions: log.len() as u64,
            events: log.iter().map(|l| l.events.len() as u64).sum(),
            by_position,
            curve: (curve.positions.len() > 1).then_some(curve),
            zero_results: zero_results.top(top),
            no_clicks: no_clicks.top(top),
        }
    }
}

/// Searches per query, keyed case- and space-insensitively.
#[derive(Default)]
struct Tally {
    counts: HashMap<String, QueryCount>,
}

impl Tally {
    fn add(&mut self, query: &str) {
        self.counts
            .entry(query_key(query))
            .or_insert_with(|| QueryCount { query: query.trim().to_string(), searches: 0 })
            .searches += 1;
    }

    /// The most searched first; ties alphabetically, so the list is stable.
    fn top(self, n: usize) -> Vec<QueryCount> {
        let mut all: Vec<QueryCount> = self.counts.into_values().collect();
        all.sort_by(|a, b| b.searches.cmp(&a.searches).then_with(|| a.query.cmp(&b.query)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::logged_for_test;

    #[test]
    fn lists_the_queries_to_act_on() {
        let log = vec![
            logged_for_test("Sofa", &["a", "b"], &[("b", EventType::Click)], None),
            logged_for_test("lamp", &["c"], &[], None),
            logged_for_test(" LAMP ", &["c"], &[], None),
            logged_for_test("zzz", &[], &[], None),
            logged_for_test("qqq", &[], &[], None),
            logged_for_test("zzz", &[], &[], None),
        ];
        let summary = Summary::of(&log, 3, 10);
        assert_eq!((summary.impressions, summary.events), (6, 1));
        let names = |list: &[QueryCount]| list.iter().map(|q| (q.query.clone(), q.searches)).collect::<Vec<_>>();
        assert_eq!(names(&summary.zero_results), [("zzz".to_string(), 2), ("qqq".to_string(), 1)]);
        assert_eq!(names(&summary.no_clicks), [("lamp".to_string(), 2)]);
        // Position 2 was clicked once in the one impression that showed it.
        assert_eq!(summary.by_position[1], PositionRate { position: 2, shown: 1, clicked: 1, rate: 1.0 });
        assert_eq!(summary.by_position[0].rate, 0.0);
        assert_eq!(summary.by_position[0].shown, 3);
        assert!(summary.curve.is_none());
        assert_eq!(Summary::of(&log, 3, 1).zero_results.len(), 1);
    }
}
