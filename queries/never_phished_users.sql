-- Which users have never been sent a phishing simulation, in each account's
-- latest snapshot?
--
-- One row per user whose cumulative `emails_sent` is 0, missing or
-- negative. Such users have no click rate, so `user_risk` scores their
-- phishing components at the account rate.
--
-- Columns: account_id, user_id, email, name, department, branch_name,
-- manager, user_created, phishing_campaigns (active campaigns now),
-- emails_sent (raw, null when the API sent none).
-- Sorted by account and user id.
SELECT
    account_id,
    user_id,
    email,
    name,
    department,
    branch_name,
    manager,
    user_created,
    phishing_campaigns,
    emails_sent
FROM latest
WHERE COALESCE(emails_sent, 0) <= 0
ORDER BY account_id, user_id
