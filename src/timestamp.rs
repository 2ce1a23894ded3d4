//! Capture time: nanoseconds since the Unix epoch, as a plain signed integer.
//!
//! pcap records microseconds or nanoseconds, pcapng any power of 10 or 2 plus an offset; all
//! are normalised to nanoseconds here so that packets from several files compare directly.
//! An `i64` of nanoseconds spans the years 1678 to 2262, which covers every capture format.

use std::fmt;

/// A capture timestamp in nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const NANOS_PER_SEC: i64 = 1_000_000_000;

    /// Builds a timestamp from whole seconds plus a fraction counted in `units_per_sec`.
    /// Saturates instead of overflowing: a hostile file can write any value.
    pub fn from_parts(secs: i64, frac: u64, units_per_sec: u64) -> Self {
        let units = units_per_sec.max(1);
        // Fractions of a second are at most `units`, so u128 arithmetic cannot overflow.
        let nanos = (u128::from(frac.min(units - 1)) * 1_000_000_000 / u128::from(units)) as i64;
        Timestamp(
            secs.saturating_mul(Self::NANOS_PER_SEC)
                .saturating_add(nanos),
        )
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(Self::NANOS_PER_SEC)
    }

    pub fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(Self::NANOS_PER_SEC) as u32
    }

    /// RFC 3339 in UTC with nanoseconds, e.g. `2026-11-23T20:03:01.123456789Z`.
    pub fn rfc3339(self) -> String {
        let system = if self.0 >= 0 {
            std::time::UNIX_EPOCH + std::time::Duration::from_nanos(self.0 as u64)
        } else {
            std::time::UNIX_EPOCH - std::time::Duration::from_nanos(self.0.unsigned_abs())
        };
        humantime::format_rfc3339_nanos(system).to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs(), self.subsec_nanos())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_to_nanos() {
        assert_eq!(Timestamp::from_parts(1, 5, 1_000_000).0, 1_000_005_000);
        assert_eq!(Timestamp::from_parts(1, 5, 1_000_000_000).0, 1_000_000_005);
        // 2^-10 units (pcapng if_tsresol with the high bit set).
        assert_eq!(Timestamp::from_parts(0, 512, 1024).0, 500_000_000);
        // A fraction beyond its unit is clamped rather than carried into the seconds.
        assert_eq!(
            Timestamp::from_parts(0, 5_000_000, 1_000_000).0,
            999_999_000
        );
        assert_eq!(Timestamp::from_parts(i64::MAX, 0, 1).0, i64::MAX);
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(
            Timestamp(1_700_000_000_123_456_789).rfc3339(),
            "2023-11-14T22:13:20.123456789Z"
        );
    }
}
