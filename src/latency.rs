//! Latency summaries: one definition of a percentile for every timing shelf reports
//! (`shelf search --queries`, `shelf model bench`, the ANN recall sweep, load tests).
//!
//! ```
//! use shelf::latency::Summary;
//!
//! let summary = Summary::of(vec![4.0, 1.0, 3.0, 2.0, 100.0]);
//! assert_eq!((summary.p50, summary.max), (3.0, 100.0));
//! ```

use serde::Serialize;

/// Percentiles of a set of timings, in their unit (shelf uses milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    /// Summarises `values` (any order; all zero when there are none).
    pub fn of(mut values: Vec<f64>) -> Summary {
        values.sort_by(f64::total_cmp);
        let mean = if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 };
        Summary {
            count: values.len(),
            p50: percentile(&values, 0.5),
            p95: percentile(&values, 0.95),
            p99: percentile(&values, 0.99),
            max: percentile(&values, 1.0),
            mean,
        }
    }
}

/// The value at quantile `q` (0..=1) of ascending `sorted` values: the nearest rank, so
/// every reported figure is one that was measured. 0 for no values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[at]
}
