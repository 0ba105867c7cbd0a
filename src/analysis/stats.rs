//! Wilson score intervals and the two-proportion z-test, as plain Rust and as
//! polars expressions that return null where the statistic is undefined.

use polars::prelude::*;

/// Two-sided 95% quantile of the standard normal distribution, to 7 digits.
pub const Z_95: f64 = 1.959964;

/// Significance level of `change_significant`.
pub const SIGNIFICANCE_LEVEL: f64 = 0.05;

/// Returns the Wilson score interval `(low, high)` for `successes` out of
/// `trials` at normal quantile `z`, clamped to 0..1.
///
/// Uses the closed form `(s + z²/2 ± z·√(s·(n − s)/n + z²/4)) / (n + z²)`.
/// Returns `None` when `trials` is 0, when an input is not finite or negative,
/// or when `successes > trials`.
pub fn wilson_interval(successes: f64, trials: f64, z: f64) -> Option<(f64, f64)> {
    let valid = successes.is_finite() && trials.is_finite() && z.is_finite();
    if !valid || trials <= 0.0 || successes < 0.0 || successes > trials || z < 0.0 {
        return None;
    }
    let z2 = z * z;
    let center = successes + z2 / 2.0;
    let half = z * (successes * (trials - successes) / trials + z2 / 4.0).sqrt();
    let denominator = trials + z2;
    let low = ((center - half) / denominator).clamp(0.0, 1.0);
    let high = ((center + half) / denominator).clamp(0.0, 1.0);
    Some((low, high))
}

/// Returns the z statistic of the pooled two-proportion test of `p2 − p1`,
/// with `p1 = successes1 / trials1` and `p2 = successes2 / trials2`.
///
/// Returns `None` when either sample is empty or when the pooled proportion is
/// 0 or 1, because the standard error is then 0 and z is undefined.
pub fn two_proportion_z(
    successes1: f64,
    trials1: f64,
    successes2: f64,
    trials2: f64,
) -> Option<f64> {
    if trials1 <= 0.0 || trials2 <= 0.0 {
        return None;
    }
    let pooled = (successes1 + successes2) / (trials1 + trials2);
    let variance = pooled * (1.0 - pooled) * (1.0 / trials1 + 1.0 / trials2);
    if !variance.is_finite() || variance <= 0.0 {
        return None;
    }
    let difference = successes2 / trials2 - successes1 / trials1;
    Some(difference / variance.sqrt())
}

/// Returns the two-sided p-value of a standard normal statistic,
/// `2·(1 − Φ(|z|)) = erfc(|z| / √2)`.
pub fn two_sided_p_value(z: f64) -> f64 {
    libm::erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// Builds the expressions of the Wilson interval bounds `[low, high]` of
/// `successes` out of `trials` (integer or float columns). Both bounds are
/// null where `trials` is 0 or null. The caller guarantees
/// `0 <= successes <= trials`.
pub fn wilson_bounds(successes: Expr, trials: Expr, z: f64) -> [Expr; 2] {
    let s = successes.cast(DataType::Float64);
    let n = trials.cast(DataType::Float64);
    let z2 = z * z;
    let center = s.clone() + lit(z2 / 2.0);
    let half = lit(z) * (s.clone() * (n.clone() - s) / n.clone() + lit(z2 / 4.0)).sqrt();
    let denominator = n.clone() + lit(z2);
    let bound = |value: Expr| {
        when(n.clone().gt(lit(0.0)))
            .then((value / denominator.clone()).clip(lit(0.0), lit(1.0)))
            .otherwise(lit(NULL).cast(DataType::Float64))
    };
    [bound(center.clone() - half.clone()), bound(center + half)]
}

/// Builds the expression `numerator / denominator` as Float64, null where the
/// denominator is 0 or null.
pub fn ratio(numerator: Expr, denominator: Expr) -> Expr {
    let d = denominator.cast(DataType::Float64);
    when(d.clone().gt(lit(0.0)))
        .then(numerator.cast(DataType::Float64) / d)
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// Builds the expression of the pooled two-proportion z statistic of
/// `p2 − p1`, null where either sample is empty or the pooled proportion is
/// 0 or 1.
pub fn two_proportion_z_expr(
    successes1: Expr,
    trials1: Expr,
    successes2: Expr,
    trials2: Expr,
) -> Expr {
    let [s1, n1, s2, n2] =
        [successes1, trials1, successes2, trials2].map(|e| e.cast(DataType::Float64));
    let pooled = (s1.clone() + s2.clone()) / (n1.clone() + n2.clone());
    let variance =
        pooled.clone() * (lit(1.0) - pooled) * (lit(1.0) / n1.clone() + lit(1.0) / n2.clone());
    let difference = s2 / n2.clone() - s1 / n1.clone();
    let defined = n1
        .gt(lit(0.0))
        .and(n2.gt(lit(0.0)))
        .and(variance.clone().gt(lit(0.0)));
    when(defined)
        .then(difference / variance.sqrt())
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// Builds the expression of the two-sided p-value of a Float64 z column,
/// null where z is null.
pub fn two_sided_p_value_expr(z: Expr) -> Expr {
    z.map(
        |column| {
            let values: Float64Chunked = column.f64()?.apply_values(two_sided_p_value);
            Ok(values.into_column())
        },
        |_, field| Ok(Field::new(field.name().clone(), DataType::Float64)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOLERANCE: f64 = 1e-9;

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < TOLERANCE,
            "actual {actual}, expected {expected}"
        );
    }

    // With z = 1.959964, z² = 3.841458881296 and z²/4 = 0.960364720324.

    #[test]
    fn wilson_zero_trials_is_none() {
        assert_eq!(wilson_interval(0.0, 0.0, Z_95), None);
    }

    #[test]
    fn wilson_zero_successes_of_ten() {
        // s = 0: low = (z²/2 − z·z/2) / (n + z²) = 0,
        // high = z² / (10 + z²) = 3.841458881296 / 13.841458881296 = 0.277532803026058.
        let (low, high) = wilson_interval(0.0, 10.0, Z_95).unwrap();
        assert_close(low, 0.0);
        assert_close(high, 0.277532803026058);
    }

    #[test]
    fn wilson_five_of_twenty() {
        // s·(n − s)/n = 5·15/20 = 3.75; √(3.75 + 0.960364720324) = 2.170337466921677;
        // z·2.170337466921677 = 4.253783303017678; s + z²/2 = 6.920729440648;
        // n + z² = 23.841458881296.
        // low = (6.920729440648 − 4.253783303017678) / 23.841458881296 = 0.111861700699976
        // high = (6.920729440648 + 4.253783303017678) / 23.841458881296 = 0.468700879392589
        let (low, high) = wilson_interval(5.0, 20.0, Z_95).unwrap();
        assert_close(low, 0.111861700699976);
        assert_close(high, 0.468700879392589);
    }

    #[test]
    fn wilson_twenty_of_twenty() {
        // s = n: low = n / (n + z²) = 20 / 23.841458881296 = 0.838874839814870, high = 1.
        let (low, high) = wilson_interval(20.0, 20.0, Z_95).unwrap();
        assert_close(low, 0.838874839814870);
        assert_eq!(high, 1.0);
    }

    #[test]
    fn wilson_invalid_inputs_are_none() {
        assert_eq!(wilson_interval(11.0, 10.0, Z_95), None);
        assert_eq!(wilson_interval(-1.0, 10.0, Z_95), None);
        assert_eq!(wilson_interval(f64::NAN, 10.0, Z_95), None);
    }

    #[test]
    fn wilson_expressions_match_plain_rust() {
        let df = df!(
            "s" => [Some(0i64), Some(5), Some(20), Some(0), None],
            "n" => [Some(10i64), Some(20), Some(20), Some(0), Some(4)],
        )
        .unwrap();
        let [low, high] = wilson_bounds(col("s"), col("n"), Z_95);
        let out = df
            .lazy()
            .select([low.alias("low"), high.alias("high")])
            .collect()
            .unwrap();
        let low: Vec<Option<f64>> = out.column("low").unwrap().f64().unwrap().iter().collect();
        let high: Vec<Option<f64>> = out.column("high").unwrap().f64().unwrap().iter().collect();
        assert_close(low[0].unwrap(), 0.0);
        assert_close(high[0].unwrap(), 0.277532803026058);
        assert_close(low[1].unwrap(), 0.111861700699976);
        assert_close(high[1].unwrap(), 0.468700879392589);
        assert_close(low[2].unwrap(), 0.838874839814870);
        assert_eq!(high[2], Some(1.0));
        assert_eq!((low[3], high[3]), (None, None), "0 of 0 trials");
        assert_eq!((low[4], high[4]), (None, None), "null successes");
    }

    #[test]
    fn z_test_known_values() {
        // 10/100 against 20/100: pooled = 30/200 = 0.15;
        // variance = 0.15 · 0.85 · (1/100 + 1/100) = 0.00255; √0.00255 = 0.0504975246918104;
        // z = (0.20 − 0.10) / 0.0504975246918104 = 1.98029508595335.
        let z = two_proportion_z(10.0, 100.0, 20.0, 100.0).unwrap();
        assert_close(z, 1.98029508595335);
        // p = erfc(1.98029508595335 / √2) = 0.0476703806561614. z = 1.959964 gives p = 0.05
        // to 8 digits, because it is the 97.5% quantile: erfc(1.959964 / √2) = 0.0499999981928848.
        assert_close(two_sided_p_value(Z_95), 0.0499999981928848);
        assert_close(two_sided_p_value(z), 0.0476703806561614);
        assert_close(two_sided_p_value(0.0), 1.0);
    }

    #[test]
    fn z_test_undefined_without_variation() {
        assert_eq!(two_proportion_z(0.0, 10.0, 0.0, 12.0), None);
        assert_eq!(two_proportion_z(10.0, 10.0, 12.0, 12.0), None);
        assert_eq!(two_proportion_z(1.0, 0.0, 2.0, 12.0), None);
    }

    #[test]
    fn z_test_expression_matches_plain_rust() {
        let df = df!(
            "s1" => [10i64, 0, 3],
            "n1" => [100i64, 10, 0],
            "s2" => [20i64, 0, 1],
            "n2" => [100i64, 12, 5],
        )
        .unwrap();
        let z = two_proportion_z_expr(col("s1"), col("n1"), col("s2"), col("n2"));
        let out = df
            .lazy()
            .select([z.clone().alias("z"), two_sided_p_value_expr(z).alias("p")])
            .collect()
            .unwrap();
        let z: Vec<Option<f64>> = out.column("z").unwrap().f64().unwrap().iter().collect();
        let p: Vec<Option<f64>> = out.column("p").unwrap().f64().unwrap().iter().collect();
        assert_close(z[0].unwrap(), 1.98029508595335);
        assert_close(p[0].unwrap(), two_sided_p_value(1.98029508595335));
        assert_eq!((z[1], p[1]), (None, None), "no variation");
        assert_eq!((z[2], p[2]), (None, None), "empty first sample");
    }
}
