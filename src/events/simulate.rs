//! Simulated shoppers: a test harness that closes the engagement loop without a live shop.
//!
//! Each session picks a judged query, searches a running server over HTTP as a shop's
//! search box would, and behaves like a shopper under the position-based click model:
//!
//! - position p is examined with probability 1 / p^η;
//! - an examined product is clicked with probability `floor + (ceiling − floor) ×
//!   (grade / max grade)²`, plus Gaussian noise per session and product (σ = `noise`),
//!   clipped to 0..1; unjudged products have grade 0;
//! - a click leads to an add-to-cart with probability `add_to_cart × grade / max grade`,
//!   and an add-to-cart to a purchase with probability `purchase × (stars / 5)^rating_pull`
//!   (the product's rating as the results show it, 3 stars when it has none; `rating_pull`
//!   0, the default, makes purchases blind to ratings): shoppers buy well-rated products
//!   more often, something the grades do not say and the purchase head can learn.
//!
//! The events are posted to `POST /events`. The grades live only here: the server learns
//! from the events, as it would from real shoppers. Sessions are seeded one by one, so a
//! run is the same whatever the concurrency.
//!
//! ```
//! use shelf::events::simulate::Shopper;
//!
//! let shopper = Shopper::default();
//! assert_eq!(shopper.examination(1), 1.0);
//! assert!(shopper.attraction(6, 6) > shopper.attraction(2, 6));
//! let picky = Shopper { rating_pull: 2.0, ..Shopper::default() };
//! assert!(picky.purchase_after_cart(Some(5.0)) > picky.purchase_after_cart(Some(3.5)));
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::EventType;
use crate::eval::trec::Qrels;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    Setup(String),
    #[error("the server at {url} failed: {message}")]
    Server { url: String, message: String },
}

/// How simulated shoppers behave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shopper {
    /// Examination falls as 1 / position^eta.
    pub eta: f64,
    /// Click probability of an examined product of grade 0, and of the highest grade.
    pub floor: f64,
    pub ceiling: f64,
    /// Standard deviation of the per-session noise on the click probability.
    pub noise: f64,
    /// Add-to-cart probability after a click, at the highest grade.
    pub add_to_cart: f64,
    /// Purchase probability after an add-to-cart (of a 5-star product).
    pub purchase: f64,
    /// How strongly the rating sways the purchase: × (stars / 5)^rating_pull.
    pub rating_pull: f64,
}

impl Default for Shopper {
    fn default() -> Self {
        Shopper { eta: 1.0, floor: 0.02, ceiling: 0.9, noise: 0.05, add_to_cart: 0.4, purchase: 0.5, rating_pull: 0.0 }
    }
}

/// A result as a shopper sees it: how much they like it (the judged grade, unjudged 0) and
/// its stars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    pub grade: i32,
    pub rating: Option<f64>,
}

impl Shopper {
    pub fn examination(&self, position: usize) -> f64 {
        (position.max(1) as f64).powf(-self.eta)
    }

    /// Click probability of an examined product, before noise.
    pub fn attraction(&self, grade: i32, max_grade: i32) -> f64 {
        let g = f64::from(grade.max(0)) / f64::from(max_grade.max(1));
        self.floor + (self.ceiling - self.floor) * g * g
    }

    /// Purchase probability once in the cart, for a product with these stars.
    pub fn purchase_after_cart(&self, rating: Option<f64>) -> f64 {
        let stars = rating.filter(|r| r.is_finite()).unwrap_or(3.0).clamp(0.0, 5.0);
        self.purchase * (stars / 5.0).powf(self.rating_pull)
    }

    pub fn validate(&self) -> Result<(), String> {
        let probabilities = [self.floor, self.ceiling, self.add_to_cart, self.purchase];
        let nonnegative = [self.eta, self.noise, self.rating_pull];
        if !(nonnegative.iter().all(|v| *v >= 0.0) && probabilities.iter().all(|p| (0.0..=1.0).contains(p))) {
            return Err("shopper: eta, noise and rating_pull must be >= 0, probabilities between 0 and 1".into());
        }
        Ok(())
    }

    /// What one shopper does with a list of results (index 0 = position 1): the strongest
    /// event on each position.
    pub fn behave(&self, shown: &[Seen], max_grade: i32, rng: &mut impl Rng) -> Vec<Option<EventType>> {
        shown
            .iter()
            .enumerate()
            .map(|(at, &Seen { grade, rating })| {
                let noise = if self.noise > 0.0 { gaussian(rng) * self.noise } else { 0.0 };
                let click = (self.attraction(grade, max_grade) + noise).clamp(0.0, 1.0);
                if !(rng.random_bool(self.examination(at + 1).min(1.0)) && rng.random_bool(click)) {
                    return None;
                }
                let g = f64::from(grade.max(0)) / f64::from(max_grade.max(1));
                if !rng.random_bool((self.add_to_cart * g).clamp(0.0, 1.0)) {
                    return Some(EventType::Click);
                }
                let purchase = self.purchase_after_cart(rating).clamp(0.0, 1.0);
                Some(if rng.random_bool(purchase) { EventType::Purchase } else { EventType::AddToCart })
            })
            .collect()
    }
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.random::<f64>().max(1e-300);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A simulation run.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    pub sessions: usize,
    pub k: usize,
    /// The ranker to ask for (default: the server's).
    pub ranker: Option<String>,
    /// Ask for exploration (`explore=true|false`), or leave it to the server.
    pub explore: Option<bool>,
    /// Interleave two rankers (`interleave=a,b`) instead of asking for one.
    pub interleave: Option<String>,
    /// Utility weights to ask for (`utility=…`), or the server's.
    pub utility: Option<String>,
    pub concurrency: usize,
    pub seed: u64,
    pub shopper: Shopper,
    pub show_progress: bool,
}

/// What the shoppers did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SimReport {
    pub sessions: u64,
    pub clicks: u64,
    pub add_to_carts: u64,
    pub purchases: u64,
    /// Clicks per search.
    pub ctr: f64,
    /// Clicks at each position (index 0 = position 1).
    pub clicks_by_position: Vec<u64>,
    pub events_posted: u64,
    pub events_rejected: u64,
    pub seconds: f64,
    pub sessions_per_second: f64,
    /// The examination curve shoppers followed (position 1 = 1).
    pub examination: Vec<f64>,
}

#[derive(Deserialize)]
struct SearchAnswer {
    impression_id: Option<String>,
    results: Vec<SearchHit>,
}

#[derive(Deserialize)]
struct SearchHit {
    id: String,
    #[serde(default)]
    product: HitProduct,
}

/// What a shopper reads off a result card, beside its title.
#[derive(Deserialize, Default)]
struct HitProduct {
    #[serde(default)]
    rating: Option<f64>,
}

#[derive(Serialize)]
struct EventOut<'a> {
    event_id: String,
    impression_id: &'a str,
    product_id: &'a str,
    #[serde(rename = "type")]
    kind: EventType,
}

#[derive(Default)]
struct Tally {
    clicks: AtomicU64,
    add_to_carts: AtomicU64,
    purchases: AtomicU64,
    posted: AtomicU64,
    rejected: AtomicU64,
    by_position: Vec<AtomicU64>,
}

/// Plays `options.sessions` shoppers over `queries` (those with judgments) against the
/// server.
pub async fn run(queries: &[(String, String)], qrels: &Qrels, options: &SimOptions) -> Result<SimReport, SimError> {
    options.shopper.validate().map_err(SimError::Setup)?;
    let judged: Vec<(String, BTreeMap<String, i32>)> = queries
        .iter()
        .filter_map(|(qid, text)| qrels.get(qid).filter(|g| !g.is_empty()).map(|g| (text.clone(), g.clone())))
        .collect();
    if judged.is_empty() {
        return Err(SimError::Setup("no query has judgments: check that --queries and --qrels belong together".into()));
    }
    let max_grade = judged.iter().flat_map(|(_, g)| g.values().copied()).max().unwrap_or(1).max(1);
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| SimError::Setup(e.to_string()))?;
    let base = options.server.trim_end_matches('/').to_string();
    let judged = Arc::new(judged);
    let tally =
        Arc::new(Tally { by_position: (0..options.k).map(|_| AtomicU64::new(0)).collect(), ..Tally::default() });
    let next = Arc::new(AtomicU64::new(0));
    let bar = crate::progress::bar(options.sessions as u64, "sessions", options.show_progress);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..options.concurrency.max(1) {
        let (client, base, judged, tally, next, options, bar) =
            (client.clone(), base.clone(), judged.clone(), tally.clone(), next.clone(), options.clone(), bar.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let session = next.fetch_add(1, Ordering::Relaxed);
                if session >= options.sessions as u64 {
                    return Ok::<(), SimError>(());
                }
                one_session(&client, &base, &judged, max_grade, session, &options, &tally).await?;
                bar.inc(1);
            }
        }));
    }
    for worker in workers {
        worker.await.map_err(|e| SimError::Setup(e.to_string()))??;
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let clicks = tally.clicks.load(Ordering::Relaxed);
    let sessions = options.sessions as u64;
    Ok(SimReport {
        sessions,
        clicks,
        add_to_carts: tally.add_to_carts.load(Ordering::Relaxed),
        purchases: tally.purchases.load(Ordering::Relaxed),
        ctr: clicks as f64 / sessions.max(1) as f64,
        clicks_by_position: tally.by_position.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
        events_posted: tally.posted.load(Ordering::Relaxed),
        events_rejected: tally.rejected.load(Ordering::Relaxed),
        seconds,
        sessions_per_second: sessions as f64 / seconds.max(1e-9),
        examination: (1..=options.k).map(|p| options.shopper.examination(p)).collect(),
    })
}

async fn one_session(
    client: &reqwest::Client,
    base: &str,
    judged: &[(String, BTreeMap<String, i32>)],
    max_grade: i32,
    session: u64,
    options: &SimOptions,
    tally: &Tally,
) -> Result<(), SimError> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ session.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (query, grades) = &judged[rng.random_range(0..judged.len())];
    let mut params = vec![("q", query.clone()), ("k", options.k.to_string()), ("facets", "false".into())];
    if let Some(ranker) = &options.ranker {
        params.push(("ranker", ranker.clone()));
    }
    if let Some(explore) = options.explore {
        params.push(("explore", explore.to_string()));
    }
    if let Some(pair) = &options.interleave {
        params.push(("interleave", pair.clone()));
    }
    if let Some(utility) = &options.utility {
        params.push(("utility", utility.clone()));
    }
    let url = format!("{base}/search");
    let failed = |message: String| SimError::Server { url: url.clone(), message };
    let answer: SearchAnswer = loop {
        let response = client.get(&url).query(&params).send().await.map_err(|e| failed(e.to_string()))?;
        if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            // Shed under load: come back, as a shop's front end would.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        if !response.status().is_success() {
            let status = response.status();
            return Err(failed(format!("{status}: {}", response.text().await.unwrap_or_default())));
        }
        break response.json().await.map_err(|e| failed(e.to_string()))?;
    };
    let Some(impression) = answer.impression_id else {
        return Err(failed("the response has no impression_id (is this a shelf server?)".into()));
    };
    let shown: Vec<Seen> = answer
        .results
        .iter()
        .map(|hit| Seen { grade: grades.get(&hit.id).copied().unwrap_or(0), rating: hit.product.rating })
        .collect();
    let mut events = Vec::new();
    for (at, strongest) in options.shopper.behave(&shown, max_grade, &mut rng).into_iter().enumerate() {
        let Some(strongest) = strongest else { continue };
        if let Some(count) = tally.by_position.get(at) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        for kind in EventType::ALL.into_iter().filter(|kind| *kind <= strongest) {
            let counter = match kind {
                EventType::Click => &tally.clicks,
                EventType::AddToCart => &tally.add_to_carts,
                EventType::Purchase => &tally.purchases,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            events.push(EventOut {
                // Unique per impression, the same if the post is retried.
                event_id: format!("sim-{impression}-{at}-{kind}"),
                impression_id: &impression,
                product_id: &answer.results[at].id,
                kind,
            });
        }
    }
    if events.is_empty() {
        return Ok(());
    }
    let url = format!("{base}/events");
    let response = client.post(&url).json(&events).send().await.map_err(|e| failed(e.to_string()))?;
    tally.posted.fetch_add(events.len() as u64, Ordering::Relaxed);
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_server_error() {
            return Err(SimError::Server { url, message: format!("{status}: {body}") });
        }
        if tally.rejected.fetch_add(events.len() as u64, Ordering::Relaxed) == 0 {
            tracing::warn!(%status, %body, "events refused (the first; the report counts them all)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shoppers_click_more_on_better_and_higher_products() {
        let shopper = Shopper { noise: 0.0, ..Shopper::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut clicks = [0u32; 4];
        for _ in 0..20_000 {
            let seen = [6, 6, 0, 6].map(|grade| Seen { grade, rating: Some(4.0) });
            for (at, event) in shopper.behave(&seen, 6, &mut rng).iter().enumerate() {
                clicks[at] += u32::from(event.is_some());
            }
        }
        // Position 2 is examined half as often as 1; grade 0 is rarely clicked.
        let ratio = f64::from(clicks[1]) / f64::from(clicks[0]);
        assert!((ratio - 0.5).abs() < 0.03, "{ratio}");
        assert!(clicks[2] < clicks[3] / 10, "{clicks:?}");
    }
}
