//! Parameters of the analysis: risk weights, prior strength, date range and
//! period length, with their validation.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

/// Default prior strength `m` of the smoothed rates, in pseudo-emails.
pub const DEFAULT_SMOOTHING_STRENGTH: f64 = 4.0;

/// Maximum distance of the weight sum from 1 that validation accepts, so that
/// weights such as 0.333333, 0.333333, 0.333334 need no more digits.
pub const WEIGHT_SUM_TOLERANCE: f64 = 1e-6;

/// Errors of parameter validation and parsing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamsError {
    #[error(
        "invalid risk weights (click {click}, submit {submit}, training {training}, \
         overdue {overdue}, score {score}): {reason}"
    )]
    InvalidWeights {
        click: f64,
        submit: f64,
        training: f64,
        overdue: f64,
        score: f64,
        reason: String,
    },
    #[error("invalid smoothing strength {0}: it must be a finite number >= 0")]
    InvalidSmoothingStrength(f64),
    #[error("invalid date range: since {since} is after until {until}")]
    InvalidRange {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    #[error("invalid period {0:?}: expected 1d (day), 1w (ISO week) or 1mo (calendar month)")]
    InvalidEvery(String),
}

/// Weights of the five components of the risk score. They must be finite,
/// non-negative and sum to 1, so that the score stays within 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskWeights {
    pub click: f64,
    pub submit: f64,
    pub training: f64,
    pub overdue: f64,
    pub score: f64,
}

impl Default for RiskWeights {
    fn default() -> Self {
        Self {
            click: 0.30,
            submit: 0.30,
            training: 0.15,
            overdue: 0.10,
            score: 0.15,
        }
    }
}

impl RiskWeights {
    /// Checks that every weight is finite and >= 0 and that the weights sum to
    /// 1 within [`WEIGHT_SUM_TOLERANCE`]. The error names all five values.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let values = [
            self.click,
            self.submit,
            self.training,
            self.overdue,
            self.score,
        ];
        if values.iter().any(|w| !w.is_finite()) {
            return Err(self.invalid("every weight must be a finite number"));
        }
        if values.iter().any(|w| *w < 0.0) {
            return Err(self.invalid("no weight may be negative"));
        }
        let sum: f64 = values.iter().sum();
        if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            return Err(self.invalid(&format!("the weights sum to {sum}, not 1")));
        }
        Ok(())
    }

    fn invalid(&self, reason: &str) -> ParamsError {
        ParamsError::InvalidWeights {
            click: self.click,
            submit: self.submit,
            training: self.training,
            overdue: self.overdue,
            score: self.score,
            reason: reason.to_owned(),
        }
    }
}

/// Length of the calendar periods that `department_trend` and
/// `repeat_clickers` compare, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Every {
    /// Calendar day.
    Day,
    /// ISO week, from Monday 00:00 UTC.
    Week,
    /// Calendar month.
    Month,
}

impl Every {
    /// Returns the polars duration string used to truncate timestamps.
    pub fn polars_duration(self) -> &'static str {
        match self {
            Every::Day => "1d",
            Every::Week => "1w",
            Every::Month => "1mo",
        }
    }
}

impl FromStr for Every {
    type Err = ParamsError;

    /// Parses "1d", "1w" or "1mo".
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "1d" => Ok(Every::Day),
            "1w" => Ok(Every::Week),
            "1mo" => Ok(Every::Month),
            _ => Err(ParamsError::InvalidEvery(text.to_owned())),
        }
    }
}

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.polars_duration())
    }
}

/// Settings of one analysis run.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisParams {
    /// Prior strength `m` of the smoothed rates, in pseudo-emails (default 4).
    pub smoothing_strength: f64,
    /// Weights of the risk score components.
    pub weights: RiskWeights,
    /// First `snapshot_at` included (inclusive), if any.
    pub since: Option<DateTime<Utc>>,
    /// Last `snapshot_at` included (inclusive), if any.
    pub until: Option<DateTime<Utc>>,
    /// Calendar period of the trend tables. `None` compares consecutive snapshots.
    pub every: Option<Every>,
}

impl Default for AnalysisParams {
    fn default() -> Self {
        Self {
            smoothing_strength: DEFAULT_SMOOTHING_STRENGTH,
            weights: RiskWeights::default(),
            since: None,
            until: None,
            every: None,
        }
    }
}

impl AnalysisParams {
    /// Checks the weights, the smoothing strength and the date range.
    pub fn validate(&self) -> Result<(), ParamsError> {
        self.weights.validate()?;
        let m = self.smoothing_strength;
        if !m.is_finite() || m < 0.0 {
            return Err(ParamsError::InvalidSmoothingStrength(m));
        }
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since > until
        {
            return Err(ParamsError::InvalidRange { since, until });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(values: [f64; 5]) -> RiskWeights {
        RiskWeights {
            click: values[0],
            submit: values[1],
            training: values[2],
            overdue: values[3],
            score: values[4],
        }
    }

    #[test]
    fn default_weights_are_valid() {
        assert_eq!(RiskWeights::default().validate(), Ok(()));
        assert_eq!(AnalysisParams::default().validate(), Ok(()));
    }

    #[test]
    fn weights_not_summing_to_one_rejected() {
        let error = weights([0.5, 0.3, 0.15, 0.10, 0.15])
            .validate()
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("click 0.5"), "{message}");
        assert!(message.contains("score 0.15"), "{message}");
        assert!(message.contains("sum to 1.2"), "{message}");
    }

    #[test]
    fn negative_weight_rejected() {
        let error = weights([0.7, 0.3, 0.15, -0.15, 0.0])
            .validate()
            .unwrap_err();
        assert!(error.to_string().contains("overdue -0.15"), "{error}");
        assert!(error.to_string().contains("negative"), "{error}");
    }

    #[test]
    fn non_finite_weight_rejected() {
        assert!(weights([f64::NAN, 0.3, 0.3, 0.2, 0.2]).validate().is_err());
        assert!(
            weights([f64::INFINITY, 0.0, 0.0, 0.0, 0.0])
                .validate()
                .is_err()
        );
    }

    #[test]
    fn weights_within_tolerance_accepted() {
        // 0.333333 + 0.333333 + 0.333334 = 1 exactly in decimal.
        assert_eq!(
            weights([0.333333, 0.333333, 0.333334, 0.0, 0.0]).validate(),
            Ok(())
        );
        // 0.2 * 5 = 1 up to floating-point rounding.
        assert_eq!(weights([0.2; 5]).validate(), Ok(()));
    }

    #[test]
    fn invalid_smoothing_strength_rejected() {
        for m in [-1.0, f64::NAN, f64::INFINITY] {
            let params = AnalysisParams {
                smoothing_strength: m,
                ..AnalysisParams::default()
            };
            assert!(params.validate().is_err(), "m = {m}");
        }
        let zero = AnalysisParams {
            smoothing_strength: 0.0,
            ..AnalysisParams::default()
        };
        assert_eq!(zero.validate(), Ok(()));
    }

    #[test]
    fn reversed_date_range_rejected() {
        let since = "2025-02-01T00:00:00Z".parse().unwrap();
        let until = "2025-01-01T00:00:00Z".parse().unwrap();
        let params = AnalysisParams {
            since: Some(since),
            until: Some(until),
            ..AnalysisParams::default()
        };
        assert_eq!(
            params.validate(),
            Err(ParamsError::InvalidRange { since, until })
        );
    }

    #[test]
    fn every_parses_three_lengths() {
        assert_eq!("1d".parse::<Every>(), Ok(Every::Day));
        assert_eq!("1w".parse::<Every>(), Ok(Every::Week));
        assert_eq!("1mo".parse::<Every>(), Ok(Every::Month));
        assert_eq!(Every::Month.to_string(), "1mo");
        let error = "2w".parse::<Every>().unwrap_err();
        assert!(error.to_string().contains("\"2w\""), "{error}");
    }
}
