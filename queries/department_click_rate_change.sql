-- Which departments' click rates rose significantly in the latest period?
--
-- One row per department of `department_trend` in the latest period of each
-- account (between its last two snapshots, or the last two kept by
-- `--every`). Each row is one two-proportion z-test at the 5% level, with no
-- correction for testing many departments.
--
-- Columns: account_id, department, period_start, period_end, delta_sent,
-- delta_clicked, previous_period_click_rate, period_click_rate,
-- click_rate_change, change_z, change_p_value (definitions in
-- docs/metrics.md), rose_significantly (change_significant and a positive
-- change, false when the test is undefined).
-- Sorted by account, significant rises first, then by p-value (untested
-- last) and department.
WITH last_period AS (
    SELECT account_id, MAX(period_end) AS period_end
    FROM department_trend
    GROUP BY account_id
)
SELECT
    t.account_id,
    t.department,
    t.period_start,
    t.period_end,
    t.delta_sent,
    t.delta_clicked,
    t.previous_period_click_rate,
    t.period_click_rate,
    t.click_rate_change,
    t.change_z,
    t.change_p_value,
    COALESCE(t.change_significant AND t.click_rate_change > 0, FALSE) AS rose_significantly
FROM department_trend AS t
INNER JOIN last_period AS p
    ON t.account_id = p.account_id AND t.period_end = p.period_end
ORDER BY t.account_id, rose_significantly DESC, t.change_p_value NULLS LAST, t.department
