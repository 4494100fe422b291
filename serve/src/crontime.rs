//! When a cron schedule fires, in its time zone, as robfig/cron (and so Argo) reads it: at
//! every wall-clock minute the five fields match. A wall time skipped by a spring-forward
//! does not exist, so it never fires; a wall time repeated by a fall-back fires once, at its
//! first occurrence. Schedules without `timezone:` are read in UTC.

use chrono::{DateTime, Datelike, LocalResult, TimeZone, Timelike};
use chrono_tz::Tz;
use pbc_compiler::model::CronSchedule;

const MINUTE_MS: i64 = 60_000;

/// The longest stretch looked at: a year and a day of minutes (a server down longer is
/// told "at least").
pub const MAX_SCAN_MS: i64 = 366 * 24 * 60 * MINUTE_MS;

/// Whether the schedule fires at `ms` (milliseconds since the epoch, a whole minute).
pub fn fires_at(s: &CronSchedule, tz: Tz, ms: i64) -> bool {
    if ms.rem_euclid(MINUTE_MS) != 0 {
        return false;
    }
    let Some(utc) = DateTime::from_timestamp_millis(ms) else {
        return false;
    };
    let local = utc.with_timezone(&tz);
    // Offsets with seconds (local mean time, before 1972) never put a local minute here.
    if local.second() != 0
        || !s.matches(
            local.minute(),
            local.hour(),
            local.day(),
            local.month(),
            local.weekday().num_days_from_sunday(),
        )
    {
        return false;
    }
    match tz.from_local_datetime(&local.naive_local()) {
        // The repeated hour of a fall-back: only its first occurrence fires.
        LocalResult::Ambiguous(first, _) => first.timestamp_millis() == ms,
        _ => true,
    }
}

/// The fires due in `(after, upto]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Fires {
    pub count: u64,
    /// When the last one was due.
    pub latest: Option<i64>,
    /// The stretch was longer than [`MAX_SCAN_MS`]: only its last year was counted.
    pub truncated: bool,
}

/// The fires due after `after` and at or before `upto`.
pub fn fires_between(s: &CronSchedule, tz: Tz, after: i64, upto: i64) -> Fires {
    let mut out = Fires::default();
    if upto <= after {
        return out;
    }
    let from = if upto.saturating_sub(after) > MAX_SCAN_MS {
        out.truncated = true;
        upto - MAX_SCAN_MS
    } else {
        after
    };
    // The first whole minute after `from`.
    let mut m = from.div_euclid(MINUTE_MS).saturating_add(1) * MINUTE_MS;
    while m <= upto {
        if fires_at(s, tz, m) {
            out.count += 1;
            out.latest = Some(m);
        }
        m += MINUTE_MS;
    }
    out
}

/// The first fire after `after`, within [`MAX_SCAN_MS`].
pub fn next_after(s: &CronSchedule, tz: Tz, after: i64) -> Option<i64> {
    let mut m = after.div_euclid(MINUTE_MS).saturating_add(1) * MINUTE_MS;
    let end = after.saturating_add(MAX_SCAN_MS);
    while m <= end {
        if fires_at(s, tz, m) {
            return Some(m);
        }
        m += MINUTE_MS;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbc_compiler::model::cron::parse_cron;

    fn ms(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        match tz.with_ymd_and_hms(y, mo, d, h, mi, 0) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
            LocalResult::None => panic!("no such local time"),
        }
    }

    /// The local times of the fires in `(after, upto]`, one minute at a time.
    fn all(cron: &str, tz: Tz, after: i64, upto: i64) -> Vec<String> {
        let s = parse_cron(cron).unwrap();
        let mut out = Vec::new();
        let mut t = after;
        while t < upto {
            if let Some(x) = fires_between(&s, tz, t, t + MINUTE_MS).latest {
                let local = DateTime::from_timestamp_millis(x)
                    .unwrap()
                    .with_timezone(&tz);
                out.push(local.format("%Y-%m-%d %H:%M %Z").to_string());
            }
            t += MINUTE_MS;
        }
        out
    }

    #[test]
    fn noon_in_berlin() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let s = parse_cron("0 12 * * *").unwrap();
        let noon = ms(tz, 2026, 6, 1, 12, 0);
        assert!(fires_at(&s, tz, noon));
        assert!(!fires_at(&s, tz, noon + MINUTE_MS));
        assert!(!fires_at(&s, tz, noon + 1));
        let f = fires_between(&s, tz, noon - 30_000, noon + 5_000);
        assert_eq!((f.count, f.latest), (1, Some(noon)));
        // `(after, upto]`: a fire at `after` was already seen.
        assert_eq!(fires_between(&s, tz, noon, noon + 5_000).count, 0);
        assert_eq!(fires_between(&s, tz, noon - 30_000, noon - 1).count, 0);
        // Three days down: three fires, the last one today.
        let f = fires_between(&s, tz, noon - 3 * 86_400_000, noon + 60_000);
        assert_eq!((f.count, f.latest, f.truncated), (3, Some(noon), false));
        assert_eq!(next_after(&s, tz, noon - 1), Some(noon));
        assert_eq!(next_after(&s, tz, noon), Some(noon + 86_400_000));
        // February 30th never comes.
        assert_eq!(
            next_after(&parse_cron("0 0 30 2 *").unwrap(), tz, noon),
            None
        );
    }

    #[test]
    fn a_skipped_wall_time_does_not_fire_and_a_repeated_one_fires_once() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist that day.
        let day = ms(tz, 2026, 3, 7, 12, 0);
        assert_eq!(
            all("30 2 * * *", tz, day, day + 3 * 86_400_000),
            ["2026-03-09 02:30 EDT", "2026-03-10 02:30 EDT"]
        );
        // 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice and fires once.
        let day = ms(tz, 2026, 10, 31, 12, 0);
        assert_eq!(
            all("30 1 * * *", tz, day, day + 2 * 86_400_000),
            ["2026-11-01 01:30 EDT", "2026-11-02 01:30 EST"]
        );
        // Hourly across the fall-back: 01:00 once.
        let from = ms(tz, 2026, 11, 1, 0, 30);
        assert_eq!(
            all("0 * * * *", tz, from, from + 4 * 3_600_000),
            [
                "2026-11-01 01:00 EDT",
                "2026-11-01 02:00 EST",
                "2026-11-01 03:00 EST"
            ]
        );
    }

    #[test]
    fn a_long_stretch_is_counted_over_its_last_year() {
        let s = parse_cron("@daily").unwrap();
        let tz = Tz::UTC;
        let end = ms(tz, 2026, 1, 1, 0, 0);
        let f = fires_between(&s, tz, end - 3 * MAX_SCAN_MS, end);
        assert!(f.truncated);
        assert_eq!((f.count, f.latest), (366, Some(end)));
    }
}
