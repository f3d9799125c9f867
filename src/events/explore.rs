//! Exploration: serving a slightly perturbed order, with the probability of every change
//! known, so that logged clicks can be learned from without the ranker's own bias.
//!
//! A shopper only clicks what they see, and they see the top. A log of clicks on one fixed
//! order says little about the products that order put low, and mixes "relevant" with "was
//! shown high". Exploration changes the served order a little, at random, with known
//! probabilities:
//!
//! - **insert** (probability `insert`): one product from just below the fold (production
//!   ranks k+1 … k+`pool`) is placed at a random slot of the top k, at most `max_shift`
//!   places above where it was; the products below that slot move down one;
//! - **swap** (probability `swap` per pair): adjacent results are paired, starting at an odd
//!   or an even position (each with probability ½), and each pair swaps at random. Swaps
//!   are what the position-bias estimate ([`super::bias`]) harvests: the same two products,
//!   in both orders.
//!
//! Every shown product's **propensity** — the probability that this policy put it at the
//! position it was shown at, given the production order — is exact, and logged with the
//! impression ([`Placement`]).
//!
//! ```
//! use rand::SeedableRng;
//! use shelf::events::explore::ExploreConfig;
//!
//! let policy = ExploreConfig { enabled: true, swap: 0.5, insert: 0.2, pool: 5, max_shift: 10 };
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//! let shown = policy.perturb(10, 15, &mut rng);
//! assert_eq!(shown.placements.len(), 10);
//! // The insert moves a product at most `max_shift` places up, a swap one more.
//! assert!(shown.placements.iter().all(|p| p.base_rank <= p.position + 10 + 1));
//! assert!(shown.placements.iter().all(|p| p.propensity > 0.0 && p.propensity <= 1.0));
//! ```

use rand::Rng;
use serde::{Deserialize, Serialize};

/// The exploration policy: the `[explore]` table of the index configuration. Off unless
/// `enabled` or a request asks (`explore=true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExploreConfig {
    /// Explore requests that do not say (`explore=true|false` decides per request).
    pub enabled: bool,
    /// Probability that each pair of adjacent results swaps.
    pub swap: f64,
    /// Probability that one product from below the fold is inserted into the top k.
    pub insert: f64,
    /// How far below the fold an inserted product may come from (ranks k+1 … k+pool).
    pub pool: usize,
    /// The most places an inserted product may climb.
    pub max_shift: usize,
}

impl Default for ExploreConfig {
    fn default() -> Self {
        ExploreConfig { enabled: false, swap: 0.5, insert: 0.1, pool: 10, max_shift: 10 }
    }
}

/// Where one shown product came from and how likely its position was.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// 1-based position shown.
    pub position: usize,
    /// 1-based rank in the production order.
    pub base_rank: usize,
    /// Probability that the policy shows this product at `position`, given the production
    /// order (1 without exploration).
    pub propensity: f64,
}

/// What one draw of the policy did: the shown order and the random choices behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Perturbed {
    /// One per shown position, in order.
    pub placements: Vec<Placement>,
    /// Pairs start at position 1 (offset 0) or 2 (offset 1).
    pub offset: usize,
    /// First positions of the pairs that swapped.
    pub swapped: Vec<usize>,
    /// `(from production rank, to position)` of an inserted product.
    pub inserted: Option<(usize, usize)>,
}

impl ExploreConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [("swap", self.swap), ("insert", self.insert)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("explore.{name} is a probability (0 to 1), got {p}"));
            }
        }
        if self.insert > 0.0 && (self.pool == 0 || self.max_shift == 0) {
            return Err("explore.pool and explore.max_shift must be at least 1 when explore.insert is on".into());
        }
        Ok(())
    }

    /// The production ranks (1-based) an insert may draw from, when `k` are shown out of
    /// `available` ranked products.
    fn pool_ranks(&self, k: usize, available: usize) -> std::ops::RangeInclusive<usize> {
        let last = (k + self.pool.min(self.max_shift)).min(available);
        (k + 1)..=last
    }

    /// The slots (1-based) a product of production rank `rank` may be inserted at.
    fn slots(&self, rank: usize, k: usize) -> std::ops::RangeInclusive<usize> {
        rank.saturating_sub(self.max_shift).max(1)..=k
    }

    /// Probability that an insert happens at all.
    fn insert_probability(&self, k: usize, available: usize) -> f64 {
        if self.pool_ranks(k, available).is_empty() {
            0.0
        } else {
            self.insert
        }
    }

    /// Draws the shown order of the first `k` of `available` production-ranked products.
    pub fn perturb(&self, k: usize, available: usize, rng: &mut impl Rng) -> Perturbed {
        let k = k.min(available);
        // `order[p]` = the production rank shown at position p+1.
        let mut order: Vec<usize> = (1..=k).collect();
        let mut inserted = None;
        let pool = self.pool_ranks(k, available);
        if !pool.is_empty() && rng.random_bool(self.insert) {
            let from = rng.random_range(pool);
            let to = rng.random_range(self.slots(from, k));
            order.insert(to - 1, from);
            order.truncate(k);
            inserted = Some((from, to));
        }
        let offset = usize::from(rng.random_bool(0.5));
        let mut swapped = Vec::new();
        let mut first = offset + 1;
        while first < k {
            if self.swap > 0.0 && rng.random_bool(self.swap) {
                order.swap(first - 1, first);
                swapped.push(first);
            }
            first += 2;
        }
        let placements = order
            .iter()
            .enumerate()
            .map(|(at, &base_rank)| Placement {
                position: at + 1,
                base_rank,
                propensity: self.propensity(base_rank, at + 1, k, available),
            })
            .collect();
        Perturbed { placements, offset, swapped, inserted }
    }

    /// The first `k` of `production` in the order one draw of the policy shows them.
    pub fn reorder<T: Clone>(&self, production: &[T], k: usize, rng: &mut impl Rng) -> Vec<T> {
        self.perturb(k, production.len(), rng).placements.iter().map(|p| production[p.base_rank - 1].clone()).collect()
    }

    /// Probability that the product of production rank `rank` is shown at `position`.
    pub fn propensity(&self, rank: usize, position: usize, k: usize, available: usize) -> f64 {
        let k = k.min(available);
        if position == 0 || position > k {
            return 0.0;
        }
        // After the insert it sits somewhere; the swaps then move it at most one place.
        (position.saturating_sub(1).max(1)..=(position + 1).min(k))
            .map(|between| self.after_insert(rank, between, k, available) * self.after_swaps(between, position, k))
            .sum()
    }

    /// Probability that the product of production rank `rank` is at `position` after the
    /// insert step.
    fn after_insert(&self, rank: usize, position: usize, k: usize, available: usize) -> f64 {
        let epsilon = self.insert_probability(k, available);
        let pool = self.pool_ranks(k, available);
        if rank <= k {
            // Moved down one when the insert lands at or above it.
            let below: f64 = pool
                .clone()
                .map(|from| {
                    let slots = self.slots(from, k);
                    let at_or_above = slots.clone().filter(|&s| s <= rank).count();
                    at_or_above as f64 / slots.count() as f64
                })
                .sum::<f64>()
                / pool.clone().count().max(1) as f64;
            if position == rank {
                1.0 - epsilon * below
            } else if position == rank + 1 {
                epsilon * below
            } else {
                0.0
            }
        } else if pool.contains(&rank) && self.slots(rank, k).contains(&position) {
            epsilon / pool.count() as f64 / self.slots(rank, k).count() as f64
        } else {
            0.0
        }
    }

    /// Probability that what is at `from` after the insert is shown at `to` after the swaps.
    fn after_swaps(&self, from: usize, to: usize, k: usize) -> f64 {
        let p = self.swap;
        // Each offset (pairs from 1 or from 2) has probability ½.
        [0usize, 1]
            .iter()
            .map(|&offset| {
                let partner = match from.checked_sub(offset + 1) {
                    Some(d) if d % 2 == 0 && from < k => Some(from + 1),
                    Some(d) if d % 2 == 1 => Some(from - 1),
                    _ => None,
                };
                0.5 * match partner {
                    None => f64::from(u8::from(from == to)),
                    Some(partner) if partner == to => p,
                    Some(_) if from == to => 1.0 - p,
                    Some(_) => 0.0,
                }
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The logged propensities are the frequencies the policy produces.
    #[test]
    fn propensities_match_the_frequencies_of_many_draws() {
        let policy = ExploreConfig { enabled: true, swap: 0.4, insert: 0.3, pool: 4, max_shift: 6 };
        let (k, available, draws) = (8, 20, 200_000);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut counts = std::collections::HashMap::<(usize, usize), usize>::new();
        for _ in 0..draws {
            for p in policy.perturb(k, available, &mut rng).placements {
                *counts.entry((p.base_rank, p.position)).or_default() += 1;
            }
        }
        for position in 1..=k {
            let mut total = 0.0;
            for rank in 1..=k + 4 {
                let expected = policy.propensity(rank, position, k, available);
                let seen = counts.get(&(rank, position)).copied().unwrap_or(0) as f64 / draws as f64;
                assert!((expected - seen).abs() < 0.005, "rank {rank} at {position}: {expected} vs {seen}");
                total += expected;
            }
            // Every position holds exactly one product.
            assert!((total - 1.0).abs() < 1e-9, "position {position}: {total}");
        }
    }

    #[test]
    fn without_exploration_nothing_moves() {
        let policy = ExploreConfig { enabled: true, swap: 0.0, insert: 0.0, ..ExploreConfig::default() };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let shown = policy.perturb(10, 30, &mut rng);
        assert!(shown.placements.iter().all(|p| p.position == p.base_rank && p.propensity == 1.0));
        // Fewer products than k: the policy shows what there is.
        let short = ExploreConfig::default().perturb(10, 3, &mut rng);
        assert_eq!(short.placements.len(), 3);
        assert!(short.inserted.is_none());
    }

    #[test]
    fn the_cap_holds_and_bad_settings_are_refused() {
        let policy = ExploreConfig { enabled: true, swap: 0.0, insert: 1.0, pool: 10, max_shift: 3 };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..1000 {
            let shown = policy.perturb(10, 40, &mut rng);
            let (from, to) = shown.inserted.expect("insert probability 1");
            assert!(from - to <= 3 && from > 10, "{from} -> {to}");
        }
        assert!(ExploreConfig { swap: 1.5, ..ExploreConfig::default() }.validate().is_err());
        assert!(ExploreConfig { pool: 0, ..ExploreConfig::default() }.validate().is_err());
    }
}
