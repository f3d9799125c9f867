//! Team-draft interleaving: two rankers compared online, in one list, on the same shoppers.
//!
//! Rather than splitting traffic and comparing click-through between two groups (which
//! needs far more searches, because queries differ more than rankers do), each search shows
//! one list merged from both rankers. Like picking sides for a game, the team behind (or a
//! coin, when even) picks its best product not yet in the list. A click credits the team
//! that placed the product; a search whose shopper clicked more of A's products is a win
//! for A. Over many searches, the share of A's wins among decided searches says which
//! ranker shoppers prefer (`shelf events interleaving`).
//!
//! ```
//! use rand::SeedableRng;
//! use shelf::events::interleave::{team_draft, Team};
//!
//! let a = ["p1", "p2", "p3"].map(String::from);
//! let b = ["p2", "p4", "p1"].map(String::from);
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let merged = team_draft(&a, &b, 3, &mut rng);
//! assert_eq!(merged.len(), 3);
//! // Each team placed its own best first: p1 (A's) and p2 (B's) lead, in either order.
//! let first_two: Vec<&str> = merged[..2].iter().map(|(id, _)| id.as_str()).collect();
//! assert!(first_two.contains(&"p1") && first_two.contains(&"p2"));
//! assert!(merged.iter().filter(|(_, t)| *t == Team::A).count() >= 1);
//! ```

use std::collections::{BTreeMap, HashSet};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{EventType, Logged};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Team {
    A,
    B,
}

/// Merges the first `k` of two rankings by team draft; each product with the team that
/// placed it.
pub fn team_draft(a: &[String], b: &[String], k: usize, rng: &mut impl Rng) -> Vec<(String, Team)> {
    let mut merged: Vec<(String, Team)> = Vec::with_capacity(k);
    let mut taken: HashSet<&str> = HashSet::new();
    let (mut next_a, mut next_b) = (0, 0);
    let (mut count_a, mut count_b) = (0, 0);
    while merged.len() < k {
        let a_left = a[next_a..].iter().any(|id| !taken.contains(id.as_str()));
        let b_left = b[next_b..].iter().any(|id| !taken.contains(id.as_str()));
        let team = match (a_left, b_left) {
            (false, false) => break,
            (true, false) => Team::A,
            (false, true) => Team::B,
            _ if count_a < count_b => Team::A,
            _ if count_b < count_a => Team::B,
            _ => {
                if rng.random_bool(0.5) {
                    Team::A
                } else {
                    Team::B
                }
            }
        };
        let (list, next, count) = match team {
            Team::A => (a, &mut next_a, &mut count_a),
            Team::B => (b, &mut next_b, &mut count_b),
        };
        while taken.contains(list[*next].as_str()) {
            *next += 1;
        }
        taken.insert(list[*next].as_str());
        merged.push((list[*next].clone(), team));
        *count += 1;
    }
    merged
}

/// The outcome of one pair of rankers over a log.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub impressions: u64,
    pub wins_a: u64,
    pub wins_b: u64,
    pub ties: u64,
    /// Share of A's wins among decided searches, with a 95 % Wilson interval.
    pub win_rate_a: f64,
    pub interval: (f64, f64),
    /// Two-sided sign test of "A and B are preferred equally" (normal approximation).
    pub p_value: f64,
}

/// Win rates of every interleaved pair in a log.
pub fn compare(log: &[Logged]) -> Vec<Comparison> {
    let mut tallies: BTreeMap<(String, String), [u64; 4]> = BTreeMap::new();
    for logged in log {
        let Some(trace) = logged.impression.explore.as_ref().and_then(|e| e.get("interleave")) else { continue };
        let (Some(a), Some(b), Some(teams)) = (trace["a"].as_str(), trace["b"].as_str(), trace["teams"].as_array())
        else {
            continue;
        };
        let clicked = logged.strongest_by_position();
        let (mut clicks_a, mut clicks_b) = (0, 0);
        for (team, strongest) in teams.iter().zip(clicked) {
            if strongest.is_some_and(|e| e >= EventType::Click) {
                match team.as_str() {
                    Some("A") => clicks_a += 1,
                    Some("B") => clicks_b += 1,
                    _ => {}
                }
            }
        }
        let tally = tallies.entry((a.to_string(), b.to_string())).or_default();
        tally[0] += 1;
        match clicks_a.cmp(&clicks_b) {
            std::cmp::Ordering::Greater => tally[1] += 1,
            std::cmp::Ordering::Less => tally[2] += 1,
            std::cmp::Ordering::Equal => tally[3] += 1,
        }
    }
    tallies
        .into_iter()
        .map(|((a, b), [impressions, wins_a, wins_b, ties])| {
            let decided = (wins_a + wins_b) as f64;
            let rate = if decided > 0.0 { wins_a as f64 / decided } else { 0.5 };
            let z: f64 = 1.96;
            let interval = if decided > 0.0 {
                let centre = (rate + z * z / (2.0 * decided)) / (1.0 + z * z / decided);
                let half = z * (rate * (1.0 - rate) / decided + z * z / (4.0 * decided * decided)).sqrt()
                    / (1.0 + z * z / decided);
                (centre - half, centre + half)
            } else {
                (0.0, 1.0)
            };
            let p_value = if decided > 0.0 {
                let score = (wins_a as f64 - decided / 2.0).abs() / (decided / 4.0).sqrt();
                2.0 * (1.0 - standard_normal_cdf(score))
            } else {
                1.0
            };
            Comparison { a, b, impressions, wins_a, wins_b, ties, win_rate_a: rate, interval, p_value }
        })
        .collect()
}

fn standard_normal_cdf(x: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::new(0.0, 1.0).map_or(0.5, |n| n.cdf(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn each_team_places_half_and_nothing_twice() {
        let a: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
        let b: Vec<String> = (0..20).rev().map(|i| format!("p{i}")).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for _ in 0..100 {
            let merged = team_draft(&a, &b, 10, &mut rng);
            let unique: HashSet<&String> = merged.iter().map(|(id, _)| id).collect();
            assert_eq!(unique.len(), 10);
            assert_eq!(merged.iter().filter(|(_, t)| *t == Team::A).count(), 5);
        }
        // One list runs out: the other fills the rest.
        let short = team_draft(&a[..2], &b, 6, &mut rng);
        assert_eq!(short.len(), 6);
    }

    /// Shoppers who click A's products more make A win, with a tight interval and a small p.
    #[test]
    fn clicks_on_one_team_make_it_win() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let a: Vec<String> = (0..10).map(|i| format!("a{i}")).collect();
        let b: Vec<String> = (0..10).map(|i| format!("b{i}")).collect();
        let log: Vec<Logged> = (0..400)
            .map(|_| {
                let merged = team_draft(&a, &b, 10, &mut rng);
                let clicked: Vec<&String> = merged
                    .iter()
                    .filter(|(_, team)| rng.random_bool(if *team == Team::A { 0.3 } else { 0.15 }))
                    .map(|(id, _)| id)
                    .collect();
                let shown: Vec<&str> = merged.iter().map(|(id, _)| id.as_str()).collect();
                let events: Vec<(&str, EventType)> = clicked.iter().map(|id| (id.as_str(), EventType::Click)).collect();
                let teams: Vec<Team> = merged.iter().map(|(_, t)| *t).collect();
                let trace = serde_json::json!({"interleave": {"a": "ltr", "b": "hybrid", "teams": teams}});
                crate::events::logged_for_test("q", &shown, &events, Some(trace))
            })
            .collect();
        let result = compare(&log);
        assert_eq!(result.len(), 1);
        let c = &result[0];
        assert_eq!((c.a.as_str(), c.b.as_str(), c.impressions), ("ltr", "hybrid", 400));
        assert!(c.win_rate_a > 0.6 && c.interval.0 > 0.5 && c.p_value < 0.001, "{c:?}");
        assert_eq!(c.wins_a + c.wins_b + c.ties, 400);
    }
}
