//! Change windows: `"Mon-Fri 09:00-16:00 Europe/Berlin"`, parsed and evaluated at an instant.
//!
//! Owns the text form of a window (days, a time range, a time zone), checking it (an unknown
//! day or zone, a time that is not `HH:MM`), and whether an instant falls inside it in its zone
//! (daylight saving time included, through the system's time zone database via jiff). It must
//! not read the clock itself or know about playbooks.

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One allowed window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// As written, for messages.
    pub text: String,
    /// Monday first: the days the window opens on.
    days: [bool; 7],
    /// Opening time, minutes after midnight.
    start: u32,
    /// Closing time, minutes after midnight (`24:00` is 1440); at or before `start`, the
    /// window closes the next day.
    end: u32,
    /// IANA zone name; `None`: the controller's own zone.
    zone: Option<String>,
}

impl Window {
    /// Parses `[DAYS] HH:MM-HH:MM [ZONE]`: days as `Mon-Fri`, `Sat,Sun`, `Fri-Mon` (every day
    /// when absent), a range that may pass midnight (`22:00-02:00`), and an IANA zone name or
    /// `UTC` (the controller's own zone when absent).
    pub fn parse(text: &str) -> Result<Window, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let range_at = words
            .iter()
            .position(|w| w.contains(':'))
            .ok_or_else(|| "expected a time range like 09:00-16:00".to_string())?;
        let days = match range_at {
            0 => [true; 7],
            1 => days(words[0])?,
            _ => return Err(format!("unexpected '{}' before the time range", words[1])),
        };
        let (start, end) = words[range_at].split_once('-').ok_or_else(|| {
            format!(
                "expected a time range like 09:00-16:00, found '{}'",
                words[range_at]
            )
        })?;
        let (start, end) = (minutes(start)?, minutes(end)?);
        if start >= 1440 {
            return Err(format!(
                "the window cannot open at 24:00 ('{}')",
                words[range_at]
            ));
        }
        let zone = match &words[range_at + 1..] {
            [] => None,
            [z] => {
                TimeZone::get(z).map_err(|_| {
                    format!(
                        "unknown time zone '{z}': expected an IANA name like Europe/Berlin or UTC"
                    )
                })?;
                Some(z.to_string())
            }
            [_, extra, ..] => return Err(format!("unexpected '{extra}' after the time zone")),
        };
        Ok(Window {
            text: text.trim().to_string(),
            days,
            start,
            end,
            zone,
        })
    }

    /// Whether `at` falls inside the window, in the window's zone.
    pub fn open_at(&self, at: Timestamp) -> bool {
        let tz = match &self.zone {
            Some(z) => TimeZone::get(z).unwrap_or(TimeZone::UTC),
            None => TimeZone::system(),
        };
        let local = at.to_zoned(tz);
        let day = index(local.weekday());
        let minute =
            u32::from(local.hour().unsigned_abs()) * 60 + u32::from(local.minute().unsigned_abs());
        if self.start < self.end {
            self.days[day] && (self.start..self.end).contains(&minute)
        } else {
            // Past midnight: the evening of an allowed day, or the early morning after one.
            let yesterday = (day + 6) % 7;
            (self.days[day] && minute >= self.start) || (self.days[yesterday] && minute < self.end)
        }
    }
}

fn index(d: Weekday) -> usize {
    usize::try_from(d.to_monday_zero_offset()).unwrap_or(0)
}

fn day(name: &str) -> Result<usize, String> {
    let lower = name.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| lower.len() >= 3 && d.starts_with(&lower[..3]) && is_day_name(&lower))
        .ok_or_else(|| {
            format!("unknown day '{name}': expected Mon, Tue, Wed, Thu, Fri, Sat or Sun")
        })
}

/// `mon`, `monday`, `tues`...: a prefix of a full day name, at least three letters.
fn is_day_name(lower: &str) -> bool {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    FULL.iter().any(|f| f.starts_with(lower))
}

/// `Mon-Fri`, `Sat,Sun`, `Mon-Wed,Fri`, `Fri-Mon`.
fn days(text: &str) -> Result<[bool; 7], String> {
    let mut out = [false; 7];
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut d = a;
                loop {
                    out[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => out[day(part)?] = true,
        }
    }
    Ok(out)
}

/// `HH:MM` → minutes after midnight; `24:00` is allowed (as an end).
fn minutes(text: &str) -> Result<u32, String> {
    let bad = || format!("invalid time '{text}': expected HH:MM, e.g. 09:00");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) || text.len() > 5 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn weekdays_in_berlin_follow_its_clock_and_summer_time() {
        let w = Window::parse("Mon-Fri 09:00-16:00 Europe/Berlin").expect("parse");
        // Monday 2026-12-07: Berlin is UTC+1 in winter.
        assert!(!w.open_at(at("2026-12-07T07:59:00Z")));
        assert!(w.open_at(at("2026-12-07T08:00:00Z")));
        assert!(w.open_at(at("2026-12-07T14:59:00Z")));
        assert!(!w.open_at(at("2026-12-07T15:00:00Z")));
        // In July it is UTC+2: 07:30 UTC is 09:30 there.
        assert!(w.open_at(at("2026-07-06T07:30:00Z")));
        // Saturday.
        assert!(!w.open_at(at("2026-12-12T10:00:00Z")));
    }

    #[test]
    fn a_window_past_midnight_belongs_to_the_day_it_opens() {
        let w = Window::parse("Fri 22:00-02:00 UTC").expect("parse");
        assert!(w.open_at(at("2026-12-11T23:00:00Z"))); // Friday night
        assert!(w.open_at(at("2026-12-12T01:59:00Z"))); // Saturday early morning
        assert!(!w.open_at(at("2026-12-12T02:00:00Z")));
        assert!(!w.open_at(at("2026-12-10T23:00:00Z"))); // Thursday night
        let every = Window::parse("00:00-24:00 UTC").expect("parse");
        assert!(every.open_at(at("2026-12-12T23:59:00Z")));
    }

    #[test]
    fn day_lists_and_wrapping_ranges() {
        let w = Window::parse("Fri-Mon,Wed 10:00-11:00 UTC").expect("parse");
        let open: Vec<bool> = (7..14)
            .map(|d| w.open_at(at(&format!("2026-12-{d:02}T10:30:00Z"))))
            .collect();
        // Mon 7, Tue 8, Wed 9, Thu 10, Fri 11, Sat 12, Sun 13.
        assert_eq!(open, [true, false, true, false, true, true, true]);
    }

    #[test]
    fn mistakes_say_what_was_expected() {
        for (text, msg) in [
            ("Mon-Fri", "expected a time range like 09:00-16:00"),
            ("Mon-Fry 09:00-10:00", "unknown day 'Fry'"),
            ("09:00-25:00", "invalid time '25:00'"),
            ("9-17 UTC", "expected a time range like 09:00-16:00"),
            (
                "09:00-17:00 Europe/Berln",
                "unknown time zone 'Europe/Berln'",
            ),
            (
                "09:00 UTC",
                "expected a time range like 09:00-16:00, found '09:00'",
            ),
        ] {
            let e = Window::parse(text).expect_err(text);
            assert!(e.contains(msg), "{text}: {e}");
        }
    }
}
