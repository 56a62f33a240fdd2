//! The statistics of a benchmark report: median and min-max range of a set of
//! samples, and per-pair ratios of interleaved runs.
//!
//! Interleaved runs (A B A B ...) share the machine's slow drifts pair by pair, so a
//! comparison is the ratio within each pair (`B_i / A_i`), summarized like any other
//! sample set, not the ratio of two medians.

use serde::{Deserialize, Serialize};

use super::json;

/// A summary of samples: how many, the median and the range (in the report's JSON
/// in this order, numbers rounded to six decimals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The median (the mean of the two middle values for an even count).
    #[serde(serialize_with = "json::number")]
    pub median: f64,
    /// The smallest sample.
    #[serde(serialize_with = "json::number")]
    pub min: f64,
    /// The largest sample.
    #[serde(serialize_with = "json::number")]
    pub max: f64,
    /// The samples, in the order they were taken.
    #[serde(serialize_with = "json::numbers")]
    pub samples: Vec<f64>,
}

impl Stats {
    /// Summarizes `samples`; `None` when there are none (or any is not a number).
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() || samples.iter().any(|sample| sample.is_nan()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Some(Self {
            samples: samples.to_vec(),
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }

    /// The number of samples.
    pub fn count(&self) -> usize {
        self.samples.len()
    }

    /// The spread as a fraction of the median: `(max - min) / median` (0 when the
    /// median is 0).
    pub fn spread(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median
        }
    }
}

/// The per-pair ratios `numerator_i / denominator_i` of two interleaved series, for
/// the pairs where both runs produced a sample and the denominator is not zero.
pub fn pair_ratios(numerators: &[Option<f64>], denominators: &[Option<f64>]) -> Vec<f64> {
    numerators
        .iter()
        .zip(denominators)
        .filter_map(|pair| match pair {
            (Some(numerator), Some(denominator)) if *denominator != 0.0 => {
                Some(numerator / denominator)
            }
            _ => None,
        })
        .collect()
}

/// The samples that exist.
pub fn present(series: &[Option<f64>]) -> Vec<f64> {
    series.iter().flatten().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let odd = Stats::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (3.0, 1.0, 5.0));
        assert_eq!(odd.samples, [5.0, 1.0, 3.0], "kept in the order taken");
        let even = Stats::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((even.median, even.min, even.max), (2.5, 1.0, 4.0));
        assert_eq!(even.count(), 4);
        let one = Stats::of(&[7.5]).unwrap();
        assert_eq!((one.median, one.min, one.max), (7.5, 7.5, 7.5));
    }

    #[test]
    fn nothing_to_summarize() {
        assert_eq!(Stats::of(&[]), None);
        assert_eq!(Stats::of(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn spread_is_relative_to_the_median() {
        assert_eq!(Stats::of(&[9.0, 10.0, 11.0]).unwrap().spread(), 0.2);
        assert_eq!(Stats::of(&[0.0, 0.0]).unwrap().spread(), 0.0);
    }

    #[test]
    fn ratios_pair_by_pair_skip_missing_samples() {
        let aerie = [Some(4.0), None, Some(9.0), Some(1.0)];
        let bare = [Some(2.0), Some(3.0), Some(3.0), Some(0.0)];
        assert_eq!(pair_ratios(&aerie, &bare), [2.0, 3.0]);
        // A ratio of medians would differ: pairs carry the drift of the machine.
        let slow_then_fast = Stats::of(&pair_ratios(
            &[Some(11.0), Some(22.0), Some(33.0)],
            &[Some(10.0), Some(20.0), Some(30.0)],
        ))
        .unwrap();
        assert!((slow_then_fast.median - 1.1).abs() < 1e-12);
        assert!((slow_then_fast.max - slow_then_fast.min).abs() < 1e-12);
        assert_eq!(present(&aerie), [4.0, 9.0, 1.0]);
    }
}
