//! Counterfactual evaluation: how a ranker that was never served would have done, from a
//! log collected under exploration.
//!
//! The item-position estimator: for each logged impression, look at the products the
//! candidate ranker would put at each position; where the logged list happened to show
//! that product at that position, its clicks count, weighted by 1 / the propensity with
//! which exploration put it there. Averaged over impressions this is **IPS**, unbiased for
//! the candidate's clicks per search under the position-based click model. **SNIPS**
//! divides each (query, position) cell by the weights that landed in it instead of the
//! impression count: a little biased, far less noisy.
//!
//! Cells where the log never showed the candidate's product at that position count
//! nothing: `support` is the share of the candidate's (search, position) slots that some
//! logged impression matched — how much of the traffic the estimate speaks for.
//!
//! A candidate that moves products further than exploration did leaves many cells empty.
//! **PBM** (the position-based model) needs less: each product's clicks per examination
//! for the query (clicks / Σ θ(position shown), θ from [`super::bias`]), wherever it was
//! shown, times the examination of the position the candidate gives it. It trusts the
//! click model; `pbm_support` is the share of slots whose product was shown at all.
//!
//! ```
//! use shelf::events::counterfactual::Cell;
//!
//! // Shown there in 2 of 4 impressions with propensity 0.5, clicked once.
//! let mut cell = Cell::default();
//! for (matched, clicked) in [(true, true), (true, false), (false, false), (false, false)] {
//!     cell.add(matched.then_some(0.5), clicked);
//! }
//! assert_eq!(cell.ips(4.0), 0.5);
//! assert_eq!(cell.snips(), 0.5);
//! ```

use std::collections::{BTreeMap, HashMap};

use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{EventType, Logged};

/// The sums of one (query, position) cell.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cell {
    /// Σ 1/propensity over matched impressions.
    weight: f64,
    /// Σ click/propensity.
    reward: f64,
}

impl Cell {
    /// Adds an impression: `matched` is the propensity when it showed the candidate's
    /// product at this position.
    pub fn add(&mut self, matched: Option<f64>, clicked: bool) {
        if let Some(propensity) = matched.filter(|p| *p > 0.0) {
            self.weight += 1.0 / propensity;
            self.reward += f64::from(u8::from(clicked)) / propensity;
        }
    }

    pub fn ips(&self, impressions: f64) -> f64 {
        if impressions > 0.0 {
            self.reward / impressions
        } else {
            0.0
        }
    }

    pub fn snips(&self) -> f64 {
        if self.weight > 0.0 {
            self.reward / self.weight
        } else {
            0.0
        }
    }
}

/// A ranker's estimated clicks per search.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub impressions: u64,
    pub queries: u64,
    /// Clicks per search in the log itself (the logging policy's).
    pub logged_ctr: f64,
    pub ips: f64,
    pub ips_interval: (f64, f64),
    pub snips: f64,
    pub snips_interval: (f64, f64),
    /// Share of the candidate's (search, position) slots some logged impression matched.
    pub support: f64,
    /// The position-based model's estimate (with an examination curve).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pbm: Option<f64>,
    /// Share of the candidate's slots whose product the log showed for that search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pbm_support: Option<f64>,
}

/// What one query's impressions add up to.
struct QueryCells {
    impressions: f64,
    cells: Vec<Cell>,
    /// Per impression, the cells it matched: `(position index, propensity, clicked)` (for
    /// the IPS interval and for resampling).
    matches: Vec<Vec<(usize, f64, bool)>>,
    /// Per product shown for the query: clicks and examinations (Σ θ(position)).
    shown: HashMap<String, (f64, f64)>,
    /// The candidate's first `k` products for the query.
    list: Vec<String>,
}

/// Estimates the clicks per search of a ranker that shows `target(query, filters)` (its
/// first `k` products) from `log`.
pub fn estimate(
    log: &[Logged],
    k: usize,
    mut target: impl FnMut(&str, &serde_json::Value) -> Vec<String>,
    examination: Option<&super::bias::PositionCurve>,
    resamples: usize,
    seed: u64,
) -> Estimate {
    let mut by_query: BTreeMap<String, QueryCells> = BTreeMap::new();
    let mut logged_clicks = 0.0;
    // Interleaved lists carry no propensities: they cannot speak for another ranker. Later
    // pages are not the first page a ranker would show.
    for logged in log.iter().filter(|l| !l.interleaved() && l.first_page()) {
        let key = format!("{}\u{0}{}", logged.impression.query, logged.impression.filters);
        let query = by_query.entry(key).or_insert_with(|| {
            let mut list = target(&logged.impression.query, &logged.impression.filters);
            list.truncate(k);
            QueryCells {
                impressions: 0.0,
                cells: vec![Cell::default(); list.len()],
                matches: Vec::new(),
                shown: HashMap::new(),
                list,
            }
        });
        let strongest = logged.strongest_by_position();
        let clicked_at =
            |position: usize| strongest.get(position - 1).is_some_and(|e| e.is_some_and(|e| e >= EventType::Click));
        logged_clicks += (1..=logged.impression.shown.len()).filter(|&p| clicked_at(p)).count() as f64;
        if let Some(curve) = examination {
            for shown in &logged.impression.shown {
                let entry = query.shown.entry(shown.product_id.clone()).or_default();
                entry.0 += f64::from(u8::from(clicked_at(shown.position)));
                entry.1 += curve.at(shown.position);
            }
        }
        query.impressions += 1.0;
        let mut matches = Vec::new();
        for (at, product) in query.list.iter().enumerate() {
            let shown = logged.impression.shown.get(at).filter(|s| &s.product_id == product);
            let clicked = shown.is_some() && clicked_at(at + 1);
            query.cells[at].add(shown.map(|s| s.propensity), clicked);
            if let Some(s) = shown.filter(|s| s.propensity > 0.0) {
                matches.push((at, s.propensity, clicked));
            }
        }
        query.matches.push(matches);
    }
    let queries: Vec<&QueryCells> = by_query.values().collect();
    let total = |queries: &[&QueryCells]| -> (f64, f64, f64) {
        // (impressions, IPS, SNIPS)
        let n: f64 = queries.iter().map(|q| q.impressions).sum();
        let ips: f64 = queries.iter().map(|q| q.cells.iter().map(|c| c.reward).sum::<f64>()).sum();
        let snips: f64 = queries.iter().map(|q| q.impressions * q.cells.iter().map(Cell::snips).sum::<f64>()).sum();
        (n, if n > 0.0 { ips / n } else { 0.0 }, if n > 0.0 { snips / n } else { 0.0 })
    };
    let (n, ips, snips) = total(&queries);
    // IPS: a mean of independent per-impression values.
    let values: Vec<f64> = queries
        .iter()
        .flat_map(|q| q.matches.iter())
        .map(|matched| matched.iter().map(|&(_, propensity, clicked)| f64::from(u8::from(clicked)) / propensity).sum())
        .collect();
    let sd = if values.len() > 1 {
        (values.iter().map(|v| (v - ips).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    let half = 1.96 * sd / n.max(1.0).sqrt();
    // SNIPS: resample each query's impressions (the queries' shares of traffic stay).
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let samples: Vec<f64> = (0..if queries.is_empty() { 0 } else { resamples })
        .map(|_| {
            let snips: f64 = queries
                .iter()
                .map(|q| {
                    let mut cells = vec![Cell::default(); q.cells.len()];
                    for _ in 0..q.matches.len() {
                        for &(at, propensity, clicked) in &q.matches[rng.random_range(0..q.matches.len())] {
                            cells[at].add(Some(propensity), clicked);
                        }
                    }
                    q.impressions * cells.iter().map(Cell::snips).sum::<f64>()
                })
                .sum();
            snips / n.max(1.0)
        })
        .collect();
    // A normal interval from the resamples' spread: resampling a query with few matches can
    // lose them all, which biases the resamples' quantiles low.
    let spread = if samples.len() > 1 {
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        (samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (samples.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    let slots: f64 = queries.iter().map(|q| q.impressions * q.cells.len() as f64).sum();
    let supported: f64 =
        queries.iter().map(|q| q.impressions * q.cells.iter().filter(|c| c.weight > 0.0).count() as f64).sum();
    let pbm = examination.map(|curve| {
        let (mut value, mut supported) = (0.0, 0.0);
        for q in &queries {
            for (at, product) in q.list.iter().enumerate() {
                if let Some((clicks, examined)) = q.shown.get(product).filter(|(_, e)| *e > 0.0) {
                    value += q.impressions * curve.at(at + 1) * clicks / examined;
                    supported += q.impressions;
                }
            }
        }
        (value / n.max(1.0), if slots > 0.0 { supported / slots } else { 0.0 })
    });
    Estimate {
        pbm: pbm.map(|p| p.0),
        pbm_support: pbm.map(|p| p.1),
        impressions: n as u64,
        queries: queries.len() as u64,
        logged_ctr: if n > 0.0 { logged_clicks / n } else { 0.0 },
        ips,
        ips_interval: (ips - half, ips + half),
        snips,
        snips_interval: (snips - 1.96 * spread, snips + 1.96 * spread),
        support: if slots > 0.0 { supported / slots } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::explore::ExploreConfig;
    use crate::events::{Event, Impression, Shown};
    use rand::SeedableRng;

    /// A synthetic shop with a known answer: products have click probabilities, positions
    /// examination probabilities; a logging policy explores around one order, and the
    /// estimate of another order's clicks per search must match its true expectation.
    #[test]
    fn ips_and_snips_recover_a_known_click_through() {
        let attraction = [0.1, 0.6, 0.3, 0.8, 0.05, 0.4, 0.2, 0.7];
        let examination = |position: usize| 1.0 / position as f64;
        let k = 4;
        let policy = ExploreConfig { enabled: true, swap: 0.5, insert: 0.5, pool: 4, max_shift: 4 };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut log = Vec::new();
        for _ in 0..60_000 {
            let draw = policy.perturb(k, attraction.len(), &mut rng);
            let shown: Vec<Shown> = draw
                .placements
                .iter()
                .map(|p| Shown {
                    product_id: format!("p{}", p.base_rank - 1),
                    position: p.position,
                    score: 0.0,
                    base_rank: p.base_rank,
                    propensity: p.propensity,
                })
                .collect();
            let events = shown
                .iter()
                .filter(|s| {
                    let a = attraction[s.base_rank - 1];
                    rng.random_bool(examination(s.position) * a)
                })
                .map(|s| Event {
                    event_id: String::new(),
                    product_id: s.product_id.clone(),
                    kind: EventType::Click,
                    value: None,
                    ts_ms: 0,
                })
                .collect();
            log.push(Logged {
                impression: Impression {
                    impression_id: String::new(),
                    ts_ms: 0,
                    query: "q".into(),
                    filters: serde_json::json!({}),
                    ranker: "x".into(),
                    model: None,
                    k,
                    explore: None,
                    shown,
                },
                events,
            });
        }
        // The candidate: swaps the first two, and brings p4 (the 5th) up to position 3.
        let candidate = ["p1", "p0", "p4", "p2"];
        let truth: f64 = candidate
            .iter()
            .enumerate()
            .map(|(at, id)| examination(at + 1) * attraction[id[1..].parse::<usize>().unwrap()])
            .sum();
        let curve = crate::events::bias::PositionCurve::from_ratios(&[0.5, 2.0 / 3.0, 0.75]);
        let estimate =
            estimate(&log, k, |_, _| candidate.iter().map(|s| s.to_string()).collect(), Some(&curve), 100, 1);
        let pbm = estimate.pbm.unwrap();
        assert!((pbm - truth).abs() / truth < 0.03, "pbm {pbm} vs {truth}");
        assert_eq!(estimate.pbm_support, Some(1.0));
        assert_eq!(estimate.support, 1.0);
        for (name, value, (low, high)) in
            [("ips", estimate.ips, estimate.ips_interval), ("snips", estimate.snips, estimate.snips_interval)]
        {
            assert!((value - truth).abs() / truth < 0.03, "{name} {value} vs {truth}");
            assert!(low <= truth && truth <= high, "{name} interval {low}..{high} misses {truth}");
        }
        // A product the log never placed at position 1 leaves that slot unsupported.
        let unseen = estimate_of(&log, &["p7", "p1", "p2", "p3"]);
        assert!((unseen.support - 0.75).abs() < 1e-9, "{}", unseen.support);
    }

    fn estimate_of(log: &[Logged], list: &[&str]) -> Estimate {
        estimate(log, list.len(), |_, _| list.iter().map(|s| s.to_string()).collect(), None, 10, 1)
    }
}
