-- How far has each department completed its assigned training?
--
-- One row per account and department in each account's latest snapshot.
-- Departments are grouped as written, trimmed of spaces at both ends, so
-- ` Salg ` and `Salg` are one row but `salg` is another. `group_rates` also
-- merges case and Unicode variants. A missing or blank department is
-- `(none)`. Only spaces are trimmed, because polars' TRIM(x) removes all
-- Unicode whitespace and DuckDB's does not remove tabs.
--
-- Columns: account_id, department, users, enrolled (courses and materials),
-- not_completed (each capped at its enrolment), completion_rate
-- (1 - not_completed / enrolled, null when nothing is enrolled),
-- users_overdue (users with an overdue course), users_not_enrolled.
-- Negative and missing counters count as 0, as in docs/metrics.md.
-- Sorted by account, completion rate (lowest first, null last) and
-- department.
WITH counts AS (
    SELECT
        account_id,
        CASE
            WHEN TRIM(BOTH ' ' FROM COALESCE(department, '')) = '' THEN '(none)'
            ELSE TRIM(BOTH ' ' FROM department)
        END AS department,
        CASE WHEN enrolled_courses > 0 THEN enrolled_courses ELSE 0 END AS courses,
        CASE WHEN not_completed_courses > 0 THEN not_completed_courses ELSE 0 END AS open_courses,
        CASE WHEN enrolled_materials > 0 THEN enrolled_materials ELSE 0 END AS materials,
        CASE WHEN not_completed_materials > 0 THEN not_completed_materials ELSE 0 END AS open_materials,
        CASE WHEN overdue_courses > 0 THEN 1 ELSE 0 END AS is_overdue
    FROM latest
),
per_user AS (
    SELECT
        account_id,
        department,
        courses + materials AS enrolled,
        CASE WHEN open_courses < courses THEN open_courses ELSE courses END
            + CASE WHEN open_materials < materials THEN open_materials ELSE materials END AS not_completed,
        is_overdue
    FROM counts
),
per_department AS (
    SELECT
        account_id,
        department,
        CAST(COUNT(*) AS BIGINT) AS users,
        CAST(SUM(enrolled) AS BIGINT) AS enrolled,
        CAST(SUM(not_completed) AS BIGINT) AS not_completed,
        CAST(SUM(is_overdue) AS BIGINT) AS users_overdue,
        CAST(SUM(CASE WHEN enrolled = 0 THEN 1 ELSE 0 END) AS BIGINT) AS users_not_enrolled
    FROM per_user
    GROUP BY account_id, department
)
SELECT
    account_id,
    department,
    users,
    enrolled,
    not_completed,
    CASE
        WHEN enrolled > 0 THEN 1.0 - CAST(not_completed AS DOUBLE) / CAST(enrolled AS DOUBLE)
    END AS completion_rate,
    users_overdue,
    users_not_enrolled
FROM per_department
ORDER BY account_id, completion_rate NULLS LAST, department
