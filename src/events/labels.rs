//! Training labels from engagement: what shoppers did, with position bias divided out.
//!
//! For each (query, product) the log holds how often the product was shown and what
//! shoppers did with it. Each impression's strongest event on the product is worth a
//! weight (`purchase` > `add_to_cart` > `click`). Its **rate** is that worth over its
//! **exposure**:
//!
//! - `naive`: exposure = times shown. A product shown first is looked at more, so the
//!   rate rewards "was shown high" and a model trained on it learns the old ranker back;
//! - `ips`: exposure = Σ θ(position shown), the examination probability of each position
//!   it was shown at ([`super::bias`]): the rate estimates worth *per examination*, the
//!   same whatever the position (inverse propensity weighting, summed per pair).
//!
//! Rates are shrunk by `prior` pseudo-examinations towards the rate of a typical product
//! from below the fold (the mean rate of products exploration brought up from there, or 0
//! without them): a product shown once and clicked is not a sure thing, and one never
//! clicked is most likely what the deep candidates mostly are, not average. They are then
//! cut into integer grades 0…`grades` for LambdaMART: grade = round(grades × rate / cap),
//! cap = the `cap_quantile` of the rates.
//!
//! Grades lose what exploration shows rarely: a relevant product brought up once into a
//! slot examined a fifth of the time is mostly graded 0, sometimes 6. So `shelf train
//! --events` trains LightGBM **pointwise** by default ([`crate::train::Objective`]) on each
//! pair's worth and exposure ([`Rates::worth`], [`Rates::exposure`]), unshrunk and
//! uncapped; the grades serve lambdarank (`--objective lambdarank`, or with judgments laid
//! over the log), the neural ranker's relevance head and the folds' report.
//!
//! Beside the grades, each pair gets its **engagement rates** ([`Rates`]): the chance that
//! an examined product is clicked, added to the cart, bought (an event implies the weaker
//! ones), with the same exposure and shrinkage, and the counts behind them. The neural
//! ranker's engagement heads learn from them.
//!
//! ```
//! use shelf::events::labels::{Debias, LabelParams};
//!
//! let params = LabelParams::default();
//! assert_eq!(params.debias, Debias::Ips);
//! assert!(params.weight(shelf::events::EventType::Purchase) > params.weight(shelf::events::EventType::Click));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::bias::PositionCurve;
use super::{EventType, Logged};
use crate::eval::trec::Qrels;

/// How exposure is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Debias {
    Naive,
    Ips,
}

impl FromStr for Debias {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "naive" => Ok(Debias::Naive),
            "ips" => Ok(Debias::Ips),
            other => Err(format!("unknown debiasing '{other}' (ips or naive)")),
        }
    }
}

impl fmt::Display for Debias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Debias::Naive => "naive",
            Debias::Ips => "ips",
        })
    }
}

/// The `[engagement]` table of a training configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabelParams {
    pub click: f64,
    pub add_to_cart: f64,
    pub purchase: f64,
    pub debias: Debias,
    /// Pseudo-examinations at the prior rate added to every pair.
    pub prior: f64,
    /// The rate the pseudo-examinations carry (default: the below-the-fold products' rate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior_rate: Option<f64>,
    /// The highest grade.
    pub grades: i32,
    /// Rates at or above this quantile get the highest grade.
    pub cap_quantile: f64,
}

impl Default for LabelParams {
    fn default() -> Self {
        LabelParams {
            click: 1.0,
            add_to_cart: 2.0,
            purchase: 4.0,
            debias: Debias::Ips,
            prior: 1.0,
            prior_rate: None,
            grades: 6,
            cap_quantile: 0.95,
        }
    }
}

impl LabelParams {
    pub fn weight(&self, kind: EventType) -> f64 {
        match kind {
            EventType::Click => self.click,
            EventType::AddToCart => self.add_to_cart,
            EventType::Purchase => self.purchase,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(self.click > 0.0 && self.add_to_cart >= self.click && self.purchase >= self.add_to_cart) {
            return Err("engagement weights must be positive and purchase >= add_to_cart >= click".into());
        }
        if !(self.prior >= 0.0 && (1..=30).contains(&self.grades) && (0.5..=1.0).contains(&self.cap_quantile)) {
            return Err("engagement.prior >= 0, grades 1..30 and cap_quantile 0.5..1 are required".into());
        }
        Ok(())
    }
}

/// Labels made from a log: the queries (by text) and their graded products.
#[derive(Debug, Clone)]
pub struct Labels {
    /// `(qid, text)`; qids are `e1`, `e2`, … in order of text.
    pub queries: Vec<(String, String)>,
    pub qrels: Qrels,
    pub engagement: Engagement,
    pub summary: LabelSummary,
}

/// qid → product → its engagement rates (every product the log showed for the query).
pub type Engagement = BTreeMap<String, BTreeMap<String, Rates>>;

/// What shoppers did with a product shown for a query, per examination: the engagement
/// heads' targets, in [`EventType::ALL`]'s order (click, add-to-cart, purchase).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    /// The probability of each event type (at least this strong) when examined, 0..1.
    pub rates: [f64; 3],
    /// How much the product was examined (times shown, or Σ θ(position) under `ips`).
    pub exposure: f64,
    /// The summed worth of each impression's strongest event on the product (not shrunk):
    /// worth / exposure is its unbiased rate, the target of a pointwise ranker.
    pub worth: f64,
    /// Impressions whose strongest event on the product was at least a click, an
    /// add-to-cart, a purchase (not shrunk).
    pub reached: [f64; 3],
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelSummary {
    pub impressions: usize,
    pub queries: usize,
    pub pairs: usize,
    /// Pairs with a grade above 0.
    pub positive: usize,
    pub mean_rate: f64,
    /// The rate uncertain pairs are shrunk towards (a typical product from below the fold).
    pub prior_rate: f64,
    pub cap: f64,
    pub debias: Debias,
}

/// What the log holds about one (query, product) pair, or about a set of them.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    /// The summed weights of each impression's strongest event.
    worth: f64,
    exposure: f64,
    /// Impressions whose strongest event was at least click, add-to-cart, purchase.
    reached: [f64; 3],
}

impl Sums {
    fn add(&mut self, strongest: Option<EventType>, worth: f64, exposure: f64) {
        self.worth += worth;
        self.exposure += exposure;
        for (at, kind) in EventType::ALL.into_iter().enumerate() {
            if strongest.is_some_and(|s| s >= kind) {
                self.reached[at] += 1.0;
            }
        }
    }

    fn merge(&mut self, other: &Sums) {
        self.worth += other.worth;
        self.exposure += other.exposure;
        (0..3).for_each(|at| self.reached[at] += other.reached[at]);
    }

    /// `part` per exposure, or 0 when never examined.
    fn per_exposure(&self, part: f64) -> f64 {
        if self.exposure > 0.0 {
            part / self.exposure
        } else {
            0.0
        }
    }
}

/// Product → its sums, for one query.
type PairSums = BTreeMap<String, Sums>;

/// One query text's key: what shoppers typed, trimmed and lowercased.
pub fn query_key(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Graded labels from the log. `curve` gives the examination by position (required for
/// `ips`).
pub fn from_log(log: &[Logged], curve: Option<&PositionCurve>, params: &LabelParams) -> Result<Labels, String> {
    params.validate()?;
    if params.debias == Debias::Ips && curve.is_none() {
        return Err("ips labels need a position curve".into());
    }
    // query key → (the text as typed, product → (worth, exposure))
    let mut sums: BTreeMap<String, (String, PairSums)> = BTreeMap::new();
    // What products shown from below the fold got.
    let mut deep = Sums::default();
    for logged in log {
        let key = query_key(&logged.impression.query);
        if key.is_empty() {
            continue;
        }
        let (_, products) =
            sums.entry(key).or_insert_with(|| (logged.impression.query.trim().to_string(), BTreeMap::new()));
        for (shown, strongest) in logged.impression.shown.iter().zip(logged.strongest_by_position()) {
            let exposure = match (params.debias, curve) {
                (Debias::Ips, Some(curve)) => curve.at(shown.position),
                _ => 1.0,
            };
            let worth = strongest.map_or(0.0, |kind| params.weight(kind));
            products.entry(shown.product_id.clone()).or_default().add(strongest, worth, exposure);
            if shown.base_rank > logged.impression.k {
                deep.add(strongest, worth, exposure);
            }
        }
    }
    let mut all = Sums::default();
    sums.values().flat_map(|(_, products)| products.values()).for_each(|pair| all.merge(pair));
    let mean_rate = all.per_exposure(all.worth);
    let prior_rate = params.prior_rate.unwrap_or(deep.per_exposure(deep.worth));
    // Shrinks `part` of a pair's `exposure` towards `prior` by the prior's pseudo-examinations.
    let shrunk =
        |part: f64, exposure: f64, prior: f64| (part + params.prior * prior) / (exposure + params.prior).max(1e-12);
    let rate = |pair: &Sums| shrunk(pair.worth, pair.exposure, prior_rate);
    // Each event type's rate shrinks towards the deep products' rate of that type.
    let rates_of = |pair: &Sums| Rates {
        rates: std::array::from_fn(|at| {
            shrunk(pair.reached[at], pair.exposure, deep.per_exposure(deep.reached[at])).clamp(0.0, 1.0)
        }),
        exposure: pair.exposure,
        worth: pair.worth,
        reached: pair.reached,
    };
    let mut rates: Vec<f64> = sums.values().flat_map(|(_, products)| products.values().map(rate)).collect();
    rates.sort_by(f64::total_cmp);
    let cap = rates
        .get(((rates.len().saturating_sub(1)) as f64 * params.cap_quantile).round() as usize)
        .copied()
        .filter(|c| *c > 0.0)
        .unwrap_or(1.0);
    let grade = |rate: f64| (f64::from(params.grades) * (rate / cap).min(1.0)).round() as i32;
    let mut queries = Vec::new();
    let mut qrels = Qrels::new();
    let mut engagement = BTreeMap::new();
    let (mut pairs, mut positive) = (0, 0);
    for (at, (_, (text, products))) in sums.iter().enumerate() {
        let qid = format!("e{}", at + 1);
        let graded: BTreeMap<String, i32> = products.iter().map(|(id, sums)| (id.clone(), grade(rate(sums)))).collect();
        pairs += graded.len();
        positive += graded.values().filter(|g| **g > 0).count();
        queries.push((qid.clone(), text.clone()));
        qrels.insert(qid.clone(), graded);
        engagement.insert(qid, products.iter().map(|(id, pair)| (id.clone(), rates_of(pair))).collect());
    }
    let summary = LabelSummary {
        impressions: log.len(),
        queries: queries.len(),
        pairs,
        positive,
        mean_rate,
        prior_rate,
        cap,
        debias: params.debias,
    };
    Ok(Labels { queries, qrels, engagement, summary })
}

/// Engagement labels with judged grades laid over them: a judged product of a judged query
/// (matched by text) takes its judged grade; judged queries nobody searched are added.
pub fn combine(mut labels: Labels, judged_queries: &[(String, String)], judged: &Qrels) -> Labels {
    let by_text: BTreeMap<String, String> =
        labels.queries.iter().map(|(qid, text)| (query_key(text), qid.clone())).collect();
    for (judged_qid, text) in judged_queries {
        let Some(grades) = judged.get(judged_qid) else { continue };
        let qid = match by_text.get(&query_key(text)) {
            Some(qid) => qid.clone(),
            None => {
                let qid = format!("j{judged_qid}");
                labels.queries.push((qid.clone(), text.clone()));
                qid
            }
        };
        let entry = labels.qrels.entry(qid).or_default();
        for (product, grade) in grades {
            entry.insert(product.clone(), *grade);
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn impression(query: &str, shown: &[&str], clicked: &[(&str, EventType)]) -> Logged {
        crate::events::logged_for_test(query, shown, clicked, None)
    }

    /// Equal clicks at a position looked at half as often mean twice the worth.
    #[test]
    fn ips_divides_out_the_position() {
        let curve = PositionCurve::from_ratios(&[0.5]);
        // "a" always first, "b" always second; each clicked in 4 of 10 impressions.
        let mut log = Vec::new();
        for i in 0..10 {
            let clicks: Vec<(&str, EventType)> =
                if i < 4 { vec![("a", EventType::Click), ("b", EventType::Click)] } else { vec![] };
            log.push(impression("Sofa ", &["a", "b"], &clicks));
        }
        let params = LabelParams { prior: 0.0, grades: 4, cap_quantile: 1.0, ..LabelParams::default() };
        let ips = from_log(&log, Some(&curve), &params).unwrap();
        let naive = from_log(&log, None, &LabelParams { debias: Debias::Naive, ..params.clone() }).unwrap();
        let (qid, text) = &ips.queries[0];
        assert_eq!(text, "Sofa");
        assert_eq!(ips.qrels[qid]["b"], 4);
        assert_eq!(ips.qrels[qid]["a"], 2);
        assert_eq!(naive.qrels[qid]["a"], naive.qrels[qid]["b"]);
        assert!(from_log(&log, None, &params).is_err(), "ips without a curve");

        // Engagement rates: 4 clicks over 10 impressions examined fully (a) or half (b).
        let rates = &ips.engagement[qid];
        assert!((rates["a"].rates[0] - 0.4).abs() < 1e-12 && (rates["b"].rates[0] - 0.8).abs() < 1e-12);
        assert_eq!((rates["a"].exposure, rates["b"].exposure), (10.0, 5.0));
        assert_eq!(rates["a"].rates[1..], [0.0, 0.0]);
    }

    /// A purchase counts as a click and an add-to-cart too; an unexamined product's rates
    /// are the prior's.
    #[test]
    fn each_event_type_has_its_rate_shrunk_towards_the_deep_products() {
        let bought = [("a", EventType::Purchase)];
        let carted = [("a", EventType::AddToCart)];
        let log = vec![
            impression("lamp", &["a", "b"], &bought),
            impression("lamp", &["a", "b"], &carted),
            impression("lamp", &["a", "b"], &[]),
            impression("lamp", &["a", "b"], &[]),
        ];
        let params = LabelParams { debias: Debias::Naive, prior: 0.0, ..LabelParams::default() };
        let rates = &from_log(&log, None, &params).unwrap().engagement["e1"];
        assert_eq!(rates["a"].rates, [0.5, 0.5, 0.25]);
        assert_eq!(rates["b"].rates, [0.0, 0.0, 0.0]);
        // With 4 pseudo-examinations at the deep products' rate (none here: 0), a's halve.
        let shrunk = LabelParams { prior: 4.0, ..params };
        let rates = &from_log(&log, None, &shrunk).unwrap().engagement["e1"];
        assert_eq!(rates["a"].rates, [0.25, 0.25, 0.125]);
    }

    #[test]
    fn stronger_events_weigh_more_and_judgments_override() {
        let log = vec![impression("lamp", &["a", "b", "c"], &[("a", EventType::Click), ("b", EventType::Purchase)])];
        let params = LabelParams { debias: Debias::Naive, prior: 0.0, cap_quantile: 1.0, ..LabelParams::default() };
        let labels = from_log(&log, None, &params).unwrap();
        let grades = &labels.qrels["e1"];
        assert!(grades["b"] > grades["a"] && grades["a"] > grades["c"], "{grades:?}");
        let judged: Qrels =
            [("7".to_string(), [("c".to_string(), 6)].into()), ("8".to_string(), [("z".to_string(), 3)].into())].into();
        let combined = combine(labels, &[("7".into(), "LAMP".into()), ("8".into(), "rug".into())], &judged);
        assert_eq!(combined.qrels["e1"]["c"], 6);
        assert_eq!(combined.qrels["j8"]["z"], 3);
        assert_eq!(combined.queries.len(), 2);
    }
}
