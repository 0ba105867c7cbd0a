//! `cpstat report`: the structure of the page, its escaping, and that it
//! loads nothing from anywhere.

use std::path::Path;

use crate::fixture::*;

/// Writes the fixture, analyses it and returns the page's text.
fn page(dir: &Path, extra: &[&str]) -> String {
    write_store(dir);
    analyze(dir, "reports", &[], &[]);
    let mut args = vec!["report", "--store", "store", "--reports", "reports"];
    args.extend_from_slice(extra);
    let stdout = cpstat_ok(&args, &[], dir);
    let path = stdout
        .trim()
        .strip_prefix("report: ")
        .unwrap_or_else(|| panic!("report path in {stdout:?}"));
    std::fs::read_to_string(path).expect("the page exists")
}

/// Returns the text of the `<figure>` with `id`, asserting there is one.
fn figure<'a>(html: &'a str, id: &str) -> &'a str {
    let marker = format!("<figure class=\"chart\" id=\"{id}\">");
    assert_eq!(html.matches(&marker).count(), 1, "figure {id}");
    let start = html.find(&marker).unwrap();
    let end = html[start..].find("</figure>").unwrap() + start;
    &html[start..end]
}

/// Returns every value of `attribute` in the page, e.g. every `href`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let marker = format!(" {attribute}=\"");
    html.match_indices(&marker)
        .map(|(index, _)| {
            let start = index + marker.len();
            &html[start..start + html[start..].find('"').unwrap()]
        })
        .collect()
}

/// Returns whether `chart` has a `<text class="axis-label" ...>` with `label`.
fn has_axis_label(chart: &str, label: &str) -> bool {
    chart
        .match_indices(&format!(">{label}</text>"))
        .any(|(index, _)| {
            let tag_start = chart[..index].rfind("<text").unwrap_or(0);
            chart[tag_start..index].contains("class=\"axis-label\"")
        })
}

#[test]
fn report_page_has_every_chart() {
    let dir = tempfile::tempdir().unwrap();
    let html = page(dir.path(), &[]);
    let a = format!("account-{ACCOUNT_A}");
    // (id, title, axis labels, dates) of every chart of account A.
    let charts = [
        (
            format!("{a}-rates"),
            "Click and submit rate over time, all users pooled",
            vec!["Snapshot date (UTC)", "Share of emails sent (%)"],
            "2 snapshots, 2025-03-03 to 2025-03-10 (UTC)",
        ),
        (
            format!("{a}-departments"),
            "Click rate by department, latest snapshot",
            vec!["Click rate (%), with 95% Wilson interval"],
            "snapshot of 2025-03-10 06:00 UTC",
        ),
        (
            format!("{a}-risk"),
            "Risk score distribution, latest snapshot",
            vec!["Risk score (points, 0 to 100)", "Users"],
            "snapshot of 2025-03-10 06:00 UTC",
        ),
        (
            format!("{a}-trends"),
            "Click rate per period by department",
            vec!["Period end (UTC)", "Click rate (%)"],
            "period ending 2025-03-10 (UTC)",
        ),
        (
            format!("{a}-training"),
            "Training completion and overdue users by department",
            vec!["Share (%): courses completed, users overdue"],
            "snapshot of 2025-03-10 06:00 UTC",
        ),
        (
            "overview-accounts".to_string(),
            "Click rate by account, latest snapshot of each",
            vec!["Click rate (%), with 95% Wilson interval"],
            "snapshot of 2025-03-10 06:00 UTC",
        ),
    ];
    for (id, title, axes, dates) in &charts {
        let chart = figure(&html, id);
        assert!(
            chart.contains(&format!("<span class=\"chart-title\">{title}</span>")),
            "{id} title"
        );
        assert!(
            chart.contains(&format!("<span class=\"dates\">{dates}</span>")),
            "{id} dates: {chart}"
        );
        assert!(chart.contains("<svg viewBox="), "{id} has a chart");
        for axis in axes {
            assert!(has_axis_label(chart, axis), "{id} axis {axis:?}");
        }
    }
    // The department chart has a bar and a whisker per department with emails.
    let departments = figure(&html, &format!("{a}-departments"));
    assert!(departments.contains(">Økonomi</text>"));
    assert!(departments.contains(">@Indkøb</text>"));
    assert_eq!(
        departments.matches("class=\"whisker\"").count(),
        6,
        "three lines per interval"
    );
    // The trend panel of Økonomi: Søren and Bjørn went from 4 to 10 emails
    // each and from 1 and 2 to 3 and 5 clicks, so 5 of 12 = 41.7%.
    let trends = figure(&html, &format!("{a}-trends"));
    assert!(trends.contains("<h4>Økonomi</h4>"));
    assert!(
        trends.contains("period ending 2025-03-10: 41.7% of 12 emails"),
        "{trends}"
    );
    // Account B has one snapshot, so no period and no trend.
    let b_trends = figure(&html, &format!("account-{ACCOUNT_B}-trends"));
    assert!(b_trends.contains("a trend needs at least two snapshots"));
}

#[test]
fn report_page_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let html = page(dir.path(), &[]);
    assert!(html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'\""));
    let hrefs = attribute_values(&html, "href");
    assert!(hrefs.len() > 10, "{hrefs:?}");
    for href in hrefs {
        assert!(href.starts_with('#'), "link {href:?} leaves the page");
    }
    assert!(
        attribute_values(&html, "src").is_empty(),
        "no src attribute"
    );
    for forbidden in [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", "url(", "@import", "http:",
        "https:", "//",
    ] {
        let hits: Vec<&str> = html
            .match_indices(forbidden)
            .map(|(index, _)| &html[index.saturating_sub(30)..(index + 30).min(html.len())])
            .collect();
        assert!(hits.is_empty(), "{forbidden:?} in the page: {hits:?}");
    }
}

#[test]
fn report_page_escapes_names() {
    let dir = tempfile::tempdir().unwrap();
    let html = page(dir.path(), &[]);
    assert!(
        html.contains("<td>Bjørn &quot;Bøss&quot; &lt;b&gt;, Ærø</td>"),
        "escaped in the table"
    );
    assert!(
        !html.contains("<b>,"),
        "the name's markup never reaches the page"
    );
    assert!(
        html.contains("<td>Søren Østergaard-Ærø</td>"),
        "Nordic letters exact"
    );
    assert!(html.contains("<td>=1+2</td>"));
    assert!(
        html.contains(">Fjordkraft &amp; &lt;Søn&gt;</a>"),
        "company name in the contents"
    );
    assert!(!html.contains("<Søn>"));
}

#[test]
fn contents_link_every_account() {
    let dir = tempfile::tempdir().unwrap();
    let html = page(dir.path(), &["--top", "2"]);
    for account in [ACCOUNT_A, ACCOUNT_B] {
        let id = format!("account-{account}");
        assert!(
            html.contains(&format!("<section class=\"account\" id=\"{id}\">")),
            "{id} section"
        );
        assert!(html.contains(&format!("<a href=\"#{id}\">")), "{id} link");
        for target in [
            "rates",
            "departments",
            "risk",
            "trends",
            "training",
            "riskiest",
            "repeat",
        ] {
            let anchor = format!("{id}-{target}");
            assert!(
                html.contains(&format!("href=\"#{anchor}\"")),
                "link to {anchor}"
            );
            assert!(
                html.contains(&format!("id=\"{anchor}\"")),
                "target {anchor}"
            );
        }
    }
    // --top 2 lists two of A's three users, highest risk first. With the
    // default weights and m = 4 (account rates 8/30 clicked, 1/30 submitted):
    // Søren 100 · (0.3 · 4.0667/14 + 0.3 · 1.1333/14 + 0.15 · 0.5 + 0.1 · 1/3
    // + 0.15 · 0.3) = 26.48, Bjørn 25.29 and the formula user 14.6.
    let a = html
        .find(&format!("id=\"account-{ACCOUNT_A}-riskiest\""))
        .unwrap();
    let table_end = html[a..].find("</table>").unwrap() + a;
    let table = &html[a..table_end];
    assert_eq!(table.matches("<tr><td>").count(), 2);
    assert!(
        table.contains("<td>1</td><td>Søren Østergaard-Ærø</td>"),
        "{table}"
    );
    assert!(table.contains("<td>2</td><td>Bjørn"), "{table}");
    assert!(table.contains("<td class=\"num\">26.5</td>"), "{table}");
}
