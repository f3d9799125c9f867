//! Engagement: what was shown (impressions), what shoppers did with it (events), and what
//! can be learned from the two without being fooled by position.
//!
//! Every search the server answers is an **impression**: the query, the ranker and model
//! that ordered it, and the list shown — each product's position, score, rank in the
//! production order and the **propensity** with which exploration put it there
//! ([`explore`]). Shoppers' **events** (click, add to cart, purchase) name the impression
//! and the product. Both go to an append-only [`store`] (SQLite in WAL mode).
//!
//! From the log:
//! - [`bias`] estimates how much less often a lower position is examined, from the pairs
//!   exploration swapped;
//! - [`labels`] turns engagement into graded training labels, with that position bias
//!   divided out (`shelf train --events`);
//! - [`counterfactual`] estimates a new ranker's click-through from the log before it is
//!   shown to anyone (`shelf eval --events`);
//! - [`interleave`] compares two rankers online, merged into one list by team draft;
//! - [`summary`] is the log at a glance: click-through by position, the curve, and the
//!   queries that found nothing or drew no click (`shelf events stats`, the workbench);
//! - [`simulate`] plays shoppers against a running server, to test all of it end to end.
//!
//! ```
//! use shelf::events::{EventIn, EventType};
//!
//! let event: EventIn = serde_json::from_str(
//!     r#"{"event_id": "e1", "impression_id": "i1", "product_id": "D00001", "type": "add_to_cart"}"#,
//! ).unwrap();
//! assert_eq!(event.kind, EventType::AddToCart);
//! assert!(event.check().is_ok());
//! ```

pub mod bias;
pub mod counterfactual;
pub mod explore;
pub mod interleave;
pub mod labels;
pub mod simulate;
pub mod store;
pub mod summary;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use store::{EventLog, StoreError};

/// What a shopper did with a shown product, from the weakest signal to the strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Click,
    AddToCart,
    Purchase,
}

impl EventType {
    pub const ALL: [EventType; 3] = [EventType::Click, EventType::AddToCart, EventType::Purchase];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Click => "click",
            EventType::AddToCart => "add_to_cart",
            EventType::Purchase => "purchase",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown event type '{s}' (click, add_to_cart, purchase)"))
    }
}

/// Longest id accepted (event, impression or product).
pub const MAX_ID_BYTES: usize = 256;

/// When an event happened: RFC 3339 text (`2026-11-26T18:00:00Z`) or Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Timestamp {
    Millis(i64),
    Text(String),
}

impl Timestamp {
    pub fn millis(&self) -> Result<i64, String> {
        match self {
            Timestamp::Millis(ms) => Ok(*ms),
            Timestamp::Text(text) => humantime::parse_rfc3339_weak(text)
                .map_err(|e| format!("ts '{text}' is not an RFC 3339 time: {e}"))
                .and_then(|t| {
                    t.duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as i64)
                        .map_err(|_| format!("ts '{text}' is before 1970"))
                }),
        }
    }
}

/// One interaction, as a client posts it to `POST /events`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_id": "b2f1-7", "impression_id": "6c1d…", "product_id": "D00001", "type": "click"}))]
pub struct EventIn {
    /// The client's id for this event: posting it again is harmless (idempotent).
    pub event_id: String,
    /// The `impression_id` of the search response the product was shown in.
    pub impression_id: String,
    pub product_id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// A value the event carries (e.g. the purchase amount).
    pub value: Option<f64>,
    /// When it happened (default: when the server received it).
    pub ts: Option<Timestamp>,
}

impl EventIn {
    /// Checks what can be checked without the log.
    pub fn check(&self) -> Result<(), String> {
        for (name, id) in
            [("event_id", &self.event_id), ("impression_id", &self.impression_id), ("product_id", &self.product_id)]
        {
            if id.trim().is_empty() {
                return Err(format!("{name} must not be empty"));
            }
            if id.len() > MAX_ID_BYTES {
                return Err(format!("{name} is {} bytes long; the limit is {MAX_ID_BYTES}", id.len()));
            }
        }
        if let Some(value) = self.value {
            if !value.is_finite() {
                return Err("value must be a finite number".into());
            }
        }
        if let Some(ts) = &self.ts {
            ts.millis()?;
        }
        Ok(())
    }
}

/// One shown product of an impression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    pub product_id: String,
    /// 1-based position shown.
    pub position: usize,
    pub score: f32,
    /// 1-based rank in the production order (before exploration).
    pub base_rank: usize,
    /// Probability that exploration put this product at this position (1 without).
    pub propensity: f64,
}

/// One search as it was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Impression {
    pub impression_id: String,
    /// Unix milliseconds.
    pub ts_ms: i64,
    pub query: String,
    /// The request's filters, as JSON.
    pub filters: serde_json::Value,
    pub ranker: String,
    /// `kind:fingerprint` of the model that scored, for learned rankers.
    pub model: Option<String>,
    /// Results asked for.
    pub k: usize,
    /// The exploration policy and its draw ([`explore::Perturbed`]), when exploring.
    pub explore: Option<serde_json::Value>,
    pub shown: Vec<Shown>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    pub product_id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub value: Option<f64>,
    pub ts_ms: i64,
}

/// An impression with the events that name it: a row of the exported log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logged {
    #[serde(flatten)]
    pub impression: Impression,
    pub events: Vec<Event>,
}

impl Logged {
    /// The strongest event on each shown product, by position (index 0 = position 1).
    pub fn strongest_by_position(&self) -> Vec<Option<EventType>> {
        self.impression
            .shown
            .iter()
            .map(|shown| self.events.iter().filter(|e| e.product_id == shown.product_id).map(|e| e.kind).max())
            .collect()
    }

    /// Whether this impression showed the first page (a later one, `offset` > 0, starts past
    /// position 1).
    pub fn first_page(&self) -> bool {
        self.impression.shown.first().is_none_or(|shown| shown.position == 1)
    }

    /// Whether two rankers were interleaved in this impression.
    pub fn interleaved(&self) -> bool {
        self.impression.explore.as_ref().is_some_and(|e| e.get("interleave").is_some())
    }

    /// The exploration draw, when the impression explored.
    pub fn perturbed(&self) -> Option<explore::Perturbed> {
        let draw = self.impression.explore.as_ref()?.get("draw")?;
        serde_json::from_value(draw.clone()).ok()
    }
}

/// A logged impression that showed `shown` at positions 1, 2, … (without exploration) and
/// the `events` on some of them: the estimators' tests build their logs from it.
#[cfg(test)]
pub(crate) fn logged_for_test(
    query: &str,
    shown: &[&str],
    events: &[(&str, EventType)],
    explore: Option<serde_json::Value>,
) -> Logged {
    Logged {
        impression: Impression {
            impression_id: new_id(),
            ts_ms: 0,
            query: query.into(),
            filters: serde_json::json!({}),
            ranker: "hybrid".into(),
            model: None,
            k: shown.len(),
            explore,
            shown: shown
                .iter()
                .enumerate()
                .map(|(at, id)| Shown {
                    product_id: id.to_string(),
                    position: at + 1,
                    score: 0.0,
                    base_rank: at + 1,
                    propensity: 1.0,
                })
                .collect(),
        },
        events: events
            .iter()
            .map(|(id, kind)| Event {
                event_id: new_id(),
                product_id: id.to_string(),
                kind: *kind,
                value: None,
                ts_ms: 0,
            })
            .collect(),
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A fresh random id (128 bits, hex).
pub fn new_id() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}
