//! Reporters: everything the user reads is written here, and nowhere else.
//!
//! Owns the text and JSON forms of plans, host/task/tag listings, inventories and
//! diagnostics. Functions write to any `io::Write` so tests can read what a user would see;
//! they must not compute anything the caller could not have printed itself. Every registered
//! secret (`vault::redact`) is masked in what they write.

pub mod events;
pub mod html;
pub mod notify;
pub mod progress;
pub mod run;
pub mod summary;

use std::collections::BTreeSet;
use std::io::{self, Write};

use crate::diag::Diagnostics;
use crate::plan::{Plan, PlannedTask, WhenReached};
use crate::vault::redact::redact;

/// Writes every diagnostic, then a count line, as the user sees them on stderr.
pub fn diagnostics(w: &mut dyn Write, d: &Diagnostics) -> io::Result<()> {
    writeln!(w, "{}", redact(&d.to_string()))?;
    let n = d.len();
    writeln!(
        w,
        "rdeploy: {n} error{} found; nothing was run",
        if n == 1 { "" } else { "s" }
    )
}

/// `rdeploy plan`: each play, its batches and its tasks.
pub fn plan_human(w: &mut dyn Write, playbook: &str, plan: &Plan) -> io::Result<()> {
    let mut buf = Vec::new();
    plan_human_raw(&mut buf, playbook, plan)?;
    text(w, &String::from_utf8_lossy(&buf))
}

fn plan_human_raw(w: &mut dyn Write, playbook: &str, plan: &Plan) -> io::Result<()> {
    writeln!(w, "playbook: {playbook}")?;
    for (i, p) in plan.plays.iter().enumerate() {
        writeln!(w)?;
        writeln!(w, "play #{} ({}): {}", i + 1, p.pattern, p.name)?;
        if !p.windows.is_empty() {
            writeln!(
                w,
                "  change windows (each batch starts only then): {}",
                p.windows.join("; ")
            )?;
        }
        if let Some(b) = &p.budget {
            writeln!(
                w,
                "  disruption budget: {b}; the batches are packed under it"
            )?;
        }
        if let Some(t) = p.max_failed_total {
            writeln!(w, "  failure budget: at most {t} failed host(s) in the run")?;
        }
        if p.deferred {
            writeln!(
                w,
                "  hosts: found when the play starts (names only add_host/group_by can make)"
            )?;
        } else {
            writeln!(
                w,
                "  hosts ({}), {} batch{}:",
                p.hosts.len(),
                p.batches.len(),
                plural_es(p.batches.len())
            )?;
        }
        for (b, batch) in p.batches.iter().enumerate() {
            if let Some((n, msg)) = &p.approve
                && *n == b + 1
            {
                writeln!(w, "    approval gate: {msg} (y/N; rdeploy approve RUN)")?;
            }
            match p.canary.get(b) {
                Some(step) => {
                    let n = p.hosts.len();
                    writeln!(
                        w,
                        "    batch {} ({}), canary step {}: {} of {n} host{} ({:.0}%): {}",
                        b + 1,
                        batch.len(),
                        step.written,
                        step.cumulative,
                        if n == 1 { "" } else { "s" },
                        step.share(n),
                        batch.join(", ")
                    )?;
                    if let Some(note) = crate::plan::canary::note(step, n) {
                        writeln!(w, "      {note}")?;
                    }
                }
                None => writeln!(
                    w,
                    "    batch {} ({}): {}",
                    b + 1,
                    batch.len(),
                    batch.join(", ")
                )?,
            }
            for what in p.after.get(b).into_iter().flatten() {
                writeln!(w, "      then {what}")?;
            }
        }
        if let Some((n, _)) = &p.approve
            && *n > p.batches.len()
            && !p.deferred
        {
            writeln!(
                w,
                "    approval gate before batch {n}: never reached ({} batch{})",
                p.batches.len(),
                plural_es(p.batches.len())
            )?;
        }
        for (title, list) in [
            ("tasks", &p.tasks),
            ("handlers", &p.handlers),
            ("rollback", &p.rollback),
        ] {
            if list.is_empty() && title != "tasks" {
                continue;
            }
            writeln!(w, "  {title} ({}):", list.len())?;
            for t in list {
                writeln!(w, "{}", plan_task_line(t))?;
            }
        }
        when_reached_lines(w, "  ", &p.checked_when_reached)?;
    }
    Ok(())
}

/// The includes checked when reached, under a heading, each with the mistakes it would
/// report if reached.
fn when_reached_lines(w: &mut dyn Write, indent: &str, list: &[WhenReached]) -> io::Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    writeln!(w, "{indent}checked when reached ({}):", list.len())?;
    for r in list {
        writeln!(w, "{indent}  {}  {} {}", r.location, r.module, r.name)?;
        for p in &r.problems {
            writeln!(w, "{indent}    if reached: {p}")?;
        }
    }
    Ok(())
}

fn plan_task_line(t: &PlannedTask) -> String {
    let mut line = format!("    {}", task_label(t.role.as_deref(), &t.name));
    if t.name != t.module {
        line.push_str(&format!("  [{}]", t.module));
    }
    if let Some(why) = &t.not_reversible {
        if crate::modules::is_native(&t.module) {
            line.push_str(&format!("  (not reversible: {why})"));
        } else {
            line.push_str(&format!("  ({why})"));
        }
    }
    line
}

/// `rdeploy plan --output json`.
pub fn plan_json(w: &mut dyn Write, plan: &Plan) -> io::Result<()> {
    let plays: Vec<serde_json::Value> = plan
        .plays
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "pattern": p.pattern,
                "hosts": p.hosts,
                "batches": p.batches,
                "canary": p.canary,
                "approve": p.approve,
                "after": p.after,
                "windows": p.windows,
                "budget": p.budget,
                "max_failed_total": p.max_failed_total,
                "tasks": p.tasks,
                "handlers": p.handlers,
                "rollback": p.rollback,
                "checked_when_reached": p.checked_when_reached,
            })
        })
        .collect();
    json_line(w, &serde_json::json!({ "plays": plays }))
}

/// What `--list-hosts`, `--list-tasks` and `--list-tags` ask to see.
#[derive(Clone, Copy, Debug, Default)]
pub struct Listing {
    /// `--list-hosts`: the play's pattern and matched hosts.
    pub hosts: bool,
    /// `--list-tasks`: the selected tasks with their tags.
    pub tasks: bool,
    /// `--list-tags`: the union of the tasks' tags.
    pub tags: bool,
}

/// `--list-hosts`/`--list-tasks`/`--list-tags` in ansible-playbook's layout: one section per
/// play holding what each flag asks for, in that order.
pub fn listing(w: &mut dyn Write, playbook: &str, plan: &Plan, what: Listing) -> io::Result<()> {
    let mut buf = Vec::new();
    listing_raw(&mut buf, playbook, plan, what)?;
    text(w, &String::from_utf8_lossy(&buf))
}

fn listing_raw(w: &mut dyn Write, playbook: &str, plan: &Plan, what: Listing) -> io::Result<()> {
    writeln!(w, "\nplaybook: {playbook}")?;
    for (i, p) in plan.plays.iter().enumerate() {
        writeln!(
            w,
            "\n  play #{} ({}): {}\tTAGS: [{}]",
            i + 1,
            p.pattern,
            p.name,
            p.tags.join(", ")
        )?;
        if what.hosts {
            writeln!(w, "    pattern: ['{}']", p.pattern)?;
            writeln!(w, "    hosts ({}):", p.hosts.len())?;
            for h in &p.hosts {
                writeln!(w, "      {h}")?;
            }
        }
        if what.tasks {
            writeln!(w, "    tasks:")?;
            for t in &p.tasks {
                writeln!(
                    w,
                    "      {}\tTAGS: [{}]",
                    task_label(t.role.as_deref(), &t.name),
                    t.tags.join(", ")
                )?;
            }
        }
        if what.tags {
            let tags: BTreeSet<&str> = p
                .tasks
                .iter()
                .flat_map(|t| t.tags.iter().map(String::as_str))
                .collect();
            writeln!(
                w,
                "      TASK TAGS: [{}]",
                tags.into_iter().collect::<Vec<_>>().join(", ")
            )?;
        }
    }
    Ok(())
}

/// `--syntax-check` success line, as ansible-playbook prints it, then the includes whose
/// file or role is checked only when reached.
pub fn syntax_ok(w: &mut dyn Write, playbook: &str, plan: &Plan) -> io::Result<()> {
    let mut buf = Vec::new();
    writeln!(buf, "\nplaybook: {playbook}")?;
    let all: Vec<WhenReached> = plan
        .plays
        .iter()
        .flat_map(|p| p.checked_when_reached.iter().cloned())
        .collect();
    when_reached_lines(&mut buf, "", &all)?;
    text(w, &String::from_utf8_lossy(&buf))
}

/// Any value as one line of JSON.
pub fn json_line(w: &mut dyn Write, v: &serde_json::Value) -> io::Result<()> {
    let s = serde_json::to_string(v)?;
    writeln!(w, "{}", redact(&s))
}

/// Any value as indented JSON (inventory listings).
pub fn json_pretty(w: &mut dyn Write, v: &serde_json::Value) -> io::Result<()> {
    let s = serde_json::to_string_pretty(v)?;
    writeln!(w, "{}", redact(&s))
}

/// Plain text as it is (graphs, docs), secrets masked.
pub fn text(w: &mut dyn Write, s: &str) -> io::Result<()> {
    let s = redact(s);
    w.write_all(s.as_bytes())?;
    if !s.ends_with('\n') {
        writeln!(w)?;
    }
    Ok(())
}

/// Bytes exactly as they are (`rdeploy vault view`: the plaintext the user asked to see).
pub fn bytes(w: &mut dyn Write, b: &[u8]) -> io::Result<()> {
    w.write_all(b)
}

fn task_label(role: Option<&str>, name: &str) -> String {
    match role {
        Some(r) => format!("{r} : {name}"),
        None => name.to_string(),
    }
}

fn plural_es(n: usize) -> &'static str {
    if n == 1 { "" } else { "es" }
}
