-- Who clicked the most phishing links in each branch?
--
-- The users of `user_risk` (each account's latest snapshot) with the three
-- highest derived click counts of their branch, and every user tied with
-- them, so a branch can list more than three. Users who never clicked are
-- left out. Branches are taken as written (`branch_name`), `(none)` when
-- missing.
--
-- Columns: account_id, branch, click_rank (1 for the most clicks in the
-- branch, and tied users share the lowest rank), user_id, email, name,
-- department, sent, clicked, click_rate, click_rate_smoothed, risk_score,
-- risk_band (definitions in docs/metrics.md).
-- Sorted by account, branch, click_rank and user id.
WITH ranked AS (
    SELECT
        account_id,
        COALESCE(branch_name, '(none)') AS branch,
        CAST(RANK() OVER (
            PARTITION BY account_id, COALESCE(branch_name, '(none)')
            ORDER BY clicked DESC
        ) AS BIGINT) AS click_rank,
        user_id,
        email,
        name,
        department,
        sent,
        clicked,
        click_rate,
        click_rate_smoothed,
        risk_score,
        risk_band
    FROM user_risk
    WHERE clicked > 0
)
SELECT *
FROM ranked
WHERE click_rank <= 3
ORDER BY account_id, branch, click_rank, user_id
