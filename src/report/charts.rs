//! The charts of the HTML report, each an inline SVG with a title, labelled
//! axes with units and the snapshot dates it covers.

use chrono::{DateTime, Utc};

use super::page_data::{AccountData, DepartmentTrend, GroupRate, SnapshotRates, TrainingRow};
use super::svg::{Canvas, PALETTE, Scale, WIDTH, escape, fraction_axis_max, percent_tick, ticks};
use crate::analysis::BAND_BOUNDS;

/// A chart ready for the page.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Unique id in the page, also the target of links.
    pub id: String,
    pub title: String,
    /// The snapshot dates the chart covers.
    pub dates: String,
    /// The chart, or a sentence saying why there is none.
    pub body: String,
    /// How to read the chart.
    pub note: String,
}

const CLICK: &str = PALETTE[0];
const SUBMIT: &str = PALETTE[1];
const COMPLETION: &str = PALETTE[2];
const OVERDUE: &str = PALETTE[1];
/// Colours of the risk bands low, medium, high and critical.
const BAND_COLOURS: [&str; 4] = ["#009E73", "#E69F00", "#D55E00", "#7F0000"];
const BAND_NAMES: [&str; 4] = ["low", "medium", "high", "critical"];
/// Width of a risk histogram bin in points; 25, 50 and 75 are multiples of
/// it, so no bin straddles two bands.
const BIN_POINTS: f64 = 5.0;
/// Maximum characters of a group name drawn beside a bar; the tooltip
/// shows the whole name.
const MAX_LABEL_CHARS: usize = 24;

pub fn date(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d").to_string()
}

/// Describes a run of snapshots, e.g. "6 snapshots, 2025-03-03 to 2025-04-07".
pub fn date_span(times: &[DateTime<Utc>]) -> String {
    match (times.iter().min(), times.iter().max()) {
        (Some(first), Some(last)) if first != last => format!(
            "{} snapshots, {} to {} (UTC)",
            times.len(),
            date(*first),
            date(*last)
        ),
        (Some(only), _) => format!("snapshot of {} UTC", only.format("%Y-%m-%d %H:%M")),
        _ => "no snapshots".to_string(),
    }
}

fn latest_dates(account: &AccountData) -> String {
    account
        .latest_at
        .map_or("no snapshot".to_string(), |at| date_span(&[at]))
}

fn empty(message: &str) -> String {
    format!("<p class=\"empty\">{}</p>", escape(message))
}

fn short_label(text: &str) -> String {
    if text.chars().count() <= MAX_LABEL_CHARS {
        return text.to_string();
    }
    let kept: String = text.chars().take(MAX_LABEL_CHARS - 1).collect();
    format!("{kept}…")
}

/// Returns x positions and labels of at most `count` snapshot dates.
fn time_ticks(scale: &Scale, times: &[DateTime<Utc>], count: usize) -> Vec<(f64, String)> {
    let step = times.len().div_ceil(count.max(1)).max(1);
    times
        .iter()
        .step_by(step)
        .map(|t| (scale.at(t.timestamp() as f64), date(*t)))
        .collect()
}

fn legend(canvas: &mut Canvas, entries: &[(&str, &str, bool)]) {
    let mut x = canvas.left + 8.0;
    for (label, colour, dashed) in entries {
        let dash = if *dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        canvas.raw(&format!(
            r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="3"{dash}/>"#,
            x + 22.0,
            y = canvas.top + 6.0
        ));
        canvas.text((x + 28.0, canvas.top + 10.0), "start", "legend", label);
        x += 40.0 + 7.0 * label.chars().count() as f64;
    }
}

/// Line chart of the pooled click and submit rate of every snapshot.
pub fn rates_over_time(id: &str, history: &[SnapshotRates]) -> Figure {
    let title = "Click and submit rate over time, all users pooled";
    let times: Vec<DateTime<Utc>> = history.iter().map(|s| s.at).collect();
    let mut figure = Figure {
        id: id.to_string(),
        title: title.to_string(),
        dates: date_span(&times),
        body: String::new(),
        note: "Share of all phishing emails sent so far that were clicked (solid) or led to \
               submitted data (dashed), summed over the users of each snapshot."
            .to_string(),
    };
    let points: Vec<(&SnapshotRates, f64, f64)> = history
        .iter()
        .filter_map(|s| Some((s, s.click_rate()?, s.submit_rate()?)))
        .collect();
    if points.is_empty() {
        figure.body = empty("No phishing email was sent in any snapshot.");
        return figure;
    }

    let mut canvas = Canvas::new(WIDTH, 300.0, 56.0);
    // Room for half a date label beyond the last point.
    canvas.right = WIDTH - 40.0;
    let first = points.iter().map(|p| p.0.at.timestamp()).min().unwrap_or(0) as f64;
    let last = points.iter().map(|p| p.0.at.timestamp()).max().unwrap_or(0) as f64;
    let x = Scale::new((first, last), (canvas.left + 12.0, canvas.right - 12.0));
    let y_max = fraction_axis_max(points.iter().map(|p| p.1.max(p.2)).fold(0.0, f64::max));
    let y = Scale::new((0.0, y_max), (canvas.bottom, canvas.top + 20.0));
    canvas.y_axis(
        &y,
        &ticks(0.0, y_max, 6),
        percent_tick,
        "Share of emails sent (%)",
    );
    let shown: Vec<DateTime<Utc>> = points.iter().map(|p| p.0.at).collect();
    canvas.x_axis(&time_ticks(&x, &shown, 5), "Snapshot date (UTC)");
    for (colour, dashed, rate_of) in [
        (
            CLICK,
            false,
            (|p: &(&SnapshotRates, f64, f64)| p.1) as fn(&_) -> f64,
        ),
        (SUBMIT, true, |p| p.2),
    ] {
        let xy: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (x.at(p.0.at.timestamp() as f64), y.at(rate_of(p))))
            .collect();
        let tips: Vec<String> = points
            .iter()
            .map(|p| {
                format!(
                    "{}: {:.1}% of {} emails",
                    date(p.0.at),
                    rate_of(p) * 100.0,
                    p.0.sent
                )
            })
            .collect();
        canvas.series(&xy, colour, dashed, &tips);
    }
    legend(
        &mut canvas,
        &[("Clicked", CLICK, false), ("Submitted data", SUBMIT, true)],
    );
    figure.body = canvas.finish(id, title);
    figure
}

/// Horizontal bars of group click rates with their 95% Wilson intervals as
/// error bars, and the pooled rate as a dashed reference line.
pub fn rate_intervals(
    id: &str,
    title: &str,
    dates: String,
    groups: &[GroupRate],
    reference: Option<f64>,
) -> Figure {
    let mut figure = Figure {
        id: id.to_string(),
        title: title.to_string(),
        dates,
        body: String::new(),
        note: "Bars show the click rate; the whiskers show the 95% Wilson interval, the range of \
               true rates consistent with the counts. Groups are ordered by the interval's lower \
               end, so a small group needs strong evidence to rank high."
            .to_string(),
    };
    let ranked: Vec<&GroupRate> = groups.iter().filter(|g| g.rate.is_some()).collect();
    if ranked.is_empty() {
        figure.body = empty("No group was sent a phishing email.");
        return figure;
    }

    let row_height = 24.0;
    let height = 60.0 + row_height * ranked.len() as f64 + 48.0;
    let mut canvas = Canvas::new(WIDTH, height, 180.0);
    canvas.top = 40.0;
    let x_max = fraction_axis_max(ranked.iter().filter_map(|g| g.high).fold(0.0, f64::max));
    let x = Scale::new((0.0, x_max), (canvas.left, canvas.right));
    share_axis(
        &mut canvas,
        &x,
        x_max,
        "Click rate (%), with 95% Wilson interval",
    );

    for (index, group) in ranked.iter().enumerate() {
        let middle = canvas.top + row_height * (index as f64 + 0.5);
        draw_interval_row(&mut canvas, &x, middle, group);
    }
    if let Some(rate) = reference {
        let at = x.at(rate);
        canvas.raw(&format!(
            r#"<line x1="{at:.1}" y1="{:.1}" x2="{at:.1}" y2="{:.1}" stroke="{}" stroke-width="1.5" stroke-dasharray="5 4"/>"#,
            canvas.top - 4.0,
            canvas.bottom,
            PALETTE[1]
        ));
        canvas.text(
            (at, canvas.top - 10.0),
            "middle",
            "legend",
            &format!("all users {:.1}%", rate * 100.0),
        );
    }
    figure.body = canvas.finish(id, title);
    figure
}

fn draw_interval_row(canvas: &mut Canvas, x: &Scale, middle: f64, group: &GroupRate) {
    let rate = group.rate.unwrap_or(0.0);
    let tip = format!(
        "{}: {:.1}% ({} of {} emails, {} users), 95% interval {:.1}% to {:.1}%",
        group.name,
        rate * 100.0,
        group.clicked,
        group.sent,
        group.users,
        group.low.unwrap_or(0.0) * 100.0,
        group.high.unwrap_or(0.0) * 100.0
    );
    canvas.text(
        (canvas.left - 8.0, middle + 4.0),
        "end",
        "label",
        &short_label(&group.name),
    );
    canvas.rect(
        canvas.left,
        middle - 7.0,
        x.at(rate) - canvas.left,
        14.0,
        CLICK,
        &tip,
    );
    if let (Some(low), Some(high)) = (group.low, group.high) {
        let (from, to) = (x.at(low), x.at(high));
        canvas.line((from, middle), (to, middle), "whisker");
        canvas.line((from, middle - 6.0), (from, middle + 6.0), "whisker");
        canvas.line((to, middle - 6.0), (to, middle + 6.0), "whisker");
    }
}

/// Returns the band index (0 low to 3 critical) of a risk score.
fn band_of(score: f64) -> usize {
    BAND_BOUNDS
        .iter()
        .take_while(|bound| score >= **bound)
        .count()
}

/// Counts scores in bins of [`BIN_POINTS`]; 100 falls in the last bin.
pub fn histogram_counts(scores: &[f64]) -> Vec<u64> {
    let bins = (100.0 / BIN_POINTS) as usize;
    let mut counts = vec![0; bins];
    for score in scores.iter().filter(|s| s.is_finite()) {
        let bin = ((score.clamp(0.0, 100.0) / BIN_POINTS) as usize).min(bins - 1);
        counts[bin] += 1;
    }
    counts
}

/// Histogram of the users' risk scores, coloured by risk band.
pub fn risk_histogram(id: &str, account: &AccountData) -> Figure {
    let title = "Risk score distribution, latest snapshot";
    let mut figure = Figure {
        id: id.to_string(),
        title: title.to_string(),
        dates: latest_dates(account),
        body: String::new(),
        note: format!(
            "Users per {BIN_POINTS:.0}-point bin of the risk score; bands start at 25 (medium), \
             50 (high) and 75 (critical)."
        ),
    };
    if account.risk_scores.is_empty() {
        figure.body = empty("No user has a risk score.");
        return figure;
    }
    let counts = histogram_counts(&account.risk_scores);
    let max_count = counts.iter().copied().max().unwrap_or(1).max(1) as f64;

    let mut canvas = Canvas::new(WIDTH, 300.0, 56.0);
    canvas.top = 40.0;
    let x = Scale::new((0.0, 100.0), (canvas.left, canvas.right));
    let y = Scale::new((0.0, max_count), (canvas.bottom, canvas.top));
    let y_ticks: Vec<f64> = ticks(0.0, max_count, 5)
        .into_iter()
        .map(f64::round)
        .collect();
    canvas.y_axis(&y, &y_ticks, |v| format!("{v:.0}"), "Users");
    let x_ticks: Vec<(f64, String)> = (0..=10)
        .map(|i| (x.at(i as f64 * 10.0), format!("{}", i * 10)))
        .collect();
    canvas.x_axis(&x_ticks, "Risk score (points, 0 to 100)");
    for (bin, count) in counts.iter().enumerate() {
        let from = bin as f64 * BIN_POINTS;
        let band = band_of(from);
        let top = y.at(*count as f64);
        let tip = format!(
            "{from:.0} to {:.0} points: {count} users ({})",
            from + BIN_POINTS,
            BAND_NAMES[band]
        );
        canvas.rect(
            x.at(from) + 1.0,
            top,
            x.at(from + BIN_POINTS) - x.at(from) - 2.0,
            canvas.bottom - top,
            BAND_COLOURS[band],
            &tip,
        );
    }
    let mut legend_x = canvas.left + 8.0;
    for (name, colour) in BAND_NAMES.iter().zip(BAND_COLOURS) {
        canvas.rect(legend_x, 14.0, 12.0, 12.0, colour, name);
        canvas.text((legend_x + 16.0, 24.0), "start", "legend", name);
        legend_x += 90.0;
    }
    figure.body = canvas.finish(id, title);
    figure
}

/// Small multiples of each department's click rate per period, on one
/// shared scale so that departments compare at a glance.
pub fn trend_multiples(id: &str, trends: &[DepartmentTrend]) -> Figure {
    let title = "Click rate per period by department";
    let mut ends: Vec<DateTime<Utc>> = trends
        .iter()
        .flat_map(|t| t.points.iter().map(|p| p.end))
        .collect();
    ends.sort();
    ends.dedup();
    let dates = match (ends.first(), ends.last()) {
        (Some(only), _) if ends.len() == 1 => format!("period ending {} (UTC)", date(*only)),
        (Some(first), Some(last)) => format!(
            "{} periods ending {} to {} (UTC)",
            ends.len(),
            date(*first),
            date(*last)
        ),
        _ => "no periods".to_string(),
    };
    let mut figure = Figure {
        id: id.to_string(),
        title: title.to_string(),
        dates,
        body: String::new(),
        note: "Each panel shows the share of the emails sent in a period that were clicked in it, \
               for users present at both ends of the period. All panels share one scale."
            .to_string(),
    };
    let with_rates: Vec<&DepartmentTrend> = trends
        .iter()
        .filter(|t| t.points.iter().any(|p| p.rate.is_some()))
        .collect();
    if with_rates.is_empty() {
        figure.body = empty(
            "No department has a period with emails sent; a trend needs at least two snapshots.",
        );
        return figure;
    }

    let first = ends.iter().map(|t| t.timestamp()).min().unwrap_or(0) as f64;
    let last = ends.iter().map(|t| t.timestamp()).max().unwrap_or(0) as f64;
    let y_max = fraction_axis_max(
        with_rates
            .iter()
            .flat_map(|t| t.points.iter().filter_map(|p| p.rate))
            .fold(0.0, f64::max),
    );
    let mut body = String::from("<div class=\"multiples\">\n");
    for (index, trend) in with_rates.iter().enumerate() {
        let panel_id = format!("{id}-{index}");
        body.push_str(&trend_panel(&panel_id, trend, (first, last), y_max));
    }
    body.push_str("</div>");
    figure.body = body;
    figure
}

fn trend_panel(id: &str, trend: &DepartmentTrend, domain: (f64, f64), y_max: f64) -> String {
    let mut canvas = Canvas::new(320.0, 200.0, 52.0);
    canvas.right = 320.0 - 36.0;
    let x = Scale::new(domain, (canvas.left + 8.0, canvas.right - 8.0));
    let y = Scale::new((0.0, y_max), (canvas.bottom, canvas.top));
    canvas.y_axis(&y, &ticks(0.0, y_max, 3), percent_tick, "Click rate (%)");
    let ends: Vec<DateTime<Utc>> = trend.points.iter().map(|p| p.end).collect();
    let mut x_ticks = time_ticks(&x, &ends, 2);
    if let Some(last) = ends.last()
        && ends.len() > 1
    {
        x_ticks.retain(|(at, _)| (*at - x.at(last.timestamp() as f64)).abs() > 60.0);
        x_ticks.push((x.at(last.timestamp() as f64), date(*last)));
    }
    canvas.x_axis(&x_ticks, "Period end (UTC)");

    let points: Vec<(f64, f64)> = trend
        .points
        .iter()
        .filter_map(|p| Some((x.at(p.end.timestamp() as f64), y.at(p.rate?))))
        .collect();
    let tips: Vec<String> = trend
        .points
        .iter()
        .filter_map(|p| {
            Some(format!(
                "period ending {}: {:.1}% of {} emails",
                date(p.end),
                p.rate? * 100.0,
                p.sent
            ))
        })
        .collect();
    canvas.series(&points, CLICK, false, &tips);
    let title = format!("{}: click rate per period", trend.department);
    format!(
        "<div class=\"multiple\"><h4>{}</h4>\n{}</div>\n",
        escape(&trend.department),
        canvas.finish(id, &title)
    )
}

/// Paired horizontal bars of training completion and overdue users per department.
pub fn training_bars(id: &str, account: &AccountData) -> Figure {
    let title = "Training completion and overdue users by department";
    let mut figure = Figure {
        id: id.to_string(),
        title: title.to_string(),
        dates: latest_dates(account),
        body: String::new(),
        note: "Completion is the share of enrolled courses and materials completed; overdue is \
               the share of the department's users with at least one overdue course."
            .to_string(),
    };
    if account.training.is_empty() {
        figure.body = empty("No department to show.");
        return figure;
    }

    let row_height = 34.0;
    let height = 50.0 + row_height * account.training.len() as f64 + 48.0;
    let mut canvas = Canvas::new(WIDTH, height, 180.0);
    canvas.top = 40.0;
    let x = Scale::new((0.0, 1.0), (canvas.left, canvas.right));
    share_axis(
        &mut canvas,
        &x,
        1.0,
        "Share (%): courses completed, users overdue",
    );

    for (index, row) in account.training.iter().enumerate() {
        let top = canvas.top + row_height * index as f64 + 4.0;
        draw_training_row(&mut canvas, &x, top, row);
    }
    canvas.rect(canvas.left + 8.0, 14.0, 12.0, 12.0, COMPLETION, "completed");
    canvas.text((canvas.left + 24.0, 24.0), "start", "legend", "Completed");
    canvas.rect(canvas.left + 120.0, 14.0, 12.0, 12.0, OVERDUE, "overdue");
    canvas.text(
        (canvas.left + 136.0, 24.0),
        "start",
        "legend",
        "Users overdue",
    );
    figure.body = canvas.finish(id, title);
    figure
}

/// Draws vertical grid lines and a percentage x axis from 0 to `max`, and
/// the y axis line, for horizontal bar charts.
fn share_axis(canvas: &mut Canvas, x: &Scale, max: f64, title: &str) {
    let values = ticks(0.0, max, 6);
    for tick in &values {
        let at = x.at(*tick);
        canvas.line((at, canvas.top), (at, canvas.bottom), "grid");
    }
    let labels: Vec<(f64, String)> = values
        .iter()
        .map(|t| (x.at(*t), percent_tick(*t)))
        .collect();
    canvas.x_axis(&labels, title);
    canvas.line(
        (canvas.left, canvas.top),
        (canvas.left, canvas.bottom),
        "axis",
    );
}

/// Draws one department's completion bar above its overdue bar.
fn draw_training_row(canvas: &mut Canvas, x: &Scale, top: f64, row: &TrainingRow) {
    canvas.text(
        (canvas.left - 8.0, top + 16.0),
        "end",
        "label",
        &short_label(&row.department),
    );

    let completion = row.completion_rate();
    let completion_tip = match completion {
        Some(rate) => format!(
            "{}: {:.1}% of {} enrolments completed",
            row.department,
            rate * 100.0,
            row.enrolled
        ),
        None => format!("{}: nothing enrolled", row.department),
    };
    let width = x.at(completion.unwrap_or(0.0)) - canvas.left;
    canvas.rect(canvas.left, top, width, 12.0, COMPLETION, &completion_tip);

    let overdue = row.overdue_share().unwrap_or(0.0);
    let overdue_tip = format!(
        "{}: {} of {} users overdue ({:.1}%)",
        row.department,
        row.overdue_users,
        row.users,
        overdue * 100.0
    );
    let width = x.at(overdue) - canvas.left;
    canvas.rect(canvas.left, top + 13.0, width, 12.0, OVERDUE, &overdue_tip);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_by_hand() {
        // 0 and 4.9 in bin 0, 25 in bin 5, 74.99 in bin 14, 75 in bin 15, 100 in bin 19.
        let counts = histogram_counts(&[0.0, 4.9, 25.0, 74.99, 75.0, 100.0, f64::NAN]);
        assert_eq!(counts.len(), 20);
        let nonzero: Vec<(usize, u64)> = counts
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, c)| *c > 0)
            .collect();
        assert_eq!(nonzero, [(0, 2), (5, 1), (14, 1), (15, 1), (19, 1)]);
    }

    #[test]
    fn bands_follow_bounds() {
        assert_eq!(band_of(24.999), 0);
        assert_eq!(band_of(25.0), 1);
        assert_eq!(band_of(50.0), 2);
        assert_eq!(band_of(75.0), 3);
        assert_eq!(band_of(100.0), 3);
    }

    #[test]
    fn long_labels_shortened() {
        assert_eq!(short_label("Økonomi"), "Økonomi");
        let long = "Kundeservice og Forretningsudvikling Nord";
        let short = short_label(long);
        assert_eq!(short.chars().count(), MAX_LABEL_CHARS);
        assert!(short.ends_with('…'));
    }
}
