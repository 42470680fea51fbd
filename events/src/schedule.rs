//! Scheduled capacity: the calendar of a product's shared-slot sizes.
//!
//! A product's settings may carry a `schedule` in its IANA `timezone` (default UTC):
//!
//! - `weekly` windows: on the given `days` (`mon` .. `sun`), from `from` to `to` local
//!   time (`"HH:MM"`; `to` may be `"24:00"`, the end of the day), the pool has
//!   `shared_slots` slots. A weekly window never crosses midnight: "22:00 to 06:00" is two
//!   windows, `22:00-24:00` and (on the next days) `00:00-06:00`.
//! - `dated` windows (one-off events such as a training day): from `from` to `to`
//!   (`"YYYY-MM-DDTHH:MM"` local time, at most [`MAX_DATED_DAYS`] days long), the pool
//!   has `shared_slots` slots. A dated window overrides the weekly ones while it lasts.
//! - Otherwise the pool has the settings' `shared_slots`.
//!
//! Windows are half-open (`from` is in, `to` is not), so `08:00-12:00` and `12:00-18:00`
//! touch without overlapping. Overlapping weekly windows on a day, and overlapping dated
//! windows, are refused.
//!
//! Daylight saving: a boundary is the instant at which the product's wall clock shows it.
//! A boundary at a local time that does not exist that day (the clock springs forward
//! over it) falls on the first valid instant after the gap (02:30 on the night Berlin
//! jumps from 02:00 to 03:00 is 03:00 CEST); a boundary at a local time that exists twice
//! (the clock falls back) falls on its first occurrence (02:30 CEST, not 02:30 CET). So
//! each window begins and ends exactly once per day it names.
//!
//! Everything here is pure: the instant is always an argument. The scheduler applies
//! [`Calendar::next_change`] at its instant; the admin API, `simulate` and recovery ask the
//! same [`Calendar`].

use crate::time::Timestamp;
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Most weekly windows a schedule may have.
pub const MAX_WEEKLY: usize = 100;
/// Most dated windows a schedule may have.
pub const MAX_DATED: usize = 500;
/// Longest dated window, in days.
pub const MAX_DATED_DAYS: i64 = 366;
/// Earliest and latest year of a dated window.
pub const DATED_YEARS: std::ops::RangeInclusive<i32> = 2000..=2199;
/// Default lead, in seconds, with which holders who will lose their slot to a scheduled
/// shrink are warned.
pub const DEFAULT_SHRINK_WARNING_S: u32 = 300;
/// Longest shrink warning lead accepted, in seconds (a day).
pub const MAX_SHRINK_WARNING_S: u32 = 86_400;
/// How far ahead [`Calendar::next_change`] looks, in days (ten years).
pub const HORIZON_DAYS: i64 = 3_660;

/// The day names of weekly windows, Monday first.
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A product's capacity calendar (setting `schedule`). Empty by default: the pool always
/// has `shared_slots`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Windows that repeat every week.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekly: Vec<WeeklyWindow>,
    /// One-off windows; they override the weekly ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dated: Vec<DatedWindow>,
    /// Seconds before a scheduled shrink at which the holders who would lose their slot
    /// are warned (default [`DEFAULT_SHRINK_WARNING_S`]; 0: no warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrink_warning_s: Option<u32>,
}

/// A window that repeats every week (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyWindow {
    /// The days it applies on: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    pub days: Vec<String>,
    /// Local start time, `"HH:MM"`.
    pub from: String,
    /// Local end time, `"HH:MM"` (`"24:00"`: the end of the day); after `from`.
    pub to: String,
    /// The pool's size during the window.
    pub shared_slots: u32,
}

/// A one-off window (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatedWindow {
    /// Local start, `"YYYY-MM-DDTHH:MM"`.
    pub from: String,
    /// Local end, `"YYYY-MM-DDTHH:MM"`; after `from`.
    pub to: String,
    /// The pool's size during the window.
    pub shared_slots: u32,
}

impl Schedule {
    /// No window and no warning lead set (not serialized, so older settings JSON is
    /// unchanged).
    pub fn is_empty(&self) -> bool {
        self.weekly.is_empty() && self.dated.is_empty() && self.shrink_warning_s.is_none()
    }

    /// Whether any window is set (a product without one never changes size by itself).
    pub fn has_windows(&self) -> bool {
        !self.weekly.is_empty() || !self.dated.is_empty()
    }

    /// The shrink warning lead in seconds.
    pub fn shrink_warning_s(&self) -> u32 {
        self.shrink_warning_s.unwrap_or(DEFAULT_SHRINK_WARNING_S)
    }
}

/// A scheduled change of the pool's size: from `at` on, `shared_slots`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityChange {
    /// When the change happens.
    pub at: Timestamp,
    /// The size from then on.
    pub shared_slots: u32,
}

/// What is wrong with a schedule. Each names the offending window
/// (`schedule.weekly[1]`, `schedule.dated[0]`) as the settings JSON does.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    /// `timezone` is not an IANA time zone name.
    #[error("timezone {0:?} is not an IANA time zone name such as \"Europe/Berlin\"")]
    UnknownTimeZone(String),
    /// A weekly window names a day that is not one of `mon` .. `sun`.
    #[error("{at}.days: unknown day {day:?} (use mon, tue, wed, thu, fri, sat, sun)")]
    UnknownDay { at: String, day: String },
    /// A weekly window names no day, or a day twice.
    #[error("{at}.days must name at least one day, each once")]
    BadDays { at: String },
    /// A time is not `"HH:MM"`.
    #[error(
        "{at}.{field}: {value:?} is not a local time \"HH:MM\" (00:00 to 23:59, or 24:00 as to)"
    )]
    BadTime {
        at: String,
        field: &'static str,
        value: String,
    },
    /// A date and time is not `"YYYY-MM-DDTHH:MM"`.
    #[error("{at}.{field}: {value:?} is not a local date and time \"YYYY-MM-DDTHH:MM\" in the years 2000 to 2199")]
    BadDateTime {
        at: String,
        field: &'static str,
        value: String,
    },
    /// `from` is not before `to`.
    #[error("{at}: from ({from}) must be before to ({to}); a weekly window may not cross midnight (make it two windows, the first ending at 24:00)")]
    NotBefore {
        at: String,
        from: String,
        to: String,
    },
    /// A dated window lasts too long.
    #[error("{at}: a dated window lasts at most {MAX_DATED_DAYS} days")]
    TooLong { at: String },
    /// Two weekly windows overlap on a day.
    #[error("{at} ({from}-{to}) overlaps {other} on {day}")]
    WeeklyOverlap {
        at: String,
        other: String,
        day: &'static str,
        from: String,
        to: String,
    },
    /// Two dated windows overlap.
    #[error("{at} ({from} to {to}) overlaps {other}")]
    DatedOverlap {
        at: String,
        other: String,
        from: String,
        to: String,
    },
    /// Too many windows.
    #[error("schedule has at most {MAX_WEEKLY} weekly and {MAX_DATED} dated windows")]
    TooMany,
    /// The warning lead is too long.
    #[error("schedule.shrink_warning_s must be at most {MAX_SHRINK_WARNING_S}")]
    WarningTooLong,
    /// A window's size takes the product over its licence tier.
    #[error("{at}: fixed users ({fixed}) + shared_slots ({size}) exceed licence_tier ({tier})")]
    OverTier {
        at: String,
        fixed: u32,
        size: u32,
        tier: u32,
    },
}

impl ScheduleError {
    /// A stable snake_case code of the problem, for tests and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ScheduleError::UnknownTimeZone(_) => "unknown_time_zone",
            ScheduleError::UnknownDay { .. } => "unknown_day",
            ScheduleError::BadDays { .. } => "bad_days",
            ScheduleError::BadTime { .. } => "bad_time",
            ScheduleError::BadDateTime { .. } => "bad_date_time",
            ScheduleError::NotBefore { .. } => "from_not_before_to",
            ScheduleError::TooLong { .. } => "window_too_long",
            ScheduleError::WeeklyOverlap { .. } | ScheduleError::DatedOverlap { .. } => {
                "overlapping_windows"
            }
            ScheduleError::TooMany => "too_many_windows",
            ScheduleError::WarningTooLong => "shrink_warning_too_long",
            ScheduleError::OverTier { .. } => "window_over_tier",
        }
    }
}

#[derive(Debug, Clone)]
struct Weekly {
    days: [bool; 7],
    /// Minutes after local midnight, `from < to <= 1440`.
    from: u16,
    to: u16,
    size: u32,
}

#[derive(Debug, Clone)]
struct Dated {
    from: Timestamp,
    to: Timestamp,
    size: u32,
}

/// A validated schedule in its time zone: answers what size holds at an instant and when
/// it next changes. Built by [`Calendar::new`].
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: Tz,
    otherwise: u32,
    weekly: Vec<Weekly>,
    dated: Vec<Dated>,
}

/// The instant at which the wall clock of `tz` first shows `local`; for a local time in
/// a gap (spring forward), the first valid instant after it.
pub fn instant_of(tz: Tz, local: NaiveDateTime) -> Timestamp {
    let mut t = local;
    // A gap is at most a few hours; step through it a minute at a time.
    for _ in 0..=24 * 60 {
        if let Some(instant) = tz.from_local_datetime(&t).earliest() {
            return Timestamp::from_millis(instant.timestamp_millis());
        }
        t += chrono::Duration::minutes(1);
    }
    // No real time zone has a gap of a day; read it as UTC rather than fail.
    Timestamp::from_millis(local.and_utc().timestamp_millis())
}

/// The local date and time of `t` in `tz` (`None` for instants chrono cannot represent).
pub fn local_of(tz: Tz, t: Timestamp) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_millis(t.as_millis())
        .map(|utc| utc.with_timezone(&tz).naive_local())
}

/// A window's `from` and `to`, parsed with `parse` (told whether it reads an end, which may
/// be `24:00`); each that does not parse is reported with `bad`, and `from` not before
/// `to` as `NotBefore`. `None` when the window has no usable span.
fn span<T: PartialOrd>(
    at: &str,
    (from, to): (&String, &String),
    parse: impl Fn(&str, bool) -> Option<T>,
    bad: impl Fn(String, &'static str, String) -> ScheduleError,
    problems: &mut Vec<ScheduleError>,
) -> Option<(T, T)> {
    let parsed = (parse(from, false), parse(to, true));
    for (field, value, ok) in [
        ("from", from, parsed.0.is_some()),
        ("to", to, parsed.1.is_some()),
    ] {
        if !ok {
            problems.push(bad(at.to_string(), field, value.clone()));
        }
    }
    let (Some(start), Some(end)) = parsed else {
        return None;
    };
    if start >= end {
        problems.push(ScheduleError::NotBefore {
            at: at.to_string(),
            from: from.clone(),
            to: to.clone(),
        });
        return None;
    }
    Some((start, end))
}

fn parse_minutes(s: &str, allow_24: bool) -> Option<u16> {
    let b = s.as_bytes();
    if b.len() != 5
        || b[2] != b':'
        || !b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
    {
        return None;
    }
    let h = u16::from(b[0] - b'0') * 10 + u16::from(b[1] - b'0');
    let m = u16::from(b[3] - b'0') * 10 + u16::from(b[4] - b'0');
    match (h, m) {
        (24, 0) if allow_24 => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn parse_local(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[10] != b'T' {
        return None;
    }
    let date = NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()?;
    let minutes = parse_minutes(s.get(11..)?, false)?;
    if s.get(..10)?.len() != 10 || !DATED_YEARS.contains(&date.year()) || b[4] != b'-' {
        return None;
    }
    let time = NaiveTime::from_hms_opt(u32::from(minutes / 60), u32::from(minutes % 60), 0)?;
    Some(date.and_time(time))
}

fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl Calendar {
    /// Validates `schedule` in `timezone` (an IANA name; `None`: UTC) with `otherwise`
    /// slots outside its windows. Every problem found is returned, each naming its window.
    pub fn new(
        timezone: Option<&str>,
        schedule: &Schedule,
        otherwise: u32,
    ) -> Result<Calendar, Vec<ScheduleError>> {
        let mut problems = Vec::new();
        let tz = match timezone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().unwrap_or_else(|_| {
                problems.push(ScheduleError::UnknownTimeZone(name.to_string()));
                Tz::UTC
            }),
        };
        if schedule.weekly.len() > MAX_WEEKLY || schedule.dated.len() > MAX_DATED {
            return Err(vec![ScheduleError::TooMany]);
        }
        if schedule.shrink_warning_s() > MAX_SHRINK_WARNING_S {
            problems.push(ScheduleError::WarningTooLong);
        }
        let mut weekly: Vec<(usize, Weekly)> = Vec::new();
        for (i, w) in schedule.weekly.iter().enumerate() {
            let at = format!("schedule.weekly[{i}]");
            let mut days = [false; 7];
            let mut ok = !w.days.is_empty();
            for d in &w.days {
                match DAY_NAMES.iter().position(|n| n.eq_ignore_ascii_case(d)) {
                    Some(k) if !days[k] => days[k] = true,
                    Some(_) => ok = false,
                    None => {
                        problems.push(ScheduleError::UnknownDay {
                            at: at.clone(),
                            day: d.clone(),
                        });
                    }
                }
            }
            if !ok {
                problems.push(ScheduleError::BadDays { at: at.clone() });
            }
            let parsed = span(
                &at,
                (&w.from, &w.to),
                parse_minutes,
                |at, field, value| ScheduleError::BadTime { at, field, value },
                &mut problems,
            );
            let Some((from, to)) = parsed else {
                continue;
            };
            weekly.push((
                i,
                Weekly {
                    days,
                    from,
                    to,
                    size: w.shared_slots,
                },
            ));
        }
        for (a, (i, wi)) in weekly.iter().enumerate() {
            for (j, wj) in &weekly[..a] {
                let day = (0..7).find(|&k| wi.days[k] && wj.days[k]);
                if let Some(k) = day.filter(|_| wi.from < wj.to && wj.from < wi.to) {
                    problems.push(ScheduleError::WeeklyOverlap {
                        at: format!("schedule.weekly[{i}]"),
                        other: format!("schedule.weekly[{j}]"),
                        day: DAY_NAMES[k],
                        from: hhmm(wi.from),
                        to: hhmm(wi.to),
                    });
                }
            }
        }
        let mut dated: Vec<(usize, NaiveDateTime, NaiveDateTime, u32)> = Vec::new();
        for (i, d) in schedule.dated.iter().enumerate() {
            let at = format!("schedule.dated[{i}]");
            let parsed = span(
                &at,
                (&d.from, &d.to),
                |text, _| parse_local(text),
                |at, field, value| ScheduleError::BadDateTime { at, field, value },
                &mut problems,
            );
            let Some((from, to)) = parsed else {
                continue;
            };
            if (to - from).num_days() >= MAX_DATED_DAYS {
                problems.push(ScheduleError::TooLong { at });
                continue;
            }
            dated.push((i, from, to, d.shared_slots));
        }
        for (a, (i, fi, ti, _)) in dated.iter().enumerate() {
            for (j, fj, tj, _) in &dated[..a] {
                if fi < tj && fj < ti {
                    problems.push(ScheduleError::DatedOverlap {
                        at: format!("schedule.dated[{i}]"),
                        other: format!("schedule.dated[{j}]"),
                        from: schedule.dated[*i].from.clone(),
                        to: schedule.dated[*i].to.clone(),
                    });
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut dated: Vec<Dated> = dated
            .into_iter()
            .map(|(_, from, to, size)| Dated {
                from: instant_of(tz, from),
                to: instant_of(tz, to),
                size,
            })
            .collect();
        dated.sort_by_key(|d| d.from);
        Ok(Calendar {
            tz,
            otherwise,
            weekly: weekly.into_iter().map(|(_, w)| w).collect(),
            dated,
        })
    }

    /// Every window's size, with the window's name (for the licence-tier check).
    pub fn window_sizes(schedule: &Schedule) -> impl Iterator<Item = (String, u32)> + '_ {
        let weekly = schedule
            .weekly
            .iter()
            .enumerate()
            .map(|(i, w)| (format!("schedule.weekly[{i}]"), w.shared_slots));
        let dated = schedule
            .dated
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("schedule.dated[{i}]"), d.shared_slots));
        weekly.chain(dated)
    }

    /// The time zone of the calendar.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The start and end instants of weekly window `w` on local date `date`.
    fn occurrence(&self, w: &Weekly, date: NaiveDate) -> (Timestamp, Timestamp) {
        let at = |minutes: u16| {
            let (date, minutes) = if minutes >= 1440 {
                (date.succ_opt().unwrap_or(date), minutes - 1440)
            } else {
                (date, minutes)
            };
            let time = NaiveTime::from_hms_opt(u32::from(minutes / 60), u32::from(minutes % 60), 0)
                .unwrap_or_default();
            instant_of(self.tz, date.and_time(time))
        };
        (at(w.from), at(w.to))
    }

    fn weekday(date: NaiveDate) -> usize {
        date.weekday().num_days_from_monday() as usize
    }

    /// The pool's size at instant `t`: the dated window holding `t`, else the weekly
    /// window holding it, else `shared_slots`.
    pub fn size_at(&self, t: Timestamp) -> u32 {
        if let Some(d) = self.dated.iter().find(|d| d.from <= t && t < d.to) {
            return d.size;
        }
        let Some(local) = local_of(self.tz, t) else {
            return self.otherwise;
        };
        let day = local.date();
        for date in [day.pred_opt(), Some(day), day.succ_opt()]
            .into_iter()
            .flatten()
        {
            let k = Self::weekday(date);
            for w in self.weekly.iter().filter(|w| w.days[k]) {
                let (from, to) = self.occurrence(w, date);
                if from <= t && t < to {
                    return w.size;
                }
            }
        }
        self.otherwise
    }

    /// The first change of size strictly after `after`, within [`HORIZON_DAYS`]; `None`
    /// when the size never changes again.
    pub fn next_change(&self, after: Timestamp) -> Option<CapacityChange> {
        let base = self.size_at(after);
        let local = local_of(self.tz, after)?;
        let mut dated: Vec<Timestamp> = self
            .dated
            .iter()
            .flat_map(|d| [d.from, d.to])
            .filter(|b| *b > after)
            .collect();
        dated.sort();
        dated.dedup();
        let mut dated = dated.into_iter().peekable();
        let check = |c: Timestamp| {
            let s = self.size_at(c);
            (s != base).then_some(CapacityChange {
                at: c,
                shared_slots: s,
            })
        };
        // Windows of the otherwise size change nothing, wherever they are.
        let weekly: Vec<&Weekly> = self
            .weekly
            .iter()
            .filter(|w| w.size != self.otherwise)
            .collect();
        if !weekly.is_empty() {
            let first = local.date().pred_opt()?;
            let last_dated = self
                .dated
                .last()
                .and_then(|d| local_of(self.tz, d.to))
                .map_or(first, |l| l.date());
            let days = (last_dated - first).num_days().clamp(9, HORIZON_DAYS);
            let mut date = first;
            for _ in 0..=days {
                let next_midnight = instant_of(self.tz, date.succ_opt()?.and_time(NaiveTime::MIN));
                let k = Self::weekday(date);
                let mut candidates: Vec<Timestamp> = weekly
                    .iter()
                    .filter(|w| w.days[k])
                    .flat_map(|w| {
                        let (from, to) = self.occurrence(w, date);
                        [from, to]
                    })
                    .filter(|b| *b > after)
                    .collect();
                while let Some(b) = dated.next_if(|b| *b <= next_midnight) {
                    candidates.push(b);
                }
                candidates.sort();
                if let Some(change) = candidates.into_iter().find_map(check) {
                    return Some(change);
                }
                date = date.succ_opt()?;
            }
        }
        dated.find_map(check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(s: &str) -> Timestamp {
        Timestamp::from_millis(
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("valid")
                .timestamp_millis(),
        )
    }

    fn weekly(days: &[&str], from: &str, to: &str, size: u32) -> WeeklyWindow {
        WeeklyWindow {
            days: days.iter().map(|d| d.to_string()).collect(),
            from: from.into(),
            to: to.into(),
            shared_slots: size,
        }
    }

    fn dated(from: &str, to: &str, size: u32) -> DatedWindow {
        DatedWindow {
            from: from.into(),
            to: to.into(),
            shared_slots: size,
        }
    }

    const WORKDAYS: [&str; 5] = ["mon", "tue", "wed", "thu", "fri"];

    fn berlin_office() -> Calendar {
        let s = Schedule {
            weekly: vec![weekly(&WORKDAYS, "08:00", "18:00", 40)],
            dated: vec![dated("2027-01-15T09:00", "2027-01-15T12:00", 60)],
            shrink_warning_s: None,
        };
        Calendar::new(Some("Europe/Berlin"), &s, 15).expect("valid")
    }

    fn codes(e: Vec<ScheduleError>) -> Vec<&'static str> {
        e.iter().map(|e| e.code()).collect()
    }

    #[test]
    fn the_contract_example_sizes_the_pool_by_local_time() {
        let c = berlin_office();
        // Thursday 2027-01-14 07:59 CET is 06:59Z: otherwise.
        assert_eq!(c.size_at(utc("2027-01-14T06:59:00Z")), 15);
        assert_eq!(c.size_at(utc("2027-01-14T07:00:00Z")), 40, "08:00 CET");
        assert_eq!(c.size_at(utc("2027-01-14T16:59:59Z")), 40);
        assert_eq!(
            c.size_at(utc("2027-01-14T17:00:00Z")),
            15,
            "18:00 CET: to is out"
        );
        // The training day overrides the weekly window.
        assert_eq!(c.size_at(utc("2027-01-15T08:00:00Z")), 60, "09:00 CET");
        assert_eq!(c.size_at(utc("2027-01-15T11:00:00Z")), 40, "12:00 CET");
        // Saturday: otherwise all day.
        assert_eq!(c.size_at(utc("2027-01-16T10:00:00Z")), 15);
    }

    #[test]
    fn next_change_walks_the_boundaries_and_skips_non_changes() {
        let c = berlin_office();
        let t = utc("2027-01-14T12:00:00Z");
        let n = c.next_change(t).expect("a change");
        assert_eq!(
            n,
            CapacityChange {
                at: utc("2027-01-14T17:00:00Z"),
                shared_slots: 15
            }
        );
        let n = c.next_change(n.at).expect("a change");
        assert_eq!(
            n,
            CapacityChange {
                at: utc("2027-01-15T07:00:00Z"),
                shared_slots: 40
            }
        );
        let n = c.next_change(n.at).expect("a change");
        assert_eq!(
            n,
            CapacityChange {
                at: utc("2027-01-15T08:00:00Z"),
                shared_slots: 60
            }
        );
        let n = c.next_change(n.at).expect("a change");
        assert_eq!(
            n,
            CapacityChange {
                at: utc("2027-01-15T11:00:00Z"),
                shared_slots: 40
            }
        );
        // Friday evening to Monday morning.
        let n = c.next_change(n.at).expect("a change");
        assert_eq!(n.at, utc("2027-01-15T17:00:00Z"));
        let n = c.next_change(n.at).expect("a change");
        assert_eq!(
            n,
            CapacityChange {
                at: utc("2027-01-18T07:00:00Z"),
                shared_slots: 40
            }
        );
    }

    #[test]
    fn spring_forward_moves_a_boundary_in_the_gap_to_the_first_instant_after() {
        // Berlin, 2027-03-28: 02:00 CET jumps to 03:00 CEST (01:00Z).
        let s = Schedule {
            weekly: vec![weekly(&["sun"], "02:30", "10:00", 5)],
            ..Schedule::default()
        };
        let c = Calendar::new(Some("Europe/Berlin"), &s, 1).expect("valid");
        let n = c
            .next_change(utc("2027-03-27T12:00:00Z"))
            .expect("a change");
        assert_eq!(
            n,
            CapacityChange {
                at: utc("2027-03-28T01:00:00Z"),
                shared_slots: 5
            }
        );
        assert_eq!(c.size_at(utc("2027-03-28T00:59:59Z")), 1);
        let n = c.next_change(n.at).expect("a change");
        assert_eq!(
            n,
            CapacityChange {
                at: utc("2027-03-28T08:00:00Z"),
                shared_slots: 1
            },
            "10:00 CEST"
        );
    }

    #[test]
    fn fall_back_takes_the_first_occurrence_once() {
        // Berlin, 2027-10-31: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
        let s = Schedule {
            weekly: vec![weekly(&["sun"], "02:30", "12:00", 5)],
            ..Schedule::default()
        };
        let c = Calendar::new(Some("Europe/Berlin"), &s, 1).expect("valid");
        let n = c
            .next_change(utc("2027-10-30T12:00:00Z"))
            .expect("a change");
        assert_eq!(
            n,
            CapacityChange {
                at: utc("2027-10-31T00:30:00Z"),
                shared_slots: 5
            },
            "02:30 CEST"
        );
        // Still in the window when the clock shows 02:10 CET (01:10Z), after falling back.
        assert_eq!(c.size_at(utc("2027-10-31T01:10:00Z")), 5);
        let n = c.next_change(n.at).expect("a change");
        assert_eq!(
            n,
            CapacityChange {
                at: utc("2027-10-31T11:00:00Z"),
                shared_slots: 1
            },
            "12:00 CET"
        );
    }

    #[test]
    fn new_york_business_hours_follow_its_own_dst_dates() {
        // America/New_York springs forward on 2027-03-14 (two weeks before Berlin).
        let s = Schedule {
            weekly: vec![weekly(&WORKDAYS, "09:00", "17:00", 30)],
            ..Schedule::default()
        };
        let c = Calendar::new(Some("America/New_York"), &s, 10).expect("valid");
        let fri = c
            .next_change(utc("2027-03-12T15:00:00Z"))
            .expect("a change");
        assert_eq!(fri.at, utc("2027-03-12T22:00:00Z"), "17:00 EST");
        let mon = c.next_change(fri.at).expect("a change");
        assert_eq!(
            mon,
            CapacityChange {
                at: utc("2027-03-15T13:00:00Z"),
                shared_slots: 30
            },
            "09:00 EDT"
        );
    }

    #[test]
    fn a_window_may_end_at_24_00_and_touching_windows_do_not_overlap() {
        let s = Schedule {
            weekly: vec![
                weekly(&["mon"], "22:00", "24:00", 3),
                weekly(&["tue"], "00:00", "06:00", 3),
                weekly(&["mon"], "08:00", "22:00", 9),
            ],
            ..Schedule::default()
        };
        let c = Calendar::new(None, &s, 1).expect("valid");
        // 2027-01-11 is a Monday.
        assert_eq!(c.size_at(utc("2027-01-11T23:59:00Z")), 3);
        assert_eq!(c.size_at(utc("2027-01-12T00:00:00Z")), 3);
        let n = c
            .next_change(utc("2027-01-11T21:00:00Z"))
            .expect("a change");
        assert_eq!(
            n,
            CapacityChange {
                at: utc("2027-01-11T22:00:00Z"),
                shared_slots: 3
            }
        );
        let n = c.next_change(n.at).expect("a change");
        assert_eq!(
            n,
            CapacityChange {
                at: utc("2027-01-12T06:00:00Z"),
                shared_slots: 1
            },
            "midnight is no change"
        );
    }

    #[test]
    fn bad_schedules_are_refused_each_naming_its_window() {
        let e = Calendar::new(Some("Mars/Olympus"), &Schedule::default(), 1).unwrap_err();
        assert_eq!(codes(e), ["unknown_time_zone"]);
        let s = Schedule {
            weekly: vec![
                weekly(&["mon", "funday"], "08:00", "18:00", 4),
                weekly(&["mon"], "8:00", "25:00", 4),
                weekly(&["tue"], "22:00", "06:00", 4),
                weekly(&["wed"], "08:00", "12:00", 4),
                weekly(&["wed", "thu"], "11:00", "13:00", 4),
                weekly(&[], "08:00", "09:00", 4),
            ],
            dated: vec![
                dated("2027-01-15T09:00", "2027-01-15T12:00", 6),
                dated("2027-01-15T11:00", "2027-01-15T13:00", 6),
                dated("2027-01-15 09:00", "2027-02-30T12:00", 6),
                dated("2027-01-16T09:00", "2029-01-16T09:00", 6),
            ],
            shrink_warning_s: Some(1_000_000),
        };
        let e = Calendar::new(None, &s, 1).unwrap_err();
        let text: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            codes(e),
            [
                "shrink_warning_too_long",
                "unknown_day",
                "bad_time",
                "bad_time",
                "from_not_before_to",
                "bad_days",
                "overlapping_windows",
                "bad_date_time",
                "bad_date_time",
                "window_too_long",
                "overlapping_windows",
            ]
        );
        assert!(text[1].contains("schedule.weekly[0].days") && text[1].contains("funday"));
        assert!(text[4].contains("schedule.weekly[2]") && text[4].contains("cross midnight"));
        assert!(
            text[6].contains("schedule.weekly[4]")
                && text[6].contains("schedule.weekly[3]")
                && text[6].contains("wed")
        );
        assert!(text[10].contains("schedule.dated[1]") && text[10].contains("schedule.dated[0]"));
    }

    #[test]
    fn without_windows_the_size_never_changes() {
        let c = Calendar::new(Some("Europe/Berlin"), &Schedule::default(), 7).expect("valid");
        assert_eq!(c.size_at(utc("2027-01-14T12:00:00Z")), 7);
        assert_eq!(c.next_change(utc("2027-01-14T12:00:00Z")), None);
        // A window of the otherwise size changes nothing either.
        let s = Schedule {
            weekly: vec![weekly(&WORKDAYS, "08:00", "18:00", 7)],
            ..Schedule::default()
        };
        let c = Calendar::new(None, &s, 7).expect("valid");
        assert_eq!(c.next_change(utc("2027-01-14T12:00:00Z")), None);
    }

    #[test]
    fn a_dated_window_far_ahead_is_found_behind_weekly_equals() {
        let s = Schedule {
            weekly: vec![weekly(&WORKDAYS, "08:00", "18:00", 7)],
            dated: vec![dated("2030-06-01T10:00", "2030-06-01T11:00", 9)],
            ..Schedule::default()
        };
        let c = Calendar::new(Some("Europe/Berlin"), &s, 7).expect("valid");
        let n = c
            .next_change(utc("2027-01-14T12:00:00Z"))
            .expect("a change");
        assert_eq!(
            n,
            CapacityChange {
                at: utc("2030-06-01T08:00:00Z"),
                shared_slots: 9
            }
        );
    }

    fn zone() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("Europe/Berlin"),
            Just("America/New_York"),
            Just("UTC"),
            Just("Australia/Lord_Howe"),
        ]
    }

    fn schedule() -> impl Strategy<Value = Schedule> {
        // Windows on a 30-minute grid, non-overlapping by construction: each day's windows
        // come from sorted, distinct cut points.
        let day_windows = proptest::collection::btree_set(0u16..=48, 0..5);
        (
            proptest::collection::vec((day_windows, 1u32..6), 1..3),
            proptest::option::of((0i64..20, 1i64..40, 1u32..6)),
        )
            .prop_map(|(groups, dated_w)| {
                let mut weekly_w = Vec::new();
                for (g, (cuts, size)) in groups.into_iter().enumerate() {
                    let cuts: Vec<u16> = cuts.into_iter().collect();
                    for pair in cuts.chunks(2) {
                        if let [a, b] = pair {
                            let t = |x: u16| format!("{:02}:{:02}", x * 30 / 60, x * 30 % 60);
                            // Group g takes the days of its own, so groups never share a day.
                            let days: Vec<&str> = DAY_NAMES
                                .iter()
                                .enumerate()
                                .filter(|(k, _)| k % 2 == g)
                                .map(|(_, d)| *d)
                                .collect();
                            weekly_w.push(weekly(&days, &t(*a), &t(*b), size));
                        }
                    }
                }
                let dated_w = dated_w
                    .map(|(start_h, len_h, size)| {
                        let base = NaiveDate::from_ymd_opt(2027, 3, 20)
                            .and_then(|d| d.and_hms_opt(0, 0, 0))
                            .expect("date");
                        let f = base + chrono::Duration::hours(start_h * 3);
                        let t = f + chrono::Duration::hours(len_h);
                        vec![dated(
                            &f.format("%Y-%m-%dT%H:%M").to_string(),
                            &t.format("%Y-%m-%dT%H:%M").to_string(),
                            size,
                        )]
                    })
                    .unwrap_or_default();
                Schedule {
                    weekly: weekly_w,
                    dated: dated_w,
                    shrink_warning_s: None,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The next change is strictly after the instant, its size is the size then, and
        /// the size is constant from the instant up to it (checked at sampled instants).
        #[test]
        fn size_is_constant_between_consecutive_changes(
            tz in zone(),
            s in schedule(),
            // Across the DST weeks of March and October-November 2027.
            start in prop_oneof![
                Just(utc("2027-03-10T00:00:00Z").as_millis()),
                Just(utc("2027-10-24T00:00:00Z").as_millis()),
            ],
            offset_min in 0i64..(20 * 24 * 60),
            samples in proptest::collection::vec(0u32..1000, 8),
        ) {
            let c = Calendar::new(Some(tz), &s, 0).expect("generated schedules are valid");
            let mut t = Timestamp::from_millis(start + offset_min * 60_000);
            for _ in 0..6 {
                let Some(n) = c.next_change(t) else { break };
                prop_assert!(n.at > t);
                prop_assert_eq!(c.size_at(n.at), n.shared_slots);
                let base = c.size_at(t);
                prop_assert_ne!(base, n.shared_slots);
                let span = n.at.as_millis() - t.as_millis();
                for k in &samples {
                    let x = t.as_millis() + span * i64::from(*k) / 1000;
                    prop_assert_eq!(c.size_at(Timestamp::from_millis(x)), base);
                }
                prop_assert_eq!(c.size_at(Timestamp::from_millis(n.at.as_millis() - 1)), base);
                t = n.at;
            }
        }
    }
}
