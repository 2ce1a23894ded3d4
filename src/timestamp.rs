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

    /// Nanoseconds from `earlier` to this time, saturating: a hostile file can put its
    /// timestamps at both ends of the range.
    pub fn since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(Self::NANOS_PER_SEC)
    }

    pub fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(Self::NANOS_PER_SEC) as u32
    }

    /// RFC 3339 in UTC with nanoseconds, e.g. `2026-11-23T20:03:01.123456789Z`. Written
    /// here rather than by humantime, which panics on times before 1970: a pcapng
    /// `if_tsoffset` can put a packet there.
    pub fn rfc3339(self) -> String {
        Rfc3339(self).to_string()
    }
}

/// [`Timestamp::rfc3339`] as it is written, without a string of its own (every time in a
/// report is serialised through it).
struct Rfc3339(Timestamp);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(f, "{}.{:09}Z", utc_date_time(t.secs()), t.subsec_nanos())
    }
}

/// Unix seconds as `YYYY-MM-DDThh:mm:ss` in UTC (the proleptic Gregorian calendar), for
/// any `i64`: no date crate, and no panic on times before 1970.
pub fn utc_date_time(secs: i64) -> impl fmt::Display {
    UtcDateTime(secs)
}

struct UtcDateTime(i64);

impl fmt::Display for UtcDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let of_day = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60
        )
    }
}

/// The date of a day counted from 1970-01-01 (Howard Hinnant's `civil_from_days`). Days
/// from `i64` seconds are within ±1.1e14, far from overflowing any step.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs(), self.subsec_nanos())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Rfc3339(*self))
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
        assert_eq!(Timestamp(0).rfc3339(), "1970-01-01T00:00:00.000000000Z");
        // Before 1970 (a pcapng if_tsoffset can put a packet there), and the extremes.
        assert_eq!(Timestamp(-1).rfc3339(), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            Timestamp(i64::MIN).rfc3339(),
            "1677-09-21T00:12:43.145224192Z"
        );
        assert_eq!(
            Timestamp(i64::MAX).rfc3339(),
            "2262-04-11T23:47:16.854775807Z"
        );
        // The same as humantime wherever humantime can format.
        let mut t: i64 = 1;
        while t < i64::MAX / 3 {
            let system = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(t as u64);
            let expected = humantime::format_rfc3339_nanos(system).to_string();
            assert_eq!(Timestamp(t).rfc3339(), expected);
            t = t * 3 + 7;
        }
        // Leap days, and the end of a leap year.
        assert_eq!(
            Timestamp(951_782_400 * Timestamp::NANOS_PER_SEC).rfc3339(),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            Timestamp(1_735_603_199 * Timestamp::NANOS_PER_SEC).rfc3339(),
            "2024-12-30T23:59:59.000000000Z"
        );
    }
}
