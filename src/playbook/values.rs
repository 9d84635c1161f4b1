//! Keyword values: turning one raw YAML node into a typed value or a positioned error.
//!
//! Owns booleans (Ansible's spellings), integers, durations (`500ms`, `2s`, `5m`, `1h`),
//! `serial` forms, percentages, tags, name lists, conditions, variable mappings and choice
//! keywords. Every function reports into the caller's error list and returns `None` on a bad
//! value so that checking continues. It must not know where a keyword is allowed.

use std::time::Duration;

use super::keywords::is_identifier;
use super::model::{
    Approval, Canary, MaxFailed, MaxUnavailable, Named, Serial, SerialStep, StepGates, Val, Windows,
};
use crate::diag::{Diagnostic, did_you_mean};
use crate::modules::spec::{ansible_bool, is_template, shown};
use crate::yaml::{Kind, Node};

/// The error list every parser appends to.
pub type Errors = Vec<Diagnostic>;

fn push(errors: &mut Errors, n: &Node, msg: String) {
    errors.push(Diagnostic::at(&n.loc, msg));
}

/// A boolean keyword: YAML booleans, Ansible's strings (`yes`, `False`, `1`...), or a template.
pub fn boolean(errors: &mut Errors, key: &str, n: &Node) -> Option<Val<bool>> {
    if is_template(n) {
        return Some(Val::Template(n.clone()));
    }
    match ansible_bool(n) {
        Some(value) => Some(Val::Lit {
            value,
            loc: n.loc.clone(),
        }),
        None => {
            push(
                errors,
                n,
                format!("'{key}' must be a boolean, found {}", shown(n)),
            );
            None
        }
    }
}

/// An integer keyword (a number, a string of digits, or a template).
pub fn integer(errors: &mut Errors, key: &str, n: &Node, min: i64) -> Option<Val<i64>> {
    if is_template(n) {
        return Some(Val::Template(n.clone()));
    }
    let v = match &n.kind {
        Kind::Int(i) => Some(*i),
        Kind::Str { value, .. } => value.trim().parse::<i64>().ok(),
        _ => None,
    };
    match v {
        Some(value) if value >= min => Some(Val::Lit {
            value,
            loc: n.loc.clone(),
        }),
        Some(value) => {
            push(
                errors,
                n,
                format!("'{key}' must be at least {min}, found {value}"),
            );
            None
        }
        None => {
            push(
                errors,
                n,
                format!("'{key}' must be an integer, found {}", shown(n)),
            );
            None
        }
    }
}

/// A literal non-negative integer (no template).
pub fn count(errors: &mut Errors, key: &str, n: &Node) -> Option<u32> {
    match &n.kind {
        Kind::Int(i) if *i >= 0 => Some(u32::try_from(*i).unwrap_or(u32::MAX)),
        _ => {
            push(
                errors,
                n,
                format!("'{key}' must be a non-negative integer, found {}", shown(n)),
            );
            None
        }
    }
}

/// A literal number (integer or float).
pub fn number(errors: &mut Errors, key: &str, n: &Node) -> Option<f64> {
    match &n.kind {
        Kind::Int(i) => Some(*i as f64),
        Kind::Float(f) if f.is_finite() => Some(*f),
        _ => {
            push(
                errors,
                n,
                format!("'{key}' must be a number, found {}", shown(n)),
            );
            None
        }
    }
}

/// A text value that may be a template: any scalar except null.
pub fn text(errors: &mut Errors, key: &str, n: &Node) -> Option<Node> {
    match &n.kind {
        Kind::Str { .. } | Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => Some(n.clone()),
        _ => {
            push(
                errors,
                n,
                format!("'{key}' must be a string, found {}", shown(n)),
            );
            None
        }
    }
}

/// A duration: a number of seconds, or text `N` / `Nms` / `Ns` / `Nm` / `Nh` (N may have a
/// fraction). Templates are refused: rollout timing must be known before the run.
pub fn duration(errors: &mut Errors, key: &str, n: &Node) -> Option<Duration> {
    let bad = |errors: &mut Errors, what: String| {
        push(
            errors,
            n,
            format!(
                "invalid duration {what} for '{key}': expected a number and a unit (ms, s, m, h), e.g. 500ms or 30s"
            ),
        );
        None
    };
    match &n.kind {
        Kind::Int(i) if *i >= 0 => Some(Duration::from_secs(u64::try_from(*i).unwrap_or(0))),
        Kind::Float(f) if f.is_finite() && *f >= 0.0 => Duration::try_from_secs_f64(*f).ok(),
        Kind::Str { value, .. } => {
            parse_duration(value).or_else(|| bad(errors, format!("'{}'", value.trim())))
        }
        _ => bad(errors, shown(n)),
    }
}

/// `N`, `Nms`, `Ns`, `Nm` or `Nh` (N may have a fraction); `None` when it is not one.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let factor = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    match num.parse::<f64>() {
        Ok(x) if x.is_finite() => Duration::try_from_secs_f64(x * factor).ok(),
        _ => None,
    }
}

/// One of `choices`, as its index.
pub fn choice(errors: &mut Errors, key: &str, n: &Node, choices: &[&str]) -> Option<usize> {
    let s = match &n.kind {
        Kind::Str { value, .. } => value.as_str(),
        _ => {
            push(
                errors,
                n,
                format!(
                    "'{key}' must be one of: {}, found {}",
                    choices.join(", "),
                    shown(n)
                ),
            );
            return None;
        }
    };
    if let Some(i) = choices.iter().position(|c| *c == s) {
        return Some(i);
    }
    let mut msg = format!(
        "invalid {key} '{s}', expected one of: {}",
        choices.join(", ")
    );
    if let Some(d) = did_you_mean(s, choices.iter().copied()) {
        msg = format!("invalid {key} '{s}', did you mean '{d}'?");
    }
    push(errors, n, msg);
    None
}

/// `serial`: an integer, `"N%"`, or a non-empty list of those.
pub fn serial(errors: &mut Errors, n: &Node) -> Option<Serial> {
    let items: Vec<&Node> = match &n.kind {
        Kind::Seq(items) if items.is_empty() => {
            push(errors, n, "'serial' must not be an empty list".into());
            return None;
        }
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![n],
    };
    let mut steps = Vec::new();
    let before = errors.len();
    for it in items {
        if let Some(s) = serial_step(errors, it) {
            steps.push(s);
        }
    }
    (errors.len() == before).then(|| Serial {
        steps,
        loc: n.loc.clone(),
    })
}

fn serial_step(errors: &mut Errors, n: &Node) -> Option<SerialStep> {
    let expected = "expected a number of hosts or a percentage like \"25%\"";
    match &n.kind {
        Kind::Int(i) if *i >= 0 => Some(SerialStep::Count(u64::try_from(*i).unwrap_or(0))),
        Kind::Int(i) => {
            push(
                errors,
                n,
                format!("invalid serial value {i}: must not be negative"),
            );
            None
        }
        Kind::Str { value, .. } => {
            let s = value.trim();
            if let Some(p) = s.strip_suffix('%') {
                match p.trim().parse::<f64>() {
                    Ok(x) if (0.0..=100.0).contains(&x) => Some(SerialStep::Percent(x)),
                    Ok(_) => {
                        push(
                            errors,
                            n,
                            format!(
                                "invalid serial value '{s}': a percentage must be between 0% and 100%"
                            ),
                        );
                        None
                    }
                    Err(_) => {
                        push(errors, n, format!("invalid serial value '{s}': {expected}"));
                        None
                    }
                }
            } else if let Ok(i) = s.parse::<i64>() {
                if i < 0 {
                    push(
                        errors,
                        n,
                        format!("invalid serial value {i}: must not be negative"),
                    );
                    return None;
                }
                Some(SerialStep::Count(u64::try_from(i).unwrap_or(0)))
            } else {
                push(errors, n, format!("invalid serial value '{s}': {expected}"));
                None
            }
        }
        _ => {
            push(
                errors,
                n,
                format!("invalid serial value {}: {expected}", shown(n)),
            );
            None
        }
    }
}

/// `canary`: a non-empty list of cumulative steps, each a number of hosts (at least 1) or a
/// percentage above 0% and at most 100%; none below an earlier step of its kind.
pub fn canary(errors: &mut Errors, n: &Node) -> Option<Canary> {
    let expected = "expected a number of hosts or a percentage like \"25%\", above 0";
    let items = match &n.kind {
        Kind::Seq(items) if items.is_empty() => {
            push(
                errors,
                n,
                "'canary' must not be an empty list: expected steps like [\"5%\", \"25%\", \"100%\"]"
                    .into(),
            );
            return None;
        }
        Kind::Seq(items) => items,
        _ => {
            push(
                errors,
                n,
                format!(
                    "'canary' must be a list of steps like [\"5%\", \"25%\", \"100%\"], found {}",
                    shown(n)
                ),
            );
            return None;
        }
    };
    let before = errors.len();
    let mut steps = Vec::new();
    let mut gates = Vec::new();
    let (mut count, mut pct) = (None::<u64>, None::<f64>);
    for (i, item) in items.iter().enumerate() {
        let (it, step_gates) = match item.as_map() {
            Some(_) => match canary_step(errors, item, i + 1 == items.len()) {
                Some(parsed) => parsed,
                None => continue,
            },
            None => (item, StepGates::default()),
        };
        gates.push(step_gates);
        let (text, step) = share(it);
        let shown_it = text.clone().unwrap_or_else(|| shown(it));
        match step {
            None => push(
                errors,
                it,
                format!("invalid canary step '{shown_it}': {expected}"),
            ),
            Some(SerialStep::Count(0)) => push(
                errors,
                it,
                format!("invalid canary step '{shown_it}': {expected}"),
            ),
            Some(SerialStep::Percent(p)) if !(p > 0.0 && p <= 100.0) => push(
                errors,
                it,
                format!(
                    "invalid canary step '{shown_it}': expected a percentage above 0% and at most 100%, or a number of hosts"
                ),
            ),
            Some(SerialStep::Count(c)) if count.is_some_and(|prev| c < prev) => push(
                errors,
                it,
                format!(
                    "invalid canary step '{shown_it}': steps are cumulative and must not decrease, expected at least {}",
                    count.unwrap_or(0)
                ),
            ),
            Some(SerialStep::Percent(p)) if pct.is_some_and(|prev| p < prev) => push(
                errors,
                it,
                format!(
                    "invalid canary step '{shown_it}': steps are cumulative and must not decrease, expected at least {}%",
                    pct.unwrap_or(0.0)
                ),
            ),
            Some(s) => {
                match s {
                    SerialStep::Count(c) => count = Some(c),
                    SerialStep::Percent(p) => pct = Some(p),
                }
                steps.push(s);
            }
        }
    }
    (errors.len() == before).then(|| Canary {
        steps,
        gates,
        loc: n.loc.clone(),
    })
}

/// A number of hosts or a percentage (`3`, `"25%"`) as written, and what it says (a negative
/// count reads as 0, refused as zero is); `None` when it is neither.
fn share(n: &Node) -> (Option<String>, Option<SerialStep>) {
    let text = match &n.kind {
        Kind::Int(i) => Some(i.to_string()),
        Kind::Str { value, .. } => Some(value.trim().to_string()),
        _ => None,
    };
    let step = text.as_deref().and_then(|s| match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok().map(SerialStep::Percent),
        None => s
            .parse::<i64>()
            .ok()
            .map(|i| SerialStep::Count(u64::try_from(i).unwrap_or(0))),
    });
    (text, step)
}

const STEP_KEYS: &[&str] = &["step", "pause", "analysis", "approve"];

/// A canary step written as a mapping: `{step: "25%", pause: 5m, analysis: {...}, approve:
/// "go on?"}`; the step's node and its gates.
fn canary_step<'n>(errors: &mut Errors, n: &'n Node, last: bool) -> Option<(&'n Node, StepGates)> {
    let before = errors.len();
    for (k, _) in n.as_map().unwrap_or_default() {
        let key = k.scalar_string().unwrap_or_default();
        if !STEP_KEYS.contains(&key.as_str()) {
            let msg = match did_you_mean(&key, STEP_KEYS.iter().copied()) {
                Some(s) => format!("unknown canary step key '{key}', did you mean '{s}'?"),
                None => format!(
                    "unknown canary step key '{key}': expected step, pause, analysis, approve"
                ),
            };
            push(errors, k, msg);
        }
    }
    let Some(step) = n.get("step") else {
        push(
            errors,
            n,
            "a canary step written as a mapping needs 'step' (a number of hosts or a percentage like \"25%\")".into(),
        );
        return None;
    };
    let gates = StepGates {
        pause: n.get("pause").and_then(|p| duration(errors, "pause", p)),
        analysis: n
            .get("analysis")
            .and_then(|a| super::probe::analysis(errors, a)),
        approve: n.get("approve").and_then(|a| step_approval(errors, a)),
    };
    let at_all = matches!(&step.kind, Kind::Str { value, .. } if value.trim() == "100%");
    if let (Some(a), true) = (n.get("approve"), last && at_all) {
        push(
            errors,
            a,
            "'approve' on the last canary step (100%) has no next step to hold: put it on an earlier step".into(),
        );
    }
    (errors.len() == before).then_some((step, gates))
}

/// A canary step's `approve:`: its message, or `{message, timeout}`.
fn step_approval(errors: &mut Errors, n: &Node) -> Option<Approval> {
    let mut g = Approval {
        before_batch: 0,
        message: "Approve the next canary step?".into(),
        timeout: None,
    };
    match &n.kind {
        Kind::Str { value, .. } => g.message = value.clone(),
        Kind::Bool(true) => {}
        Kind::Map(entries) => {
            for (k, v) in entries {
                match k.scalar_string().unwrap_or_default().as_str() {
                    "message" => match v.scalar_string() {
                        Some(m) => g.message = m,
                        None => push(errors, v, "'message' must be text".into()),
                    },
                    "timeout" => g.timeout = duration(errors, "timeout", v),
                    other => push(
                        errors,
                        k,
                        format!("unknown 'approve' key '{other}': expected message, timeout"),
                    ),
                }
            }
        }
        _ => {
            push(
                errors,
                n,
                format!(
                    "'approve' must be a message or a mapping (message, timeout), found {}",
                    shown(n)
                ),
            );
            return None;
        }
    }
    Some(g)
}

/// `max_fail_percentage`: a number `0..=100`, or text `"N"`/`"N%"`.
pub fn percentage(errors: &mut Errors, key: &str, n: &Node) -> Option<f64> {
    let v = match &n.kind {
        Kind::Int(i) => Some(*i as f64),
        Kind::Float(f) => Some(*f),
        Kind::Str { value, .. } => value
            .trim()
            .trim_end_matches('%')
            .trim()
            .parse::<f64>()
            .ok(),
        _ => None,
    };
    match v {
        Some(x) if (0.0..=100.0).contains(&x) => Some(x),
        _ => {
            push(
                errors,
                n,
                format!(
                    "'{key}' must be a percentage between 0 and 100, found {}",
                    shown(n)
                ),
            );
            None
        }
    }
}

/// Tags: a string (comma-separated, as Ansible splits it), a number, or a list of those.
pub fn tags(errors: &mut Errors, n: &Node) -> Vec<Named> {
    let mut out = Vec::new();
    let items: Vec<&Node> = match &n.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Null => Vec::new(),
        _ => vec![n],
    };
    for it in items {
        match &it.kind {
            Kind::Str { value, .. } => {
                for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    out.push(Named {
                        name: part.to_string(),
                        loc: it.loc.clone(),
                    });
                }
            }
            Kind::Int(_) | Kind::Float(_) => out.push(Named {
                name: it.scalar_string().unwrap_or_default(),
                loc: it.loc.clone(),
            }),
            _ => push(
                errors,
                it,
                format!(
                    "'tags' must be a string or a list of strings, found {}",
                    it.type_name()
                ),
            ),
        }
    }
    out
}

/// A name or a list of names (`notify`, `listen`).
pub fn names(errors: &mut Errors, key: &str, n: &Node) -> Vec<Named> {
    let items: Vec<&Node> = match &n.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![n],
    };
    let mut out = Vec::new();
    for it in items {
        match it.as_str() {
            Some(s) if !s.trim().is_empty() => out.push(Named {
                name: s.to_string(),
                loc: it.loc.clone(),
            }),
            _ => push(
                errors,
                it,
                format!(
                    "'{key}' must be a name or a list of names, found {}",
                    shown(it)
                ),
            ),
        }
    }
    out
}

/// A variable name (`register`, `loop_var`, `index_var`).
pub fn var_name(errors: &mut Errors, key: &str, n: &Node) -> Option<Named> {
    match n.as_str() {
        Some(s) if is_identifier(s) => Some(Named {
            name: s.to_string(),
            loc: n.loc.clone(),
        }),
        _ => {
            push(
                errors,
                n,
                format!("'{key}' must be a variable name, found {}", shown(n)),
            );
            None
        }
    }
}

/// Conditions: one expression (string, boolean) or a list of them.
pub fn conditions(errors: &mut Errors, key: &str, n: &Node) -> Vec<Node> {
    let items: Vec<&Node> = match &n.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Null => Vec::new(),
        _ => vec![n],
    };
    let mut out = Vec::new();
    for it in items {
        match &it.kind {
            Kind::Str { .. } | Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) => {
                out.push(it.clone())
            }
            _ => push(
                errors,
                it,
                format!(
                    "'{key}' must be a condition or a list of conditions, found {}",
                    it.type_name()
                ),
            ),
        }
    }
    out
}

/// A variables mapping (`vars`, role defaults): identifier keys, any values.
pub fn vars(errors: &mut Errors, key: &str, n: &Node) -> Vec<(String, Node)> {
    match &n.kind {
        Kind::Null => Vec::new(),
        Kind::Map(entries) => {
            let mut out = Vec::new();
            for (k, v) in entries {
                match k.as_str() {
                    Some(s) if is_identifier(s) => out.push((s.to_string(), v.clone())),
                    _ => push(
                        errors,
                        k,
                        format!(
                            "{} is not a valid variable name",
                            k.scalar_string()
                                .map_or_else(|| k.type_name().to_string(), |s| format!("'{s}'"))
                        ),
                    ),
                }
            }
            out
        }
        _ => {
            push(
                errors,
                n,
                format!("'{key}' must be a mapping, found {}", n.type_name()),
            );
            Vec::new()
        }
    }
}

/// `environment`: a mapping, a template, or a list of those.
pub fn environment(errors: &mut Errors, n: &Node) -> Option<Node> {
    let ok = |x: &Node| matches!(x.kind, Kind::Map(_)) || is_template(x);
    let good = match &n.kind {
        Kind::Seq(items) => items.iter().all(ok),
        _ => ok(n),
    };
    if good {
        Some(n.clone())
    } else {
        push(
            errors,
            n,
            format!(
                "'environment' must be a mapping or a template, found {}",
                shown(n)
            ),
        );
        None
    }
}

/// `windows: {allow: ["Mon-Fri 09:00-16:00 Europe/Berlin"], deny_files: [/etc/rdeploy/freeze]}`.
pub fn windows(errors: &mut Errors, n: &Node, dir: &std::path::Path) -> Option<Windows> {
    let Some(entries) = n.as_map() else {
        push(
            errors,
            n,
            format!(
                "'windows' must be a mapping (allow, deny_files), found {}",
                shown(n)
            ),
        );
        return None;
    };
    let before = errors.len();
    let mut w = Windows {
        loc: n.loc.clone(),
        allow: Vec::new(),
        deny_files: Vec::new(),
    };
    let list = |errors: &mut Errors, key: &str, v: &Node| -> Vec<(String, Node)> {
        let items: Vec<&Node> = match &v.kind {
            Kind::Seq(items) => items.iter().collect(),
            Kind::Str { .. } => vec![v],
            _ => {
                push(
                    errors,
                    v,
                    format!("'{key}' must be a list of text, found {}", shown(v)),
                );
                return Vec::new();
            }
        };
        items
            .into_iter()
            .filter_map(|it| match it.as_str() {
                Some(t) => Some((t.to_string(), it.clone())),
                None => {
                    push(
                        errors,
                        it,
                        format!("'{key}' entries must be text, found {}", shown(it)),
                    );
                    None
                }
            })
            .collect()
    };
    for (k, v) in entries {
        match k.scalar_string().unwrap_or_default().as_str() {
            "allow" => {
                for (text, node) in list(errors, "allow", v) {
                    match crate::window::Window::parse(&text) {
                        Ok(win) => w.allow.push(win),
                        Err(e) => push(errors, &node, format!("invalid window '{text}': {e}")),
                    }
                }
            }
            "deny_files" => {
                // Absolute, so that messages name the file whatever the working folder.
                let base = match dir.is_absolute() {
                    true => dir.to_path_buf(),
                    false => std::env::current_dir().unwrap_or_default().join(dir),
                };
                w.deny_files = list(errors, "deny_files", v)
                    .into_iter()
                    .map(|(t, _)| base.join(t))
                    .collect();
            }
            other => {
                let msg = match did_you_mean(other, ["allow", "deny_files"]) {
                    Some(s) => format!("unknown 'windows' key '{other}', did you mean '{s}'?"),
                    None => format!("unknown 'windows' key '{other}': expected allow, deny_files"),
                };
                push(errors, k, msg);
            }
        }
    }
    (errors.len() == before).then_some(w)
}

/// `max_failed: {per_batch: 20%, total: 5}`.
pub fn max_failed(errors: &mut Errors, n: &Node) -> Option<MaxFailed> {
    let Some(entries) = n.as_map() else {
        push(
            errors,
            n,
            format!(
                "'max_failed' must be a mapping (per_batch, total), found {}",
                shown(n)
            ),
        );
        return None;
    };
    let before = errors.len();
    let mut m = MaxFailed::default();
    for (k, v) in entries {
        match k.scalar_string().unwrap_or_default().as_str() {
            "per_batch" => m.per_batch = percentage(errors, "per_batch", v),
            "total" => m.total = count(errors, "total", v),
            other => {
                let msg = match did_you_mean(other, ["per_batch", "total"]) {
                    Some(s) => format!("unknown 'max_failed' key '{other}', did you mean '{s}'?"),
                    None => {
                        format!("unknown 'max_failed' key '{other}': expected per_batch, total")
                    }
                };
                push(errors, k, msg);
            }
        }
    }
    (errors.len() == before).then_some(m)
}

/// `max_unavailable: 25%` (the fleet only) or `{fleet: 25%, per: {rack: 1, lb_pool: 1}}`.
pub fn max_unavailable(errors: &mut Errors, n: &Node) -> Option<MaxUnavailable> {
    let before = errors.len();
    let mut m = MaxUnavailable {
        loc: n.loc.clone(),
        fleet: None,
        per: Vec::new(),
    };
    let fleet = |errors: &mut Errors, v: &Node| -> Option<SerialStep> {
        let step = share(v).1.filter(|s| match *s {
            SerialStep::Percent(p) => p > 0.0 && p <= 100.0,
            SerialStep::Count(c) => c > 0,
        });
        if step.is_none() {
            push(
                errors,
                v,
                format!(
                    "'max_unavailable' fleet budget must be a number of hosts above 0 or a percentage like \"25%\", found {}",
                    shown(v)
                ),
            );
        }
        step
    };
    match n.as_map() {
        None => m.fleet = fleet(errors, n),
        Some(entries) => {
            for (k, v) in entries {
                match k.scalar_string().unwrap_or_default().as_str() {
                    "fleet" => m.fleet = fleet(errors, v),
                    "per" => match v.as_map() {
                        Some(per) => {
                            for (key, max) in per {
                                let name = key.scalar_string().unwrap_or_default();
                                match count(errors, &format!("per.{name}"), max) {
                                    Some(0) => push(
                                        errors,
                                        max,
                                        format!("'per.{name}' must be at least 1"),
                                    ),
                                    Some(c) => m.per.push((name, c)),
                                    None => {}
                                }
                            }
                        }
                        None => push(
                            errors,
                            v,
                            format!(
                                "'per' must map groups or host variables to counts, e.g. {{rack: 1}}, found {}",
                                shown(v)
                            ),
                        ),
                    },
                    other => {
                        let msg = match did_you_mean(other, ["fleet", "per"]) {
                            Some(s) => format!(
                                "unknown 'max_unavailable' key '{other}', did you mean '{s}'?"
                            ),
                            None => format!(
                                "unknown 'max_unavailable' key '{other}': expected fleet, per"
                            ),
                        };
                        push(errors, k, msg);
                    }
                }
            }
        }
    }
    (errors.len() == before).then_some(m)
}
