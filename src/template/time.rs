//! Dates in templates, as Ansible has them: the `now(utc=false, fmt=None)` function, the
//! `strftime` filter (`'%Y-%m-%d' | strftime(second=EPOCH, utc=false)`) and `to_datetime`
//! (`'2026-12-05 10:00:00' | to_datetime(FORMAT)`).
//!
//! Owns the [`DateTime`] value those give: it prints as Python's `str(datetime)`
//! (`2026-12-05 16:40:00.123456`), has Python's attributes (`year` ... `microsecond`) and the
//! methods playbooks call (`strftime`, `isoformat`, `timestamp`, `date`, `time`). Formats are
//! Python's `strftime` specifiers (`%f` is microseconds); one chrono does not know is an error,
//! never a panic. The controller's local time zone is used unless `utc` is asked for, as in
//! Ansible. It must not touch files, hosts or the network.

use std::fmt;
use std::sync::Arc;

use chrono::format::{Item, StrftimeItems};
use chrono::{Datelike, Local, NaiveDateTime, TimeZone, Timelike, Utc};
use minijinja::value::{Kwargs, Object, ObjectRepr};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::filters::add_filter;

/// Adds `now`, `strftime` and `to_datetime` to `env`.
pub fn register(env: &mut Environment<'static>) {
    env.add_function("now", now);
    add_filter(env, "strftime", strftime);
    add_filter(env, "to_datetime", to_datetime);
}

/// A date and time without a zone, as Python's naive `datetime`.
#[derive(Debug, Clone, Copy)]
pub struct DateTime(NaiveDateTime);

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Python's str(): microseconds only when there are some.
        if self.0.and_utc().timestamp_subsec_micros() == 0 {
            write!(f, "{}", self.0.format("%Y-%m-%d %H:%M:%S"))
        } else {
            write!(f, "{}", self.0.format("%Y-%m-%d %H:%M:%S%.6f"))
        }
    }
}

impl Object for DateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let d = &self.0;
        let v: i64 = match key.as_str()? {
            "year" => d.year().into(),
            "month" => d.month().into(),
            "day" => d.day().into(),
            "hour" => d.hour().into(),
            "minute" => d.minute().into(),
            "second" => d.second().into(),
            "microsecond" => d.and_utc().timestamp_subsec_micros().into(),
            _ => return None,
        };
        Some(Value::from(v))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let d = &self.0;
        match method {
            "strftime" => {
                let fmt = args.first().and_then(Value::as_str).ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, "strftime() needs a format")
                })?;
                Ok(Value::from(format(d, fmt)?))
            }
            "isoformat" => Ok(Value::from(if d.and_utc().timestamp_subsec_micros() == 0 {
                d.format("%Y-%m-%dT%H:%M:%S").to_string()
            } else {
                d.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
            })),
            // Python reads a naive datetime as local time.
            "timestamp" => {
                let t = Local
                    .from_local_datetime(d)
                    .earliest()
                    .map_or_else(|| d.and_utc().timestamp_micros(), |t| t.timestamp_micros());
                Ok(Value::from(t as f64 / 1e6))
            }
            "date" => Ok(Value::from(d.format("%Y-%m-%d").to_string())),
            "time" => Ok(Value::from(d.format("%H:%M:%S").to_string())),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("datetime has no method '{method}'"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// Python's `strftime` format `fmt` of `d`. `%f` is Python's six-digit microseconds.
fn format(d: &NaiveDateTime, fmt: &str) -> Result<String, Error> {
    let mut translated = String::with_capacity(fmt.len());
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            translated.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => translated.push_str("%6f"),
            Some(o) => {
                translated.push('%');
                translated.push(o);
            }
            None => translated.push('%'),
        }
    }
    let items: Vec<Item<'_>> = StrftimeItems::new(&translated).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("'{fmt}' is not a strftime format rdeploy can read"),
        ));
    }
    // `%.6f` and friends need a fractional second: the naive value has one.
    Ok(d.format_with_items(items.into_iter()).to_string())
}

/// `now(utc=false, fmt=None)`: the controller's current time, formatted when `fmt` is given.
fn now(kwargs: Kwargs) -> Result<Value, Error> {
    let utc: Option<bool> = kwargs.get("utc")?;
    let fmt: Option<String> = kwargs.get("fmt")?;
    kwargs.assert_all_used()?;
    let d = if utc.unwrap_or(false) {
        Utc::now().naive_utc()
    } else {
        Local::now().naive_local()
    };
    match fmt.filter(|f| !f.is_empty()) {
        Some(f) => Ok(Value::from(format(&d, &f)?)),
        None => Ok(Value::from_object(DateTime(d))),
    }
}

/// `'%Y-%m-%d' | strftime(second=None, utc=false)`: as Python's `time.strftime` of `second`
/// (the epoch seconds; now when omitted).
fn strftime(fmt: String, second: Option<Value>, kwargs: Kwargs) -> Result<String, Error> {
    let second = match kwargs.get::<Option<Value>>("second")? {
        Some(s) => Some(s),
        None => second,
    };
    let utc: Option<bool> = kwargs.get("utc")?;
    kwargs.assert_all_used()?;
    let micros = match second.filter(|s| !s.is_none()) {
        None => Utc::now().timestamp_micros(),
        Some(s) => {
            let secs = s
                .as_str()
                .map(|t| t.trim().parse::<f64>().ok())
                .unwrap_or_else(|| f64::try_from(s.clone()).ok())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("Invalid value for epoch value ({s})"),
                    )
                })?;
            (secs * 1e6) as i64
        }
    };
    let at = Utc.timestamp_micros(micros).single().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("epoch value out of range ({micros} µs)"),
        )
    })?;
    let d = if utc.unwrap_or(false) {
        at.naive_utc()
    } else {
        at.with_timezone(&Local).naive_local()
    };
    format(&d, &fmt)
}

/// `'2026-12-05 10:00:00' | to_datetime(format='%Y-%m-%d %H:%M:%S')`: Python's `strptime`.
fn to_datetime(text: String, fmt: Option<String>) -> Result<Value, Error> {
    let fmt = fmt.unwrap_or_else(|| "%Y-%m-%d %H:%M:%S".to_string());
    let parsed = NaiveDateTime::parse_from_str(&text, &fmt.replace("%f", "%6f"))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(&text, &fmt).map(|d| d.and_time(Default::default()))
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("time data '{text}' does not match format '{fmt}' ({e})"),
            )
        })?;
    Ok(Value::from_object(DateTime(parsed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment<'static> {
        let mut e = Environment::new();
        register(&mut e);
        e
    }

    fn render(src: &str) -> Result<String, Error> {
        env().render_str(src, ())
    }

    #[test]
    fn strftime_formats_an_epoch_in_utc_like_python() {
        assert_eq!(
            render("{{ '%Y-%m-%d %H:%M:%S' | strftime(1733400000, utc=true) }}").unwrap(),
            "2024-12-05 12:00:00"
        );
        assert_eq!(
            render("{{ '%s.%f' | strftime(second='1.5', utc=true) }}").unwrap(),
            "1.500000"
        );
        assert!(render("{{ '%Q' | strftime(0) }}").is_err());
        assert!(render("{{ '%Y' | strftime('soon') }}").is_err());
    }

    #[test]
    fn to_datetime_reads_and_prints_like_python_datetime() {
        let out = render(
            "{% set d = '2026-12-05 10:20:30' | to_datetime %}{{ d }} {{ d.year }} {{ d.minute }} {{ d.strftime('%d/%m') }} {{ d.isoformat() }}",
        )
        .unwrap();
        assert_eq!(out, "2026-12-05 10:20:30 2026 20 05/12 2026-12-05T10:20:30");
        assert!(render("{{ 'yesterday' | to_datetime }}").is_err());
    }

    #[test]
    fn now_gives_a_datetime_or_a_formatted_string() {
        let year = render("{{ now(utc=true).year }}").unwrap();
        assert!(year.parse::<i32>().unwrap() >= 2024, "{year}");
        let s = render("{{ now(fmt='%Y') }}").unwrap();
        assert_eq!(s.len(), 4, "{s}");
        let printed = render("{{ now() }}").unwrap();
        assert!(NaiveDateTime::parse_from_str(&printed[..19], "%Y-%m-%d %H:%M:%S").is_ok());
    }
}
