//! SQL over the store and the report tables, through polars' SQL engine.
//!
//! Registered tables: `snapshots` (every row of the store), `latest` (each
//! account's newest snapshot) and the report tables. The shipped queries in
//! `queries/*.sql` are compiled into the binary and run by `analyze`; the
//! same files run unchanged in DuckDB over `queries/duckdb_views.sql`.

use anyhow::{Context, Result};
use polars::prelude::{DataFrame, IntoLazy, LazyFrame, PolarsResult, col};
use polars::sql::SQLContext;

/// The shipped queries as (name, SQL), from `queries/*.sql`.
pub const SHIPPED_QUERIES: &[(&str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/shipped_queries.rs"));

/// Filters the snapshots to each account's newest one.
pub fn latest(snapshots: LazyFrame) -> PolarsResult<LazyFrame> {
    let newest = col("snapshot_at").max().over([col("account_id")])?;
    Ok(snapshots.filter(col("snapshot_at").eq(newest)))
}

/// Builds a SQL context with `snapshots`, `latest` and the given tables.
pub fn context(snapshots: LazyFrame, tables: &[(String, DataFrame)]) -> Result<SQLContext> {
    let context = SQLContext::new();
    context.register("snapshots", snapshots.clone());
    context.register("latest", latest(snapshots)?);
    for (name, frame) in tables {
        context.register(name, frame.clone().lazy());
    }
    Ok(context)
}

/// Runs one SQL text and collects the result. SQL that cannot be planned
/// (a syntax error, an unknown table or column) is a usage error.
pub fn run_sql(context: &mut SQLContext, name: &str, sql: &str) -> Result<DataFrame> {
    let plan = context
        .execute(sql)
        .map_err(|e| crate::error::usage(format!("invalid SQL in {name}: {e}")))?;
    plan.collect()
        .with_context(|| format!("failed to run the SQL of {name}"))
}

/// Runs every shipped query; returns one named table per query.
pub fn run_shipped_queries(
    snapshots: LazyFrame,
    tables: &[(String, DataFrame)],
) -> Result<Vec<(String, DataFrame)>> {
    let mut context = context(snapshots, tables)?;
    SHIPPED_QUERIES
        .iter()
        .map(|(name, sql)| {
            Ok((
                name.to_string(),
                run_sql(&mut context, &format!("queries/{name}.sql"), sql)?,
            ))
        })
        .collect()
}
