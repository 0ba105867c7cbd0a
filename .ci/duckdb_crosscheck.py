"""Recompute cpstat's report tables in DuckDB and compare them with a report set.

Usage: duckdb_crosscheck.py STORE [--reports DIR] [--queries DIR]

Run it after `cpstat analyze --store STORE` with the default parameters (no
--since, --until, --every, --weights or --prior-strength), because the
recomputation uses the defaults of docs/metrics.md. It reads the snapshot
files of STORE with DuckDB's own Parquet reader, recomputes from them,
independently of cpstat's code:

- every row of `group_rates`, for all five dimensions, including the grouping
  key and the display spelling of each group;
- every row of `department_trend`: headcounts, moves, resets, deltas, period
  click rates with Wilson bounds, the change against the previous period and
  its z-test;
- every user of `user_risk`: derived counts, rates, smoothed rates, gaps,
  points, risk score, band, rank and flags;

and compares them with the Parquet files in STORE/reports/latest (counts,
booleans, strings and times exactly, floats to within 1e-9), and checks that
the rows are in the documented order. It then runs every shipped query of
queries/ in DuckDB over queries/duckdb_views.sql and compares the result, row
by row in order, with the table of the same name that cpstat wrote.

Grouping keys need full Unicode case folding, which DuckDB lacks: `lower`
leaves `ß`, `ς` and `ſ`, for example. Where `lower` and Python's
`str.casefold` disagree on a spelling in the data, the key comes from
`str.casefold` and the output lists those spellings.

Exit status: 0 when everything matches, 1 on any mismatch (the first 20 are
listed) or when a check compares no rows, 2 when an input is missing.
"""

import argparse
import math
import sys
import unicodedata
from datetime import datetime
from pathlib import Path

import duckdb

TOLERANCE = 1e-9
MAX_LISTED = 20

# Constants and defaults of docs/metrics.md.
Z_95 = 1.959964
SMOOTHING_STRENGTH = 4.0
WEIGHTS = {"click": 0.30, "submit": 0.30, "training": 0.15, "overdue": 0.10, "score": 0.15}
OVERDUE_CAP = 3
BAND_BOUNDS = (25.0, 50.0, 75.0)
SIGNIFICANCE_LEVEL = 0.05
SCORE_DECIMALS = 9
NONE_LABEL = "(none)"

# Unicode White_Space, which Rust's `str::trim` removes: U+0009..U+000D, U+0085
# and the separators (Zs, Zl, Zp). RE2's `\s` covers ASCII only.
WHITESPACE_CLASS = r"[\x{9}-\x{d}\x{85}\pZ]"

# Source column of each scalar dimension of `group_rates`. The `group`
# dimension comes from the `name` field of each entry of `groups`.
SCALAR_DIMENSIONS = {
    "department": "department",
    "branch": "branch_name",
    "country": "country",
    "manager": "manager",
}
DIMENSIONS = ("department", "branch", "group", "country", "manager")

# Columns of a snapshot file, in order (schema version 1 in docs/store.md).
STORE_COLUMNS = [
    "snapshot_at", "account_id", "user_id", "email", "name", "first_name", "last_name", "user_created",
    "company_name", "manager", "manager_email", "department", "country", "branch_id", "branch_name", "groups",
    "enrolled_courses", "not_completed_courses", "overdue_courses", "enrolled_materials",
    "not_completed_materials", "phishing_campaigns", "emails_sent", "links_clicked", "data_submitted",
    "last_action", "average_score", "extra",
]


def sql_double(value):
    """Format a float as a DuckDB DOUBLE literal, because DuckDB reads a bare `0.3` as a DECIMAL."""
    return f"CAST({value!r} AS DOUBLE)"


def sql_string(value):
    return "'" + value.replace("'", "''") + "'"


class Mismatches:
    """Collects differences and the number of rows compared per check."""

    def __init__(self):
        self.items = []
        self.compared = []

    def add(self, text):
        self.items.append(text)

    def record(self, check, rows, detail=""):
        self.compared.append((check, rows, detail))
        if rows == 0:
            self.add(
                f"{check}: no rows to compare, so this check proves nothing; use a store with rows "
                "for it, such as one from `cpstat demo`"
            )


def format_key(key):
    """Format a row key for a message, with times in ISO 8601."""
    parts = [part.isoformat() if isinstance(part, datetime) else repr(part) for part in key]
    return "(" + ", ".join(parts) + ")"


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def values_match(expected, actual):
    """Compare two cell values: floats to within TOLERANCE, everything else exactly.

    NaN never matches, because no report column may contain NaN.
    """
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if is_number(expected) and is_number(actual):
        if isinstance(expected, float) or isinstance(actual, float):
            if math.isnan(expected) or math.isnan(actual):
                return False
            return abs(expected - actual) <= TOLERANCE
        return expected == actual
    return expected == actual


def fetch_dicts(con, sql):
    result = con.execute(sql)
    names = [column[0] for column in result.description]
    return [dict(zip(names, row)) for row in result.fetchall()]


def index_rows(mismatches, check, side, key_columns, rows, pair_by):
    """Map each row's key to the row, numbering the rows that share a key in `pair_by` order.

    Without `pair_by`, a repeated key is a mismatch. With it, the rows of a
    repeated key get the extra key part 1, 2, ... after sorting by the values
    of `pair_by`, so that equal groups of rows pair up.
    """
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[name] for name in key_columns), []).append(row)
    indexed = {}
    shared = 0
    for key, members in groups.items():
        if len(members) == 1:
            indexed[key] = members[0]
            continue
        if pair_by is None:
            mismatches.add(f"{check}: {side} has key {format_key(key)} {len(members)} times")
            indexed[key] = members[0]
            continue
        shared += 1
        order = lambda row: tuple((row[name] is None, row[name] or 0) for name in pair_by)
        for number, row in enumerate(sorted(members, key=order), start=1):
            indexed[key + (number,)] = row
    return indexed, shared


def compare_keyed(mismatches, check, key_columns, expected_rows, actual_rows, columns, pair_by=None):
    """Compare two row sets matched by key, and report missing, extra and differing rows.

    Returns the number of rows compared and the number of keys shared by
    several rows of cpstat's table.
    """
    expected, _ = index_rows(mismatches, check, "the recomputation", key_columns, expected_rows, pair_by)
    actual, shared = index_rows(mismatches, check, "cpstat's table", key_columns, actual_rows, pair_by)
    for key in sorted(expected.keys() - actual.keys(), key=repr):
        mismatches.add(f"{check} {format_key(key)}: row missing from cpstat's table")
    for key in sorted(actual.keys() - expected.keys(), key=repr):
        mismatches.add(f"{check} {format_key(key)}: unexpected row in cpstat's table")
    common = sorted(expected.keys() & actual.keys(), key=repr)
    for key in common:
        for column in columns:
            want, got = expected[key][column], actual[key][column]
            if not values_match(want, got):
                mismatches.add(f"{check} {format_key(key)}: {column} recomputed {want!r}, cpstat wrote {got!r}")
    return len(common), shared


def read_report(con, path):
    """Read a report table in file order, as rows of dicts."""
    return fetch_dicts(
        con,
        f"SELECT * EXCLUDE (file_row_number) FROM read_parquet({sql_string(str(path))}, file_row_number = true) "
        "ORDER BY file_row_number",
    )


def report_columns(con, path):
    result = con.execute(f"SELECT * FROM read_parquet({sql_string(str(path))}) LIMIT 0")
    return [column[0] for column in result.description]


def check_order(mismatches, check, rows, sort_key, description):
    """Report the first pair of rows that breaks the documented sort order.

    Python compares strings by code point, which is the byte order that
    polars sorts UTF-8 strings in.
    """
    for index in range(len(rows) - 1):
        if sort_key(rows[index]) > sort_key(rows[index + 1]):
            mismatches.add(f"{check}: rows {index + 1} and {index + 2} are not sorted by {description}")
            return


def nulls_last(value):
    return (value is None, value if value is not None else 0)


def load_prepared(con, store):
    """Build `prepared`: the cleaned rows with the derived counts of docs/metrics.md."""
    glob = sql_string(f"{store}/users_summary/account=*/*.parquet")
    n = lambda name: f"greatest(coalesce({name}, 0), 0)"
    clicked = f"least(greatest({n('links_clicked')}, {n('data_submitted')}), {n('emails_sent')})"
    counters = [
        "enrolled_courses", "not_completed_courses", "overdue_courses", "enrolled_materials",
        "not_completed_materials", "phishing_campaigns", "emails_sent", "links_clicked", "data_submitted",
    ]
    negative = lambda names: " OR ".join(f"coalesce({name}, 0) < 0" for name in names)
    # A snapshot that lists a user twice keeps the first row, in file order.
    con.execute(
        f"""
        CREATE TEMP TABLE raw_rows AS
        SELECT * REPLACE (CASE WHEN isnan(average_score) THEN NULL ELSE average_score END AS average_score)
        FROM read_parquet({glob}, hive_partitioning = false, filename = true, file_row_number = true)
        WHERE account_id IS NOT NULL AND user_id IS NOT NULL AND snapshot_at IS NOT NULL
        QUALIFY row_number() OVER (
            PARTITION BY account_id, snapshot_at, user_id ORDER BY filename, file_row_number) = 1;

        CREATE TEMP TABLE prepared AS
        SELECT
            *,
            {n('emails_sent')} AS sent,
            {clicked} AS clicked,
            least({n('data_submitted')}, {clicked}) AS submitted,
            {n('enrolled_courses')} + {n('enrolled_materials')} AS enrolled,
            least({n('not_completed_courses')}, {n('enrolled_courses')})
                + least({n('not_completed_materials')}, {n('enrolled_materials')}) AS not_completed,
            CAST(least({n('overdue_courses')}, {OVERDUE_CAP}) AS DOUBLE) / {sql_double(float(OVERDUE_CAP))} AS overdue,
            -- DuckDB's greatest and least skip nulls, so a null score needs its own case.
            CASE WHEN average_score IS NOT NULL
                 THEN greatest(least(average_score, {sql_double(100.0)}), {sql_double(0.0)}) END AS score_clamped,
            coalesce(data_submitted, 0) > coalesce(links_clicked, 0)
                OR coalesce(links_clicked, 0) > coalesce(emails_sent, 0)
                OR {negative(['emails_sent', 'links_clicked', 'data_submitted'])} AS data_issue,
            coalesce(not_completed_courses, 0) > coalesce(enrolled_courses, 0)
                OR coalesce(not_completed_materials, 0) > coalesce(enrolled_materials, 0)
                OR {negative(counters[:5])} AS training_issue,
            coalesce(average_score < 0 OR average_score > 100, false) AS score_out_of_range,
            {' OR '.join(f'{name} IS NULL' for name in counters)} AS counters_missing
        FROM raw_rows;

        CREATE TEMP TABLE latest_rows AS
        SELECT * FROM prepared
        QUALIFY snapshot_at = max(snapshot_at) OVER (PARTITION BY account_id);
        """
    )


def build_value_map(con, notes):
    """Build the grouping keys and display values of every dimension over every prepared row.

    `keyed_values` has one row per prepared row and dimension value, with its
    `spelling` and `key`. `displays` has the display value of each account,
    dimension and key, and `department_keys` the department key of each
    prepared row.

    The key is the value trimmed of Unicode whitespace, NFC-normalised, case
    folded and NFC-normalised again. DuckDB has `nfc_normalize` but only
    `lower`, which is not full case folding (it keeps `ß`, `ς` and `ſ`, for
    example). Where the two differ on a spelling in the data, the key comes
    from Python's `str.casefold`, which implements full case folding, and the
    spellings are reported.
    """
    group_values = "unnest(CASE WHEN len(coalesce(groups, [])) = 0 THEN [NULL] ELSE list_transform(groups, lambda g: g.name) END)"
    parts = [
        f"SELECT account_id, snapshot_at, user_id, '{dimension}' AS dimension, {column} AS raw FROM prepared"
        for dimension, column in SCALAR_DIMENSIONS.items()
    ]
    parts.append(f"SELECT account_id, snapshot_at, user_id, 'group' AS dimension, {group_values} AS raw FROM prepared")
    trim = f"regexp_replace(coalesce(raw, ''), '^{WHITESPACE_CLASS}+|{WHITESPACE_CLASS}+$', '', 'g')"
    con.execute(
        f"""
        CREATE TEMP TABLE dimension_values AS {' UNION ALL '.join(parts)};

        CREATE TEMP TABLE raw_spellings AS
        SELECT DISTINCT account_id, dimension, raw, nfc_normalize({trim}) AS spelling
        FROM dimension_values;

        CREATE TEMP TABLE lower_keys AS
        SELECT DISTINCT spelling, nfc_normalize(lower(spelling)) AS key FROM raw_spellings;
        """
    )
    folded = []
    lower_keys = con.execute("SELECT spelling, key FROM lower_keys").fetchall()
    for spelling, lower_key in lower_keys:
        full_key = unicodedata.normalize("NFC", spelling.casefold())
        if full_key != lower_key:
            folded.append((spelling, full_key, lower_key))
    if folded:
        examples = ", ".join(f"{s!r} (casefold {f!r}, lower {l!r})" for s, f, l in folded[:5])
        notes.append(
            f"case folding: DuckDB lower() differs from full case folding on {len(folded)} of "
            f"{len(lower_keys)} spellings, keyed with Python str.casefold (Unicode {unicodedata.unidata_version}): {examples}"
        )
        con.executemany("UPDATE lower_keys SET key = ? WHERE spelling = ?", [(f, s) for s, f, _ in folded])
    else:
        notes.append(f"case folding: DuckDB lower() equals full case folding on all {len(lower_keys)} spellings")
    # The most common spelling of each group is its display value. A tie goes
    # to the smallest by code point, which is the byte order of UTF-8.
    con.execute(
        f"""
        CREATE TEMP TABLE keyed_values AS
        SELECT v.*, s.spelling, k.key
        FROM dimension_values AS v
        JOIN raw_spellings AS s
          ON s.account_id = v.account_id AND s.dimension = v.dimension AND s.raw IS NOT DISTINCT FROM v.raw
        JOIN lower_keys AS k ON k.spelling = s.spelling;

        CREATE TEMP TABLE displays AS
        SELECT account_id, dimension, key,
               CASE WHEN key = '' THEN {sql_string(NONE_LABEL)} ELSE spelling END AS value
        FROM (SELECT account_id, dimension, key, spelling, count(*) AS occurrences
              FROM keyed_values GROUP BY ALL)
        QUALIFY row_number() OVER (
            PARTITION BY account_id, dimension, key ORDER BY occurrences DESC, encode(spelling)) = 1;

        CREATE TEMP TABLE department_keys AS
        SELECT k.account_id, k.snapshot_at, k.user_id, k.key AS department_key
        FROM keyed_values AS k WHERE k.dimension = 'department';
        """
    )


def wilson_sql(successes, trials):
    """Return DuckDB expressions of the clamped Wilson bounds, null when trials is 0."""
    z = Z_95
    z2 = z * z
    s = f"CAST({successes} AS DOUBLE)"
    n = f"CAST({trials} AS DOUBLE)"
    center = f"({s} + {sql_double(z2 / 2.0)})"
    half = f"({sql_double(z)} * sqrt({s} * ({n} - {s}) / {n} + {sql_double(z2 / 4.0)}))"
    denominator = f"({n} + {sql_double(z2)})"
    bound = lambda value: f"CASE WHEN {n} > 0 THEN greatest(least({value} / {denominator}, 1.0), 0.0) END"
    return bound(f"({center} - {half})"), bound(f"({center} + {half})")


def ratio_sql(numerator, denominator):
    return f"CASE WHEN {denominator} > 0 THEN CAST({numerator} AS DOUBLE) / CAST({denominator} AS DOUBLE) END"


def build_user_risk(con):
    m = sql_double(SMOOTHING_STRENGTH)
    account = "OVER (PARTITION BY account_id)"
    pooled = lambda count: f"coalesce({ratio_sql(f'sum({count}) {account}', f'sum(sent) {account}')}, 0.0)"

    def smoothed(count, prior):
        trials = f"(CAST(sent AS DOUBLE) + {m})"
        return f"CASE WHEN {trials} > 0 THEN (CAST({count} AS DOUBLE) + {m} * {prior}) / {trials} ELSE {prior} END"

    filled = lambda name: f"coalesce({name}, coalesce(avg({name}) {account}, 0.0))"
    weighted = lambda weight, component: f"round({sql_double(100.0 * weight)} * {component}, {SCORE_DECIMALS})"
    low, medium, high = (sql_double(b) for b in BAND_BOUNDS)
    con.execute(
        f"""
        CREATE TEMP TABLE risk AS
        WITH rates AS (
            SELECT *,
                {ratio_sql('clicked', 'sent')} AS click_rate,
                {ratio_sql('submitted', 'sent')} AS submit_rate,
                {pooled('clicked')} AS account_click_rate,
                {pooled('submitted')} AS account_submit_rate,
                {ratio_sql('not_completed', 'enrolled')} AS training_gap,
                1.0 - score_clamped / 100.0 AS score_gap
            FROM latest_rows
        ),
        components AS (
            SELECT *,
                {smoothed('clicked', 'account_click_rate')} AS click_rate_smoothed,
                {smoothed('submitted', 'account_submit_rate')} AS submit_rate_smoothed,
                {filled('training_gap')} AS training_gap_filled,
                {filled('score_gap')} AS score_gap_filled
            FROM rates
        ),
        points AS (
            SELECT *,
                {weighted(WEIGHTS['click'], 'click_rate_smoothed')} AS click_points,
                {weighted(WEIGHTS['submit'], 'submit_rate_smoothed')} AS submit_points,
                {weighted(WEIGHTS['training'], 'training_gap_filled')} AS training_points,
                {weighted(WEIGHTS['overdue'], 'overdue')} AS overdue_points,
                {weighted(WEIGHTS['score'], 'score_gap_filled')} AS score_points
            FROM components
        ),
        scored AS (
            SELECT *,
                round(click_points + submit_points + training_points + overdue_points + score_points,
                      {SCORE_DECIMALS}) AS risk_score
            FROM points
        )
        SELECT *,
            CASE WHEN risk_score < {low} THEN 'low' WHEN risk_score < {medium} THEN 'medium'
                 WHEN risk_score < {high} THEN 'high' ELSE 'critical' END AS risk_band,
            rank() OVER (PARTITION BY account_id ORDER BY risk_score DESC) AS risk_rank
        FROM scored
        """
    )


USER_RISK_COMPARED = [
    "snapshot_at", "sent", "clicked", "submitted", "click_rate", "submit_rate", "account_click_rate",
    "account_submit_rate", "click_rate_smoothed", "submit_rate_smoothed", "enrolled", "not_completed",
    "training_gap", "training_gap_filled", "overdue", "score_gap", "score_gap_filled", "click_points",
    "submit_points", "training_points", "overdue_points", "score_points", "risk_score", "risk_band",
    "risk_rank", "data_issue", "training_issue", "score_out_of_range", "counters_missing",
]


def check_user_risk(con, mismatches, reports):
    build_user_risk(con)
    expected = fetch_dicts(con, f"SELECT account_id, user_id, {', '.join(USER_RISK_COMPARED)} FROM risk")
    actual = read_report(con, reports / "user_risk.parquet")
    check_order(
        mismatches, "user_risk", actual,
        lambda row: (row["account_id"], row["risk_rank"], row["user_id"]), "account, risk_rank and user_id",
    )
    rows, _ = compare_keyed(mismatches, "user_risk", ["account_id", "user_id"], expected, actual, USER_RISK_COMPARED)
    mismatches.record("user_risk", rows, f"{len(USER_RISK_COMPARED)} columns per user")


GROUP_RATES_COMPARED = [
    "snapshot_at", "value", "users", "sent", "clicked", "submitted", "click_rate", "click_rate_low",
    "click_rate_high", "submit_rate", "submit_rate_low", "submit_rate_high", "mean_risk_score", "rank",
]


def check_group_rates(con, mismatches, reports):
    click_low, click_high = wilson_sql("clicked", "sent")
    submit_low, submit_high = wilson_sql("submitted", "sent")
    # A user counts once per group, even when listed twice in it.
    con.execute(
        f"""
        CREATE TEMP TABLE group_rates_expected AS
        WITH members AS (
            SELECT DISTINCT k.account_id, k.dimension, k.key, k.user_id,
                   r.snapshot_at, r.sent, r.clicked, r.submitted, r.risk_score
            FROM keyed_values AS k
            JOIN risk AS r
              ON r.account_id = k.account_id AND r.snapshot_at = k.snapshot_at AND r.user_id = k.user_id
        ),
        totals AS (
            SELECT account_id, snapshot_at, dimension, key, count(*) AS users,
                   sum(sent) AS sent, sum(clicked) AS clicked, sum(submitted) AS submitted,
                   avg(risk_score) AS mean_risk_score
            FROM members GROUP BY ALL
        ),
        rates AS (
            SELECT t.*, d.value,
                {ratio_sql('clicked', 'sent')} AS click_rate,
                {click_low} AS click_rate_low, {click_high} AS click_rate_high,
                {ratio_sql('submitted', 'sent')} AS submit_rate,
                {submit_low} AS submit_rate_low, {submit_high} AS submit_rate_high
            FROM totals AS t
            JOIN displays AS d USING (account_id, dimension, key)
        )
        SELECT *,
            CASE WHEN click_rate_low IS NOT NULL THEN
                rank() OVER (PARTITION BY account_id, dimension ORDER BY click_rate_low DESC NULLS LAST)
            END AS rank
        FROM rates
        """
    )
    # The account dimension pools every latest user of an account into one
    # row keyed by the account id, ranked across all accounts of the run.
    con.execute(
        f"""
        INSERT INTO group_rates_expected BY NAME
        WITH totals AS (
            SELECT account_id, snapshot_at, 'account' AS dimension, account_id AS key,
                   count(*) AS users, sum(sent) AS sent, sum(clicked) AS clicked,
                   sum(submitted) AS submitted, avg(risk_score) AS mean_risk_score
            FROM risk GROUP BY account_id, snapshot_at
        ),
        rates AS (
            SELECT t.*, t.account_id AS value,
                {ratio_sql('clicked', 'sent')} AS click_rate,
                {click_low} AS click_rate_low, {click_high} AS click_rate_high,
                {ratio_sql('submitted', 'sent')} AS submit_rate,
                {submit_low} AS submit_rate_low, {submit_high} AS submit_rate_high
            FROM totals AS t
        )
        SELECT *,
            CASE WHEN click_rate_low IS NOT NULL THEN
                rank() OVER (ORDER BY click_rate_low DESC NULLS LAST)
            END AS rank
        FROM rates
        """
    )
    actual_all = read_report(con, reports / "group_rates.parquet")
    check_order(
        mismatches, "group_rates", actual_all,
        lambda row: (row["account_id"], row["dimension"], nulls_last(row["rank"]), row["value"]),
        "account, dimension, rank (unranked last) and value",
    )
    for dimension in DIMENSIONS + ("account",):
        expected = fetch_dicts(
            con, f"SELECT * FROM group_rates_expected WHERE dimension = {sql_string(dimension)}"
        )
        actual = [row for row in actual_all if row["dimension"] == dimension]
        check = f"group_rates {dimension}"
        rows, _ = compare_keyed(mismatches, check, ["account_id", "key"], expected, actual, GROUP_RATES_COMPARED)
        mismatches.record(check, rows, "key, display value, counts, rates, Wilson bounds, rank")
    known = set(DIMENSIONS) | {"account"}
    for row in actual_all:
        if row["dimension"] not in known:
            mismatches.add(f"group_rates: unknown dimension {row['dimension']!r}")
            known.add(row["dimension"])


TREND_COMPARED = [
    "users_start", "users_end", "users_tracked", "joined", "left", "moved_in", "moved_out", "resets",
    "delta_sent", "delta_clicked", "delta_submitted", "period_click_rate", "period_click_rate_low",
    "period_click_rate_high", "clicks_exceed_sends", "previous_period_click_rate", "click_rate_change",
    "change_z", "change_p_value", "change_significant", "completion_rate", "mean_average_score",
]


def check_department_trend(con, mismatches, notes, reports):
    """Recompute `department_trend` for consecutive snapshots (no `--every`)."""

    def delta(name):
        start, end = f"s.{name}", f"e.{name}"
        change = f"CASE WHEN {end} < {start} THEN {end} ELSE {end} - {start} END"
        return f"CASE WHEN s.user_id IS NOT NULL AND e.user_id IS NOT NULL THEN {change} END AS delta_{name}"

    went_down = " OR ".join(f"e.{name} < s.{name}" for name in ("sent", "clicked", "submitted"))
    low, high = wilson_sql("rate_clicked", "delta_sent")
    count = lambda flag: f"count(*) FILTER (WHERE {flag})"
    con.execute(
        f"""
        CREATE TEMP TABLE periods AS
        SELECT account_id, period_start, period_end FROM (
            SELECT account_id, snapshot_at AS period_end,
                   lag(snapshot_at) OVER (PARTITION BY account_id ORDER BY snapshot_at) AS period_start
            FROM (SELECT DISTINCT account_id, snapshot_at FROM prepared))
        WHERE period_start IS NOT NULL;

        CREATE TEMP TABLE sides AS
        SELECT p.account_id, p.period_start, p.period_end, r.snapshot_at, r.user_id, k.department_key,
               r.sent, r.clicked, r.submitted, r.enrolled, r.not_completed, r.score_clamped
        FROM periods AS p
        JOIN prepared AS r
          ON r.account_id = p.account_id AND r.snapshot_at IN (p.period_start, p.period_end)
        JOIN department_keys AS k
          ON k.account_id = r.account_id AND k.snapshot_at = r.snapshot_at AND k.user_id = r.user_id;

        CREATE TEMP TABLE changes AS
        SELECT
            coalesce(s.account_id, e.account_id) AS account_id,
            coalesce(s.period_start, e.period_start) AS period_start,
            coalesce(s.period_end, e.period_end) AS period_end,
            s.user_id IS NOT NULL AS in_start,
            e.user_id IS NOT NULL AS in_end,
            s.department_key AS start_key,
            e.department_key AS end_key,
            {delta('sent')}, {delta('clicked')}, {delta('submitted')},
            s.user_id IS NOT NULL AND e.user_id IS NOT NULL AND s.department_key <> e.department_key AS moved,
            s.user_id IS NOT NULL AND e.user_id IS NOT NULL AND ({went_down}) AS reset,
            e.enrolled, e.not_completed, e.score_clamped
        FROM (SELECT * FROM sides WHERE snapshot_at = period_start) AS s
        FULL OUTER JOIN (SELECT * FROM sides WHERE snapshot_at = period_end) AS e
          ON e.account_id = s.account_id AND e.period_start = s.period_start
         AND e.period_end = s.period_end AND e.user_id = s.user_id;

        CREATE TEMP TABLE trend_expected AS
        WITH at_end AS (
            SELECT account_id, period_start, period_end, end_key AS department_key,
                   count(*) AS users_end, {count('in_start')} AS users_tracked,
                   {count('NOT in_start')} AS joined, {count('moved')} AS moved_in,
                   {count('reset')} AS resets,
                   coalesce(sum(delta_sent), 0) AS delta_sent,
                   coalesce(sum(delta_clicked), 0) AS delta_clicked,
                   coalesce(sum(delta_submitted), 0) AS delta_submitted,
                   sum(enrolled) AS enrolled, sum(not_completed) AS not_completed,
                   avg(score_clamped) AS mean_average_score
            FROM changes WHERE in_end GROUP BY ALL
        ),
        at_start AS (
            SELECT account_id, period_start, period_end, start_key AS department_key,
                   count(*) AS users_start, {count('NOT in_end')} AS "left", {count('moved')} AS moved_out
            FROM changes WHERE in_start GROUP BY ALL
        ),
        departments AS (
            SELECT
                account_id, period_start, period_end, department_key,
                coalesce(users_start, 0) AS users_start, coalesce(users_end, 0) AS users_end,
                coalesce(users_tracked, 0) AS users_tracked, coalesce(joined, 0) AS joined,
                coalesce("left", 0) AS "left", coalesce(moved_in, 0) AS moved_in,
                coalesce(moved_out, 0) AS moved_out, coalesce(resets, 0) AS resets,
                coalesce(delta_sent, 0) AS delta_sent, coalesce(delta_clicked, 0) AS delta_clicked,
                coalesce(delta_submitted, 0) AS delta_submitted,
                coalesce(enrolled, 0) AS enrolled, not_completed, mean_average_score
            FROM at_end FULL OUTER JOIN at_start
            USING (account_id, period_start, period_end, department_key)
        ),
        rates AS (
            SELECT *,
                {ratio_sql('rate_clicked', 'delta_sent')} AS period_click_rate,
                {low} AS period_click_rate_low, {high} AS period_click_rate_high,
                delta_clicked > delta_sent AS clicks_exceed_sends,
                1.0 - {ratio_sql('not_completed', 'enrolled')} AS completion_rate
            FROM (SELECT *, least(delta_clicked, delta_sent) AS rate_clicked FROM departments)
        )
        SELECT
            cur.*, d.value AS department,
            prev.period_click_rate AS previous_period_click_rate,
            cur.period_click_rate - prev.period_click_rate AS click_rate_change,
            prev.rate_clicked AS previous_clicked, prev.delta_sent AS previous_sent
        FROM rates AS cur
        JOIN displays AS d
          ON d.account_id = cur.account_id AND d.dimension = 'department' AND d.key = cur.department_key
        LEFT JOIN rates AS prev
          ON prev.account_id = cur.account_id AND prev.department_key = cur.department_key
         AND prev.period_end = cur.period_start
        """
    )
    expected = fetch_dicts(con, "SELECT * FROM trend_expected")
    for row in expected:
        row["change_z"] = two_proportion_z(
            row["previous_clicked"], row["previous_sent"], row["rate_clicked"], row["delta_sent"]
        )
        z = row["change_z"]
        row["change_p_value"] = None if z is None else math.erfc(abs(z) / math.sqrt(2.0))
        p = row["change_p_value"]
        row["change_significant"] = None if p is None else p < SIGNIFICANCE_LEVEL
    actual = read_report(con, reports / "department_trend.parquet")
    check_order(
        mismatches, "department_trend", actual,
        lambda row: (row["account_id"], row["department"], row["period_end"]), "account, department and period_end",
    )
    # The table has no key column. A department spelled "(none)" and the
    # missing department are two groups that both display as "(none)", so
    # their rows are paired by their values.
    key = ["account_id", "department", "period_start", "period_end"]
    rows, shared = compare_keyed(
        mismatches, "department_trend", key, expected, actual, TREND_COMPARED, pair_by=TREND_COMPARED
    )
    if shared:
        notes.append(
            f"department_trend: {shared} periods list two departments displayed as {NONE_LABEL!r} "
            "(a value spelled so, and missing values); their rows were paired by their values"
        )
    mismatches.record("department_trend", rows, "counts, deltas, period rates, Wilson bounds, z-test")


def two_proportion_z(successes1, trials1, successes2, trials2):
    """Return the pooled two-proportion z of p2 - p1, or None where docs/metrics.md leaves it undefined."""
    if trials1 is None or trials2 is None or trials1 <= 0 or trials2 <= 0:
        return None
    s1, n1, s2, n2 = float(successes1), float(trials1), float(successes2), float(trials2)
    pooled = (s1 + s2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if not variance > 0.0:
        return None
    return (s2 / n2 - s1 / n1) / math.sqrt(variance)


def check_shipped_queries(store, reports, queries_dir, mismatches):
    """Run each shipped query in DuckDB over duckdb_views.sql and compare it with cpstat's table."""
    views = queries_dir / "duckdb_views.sql"
    con = duckdb.connect()
    con.execute(f"SET VARIABLE cpstat_store = {sql_string(str(store))}")
    con.execute(views.read_text(encoding="utf-8"))
    for view in ("snapshots", "latest"):
        columns = [row[0] for row in con.execute(f"SELECT column_name FROM (DESCRIBE {view})").fetchall()]
        if columns != STORE_COLUMNS:
            mismatches.add(f"duckdb_views.sql: {view} has the columns {columns}, expected the store schema {STORE_COLUMNS}")
    reader = duckdb.connect()
    queries = sorted(path for path in queries_dir.glob("*.sql") if path.name != views.name)
    if not queries:
        mismatches.add(f"shipped queries: no *.sql files in {queries_dir}")
    for path in queries:
        check = f"query {path.stem}"
        written = reports / f"{path.stem}.parquet"
        if not written.is_file():
            mismatches.add(f"{check}: cpstat wrote no {written.name}; was the binary built from this checkout?")
            continue
        try:
            result = con.execute(path.read_text(encoding="utf-8"))
        except duckdb.Error as error:
            mismatches.add(f"{check}: DuckDB failed to run {path.name}: {error}")
            continue
        columns = [column[0] for column in result.description]
        expected = result.fetchall()
        actual_rows = read_report(reader, written)
        actual_columns = report_columns(reader, written)
        if "account_id" not in columns:
            mismatches.add(f"{check}: the result has no account_id column")
        if actual_columns != columns:
            mismatches.add(f"{check}: columns differ: DuckDB {columns}, cpstat {actual_columns}")
            continue
        if len(expected) != len(actual_rows):
            mismatches.add(f"{check}: DuckDB returned {len(expected)} rows, cpstat wrote {len(actual_rows)}")
        compared = min(len(expected), len(actual_rows))
        for index in range(compared):
            actual = actual_rows[index]
            for column, want in zip(columns, expected[index]):
                if not values_match(want, actual[column]):
                    mismatches.add(
                        f"{check} row {index + 1}: {column} DuckDB {want!r}, cpstat {actual[column]!r}"
                    )
        mismatches.record(check, compared, f"{len(columns)} columns, in order")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path, help="cpstat store folder, analysed with default parameters")
    parser.add_argument("--reports", type=Path, help="report set to check (default: STORE/reports/latest)")
    parser.add_argument(
        "--queries", type=Path, default=Path(__file__).resolve().parent.parent / "queries",
        help="folder of the shipped queries and duckdb_views.sql (default: queries/ of this checkout)",
    )
    args = parser.parse_args()
    store = args.store
    reports = args.reports or store / "reports" / "latest"
    missing = [p for p in (store / "users_summary", reports, args.queries / "duckdb_views.sql") if not p.exists()]
    for table in ("user_risk", "group_rates", "department_trend"):
        if not (reports / f"{table}.parquet").is_file():
            missing.append(reports / f"{table}.parquet")
    if missing:
        for path in missing:
            print(f"error: {path} not found; run `cpstat analyze --store {store}` first", file=sys.stderr)
        return 2

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    mismatches = Mismatches()
    notes = []
    load_prepared(con, store)
    snapshot_rows, snapshots, accounts = con.execute(
        "SELECT count(*), count(DISTINCT (account_id, snapshot_at)), count(DISTINCT account_id) FROM prepared"
    ).fetchone()
    build_value_map(con, notes)
    check_user_risk(con, mismatches, reports)
    check_group_rates(con, mismatches, reports)
    check_department_trend(con, mismatches, notes, reports)
    check_shipped_queries(store, reports, args.queries, mismatches)

    print(f"DuckDB {duckdb.__version__} cross-check of {reports}")
    print(f"  read {snapshot_rows} snapshot rows: {snapshots} snapshots of {accounts} accounts")
    for note in notes:
        print(f"  {note}")
    for check, rows, detail in mismatches.compared:
        print(f"  {check}: {rows} rows compared" + (f" ({detail})" if detail else ""))
    if mismatches.items:
        print(f"FAILED: {len(mismatches.items)} mismatches; the first {min(MAX_LISTED, len(mismatches.items))}:")
        for item in mismatches.items[:MAX_LISTED]:
            print(f"  {item}")
        return 1
    print("All checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
