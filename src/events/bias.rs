//! Position bias: how much less often shoppers look at position k than at position 1.
//!
//! A click needs two things: the shopper examined the product, and liked it. The first
//! depends on where it was shown. Exploration's swaps show the same two products in both
//! orders, by a coin flip, so any difference in their clicks between the orders is the
//! positions' doing (intervention harvesting). For a swappable pair at positions a and
//! a+1, with X first and Y second in the production order:
//!
//! ```text
//! θ(a+1) / θ(a) = [ctr(X at a+1 | swapped) + ctr(Y at a+1 | kept)] / [ctr(X at a | kept) + ctr(Y at a | swapped)]
//! ```
//!
//! and chaining the ratios from θ(1) = 1 gives the curve. Confidence bands come from
//! resampling impressions (bootstrap). Only impressions that explored with swaps count.
//!
//! ```
//! use shelf::events::bias::PositionCurve;
//!
//! let curve = PositionCurve::from_ratios(&[0.5, 0.8]);
//! assert_eq!(curve.examination(), vec![1.0, 0.5, 0.4]);
//! ```

use std::path::Path;

use plotters::prelude::*;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{EventType, Logged};

/// One position of the estimated curve.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PositionEstimate {
    /// 1-based.
    pub position: usize,
    /// Examination probability relative to position 1.
    pub examination: f64,
    /// 95 % bootstrap interval.
    pub low: f64,
    pub high: f64,
    /// Impressions in which this position and the one above formed a swappable pair.
    pub pairs: u64,
}

/// The estimated examination curve.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PositionCurve {
    pub positions: Vec<PositionEstimate>,
    /// Impressions that explored with swaps.
    pub impressions: u64,
}

/// The clicks of one pair of one impression.
#[derive(Clone, Copy)]
struct PairObservation {
    /// First position of the pair (1-based).
    first: usize,
    swapped: bool,
    /// Clicks on the product production put first / second.
    x_clicked: bool,
    y_clicked: bool,
}

/// Sums behind one pair's ratio: `[kept, swapped]` counts and the clicks by place.
#[derive(Clone, Copy, Default)]
struct PairSums {
    n: [f64; 2],
    x_top: f64,
    y_top: f64,
    x_bottom: f64,
    y_bottom: f64,
}

impl PairSums {
    fn add(&mut self, o: &PairObservation) {
        let (x, y) = (f64::from(u8::from(o.x_clicked)), f64::from(u8::from(o.y_clicked)));
        if o.swapped {
            self.n[1] += 1.0;
            self.y_top += y;
            self.x_bottom += x;
        } else {
            self.n[0] += 1.0;
            self.x_top += x;
            self.y_bottom += y;
        }
    }

    fn ratio(&self) -> Option<f64> {
        if self.n[0] == 0.0 || self.n[1] == 0.0 {
            return None;
        }
        let top = self.x_top / self.n[0] + self.y_top / self.n[1];
        let bottom = self.x_bottom / self.n[1] + self.y_bottom / self.n[0];
        (top > 0.0).then_some(bottom / top)
    }
}

fn observations(log: &[Logged]) -> Vec<Vec<PairObservation>> {
    log.iter()
        .filter_map(|logged| {
            let swap = logged.impression.explore.as_ref()?.get("policy")?.get("swap")?.as_f64()?;
            let draw = logged.perturbed()?;
            if swap <= 0.0 {
                return None;
            }
            let clicked: Vec<bool> = logged.strongest_by_position().iter().map(|e| e.is_some()).collect();
            let mut pairs = Vec::new();
            let mut first = draw.offset + 1;
            while first < clicked.len() {
                let swapped = draw.swapped.contains(&first);
                let (top, bottom) = (clicked[first - 1], clicked[first]);
                let (x_clicked, y_clicked) = if swapped { (bottom, top) } else { (top, bottom) };
                pairs.push(PairObservation { first, swapped, x_clicked, y_clicked });
                first += 2;
            }
            Some(pairs)
        })
        .collect()
}

fn ratios(impressions: &[&Vec<PairObservation>], positions: usize) -> (Vec<Option<f64>>, Vec<u64>) {
    let mut sums = vec![PairSums::default(); positions];
    for pairs in impressions {
        for pair in pairs.iter() {
            if pair.first < positions {
                sums[pair.first].add(pair);
            }
        }
    }
    (
        sums.iter().skip(1).map(PairSums::ratio).collect(),
        sums.iter().skip(1).map(|s| (s.n[0] + s.n[1]) as u64).collect(),
    )
}

impl PositionCurve {
    /// The curve from the ratios θ(k+1)/θ(k), k = 1, 2, …
    pub fn from_ratios(ratios: &[f64]) -> PositionCurve {
        let mut theta = 1.0;
        let mut positions = vec![PositionEstimate { position: 1, examination: 1.0, low: 1.0, high: 1.0, pairs: 0 }];
        for (at, ratio) in ratios.iter().enumerate() {
            theta *= ratio;
            positions.push(PositionEstimate {
                position: at + 2,
                examination: theta,
                low: theta,
                high: theta,
                pairs: 0,
            });
        }
        PositionCurve { positions, impressions: 0 }
    }

    /// Estimates the curve over the first `positions` positions from a log. Positions
    /// after the first pair with no swapped clicks are left out.
    pub fn estimate(log: &[Logged], positions: usize, resamples: usize, seed: u64) -> PositionCurve {
        let observed = observations(log);
        let all: Vec<&Vec<PairObservation>> = observed.iter().collect();
        let (point, pairs) = ratios(&all, positions + 1);
        let chain = |ratios: &[Option<f64>]| -> Vec<f64> {
            let mut theta = 1.0;
            let mut curve = vec![1.0];
            for ratio in ratios.iter().take(positions.saturating_sub(1)) {
                match ratio {
                    Some(r) => theta *= r,
                    None => break,
                }
                curve.push(theta);
            }
            curve
        };
        let estimate = chain(&point);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); estimate.len()];
        if !all.is_empty() {
            for _ in 0..resamples {
                let resampled: Vec<&Vec<PairObservation>> =
                    (0..all.len()).map(|_| all[rng.random_range(0..all.len())]).collect();
                let curve = chain(&ratios(&resampled, positions + 1).0);
                for (at, value) in curve.into_iter().enumerate().take(estimate.len()) {
                    samples[at].push(value);
                }
            }
        }
        let positions = estimate
            .iter()
            .enumerate()
            .map(|(at, &examination)| {
                let (low, high) = interval(&mut samples[at]).unwrap_or((examination, examination));
                PositionEstimate {
                    position: at + 1,
                    examination,
                    low,
                    high,
                    pairs: if at == 0 { 0 } else { pairs.get(at - 1).copied().unwrap_or(0) },
                }
            })
            .collect();
        PositionCurve { positions, impressions: observed.len() as u64 }
    }

    pub fn examination(&self) -> Vec<f64> {
        self.positions.iter().map(|p| p.examination).collect()
    }

    /// The examination of a 1-based position; past the estimated ones, the last estimate.
    pub fn at(&self, position: usize) -> f64 {
        let last = self.positions.last().map_or(1.0, |p| p.examination);
        self.positions.get(position.saturating_sub(1)).map_or(last, |p| p.examination)
    }
}

/// The 2.5 % and 97.5 % quantiles.
fn interval(values: &mut [f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Some((at(0.025), at(0.975)))
}

/// Click-through by shown position (any event counts as a click), for the first
/// `positions` positions: `(impressions that showed the position, clicks)`.
pub fn clicks_by_position(log: &[Logged], positions: usize) -> Vec<(u64, u64)> {
    let mut counts = vec![(0u64, 0u64); positions];
    for logged in log {
        // By the position shown, which a later page (`offset`) starts past 1.
        for (shown, strongest) in logged.impression.shown.iter().zip(logged.strongest_by_position()) {
            if let Some(count) = shown.position.checked_sub(1).and_then(|at| counts.get_mut(at)) {
                count.0 += 1;
                count.1 += u64::from(strongest.is_some_and(|e| e >= EventType::Click));
            }
        }
    }
    counts
}

/// Draws the curve (with its band, and a reference curve if given) as SVG.
pub fn write_svg(curve: &PositionCurve, reference: Option<(&str, &[f64])>, path: &Path) -> Result<(), String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let last = curve.positions.len().max(2) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption("Examination by position (relative to position 1)", ("sans-serif", 20))
            .margin(20)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.5..last + 0.5, 0.0..1.15)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("position")
            .y_desc("examination")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| e.to_string())?;
        let blue = RGBColor(31, 119, 180);
        chart
            .draw_series(curve.positions.iter().map(|p| {
                let x = p.position as f64;
                PathElement::new(vec![(x, p.low), (x, p.high)], blue.stroke_width(2))
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                curve.positions.iter().map(|p| (p.position as f64, p.examination)),
                blue.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label("estimated from swaps (95 % band)")
            .legend(move |(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], blue.stroke_width(2)));
        if let Some((label, values)) = reference {
            let grey = RGBColor(120, 120, 120);
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(at, &v)| (at as f64 + 1.0, v)),
                    grey.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?
                .label(label.to_string())
                .legend(move |(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], grey.stroke_width(1)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    std::fs::write(path, svg).map_err(|e| format!("{}: {e}", path.display()))
}
