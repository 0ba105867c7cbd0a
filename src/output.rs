//! What a command prints on stdout: text lines, or with `--json` one JSON
//! document for scripts. Logs and progress bars go to stderr either way.

use std::io::Write;

use anyhow::{Context, Result};
use polars::prelude::{AnyValue, DataFrame, TimeUnit};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cli::Cli;

/// The output mode of one command run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    /// No progress bars and no text summary.
    pub quiet: bool,
    /// One JSON document on stdout in place of the text summary.
    pub json: bool,
}

impl Output {
    pub fn from_cli(cli: &Cli) -> Self {
        Output {
            quiet: cli.quiet,
            json: cli.json,
        }
    }

    /// Returns whether text lines are printed: neither quiet nor JSON.
    pub fn text(&self) -> bool {
        !self.quiet && !self.json
    }

    /// Returns whether progress bars may be drawn on stderr.
    pub fn progress(&self) -> bool {
        !self.quiet
    }

    /// Prints a line of text unless the output is quiet or JSON.
    pub fn line(&self, text: impl std::fmt::Display) {
        if self.text() {
            println!("{text}");
        }
    }

    /// Prints `value` as pretty JSON when the output is JSON, even with
    /// `--quiet`, because a script that asks for JSON reads it.
    pub fn json_value(&self, value: &impl Serialize) -> Result<()> {
        if !self.json {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, value).context("failed to write JSON")?;
        writeln!(stdout).context("failed to write JSON")?;
        Ok(())
    }
}

/// Converts the rows of a frame to JSON objects, column name to value.
/// Times become RFC 3339 UTC strings, and NaN or infinity become null.
pub fn frame_rows_json(frame: &DataFrame) -> Vec<Value> {
    let columns = frame.columns();
    (0..frame.height())
        .map(|row| {
            let mut object = Map::new();
            for column in columns {
                let value = column.get(row).map_or(Value::Null, |v| any_value_json(&v));
                object.insert(column.name().to_string(), value);
            }
            Value::Object(object)
        })
        .collect()
}

fn any_value_json(value: &AnyValue<'_>) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(flag) => Value::Bool(*flag),
        AnyValue::String(text) => Value::String((*text).to_string()),
        AnyValue::StringOwned(text) => Value::String(text.to_string()),
        AnyValue::Datetime(v, unit, _) | AnyValue::DatetimeOwned(v, unit, _) => {
            time_json(*v, *unit)
        }
        AnyValue::Int8(_)
        | AnyValue::Int16(_)
        | AnyValue::Int32(_)
        | AnyValue::Int64(_)
        | AnyValue::UInt8(_)
        | AnyValue::UInt16(_)
        | AnyValue::UInt32(_)
        | AnyValue::UInt64(_) => value
            .extract::<i64>()
            .map_or(Value::Null, |n| Value::Number(n.into())),
        AnyValue::Float32(_) | AnyValue::Float64(_) => value
            .extract::<f64>()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        other => Value::String(other.to_string()),
    }
}

fn time_json(value: i64, unit: TimeUnit) -> Value {
    let micros = match unit {
        TimeUnit::Nanoseconds => value / 1_000,
        TimeUnit::Microseconds => value,
        TimeUnit::Milliseconds => value.saturating_mul(1_000),
    };
    chrono::DateTime::from_timestamp_micros(micros).map_or(Value::Null, |time| {
        Value::String(time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn frame_rows_become_objects() {
        let frame = df!(
            "name" => [Some("Søren"), None],
            "users" => [3i64, 4],
            "rate" => [0.25, f64::NAN],
            "flag" => [true, false],
        )
        .unwrap();
        let rows = frame_rows_json(&frame);
        assert_eq!(
            rows[0],
            serde_json::json!({"name": "Søren", "users": 3, "rate": 0.25, "flag": true})
        );
        assert_eq!(
            rows[1],
            serde_json::json!({"name": null, "users": 4, "rate": null, "flag": false})
        );
    }

    #[test]
    fn times_become_rfc3339() {
        // 1740988800 s is 2025-03-03T08:00:00Z (20150 days and 8 hours).
        assert_eq!(
            time_json(1_740_988_800_000_000, TimeUnit::Microseconds),
            Value::String("2025-03-03T08:00:00Z".into())
        );
        assert_eq!(
            time_json(1_740_988_800_000, TimeUnit::Milliseconds),
            Value::String("2025-03-03T08:00:00Z".into())
        );
    }
}
