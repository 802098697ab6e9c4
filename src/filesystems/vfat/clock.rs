//! Turns the build's fixed Unix timestamp (SOURCE_DATE_EPOCH) into a FAT
//! date and time.
//!
//! Owns: the Unix-seconds → civil-date conversion (UTC: FAT stores local time
//! without a zone, and a reproducible image must not depend on the build
//! host's zone), clamping to the FAT range 1980-01-01 00:00:00 ..
//! 2107-12-31 23:59:58, and the one `TimeProvider` lamfat asks for "now".
//! Must not read the system clock. In: `i64` seconds. Out: `FatTimestamp`,
//! which yields both lamfat's `DateTime` and the raw on-disk DOS fields.

use lamfat::{Date, DateTime, Time, TimeProvider};

/// First second FAT can store: 1980-01-01T00:00:00Z.
const FAT_MIN_UNIX: i64 = 315_532_800;
/// Last second FAT can store: 2107-12-31T23:59:59Z (written as :58, FAT has
/// two-second resolution in the modification time).
const FAT_MAX_UNIX: i64 = 4_354_819_199;

/// A civil UTC date and time inside the FAT range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FatTimestamp {
    pub(crate) year: u16,
    pub(crate) month: u16,
    pub(crate) day: u16,
    pub(crate) hour: u16,
    pub(crate) minute: u16,
    pub(crate) second: u16,
}

/// The raw DOS fields of a directory entry time stamp (little-endian on disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DosTimeFields {
    pub(crate) date: u16,
    pub(crate) time: u16,
    /// Creation time fine resolution in 10 ms units (0 or 100: the odd second).
    pub(crate) tenths: u8,
}

impl FatTimestamp {
    /// Converts Unix seconds (UTC) to a FAT time stamp, clamping to the FAT range.
    pub(crate) fn from_unix(seconds: i64) -> Self {
        let clamped = seconds.clamp(FAT_MIN_UNIX, FAT_MAX_UNIX);
        let days = clamped.div_euclid(86_400);
        let second_of_day = clamped.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        // All narrowing casts below are in range thanks to the clamp above.
        Self {
            year: year as u16,
            month: month as u16,
            day: day as u16,
            hour: (second_of_day / 3600) as u16,
            minute: (second_of_day / 60 % 60) as u16,
            second: (second_of_day % 60) as u16,
        }
    }

    /// The same instant as lamfat's `DateTime` (used for every entry lamfat creates).
    pub(crate) fn to_date_time(self) -> DateTime {
        DateTime::new(
            Date::new(self.year, self.month, self.day),
            Time::new(self.hour, self.minute, self.second, 0),
        )
    }

    /// The same instant as raw DOS date/time fields (for entries lamfat leaves unstamped).
    pub(crate) fn to_dos_fields(self) -> DosTimeFields {
        DosTimeFields {
            date: ((self.year - 1980) << 9) | (self.month << 5) | self.day,
            time: (self.hour << 11) | (self.minute << 5) | (self.second / 2),
            tenths: if self.second % 2 == 1 { 100 } else { 0 },
        }
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// lamfat's source of "now": always the build's fixed time stamp.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedClock {
    date_time: DateTime,
}

impl FixedClock {
    pub(crate) fn new(stamp: FatTimestamp) -> Self {
        Self {
            date_time: stamp.to_date_time(),
        }
    }
}

impl TimeProvider for FixedClock {
    fn get_current_date(&self) -> Date {
        self.date_time.date
    }

    fn get_current_date_time(&self) -> DateTime {
        self.date_time
    }
}

#[cfg(test)]
mod tests {
    use super::{FatTimestamp, FAT_MAX_UNIX};

    fn stamp(y: u16, mo: u16, d: u16, h: u16, mi: u16, s: u16) -> FatTimestamp {
        FatTimestamp {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
        }
    }

    #[test]
    fn converts_known_instants_as_utc() {
        // 2024-05-06T07:08:09Z, cross-checked with Python's calendar.timegm.
        assert_eq!(
            FatTimestamp::from_unix(1_714_979_289),
            stamp(2024, 5, 6, 7, 8, 9)
        );
        // A leap day.
        assert_eq!(
            FatTimestamp::from_unix(951_782_400),
            stamp(2000, 2, 29, 0, 0, 0)
        );
    }

    #[test]
    fn clamps_to_fat_range() {
        assert_eq!(FatTimestamp::from_unix(0), stamp(1980, 1, 1, 0, 0, 0));
        assert_eq!(
            FatTimestamp::from_unix(i64::MIN),
            stamp(1980, 1, 1, 0, 0, 0)
        );
        assert_eq!(
            FatTimestamp::from_unix(FAT_MAX_UNIX),
            stamp(2107, 12, 31, 23, 59, 59)
        );
        assert_eq!(
            FatTimestamp::from_unix(i64::MAX),
            stamp(2107, 12, 31, 23, 59, 59)
        );
    }

    #[test]
    fn encodes_dos_fields() {
        let fields = stamp(2024, 5, 6, 7, 8, 9).to_dos_fields();
        assert_eq!(fields.date, (44 << 9) | (5 << 5) | 6);
        assert_eq!(fields.time, (7 << 11) | (8 << 5) | 4);
        assert_eq!(fields.tenths, 100);
    }
}
