//! The HTML report: one self-contained page with inline CSS and SVG charts.
//!
//! The page loads nothing: no script, font, image or style sheet from
//! anywhere, and its Content-Security-Policy forbids the browser to fetch
//! any. Links are fragments within the page, so a table of contents per
//! account works without JavaScript. Every text from the data is escaped.

use std::fmt::Write as _;

use super::charts::{
    Figure, date, date_span, rate_intervals, rates_over_time, risk_histogram, training_bars,
    trend_multiples,
};
use super::page_data::{AccountData, GroupRate, ReportData};
use super::svg::escape;
use crate::analysis::BAND_BOUNDS;

/// Repeat clickers listed per account; the table in the report set has all.
pub const MAX_REPEAT_ROWS: usize = 100;

const CSS: &str = include_str!("report.css");

/// Renders the whole page.
pub fn render_page(data: &ReportData) -> String {
    let mut page = String::new();
    let generated = data.generated_at.format("%Y-%m-%d %H:%M UTC");
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>Phishing and training report {}</title>\n<style>\n{CSS}</style>\n</head>\n<body id=\"top\">\n",
        escape(&data.report_set)
    );
    let _ = write!(
        page,
        "<header>\n<h1>Phishing and training report</h1>\n<p class=\"meta\">Report set {}, \
         written {generated} by cpstat {}.{}</p>\n</header>\n",
        escape(&data.report_set),
        env!("CARGO_PKG_VERSION"),
        privacy_note(data)
    );
    page.push_str(&table_of_contents(&data.accounts));
    page.push_str("<main>\n");
    page.push_str(&overview(&data.accounts));
    for account in &data.accounts {
        page.push_str(&account_section(account));
    }
    page.push_str(
        "</main>\n<footer><p>Definitions of every number: docs/metrics.md in the cpstat \
         source. Rates are shares of phishing emails sent; intervals are 95% Wilson score \
         intervals.</p></footer>\n</body>\n</html>\n",
    );
    page
}

fn privacy_note(data: &ReportData) -> String {
    let mut note = String::new();
    if data.pseudonymized {
        note.push_str(
            " Names and email addresses are pseudonyms (HMAC-SHA-256 under a secret key), \
             the same in every report made with the same key.",
        );
    }
    if let Some(k) = data.min_group_size {
        let _ = write!(
            note,
            " Departments and other groups with fewer than {k} users are left out."
        );
    }
    note
}

/// Returns the id of an account's section: its id with anything but ASCII
/// letters, digits, `-` and `_` replaced, so it is safe in a fragment link.
pub fn section_id(account_id: &str) -> String {
    let slug: String = account_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("account-{slug}")
}

fn table_of_contents(accounts: &[AccountData]) -> String {
    let mut nav = String::from(
        "<nav class=\"toc\" aria-label=\"Accounts\">\n<h2>Accounts</h2>\n<ol>\n\
         <li><a href=\"#overview\">All accounts compared</a></li>\n",
    );
    for account in accounts {
        let rate = account
            .pooled
            .as_ref()
            .and_then(|p| p.rate)
            .map_or(String::new(), |r| {
                format!(" <span class=\"muted\">click rate {:.1}%</span>", r * 100.0)
            });
        let _ = writeln!(
            nav,
            "<li><a href=\"#{}\">{}</a>{rate}</li>",
            section_id(&account.account_id),
            escape(&account.display_name)
        );
    }
    nav.push_str("</ol>\n</nav>\n");
    nav
}

fn overview(accounts: &[AccountData]) -> String {
    let groups: Vec<GroupRate> = accounts
        .iter()
        .filter_map(|a| {
            let mut row = a.pooled.clone()?;
            row.name = a.display_name.clone();
            Some(row)
        })
        .collect();
    let times: Vec<_> = accounts.iter().filter_map(|a| a.latest_at).collect();
    let figure = rate_intervals(
        "overview-accounts",
        "Click rate by account, latest snapshot of each",
        date_span(&times),
        &ranked_first(&groups),
        None,
    );
    let mut section = String::from("<section id=\"overview\">\n<h2>All accounts compared</h2>\n");
    section.push_str(&render_figure(&figure));
    section.push_str(&group_table(&groups, "Account"));
    section.push_str("</section>\n");
    section
}

/// Sorts ranked groups by rank and puts unranked ones last.
fn ranked_first(groups: &[GroupRate]) -> Vec<GroupRate> {
    let mut sorted = groups.to_vec();
    sorted.sort_by_key(|g| (g.rank.is_none(), g.rank));
    sorted
}

fn account_section(account: &AccountData) -> String {
    let id = section_id(&account.account_id);
    let latest = account.latest_at.map_or("no snapshot".to_string(), |at| {
        format!("latest snapshot {}", at.format("%Y-%m-%d %H:%M UTC"))
    });
    let mut section = String::new();
    let _ = write!(
        section,
        "<section class=\"account\" id=\"{id}\">\n<h2>{}</h2>\n<p class=\"meta\">Account {}, {latest}</p>\n",
        escape(&account.display_name),
        escape(&account.account_id)
    );
    section.push_str(&headline(account));

    let figures = [
        rates_over_time(&format!("{id}-rates"), &account.history),
        rate_intervals(
            &format!("{id}-departments"),
            "Click rate by department, latest snapshot",
            account
                .latest_at
                .map_or("no snapshot".to_string(), |at| date_span(&[at])),
            &ranked_first(&account.departments),
            account.pooled.as_ref().and_then(|p| p.rate),
        ),
        risk_histogram(&format!("{id}-risk"), account),
        trend_multiples(&format!("{id}-trends"), &account.trends),
        training_bars(&format!("{id}-training"), account),
    ];
    section.push_str(&section_links(&id, &figures));
    for figure in &figures {
        section.push_str(&render_figure(figure));
    }

    section.push_str(&riskiest_table(&id, account));
    section.push_str(&repeat_table(&id, account));
    section.push_str(
        "<p class=\"back\"><a href=\"#top\">Back to the list of accounts</a></p>\n</section>\n",
    );
    section
}

fn section_links(id: &str, figures: &[Figure]) -> String {
    let mut links =
        String::from("<nav class=\"section-links\" aria-label=\"Charts and tables\"><ul>\n");
    for figure in figures {
        let _ = writeln!(
            links,
            "<li><a href=\"#{}\">{}</a></li>",
            figure.id,
            escape(&figure.title)
        );
    }
    let _ = writeln!(
        links,
        "<li><a href=\"#{id}-riskiest\">Riskiest users</a></li>\n<li><a href=\"#{id}-repeat\">Repeat clickers</a></li>"
    );
    links.push_str("</ul></nav>\n");
    links
}

fn headline(account: &AccountData) -> String {
    let critical_bound = BAND_BOUNDS[2];
    let critical = account
        .risk_scores
        .iter()
        .filter(|s| **s >= critical_bound)
        .count();
    let rate = account
        .pooled
        .as_ref()
        .and_then(|p| p.rate)
        .map_or("no emails sent".to_string(), |r| {
            format!("{:.1}%", r * 100.0)
        });
    format!(
        "<dl class=\"headline\">\n<div><dt>Users</dt><dd>{}</dd></div>\n\
         <div><dt>Click rate</dt><dd>{rate}</dd></div>\n\
         <div><dt>Critical risk</dt><dd>{critical}</dd></div>\n\
         <div><dt>Repeat clickers</dt><dd>{}</dd></div>\n</dl>\n",
        account.risk_scores.len(),
        account.repeat_clickers.len()
    )
}

fn render_figure(figure: &Figure) -> String {
    format!(
        "<figure class=\"chart\" id=\"{}\">\n<figcaption><span class=\"chart-title\">{}</span> \
         <span class=\"dates\">{}</span></figcaption>\n{}\n<p class=\"note\">{}</p>\n</figure>\n",
        figure.id,
        escape(&figure.title),
        escape(&figure.dates),
        figure.body,
        escape(&figure.note)
    )
}

fn percent(value: Option<f64>) -> String {
    value.map_or("–".to_string(), |v| format!("{:.1}%", v * 100.0))
}

fn group_table(groups: &[GroupRate], label: &str) -> String {
    let mut table = format!(
        "<div class=\"table-wrap\"><table>\n<thead><tr><th>Rank</th><th>{label}</th>\
         <th class=\"num\">Users</th><th class=\"num\">Emails</th><th class=\"num\">Clicked</th>\
         <th class=\"num\">Click rate</th><th class=\"num\">95% interval</th></tr></thead>\n<tbody>\n"
    );
    for group in ranked_first(groups) {
        let _ = writeln!(
            table,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} to {}</td></tr>",
            group.rank.map_or("–".to_string(), |r| r.to_string()),
            escape(&group.name),
            group.users,
            group.sent,
            group.clicked,
            percent(group.rate),
            percent(group.low),
            percent(group.high)
        );
    }
    table.push_str("</tbody></table></div>\n");
    table
}

fn riskiest_table(id: &str, account: &AccountData) -> String {
    let mut table = format!(
        "<h3 id=\"{id}-riskiest\">Riskiest users</h3>\n<p class=\"note\">The {} highest risk \
         scores of the latest snapshot ({}); the full list is the user_risk table.</p>\n",
        account.riskiest.len(),
        account.latest_at.map_or("none".to_string(), date)
    );
    table.push_str(
        "<div class=\"table-wrap\"><table>\n<thead><tr><th>Rank</th><th>Name</th><th>Email</th>\
         <th>Department</th><th>Manager</th><th class=\"num\">Risk score</th><th>Band</th>\
         <th class=\"num\">Clicked / sent</th><th class=\"num\">Submitted</th></tr></thead>\n<tbody>\n",
    );
    for user in &account.riskiest {
        let _ = writeln!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td><span class=\"band band-{}\">{}</span></td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td></tr>",
            user.rank.map_or("–".to_string(), |r| r.to_string()),
            escape(&user.name),
            escape(&user.email),
            escape(&user.department),
            escape(&user.manager),
            user.risk_score
                .map_or("–".to_string(), |s| format!("{s:.1}")),
            escape(&user.risk_band),
            escape(&user.risk_band),
            user.clicked,
            user.sent,
            user.submitted
        );
    }
    table.push_str("</tbody></table></div>\n");
    table
}

fn repeat_table(id: &str, account: &AccountData) -> String {
    let total = account.repeat_clickers.len();
    let shown = total.min(MAX_REPEAT_ROWS);
    let mut table = format!(
        "<h3 id=\"{id}-repeat\">Repeat clickers</h3>\n<p class=\"note\">Users whose clicks rose \
         in at least two periods: {total} in all{}.</p>\n",
        if shown < total {
            format!(", the first {shown} shown; the repeat_clickers table has the rest")
        } else {
            String::new()
        }
    );
    if total == 0 {
        return table;
    }
    table.push_str(
        "<div class=\"table-wrap\"><table>\n<thead><tr><th>Name</th><th>Email</th><th>Department</th>\
         <th class=\"num\">Periods with clicks</th><th class=\"num\">Clicks gained</th>\
         <th>Last seen</th></tr></thead>\n<tbody>\n",
    );
    for user in account.repeat_clickers.iter().take(shown) {
        let _ = writeln!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&user.name),
            escape(&user.email),
            escape(&user.department),
            user.periods_with_clicks,
            user.clicks_gained,
            user.last_seen_at.map_or("–".to_string(), date)
        );
    }
    table.push_str("</tbody></table></div>\n");
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_ids_are_fragment_safe() {
        assert_eq!(
            section_id("0b5f4a8e-1111-4c1e-9d7a-000000000001"),
            "account-0b5f4a8e-1111-4c1e-9d7a-000000000001"
        );
        assert_eq!(section_id("a b\"<c>"), "account-a-b--c-");
    }
}
