//! Seeded pseudo-random numbers that give the same values on every platform.
//!
//! Everything here uses integer arithmetic and IEEE-754 multiplication only,
//! never `ln`, `exp` or other libm functions whose last bit may differ between
//! platforms, so a seed reproduces byte-identical organisations everywhere.

/// Mixes a 64-bit value with the SplitMix64 finalizer (Steele, Lea and Flood, 2014).
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Converts the top 53 bits of `bits` into a float in `[0, 1)`.
fn unit_from_bits(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A random value addressed by a key instead of a position in a stream.
///
/// `Draw::new(seed, purpose).with(user).with(day)` always yields the same bits
/// for the same key, so a draw does not depend on how many other draws were
/// made before it. The simulation relies on this to stay deterministic when
/// users join, leave or are visited in a different order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Draw(u64);

impl Draw {
    pub(crate) fn new(seed: u64, purpose: Purpose) -> Draw {
        Draw(mix64(seed ^ mix64(purpose as u64)))
    }

    pub(crate) fn with(self, value: u64) -> Draw {
        Draw(mix64(self.0 ^ value.wrapping_mul(0xD6E8_FEB8_6659_FD93)))
    }

    pub(crate) fn bits(self) -> u64 {
        self.0
    }

    pub(crate) fn unit(self) -> f64 {
        unit_from_bits(self.0)
    }

    pub(crate) fn chance(self, probability: f64) -> bool {
        self.unit() < probability
    }

    /// Returns a value in `0..bound`, or 0 when `bound` is 0.
    pub(crate) fn below(self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        ((self.0 as u128 * bound as u128) >> 64) as u64
    }

    pub(crate) fn range_f64(self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
}

/// The independent streams of draws, so that two purposes never share bits.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub(crate) enum Purpose {
    Roster = 1,
    Person,
    Trait,
    Leave,
    Transfer,
    Hire,
    Campaign,
    Target,
    Click,
    Submit,
    Report,
    Enrol,
    CompleteCourse,
    CompleteMaterial,
    Drift,
    Extra,
    Manager,
    Token,
}

/// SplitMix64 as a sequential generator, for building the initial roster.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state.wrapping_sub(0x9E37_79B9_7F4A_7C15))
    }

    pub(crate) fn unit(&mut self) -> f64 {
        unit_from_bits(self.next_u64())
    }

    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        Draw(self.next_u64()).below(bound)
    }
}

/// Picks an index with probability proportional to its weight.
///
/// Returns 0 when all weights are zero or the slice is empty.
pub(crate) fn pick_weighted(weights: &[u32], draw: Draw) -> usize {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let mut target = draw.below(total);
    for (index, &weight) in weights.iter().enumerate() {
        let weight = u64::from(weight);
        if target < weight {
            return index;
        }
        target -= weight;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_values() {
        // Reference output of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn draw_is_stable_for_same_key() {
        let first = Draw::new(7, Purpose::Click).with(3).with(9).bits();
        let again = Draw::new(7, Purpose::Click).with(3).with(9).bits();
        let other = Draw::new(7, Purpose::Click).with(9).with(3).bits();
        assert_eq!(first, again);
        assert_ne!(first, other);
    }

    #[test]
    fn below_stays_in_bounds() {
        for key in 0..1000 {
            let value = Draw::new(1, Purpose::Roster).with(key).below(7);
            assert!(value < 7);
        }
        assert_eq!(Draw::new(1, Purpose::Roster).below(0), 0);
    }

    #[test]
    fn weighted_pick_follows_weights() {
        let weights = [0, 3, 1];
        let mut counts = [0usize; 3];
        for key in 0..4000 {
            counts[pick_weighted(&weights, Draw::new(5, Purpose::Roster).with(key))] += 1;
        }
        assert_eq!(counts[0], 0);
        assert!(counts[1] > 2700, "{counts:?}");
        assert!(counts[1] < 3300, "{counts:?}");
    }
}
