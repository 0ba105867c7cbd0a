-- Are new hires enrolled in training?
--
-- One row per user of each account's latest snapshot who was created in the
-- 90 days up to that snapshot (`user_created` from `snapshot_at` minus 90
-- days to `snapshot_at`, both included). Users without a creation time are
-- left out.
--
-- Columns: account_id, user_id, email, name, department, manager,
-- user_created, days_since_created (fractional days to the snapshot),
-- enrolled_courses, not_completed_courses, overdue_courses,
-- enrolled_materials, not_completed_materials (raw counters),
-- no_enrolment (true when neither a course nor a material is enrolled, with
-- missing counters read as 0).
-- Sorted by account, users without enrolment first, then newest first and
-- by user id.
SELECT
    account_id,
    user_id,
    email,
    name,
    department,
    manager,
    user_created,
    (EXTRACT(EPOCH FROM snapshot_at) - EXTRACT(EPOCH FROM user_created)) / 86400.0 AS days_since_created,
    enrolled_courses,
    not_completed_courses,
    overdue_courses,
    enrolled_materials,
    not_completed_materials,
    COALESCE(enrolled_courses, 0) <= 0 AND COALESCE(enrolled_materials, 0) <= 0 AS no_enrolment
FROM latest
WHERE user_created >= snapshot_at - INTERVAL '90 days'
  AND user_created <= snapshot_at
ORDER BY account_id, no_enrolment DESC, user_created DESC, user_id
