//! Utility-weight sweeps: how much relevance a shop's other goals cost.
//!
//! A ranking can serve more than relevance. A shop also wants well-rated products near the
//! top, or in-stock ones, or its own margin; a *utility term* such as `utility.rating` mixes
//! one of those goals into the score with a weight. Weight 0 is pure relevance; the larger
//! the weight, the more the top 10 leans to the other goal, and usually the more nDCG@10
//! (judged relevance) it gives up. No single weight is "right": it is a business choice, and
//! a sweep puts the numbers in front of whoever makes it.
//!
//! `shelf eval --sweep utility.rating=0:1:0.1` evaluates the ranker once per weight and
//! reports, for each, nDCG@10 against a *secondary objective* (for example the mean rating
//! of the top 10). This module holds the parts of that which need no engine:
//!
//! - [`SweepSpec`] parses the `--sweep` argument: `utility.TERM=START:STOP:STEP` (STOP
//!   included) or a list `utility.TERM=0,0.5,1`.
//! - [`mark_pareto`] finds the *Pareto frontier*: the weights that no other weight beats on
//!   both objectives at once. A weight off the frontier is never worth choosing, since
//!   another one gives at least as much relevance *and* at least as much of the other goal,
//!   and more of one of them. Choosing among frontier weights is the trade-off itself.
//! - [`write_svg`] draws the trade-off curve (secondary objective across, nDCG@10 up), and
//!   [`table`] prints it as text for the terminal.
//!
//! ```
//! use shelf::eval::sweep::{mark_pareto, table, SweepPoint, SweepSpec};
//!
//! let spec: SweepSpec = "utility.rating=0:1:0.5".parse().unwrap();
//! assert_eq!(spec.term, "rating");
//! assert_eq!(spec.values, vec![0.0, 0.5, 1.0]);
//!
//! // One evaluation per weight (made-up numbers): (nDCG@10, mean rating of the top 10).
//! let measured = [(0.52, 3.9), (0.50, 4.3), (0.41, 4.2)];
//! let mut points: Vec<SweepPoint> = spec
//!     .values
//!     .iter()
//!     .zip(measured)
//!     .map(|(&weight, (ndcg, rating))| SweepPoint::new(weight, ndcg, rating))
//!     .collect();
//! mark_pareto(&mut points);
//! // Weight 1 is dominated: weight 0.5 has more relevance and a higher rating.
//! assert_eq!(points.iter().map(|p| p.pareto).collect::<Vec<_>>(), vec![true, true, false]);
//! print!("{}", table(&points, &spec.term, "rating@10"));
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use plotters::prelude::*;
use serde::Serialize;

use super::{evaluate, EvalError, EvalOptions, Protocol};
use crate::catalog::Product;
use crate::engine::{Engine, SearchError};
use crate::eval::trec::Qrels;

/// Most weights one sweep may evaluate (0 to 1 in steps of 0.01): each is a full evaluation.
pub const MAX_VALUES: usize = 101;

/// The prefix every sweep argument starts with: only utility weights are swept.
const PREFIX: &str = "utility.";

/// What `--sweep` asks for: which utility term to vary, and the weights to try, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepSpec {
    /// The utility term, without the `utility.` prefix (`rating` for `utility.rating=…`).
    pub term: String,
    /// The weights, in the order they are evaluated and drawn; never empty, finite, at most
    /// [`MAX_VALUES`].
    pub values: Vec<f64>,
}

impl FromStr for SweepSpec {
    type Err = String;

    /// Parses `utility.TERM=START:STOP:STEP` or `utility.TERM=V1,V2,…`.
    ///
    /// A range runs from START by STEP up to STOP, STOP included when a step lands on it
    /// within rounding (`0:1:0.1` gives 11 weights ending in 1); its weights are rounded to
    /// 1e-9 so that `0.1 * 3` reads 0.3. A list is taken as written, in its order.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORMS: &str = "utility.TERM=START:STOP:STEP or utility.TERM=V1,V2,...";
        let s = s.trim();
        let Some(rest) = s.strip_prefix(PREFIX) else {
            return Err(format!(
                "sweep '{s}' must start with '{PREFIX}' (only utility weights can be swept): expected {FORMS}, \
                 e.g. utility.rating=0:1:0.1"
            ));
        };
        let Some((term, values)) = rest.split_once('=') else {
            return Err(format!("sweep '{s}' has no '=': expected {FORMS}"));
        };
        let term = term.trim();
        if term.is_empty() {
            return Err(format!("sweep '{s}' names no utility term after '{PREFIX}': expected {FORMS}"));
        }
        if term.chars().any(char::is_whitespace) {
            return Err(format!("sweep '{s}': the utility term '{term}' contains whitespace"));
        }
        let values = values.trim();
        if values.is_empty() {
            return Err(format!("sweep '{s}' gives no values after '=': expected {FORMS}"));
        }
        let values = if values.contains(':') { parse_range(values)? } else { parse_list(values)? };
        Ok(SweepSpec { term: term.to_string(), values })
    }
}

impl fmt::Display for SweepSpec {
    /// The list form, which parses back to the same spec: `utility.rating=0,0.5,1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}=", self.term)?;
        for (i, value) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{value}")?;
        }
        Ok(())
    }
}

/// One number of a spec: finite, or an error naming `what` it was meant to be.
fn parse_number(text: &str, what: &str) -> Result<f64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("sweep {what} is empty"));
    }
    let value: f64 = text.parse().map_err(|_| format!("sweep {what} '{text}' is not a number"))?;
    if !value.is_finite() {
        return Err(format!("sweep {what} '{text}' is not a finite number"));
    }
    Ok(value)
}

fn parse_range(text: &str) -> Result<Vec<f64>, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let [start, stop, step] = parts[..] else {
        return Err(format!("sweep range '{text}' must be START:STOP:STEP (three numbers), e.g. 0:1:0.1"));
    };
    let start = parse_number(start, "start")?;
    let stop = parse_number(stop, "stop")?;
    let step = parse_number(step, "step")?;
    if step <= 0.0 {
        return Err(format!("sweep step {step} in '{text}' must be greater than 0"));
    }
    if stop < start {
        return Err(format!("sweep stop {stop} in '{text}' is below its start {start}"));
    }
    // Steps that fit, counting a last step that misses STOP by rounding only as reaching it.
    // The quotient can be huge or infinite: it is compared as a float before any cast.
    let steps = ((stop - start) / step * (1.0 + 1e-9) + 1e-9).floor();
    if !steps.is_finite() || steps + 1.0 > MAX_VALUES as f64 {
        return Err(format!(
            "sweep range '{text}' gives more than {MAX_VALUES} values; use a larger step or a shorter range"
        ));
    }
    let steps = steps as usize;
    // Each weight from START directly, not by adding STEP up, so errors do not accumulate.
    Ok((0..=steps).map(|i| round_weight((start + i as f64 * step).min(stop))).collect())
}

fn parse_list(text: &str) -> Result<Vec<f64>, String> {
    let values: Vec<f64> = text
        .split(',')
        .enumerate()
        .map(|(i, item)| parse_number(item, "value").map_err(|e| format!("{e} (item {} of '{text}')", i + 1)))
        .collect::<Result<_, _>>()?;
    if values.len() > MAX_VALUES {
        return Err(format!("sweep list gives {} values; at most {MAX_VALUES}", values.len()));
    }
    Ok(values)
}

/// Rounds a range weight to 1e-9, so that 0.30000000000000004 reads 0.3; values too large
/// for that to mean anything stay as they are.
fn round_weight(value: f64) -> f64 {
    let scaled = value * 1e9;
    let rounded = if scaled.abs() < 1e15 { scaled.round() / 1e9 } else { value };
    // -0 would print as "-0".
    if rounded == 0.0 {
        0.0
    } else {
        rounded
    }
}

/// One evaluated weight of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    /// The utility weight.
    pub value: f64,
    /// Mean nDCG@10 over the judged queries at this weight.
    pub relevance: f64,
    /// The secondary objective at this weight (e.g. mean rating of the top 10); higher is
    /// better.
    pub secondary: f64,
    /// On the Pareto frontier of its sweep; set by [`mark_pareto`].
    pub pareto: bool,
}

impl SweepPoint {
    /// A point not yet marked (`pareto` false).
    pub fn new(value: f64, relevance: f64, secondary: f64) -> Self {
        SweepPoint { value, relevance, secondary, pareto: false }
    }

    fn is_finite(&self) -> bool {
        self.relevance.is_finite() && self.secondary.is_finite()
    }

    /// At least as good as `other` on both objectives and strictly better on one.
    fn dominates(&self, other: &SweepPoint) -> bool {
        self.relevance >= other.relevance
            && self.secondary >= other.secondary
            && (self.relevance > other.relevance || self.secondary > other.secondary)
    }
}

/// Sets `pareto` on every point: true when no other point is at least as good on both
/// relevance and the secondary objective and strictly better on one (both are maximised).
///
/// Points with equal numbers do not dominate each other, so ties and duplicates on the
/// frontier are all marked. A point whose relevance or secondary value is not finite (NaN
/// from an empty evaluation, say) is never marked and dominates nothing.
pub fn mark_pareto(points: &mut [SweepPoint]) {
    let marks: Vec<bool> =
        points.iter().map(|p| p.is_finite() && !points.iter().any(|q| q.is_finite() && q.dominates(p))).collect();
    for (point, mark) in points.iter_mut().zip(marks) {
        point.pareto = mark;
    }
}

/// A weight as it is shown: shortest exact form, `0.3`, `1`, `-0.25`.
fn format_weight(value: f64) -> String {
    format!("{value}")
}

/// A plain-text table of a sweep for the terminal, one row per weight in sweep order:
/// `utility.TERM`, nDCG@10, the secondary objective, and `*` on Pareto-optimal rows.
pub fn table(points: &[SweepPoint], term: &str, secondary_label: &str) -> String {
    let headers = [format!("{PREFIX}{term}"), "nDCG@10".to_string(), secondary_label.to_string()];
    let rows: Vec<[String; 3]> = points
        .iter()
        .map(|p| [format_weight(p.value), format!("{:.4}", p.relevance), format!("{:.4}", p.secondary)])
        .collect();
    let widths: Vec<usize> = (0..3)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).chain([headers[c].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String; 3], mark: &str| {
        let text = format!(
            "{:>w0$}  {:>w1$}  {:>w2$}  {mark}",
            cells[0],
            cells[1],
            cells[2],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        format!("{}\n", text.trim_end())
    };
    let mut out = line(&headers, "pareto");
    for (point, row) in points.iter().zip(&rows) {
        out.push_str(&line(row, if point.pareto { "*" } else { "" }));
    }
    if points.is_empty() {
        out.push_str("(no weights evaluated)\n");
    } else {
        out.push_str("* Pareto-optimal: no other weight is at least as good on both and better on one\n");
    }
    out
}

/// Drawing or writing the sweep chart failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("cannot draw the sweep chart for {}: {message}", path.display())]
    Draw { path: PathBuf, message: String },
    #[error("cannot write the sweep chart to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Chart size in pixels.
const WIDTH: u32 = 900;
const HEIGHT: u32 = 600;
const FONT: &str = "sans-serif";
/// Pareto-optimal points: filled, in colour.
const FRONTIER: RGBColor = RGBColor(200, 55, 35);
/// Dominated points: hollow, grey.
const DOMINATED: RGBColor = RGBColor(150, 150, 150);
/// The line through the points in sweep order.
const PATH: RGBColor = RGBColor(120, 150, 200);
const MARKER_RADIUS: i32 = 5;

/// Draws the sweep's trade-off curve as an SVG file at `path`.
///
/// The secondary objective runs across (x), nDCG@10 up (y). A line joins the points in sweep
/// order; each point is labelled with its weight (so `title` should name the term, e.g.
/// "utility.rating sweep"); Pareto-optimal points are filled and coloured, the others hollow
/// and grey, and a legend says which is which. Points with a non-finite value are left out.
/// The SVG backend writes text as `<text>` elements, so no font files are needed.
pub fn write_svg(
    points: &[SweepPoint],
    path: &Path,
    title: &str,
    relevance_label: &str,
    secondary_label: &str,
) -> Result<(), SweepError> {
    let svg = render_svg(points, title, relevance_label, secondary_label)
        .map_err(|message| SweepError::Draw { path: path.to_path_buf(), message })?;
    std::fs::write(path, svg).map_err(|source| SweepError::Write { path: path.to_path_buf(), source })
}

/// The chart as SVG text; the error is plotters' message.
fn render_svg(
    points: &[SweepPoint],
    title: &str,
    relevance_label: &str,
    secondary_label: &str,
) -> Result<String, String> {
    let shown: Vec<&SweepPoint> = points.iter().filter(|p| p.is_finite()).collect();
    let (x_lo, x_hi) = padded_range(shown.iter().map(|p| p.secondary));
    let (y_lo, y_hi) = padded_range(shown.iter().map(|p| p.relevance));

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 22))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(secondary_label)
            .y_desc(relevance_label)
            .axis_desc_style((FONT, 16))
            .label_style((FONT, 13))
            .light_line_style(RGBColor(245, 245, 245))
            .draw()
            .map_err(|e| e.to_string())?;

        if shown.len() > 1 {
            chart
                .draw_series(LineSeries::new(shown.iter().map(|p| (p.secondary, p.relevance)), PATH.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label("weights in sweep order")
                .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], PATH.stroke_width(2)));
        }

        // A marker is a filled disc under a ring: white inside a grey ring reads as hollow,
        // and hides the line behind it.
        let marker = |p: &SweepPoint, (fill, ring): (ShapeStyle, ShapeStyle)| {
            EmptyElement::at((p.secondary, p.relevance))
                + Circle::new((0, 0), MARKER_RADIUS, fill)
                + Circle::new((0, 0), MARKER_RADIUS, ring)
                + Text::new(format_weight(p.value), (MARKER_RADIUS + 2, -(MARKER_RADIUS + 15)), (FONT, 13))
        };
        let legend_marker = |(fill, ring): (ShapeStyle, ShapeStyle)| {
            move |(x, y): (i32, i32)| {
                EmptyElement::at((x, y))
                    + Circle::new((0, 0), MARKER_RADIUS, fill)
                    + Circle::new((0, 0), MARKER_RADIUS, ring)
            }
        };
        let hollow = (WHITE.filled(), DOMINATED.stroke_width(2));
        let filled = (FRONTIER.filled(), FRONTIER.stroke_width(2));
        let dominated: Vec<&SweepPoint> = shown.iter().copied().filter(|p| !p.pareto).collect();
        let frontier: Vec<&SweepPoint> = shown.iter().copied().filter(|p| p.pareto).collect();
        if !dominated.is_empty() {
            chart
                .draw_series(dominated.iter().map(|p| marker(p, hollow)))
                .map_err(|e| e.to_string())?
                .label("dominated: another weight is better on both")
                .legend(legend_marker(hollow));
        }
        if !frontier.is_empty() {
            chart
                .draw_series(frontier.iter().map(|p| marker(p, filled)))
                .map_err(|e| e.to_string())?
                .label("Pareto-optimal weight")
                .legend(legend_marker(filled));
        }
        if !shown.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerLeft)
                .label_font((FONT, 13))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// An axis range around `values` with room on both sides, so no point sits on the frame.
/// One value, or all equal (within 1e-12 of their size), gets a band around it; no values
/// get 0..1. The range and its width are always finite, with `lo < hi`: plotters' tick
/// placement does not end on an infinite width.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    // Beyond this, the width of the range could overflow; such values are drawn off the frame.
    const LIMIT: f64 = f64::MAX / 4.0;
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let (lo, hi) = (lo.clamp(-LIMIT, LIMIT), hi.clamp(-LIMIT, LIMIT));
    let span = hi - lo;
    let pad = if span <= 1e-12 * lo.abs().max(hi.abs()).max(1.0) { (lo.abs() * 0.05).max(0.05) } else { span * 0.1 };
    (lo - pad, hi + pad)
}

/// The shop objective a swept utility term stands for, measured over each query's top 10.
#[derive(Clone, Copy)]
pub struct Objective {
    pub label: &'static str,
    /// One product's value (None when the product lacks it).
    pub value: fn(&Product) -> Option<f64>,
}

/// The objective of a utility term.
pub fn objective(term: &str) -> Result<Objective, String> {
    let (label, value): (&'static str, fn(&Product) -> Option<f64>) = match term {
        "rating" => ("mean rating of the top 10", |p| p.rating),
        "in_stock" => ("share in stock of the top 10", |p| p.in_stock.map(|s| if s { 1.0 } else { 0.0 })),
        "popularity" => ("mean popularity of the top 10", |p| p.popularity),
        other => return Err(format!("a sweep measures rating, in_stock or popularity against relevance, not {other}")),
    };
    Ok(Objective { label, value })
}

/// Evaluates `options.ranker` once per value of the swept utility weight (the other weights
/// as `options.utility`, else the index's): nDCG@10 against the term's objective, the
/// Pareto-optimal settings marked.
pub fn run(
    engine: &Engine,
    queries: &[(String, String)],
    qrels: &Qrels,
    options: &EvalOptions,
    spec: &SweepSpec,
    progress: &dyn Fn(&SweepPoint),
) -> Result<Vec<SweepPoint>, EvalError> {
    let invalid = |message: String| EvalError::Search(SearchError::InvalidRequest(message));
    if !options.ranker.is_learned() || options.protocol != Protocol::Retrieve {
        return Err(invalid(
            "a utility sweep weighs a learned ranker's scores in the retrieve protocol: load a model and use ltr, neural or ensemble".into(),
        ));
    }
    let value_of = objective(&spec.term).map_err(invalid)?.value;
    let base = engine.index().config.utility.overridden_by(&options.utility.clone().unwrap_or_default());
    let mut points = Vec::with_capacity(spec.values.len());
    for &value in &spec.values {
        let mut weights = base.clone();
        weights.set(&spec.term, value).map_err(invalid)?;
        let options = EvalOptions { utility: Some(weights), show_progress: false, ..options.clone() };
        let report = evaluate(engine, queries, qrels, &options)?;
        let mut per_query = Vec::new();
        for query in &report.per_query {
            let mut values = Vec::new();
            for (id, _) in query.ranking.iter().take(10) {
                if let Some(v) = engine.product(id)?.as_ref().and_then(value_of) {
                    values.push(v);
                }
            }
            if !values.is_empty() {
                per_query.push(values.iter().sum::<f64>() / values.len() as f64);
            }
        }
        let secondary = per_query.iter().sum::<f64>() / per_query.len().max(1) as f64;
        let point = SweepPoint::new(value, report.mean.ndcg10, secondary);
        progress(&point);
        points.push(point);
    }
    mark_pareto(&mut points);
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SweepSpec, String> {
        s.parse()
    }

    fn point(value: f64, relevance: f64, secondary: f64) -> SweepPoint {
        SweepPoint::new(value, relevance, secondary)
    }

    fn marks(points: &[SweepPoint]) -> Vec<bool> {
        points.iter().map(|p| p.pareto).collect()
    }

    #[test]
    fn parses_a_range_including_stop_without_drift() {
        let spec = parse("utility.rating=0:1:0.1").unwrap();
        assert_eq!(spec.term, "rating");
        assert_eq!(spec.values, vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]);
        assert_eq!(format_weight(spec.values[3]), "0.3");
        assert_eq!(format_weight(spec.values[7]), "0.7");
    }

    #[test]
    fn range_stops_at_the_last_step_that_fits() {
        assert_eq!(parse("utility.rating=0:1:0.3").unwrap().values, vec![0.0, 0.3, 0.6, 0.9]);
        assert_eq!(parse("utility.rating=0:0.3:0.1").unwrap().values, vec![0.0, 0.1, 0.2, 0.3]);
        assert_eq!(parse("utility.x=-0.2:0.2:0.1").unwrap().values, vec![-0.2, -0.1, 0.0, 0.1, 0.2]);
        assert_eq!(parse(" utility.stock = 2 : 2 : 0.5 ").unwrap().values, vec![2.0]);
        assert_eq!(parse("utility.rating=0:1:0.01").unwrap().values.len(), MAX_VALUES);
    }

    #[test]
    fn parses_a_list_in_its_order() {
        let spec = parse("utility.margin=0, 0.5,1,0.25").unwrap();
        assert_eq!(spec.term, "margin");
        assert_eq!(spec.values, vec![0.0, 0.5, 1.0, 0.25]);
        assert_eq!(parse("utility.margin=0.7").unwrap().values, vec![0.7]);
        assert_eq!(parse("utility.margin=-1e-3,2").unwrap().values, vec![-0.001, 2.0]);
    }

    #[test]
    fn display_parses_back() {
        for s in ["utility.rating=0:1:0.1", "utility.margin=1,0,0.5"] {
            let spec = parse(s).unwrap();
            assert_eq!(parse(&spec.to_string()).unwrap(), spec);
        }
        assert_eq!(parse("utility.r=0:1:0.5").unwrap().to_string(), "utility.r=0,0.5,1");
    }

    #[test]
    fn rejects_a_missing_prefix() {
        for s in ["rating=0:1:0.1", "util.rating=0,1", "utilityrating=0,1", ""] {
            let err = parse(s).unwrap_err();
            assert!(err.contains("must start with 'utility.'"), "{s}: {err}");
        }
    }

    #[test]
    fn rejects_an_empty_term_or_no_values() {
        let err = parse("utility.=0:1:0.1").unwrap_err();
        assert!(err.contains("names no utility term"), "{err}");
        let err = parse("utility. =0,1").unwrap_err();
        assert!(err.contains("names no utility term"), "{err}");
        let err = parse("utility.rating").unwrap_err();
        assert!(err.contains("no '='"), "{err}");
        let err = parse("utility.rating=").unwrap_err();
        assert!(err.contains("no values"), "{err}");
        let err = parse("utility.my rating=0,1").unwrap_err();
        assert!(err.contains("whitespace"), "{err}");
    }

    #[test]
    fn rejects_non_numbers() {
        let err = parse("utility.rating=0:one:0.1").unwrap_err();
        assert!(err.contains("stop 'one' is not a number"), "{err}");
        let err = parse("utility.rating=0,x,1").unwrap_err();
        assert_eq!(err, "sweep value 'x' is not a number (item 2 of '0,x,1')");
        let err = parse("utility.rating=0,,1").unwrap_err();
        assert_eq!(err, "sweep value is empty (item 2 of '0,,1')");
        let err = parse("utility.rating=0:1").unwrap_err();
        assert!(err.contains("START:STOP:STEP"), "{err}");
        let err = parse("utility.rating=0:1:0.1:2").unwrap_err();
        assert!(err.contains("START:STOP:STEP"), "{err}");
        let err = parse("utility.rating=::").unwrap_err();
        assert!(err.contains("start is empty"), "{err}");
    }

    #[test]
    fn rejects_non_finite_numbers() {
        for s in
            ["utility.rating=0:inf:0.1", "utility.rating=NaN,1", "utility.rating=0,-infinity", "utility.r=0:1e400:1"]
        {
            let err = parse(s).unwrap_err();
            assert!(err.contains("is not a finite number"), "{s}: {err}");
        }
    }

    #[test]
    fn rejects_a_step_not_above_zero() {
        for s in ["utility.rating=0:1:0", "utility.rating=0:1:-0.1", "utility.rating=0:1:-0"] {
            let err = parse(s).unwrap_err();
            assert!(err.contains("must be greater than 0"), "{s}: {err}");
        }
    }

    #[test]
    fn rejects_stop_below_start() {
        let err = parse("utility.rating=1:0:0.1").unwrap_err();
        assert!(err.contains("stop 0 in '1:0:0.1' is below its start 1"), "{err}");
    }

    #[test]
    fn rejects_more_than_101_values() {
        let err = parse("utility.rating=0:1:0.001").unwrap_err();
        assert!(err.contains("more than 101 values"), "{err}");
        // A quotient too big for any integer must not overflow.
        let err = parse("utility.rating=-1e300:1e300:1e-300").unwrap_err();
        assert!(err.contains("more than 101 values"), "{err}");
        let list = vec!["0.5"; 102].join(",");
        let err = parse(&format!("utility.rating={list}")).unwrap_err();
        assert!(err.contains("102 values; at most 101"), "{err}");
        assert_eq!(parse(&format!("utility.rating={}", vec!["0.5"; 101].join(","))).unwrap().values.len(), 101);
    }

    #[test]
    fn pareto_on_a_known_set() {
        // Relevance falls and rating rises with the weight, except weight 0.3 (worse than 0.2
        // on both) and weight 0.5 (same rating as 0.4, less relevance).
        let mut points = vec![
            point(0.0, 0.60, 3.8),
            point(0.1, 0.58, 4.0),
            point(0.2, 0.55, 4.2),
            point(0.3, 0.50, 4.1),
            point(0.4, 0.45, 4.4),
            point(0.5, 0.40, 4.4),
        ];
        mark_pareto(&mut points);
        assert_eq!(marks(&points), vec![true, true, true, false, true, false]);
    }

    #[test]
    fn pareto_with_ties_and_duplicates() {
        let mut points = vec![
            point(0.0, 0.5, 4.0),
            point(0.1, 0.5, 4.0), // a duplicate of the first: neither beats the other
            point(0.2, 0.5, 3.0), // same relevance, lower rating: dominated
            point(0.3, 0.4, 4.5),
            point(0.4, 0.3, 4.5), // same rating, less relevance: dominated
            point(0.5, 0.3, 4.5), // a duplicate of a dominated point stays dominated
        ];
        mark_pareto(&mut points);
        assert_eq!(marks(&points), vec![true, true, false, true, false, false]);

        // Marks are recomputed, not accumulated: now the third beats the first two.
        points[2].relevance = 0.9;
        points[2].secondary = 4.0;
        mark_pareto(&mut points);
        assert_eq!(marks(&points), vec![false, false, true, true, false, false]);
    }

    #[test]
    fn pareto_edge_cases() {
        let mut none: Vec<SweepPoint> = Vec::new();
        mark_pareto(&mut none);

        let mut one = vec![point(0.0, 0.5, 4.0)];
        mark_pareto(&mut one);
        assert!(one[0].pareto);

        let mut with_nan = vec![point(0.0, f64::NAN, 9.0), point(0.5, 0.4, 4.0), point(1.0, 0.3, f64::NAN)];
        mark_pareto(&mut with_nan);
        assert_eq!(marks(&with_nan), vec![false, true, false]);
    }

    #[test]
    fn table_is_aligned_and_stars_the_frontier() {
        let mut points = vec![point(0.0, 0.6, 3.8), point(0.5, 0.5, 3.7), point(1.0, 0.41234, 4.25)];
        mark_pareto(&mut points);
        let text = table(&points, "rating", "rating@10");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "utility.rating  nDCG@10  rating@10  pareto");
        assert_eq!(lines[1], "             0   0.6000     3.8000  *");
        assert_eq!(lines[2], "           0.5   0.5000     3.7000");
        assert_eq!(lines[3], "             1   0.4123     4.2500  *");
        assert!(lines[4].starts_with("* Pareto-optimal"));
        assert_eq!(lines.len(), 5);

        let empty = table(&[], "rating", "rating@10");
        assert!(empty.contains("no weights evaluated"), "{empty}");
    }

    /// The text of every `<text>` element, trimmed.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|element| {
                let (_, rest) = element.split_once('>')?;
                let (text, _) = rest.split_once("</text>")?;
                Some(text.trim().to_string())
            })
            .collect()
    }

    fn temp_svg(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        (dir, path)
    }

    #[test]
    fn writes_an_svg_with_labels_and_both_kinds_of_point() {
        let mut points = vec![
            point(0.0, 0.60, 3.8),
            point(0.25, 0.58, 4.0),
            point(0.5, 0.50, 3.9),
            point(0.75, 0.45, 4.4),
            point(1.0, 0.40, 4.4),
        ];
        mark_pareto(&mut points);
        let (_dir, path) = temp_svg("sweep.svg");
        write_svg(&points, &path, "utility.rating sweep", "nDCG@10", "mean rating@10").unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        let texts = texts(&svg);
        for label in [
            "utility.rating sweep",
            "nDCG@10",
            "mean rating@10",
            "0",
            "0.25",
            "0.5",
            "0.75",
            "1",
            "Pareto-optimal weight",
            "dominated: another weight is better on both",
            "weights in sweep order",
        ] {
            assert!(texts.iter().any(|t| t == label), "no <text> {label:?} in {texts:?}");
        }
        assert!(svg.contains("<polyline"), "the sweep line");
        // Filled frontier markers and hollow grey ones.
        assert!(svg.contains(r##"fill="#C83723""##), "{svg}");
        assert!(svg.contains(r##"stroke="#969696""##), "{svg}");
    }

    #[test]
    fn escapes_markup_in_labels() {
        let points = vec![point(0.0, 0.5, 4.0)];
        let (_dir, path) = temp_svg("escaped.svg");
        write_svg(&points, &path, "rating <& margin>", "nDCG@10", "rating & margin").unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("rating &lt;&amp; margin&gt;"), "{svg}");
        assert!(!svg.contains("rating <&"));
    }

    #[test]
    fn a_one_point_sweep_works() {
        let spec = parse("utility.rating=0.5").unwrap();
        let mut points: Vec<SweepPoint> = spec.values.iter().map(|&v| point(v, 0.55, 4.1)).collect();
        mark_pareto(&mut points);
        assert!(points[0].pareto);
        let (_dir, path) = temp_svg("one.svg");
        write_svg(&points, &path, "one weight", "nDCG@10", "rating@10").unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let texts = texts(&svg);
        assert!(svg.contains("<svg"));
        for label in ["one weight", "0.5", "Pareto-optimal weight"] {
            assert!(texts.iter().any(|t| t == label), "no <text> {label:?} in {texts:?}");
        }
        assert!(!svg.contains("weights in sweep order"), "no line through a single point");
        assert!(table(&points, &spec.term, "rating@10").contains("0.5"));
    }

    #[test]
    fn identical_unusual_and_missing_values_do_not_panic() {
        let (dir, _) = temp_svg("unused");
        let cases: Vec<Vec<SweepPoint>> = vec![
            vec![],
            vec![point(0.0, 0.5, 4.0), point(0.5, 0.5, 4.0), point(1.0, 0.5, 4.0)],
            vec![point(0.0, 0.0, 0.0), point(1.0, 0.0, 0.0)],
            vec![point(0.0, f64::NAN, f64::INFINITY), point(1.0, f64::NAN, 1.0)],
            vec![point(0.0, 0.5, -1e300), point(1.0, 0.4, 1e300)],
            vec![point(0.0, -f64::MAX, -f64::MAX), point(1.0, f64::MAX, f64::MAX)],
            vec![point(0.0, 1e-15, 1e-15), point(1.0, 2e-15, 3e-15)],
            vec![point(0.0, -3.0, 1e9), point(1.0, -2.0, 1e9 + 1.0)],
        ];
        for (i, mut points) in cases.into_iter().enumerate() {
            mark_pareto(&mut points);
            let path = dir.path().join(format!("case{i}.svg"));
            write_svg(&points, &path, "edge case", "nDCG@10", "rating@10").unwrap();
            assert!(std::fs::read_to_string(&path).unwrap().contains("<svg"), "case {i}");
        }
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_it() {
        let (dir, _) = temp_svg("unused");
        let path = dir.path().join("missing-dir").join("sweep.svg");
        let err = write_svg(&[point(0.0, 0.5, 4.0)], &path, "t", "nDCG@10", "rating@10").unwrap_err();
        assert!(matches!(err, SweepError::Write { .. }));
        let message = err.to_string();
        assert!(message.contains("cannot write the sweep chart to") && message.contains("missing-dir"), "{message}");
    }

    #[test]
    fn padded_ranges_keep_points_off_the_frame() {
        assert_eq!(padded_range([].into_iter()), (0.0, 1.0));
        let (lo, hi) = padded_range([0.5].into_iter());
        assert!(lo < 0.5 && 0.5 < hi);
        let (lo, hi) = padded_range([0.2, 0.6].into_iter());
        assert!(lo < 0.2 && 0.6 < hi && (0.2 - lo - (hi - 0.6)).abs() < 1e-12);
        let (lo, hi) = padded_range([0.0, 0.0].into_iter());
        assert!(lo < 0.0 && 0.0 < hi);
        let (lo, hi) = padded_range([-1e300, 1e300].into_iter());
        assert!(lo <= -1e300 && 1e300 <= hi && lo < hi);
        let (lo, hi) = padded_range([-f64::MAX, f64::MAX].into_iter());
        assert!(lo < hi && (hi - lo).is_finite());
        let (lo, hi) = padded_range([1e-15, 2e-15].into_iter());
        assert!(lo < 0.0 && 0.0 < hi, "differences below 1e-12 are drawn as one value");
    }
}
