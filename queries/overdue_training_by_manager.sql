-- Which managers have staff with overdue training courses, in each
-- account's latest snapshot?
--
-- One row per account and manager with at least one overdue course among
-- their staff. Managers are taken as written in the snapshot (name and
-- email), so two spellings of one manager are two rows. A missing manager is
-- `(none)` and a missing email is ''.
--
-- Columns: account_id, manager, manager_email, users (staff in the
-- snapshot), users_overdue (staff with an overdue course), overdue_courses
-- (sum), not_completed_courses (sum), share_overdue (users_overdue / users).
-- Negative and missing counters count as 0.
-- Sorted by account, overdue courses and overdue staff (most first), then
-- manager and email.
WITH staff AS (
    SELECT
        account_id,
        COALESCE(manager, '(none)') AS manager,
        COALESCE(manager_email, '') AS manager_email,
        CASE WHEN overdue_courses > 0 THEN overdue_courses ELSE 0 END AS overdue,
        CASE WHEN not_completed_courses > 0 THEN not_completed_courses ELSE 0 END AS not_completed
    FROM latest
),
per_manager AS (
    SELECT
        account_id,
        manager,
        manager_email,
        CAST(COUNT(*) AS BIGINT) AS users,
        CAST(SUM(CASE WHEN overdue > 0 THEN 1 ELSE 0 END) AS BIGINT) AS users_overdue,
        CAST(SUM(overdue) AS BIGINT) AS overdue_courses,
        CAST(SUM(not_completed) AS BIGINT) AS not_completed_courses
    FROM staff
    GROUP BY account_id, manager, manager_email
)
SELECT
    account_id,
    manager,
    manager_email,
    users,
    users_overdue,
    overdue_courses,
    not_completed_courses,
    CAST(users_overdue AS DOUBLE) / CAST(users AS DOUBLE) AS share_overdue
FROM per_manager
WHERE users_overdue > 0
ORDER BY account_id, overdue_courses DESC, users_overdue DESC, manager, manager_email
