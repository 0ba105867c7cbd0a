-- Defines in DuckDB the tables that `cpstat query` and `cpstat analyze`
-- register for SQL, as views over a cpstat store, so that the shipped
-- queries in this folder run unchanged in DuckDB:
--
--   snapshots         every row of every snapshot file, with the store
--                     schema of docs/store.md (no hive `account` column)
--   latest            the rows of each account's newest snapshot
--   user_risk, group_rates, department_trend, repeat_clickers
--                     the report tables of <store>/reports/latest/
--
-- Set the store folder in the variable `cpstat_store` first, then read this
-- file. With the DuckDB command-line client, each dot command needs its own
-- -c or -cmd argument (the 1.5.6 client rejects `SET ...; .read ...` in one):
--
--   duckdb -c "SET VARIABLE cpstat_store = 'cpstat-store'" \
--          -c ".read queries/duckdb_views.sql" \
--          -c ".read queries/top_clickers_by_branch.sql"
--
-- For an interactive session, pass the first two as -cmd instead of -c.
-- In Python:
--
--   con.execute("SET VARIABLE cpstat_store = 'cpstat-store'")
--   con.execute(open("queries/duckdb_views.sql").read())
--
-- The views read the files when they are queried, not when they are
-- created, so they show the newest snapshots and report set, and changing
-- `cpstat_store` later points them at another store. A relative path is
-- relative to DuckDB's working folder. The views need at least one snapshot
-- file and a report set (`cpstat analyze`).
--
-- NOTE: cpstat's own `snapshots` and `latest` also carry the hive column
-- `account` (equal to `account_id`), so `SELECT *` over them returns one
-- column more in cpstat than here. The shipped queries name their columns.
--
-- NOTE: cpstat lists only files named like a snapshot time
-- (`YYYYMMDDTHHMMSSZ.parquet`) and skips others with a warning. The glob
-- below reads every `*.parquet` file of an account folder, so a stray
-- Parquet file there is read here but not by cpstat.

-- Fails with a readable message when the store folder was not set.
SET VARIABLE cpstat_store = coalesce(
    getvariable('cpstat_store'),
    error('the variable cpstat_store is not set: run SET VARIABLE cpstat_store = ''path/to/store'' before reading duckdb_views.sql')
);

-- Snapshot times are UTC, and DuckDB does date arithmetic on
-- TIMESTAMP WITH TIME ZONE in the session time zone. In UTC, an interval
-- such as '90 days' means the same as in cpstat and never shifts by an hour
-- at a daylight-saving change.
SET TimeZone = 'UTC';

-- Reading without hive partitioning keeps the columns of the files: the
-- account is the `account_id` column, not the folder name.
CREATE OR REPLACE VIEW snapshots AS
SELECT *
FROM read_parquet(
    getvariable('cpstat_store') || '/users_summary/account=*/*.parquet',
    hive_partitioning = false
);

CREATE OR REPLACE VIEW latest AS
SELECT *
FROM snapshots
QUALIFY snapshot_at = max(snapshot_at) OVER (PARTITION BY account_id);

CREATE OR REPLACE VIEW user_risk AS
SELECT * FROM read_parquet(getvariable('cpstat_store') || '/reports/latest/user_risk.parquet');

CREATE OR REPLACE VIEW group_rates AS
SELECT * FROM read_parquet(getvariable('cpstat_store') || '/reports/latest/group_rates.parquet');

CREATE OR REPLACE VIEW department_trend AS
SELECT * FROM read_parquet(getvariable('cpstat_store') || '/reports/latest/department_trend.parquet');

CREATE OR REPLACE VIEW repeat_clickers AS
SELECT * FROM read_parquet(getvariable('cpstat_store') || '/reports/latest/repeat_clickers.parquet');
