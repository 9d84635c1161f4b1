//! `Plan::build`: hosts per play (pattern ∩ `--limit`, then `order`), batches from `serial`,
//! tasks after `--tags`/`--skip-tags`. Pure: no I/O and no templating.

use std::collections::BTreeSet;

use crate::diag::{Diagnostic, Diagnostics};
use crate::inventory::Inventory;
use crate::plan::{BatchSize, Plan, PlannedPlay, PlannedTask, WhenReached, batch_sizes, canary};
use crate::playbook::model::{
    MaxUnavailable, Order, Play, Playbook, Section, SerialStep, StepGates,
};
use crate::yaml::{Kind, Node};

/// What the command line adds to the plan.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// `--limit`, already read from `@file`.
    pub limit: Option<String>,
    /// `--tags` (empty means `all`).
    pub tags: Vec<String>,
    /// `--skip-tags`.
    pub skip_tags: Vec<String>,
    /// Seed for `order: shuffle`.
    pub shuffle_seed: u64,
}

/// Builds the plan. A bad pattern is a diagnostic at the play's `hosts:`; a `--limit` that
/// names nothing is an options error.
pub fn build(inv: &Inventory, pb: &Playbook, opts: &PlanOptions) -> Result<Plan, Diagnostics> {
    let mut errors = Diagnostics::new();
    let limit: Option<BTreeSet<&str>> = match opts.limit.as_deref() {
        None => None,
        Some(l) => match inv.select(l) {
            Ok(hosts) => Some(hosts.into_iter().map(|h| h.name.as_str()).collect()),
            Err(m) => {
                errors.push(Diagnostic::options(format!("--limit '{l}': {m}")));
                None
            }
        },
    };
    let mut plays = Vec::new();
    // Once a play has run `add_host` or `group_by`, a later pattern may name what they add.
    let mut dynamic = false;
    for play in &pb.plays {
        match plan_play(inv, play, limit.as_ref(), opts, dynamic) {
            Ok(p) => plays.push(p),
            Err(d) => errors.push(d),
        }
        dynamic |= changes_inventory(play);
    }
    errors.into_result(Plan { plays })
}

/// Whether the play runs `add_host` or `group_by` (anywhere in it).
pub fn changes_inventory(play: &Play) -> bool {
    let mut found = false;
    play.for_each_task(&mut |t| {
        found |= matches!(
            crate::modules::canonical_name(&t.action.module),
            "add_host" | "group_by"
        );
    });
    found
}

/// A play's hosts and batches against the inventory as it is now (after `add_host` and
/// `group_by` changed it): the pattern ∩ `limit`, in the play's `order`, cut by `serial`.
/// A term that matches nothing selects no host (Ansible warns and skips the play).
pub fn hosts_now(
    inv: &Inventory,
    play: &Play,
    limit: Option<&str>,
    seed: u64,
) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let limit: Option<BTreeSet<&str>> = limit.map(|l| {
        inv.select(l)
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.name.as_str())
            .collect()
    });
    let pattern = hosts_pattern(&play.hosts);
    let selected = match inv.select(&pattern) {
        Ok(s) => s,
        Err(m) if m.starts_with(NO_MATCH) => Vec::new(),
        Err(m) => return Err(format!("hosts '{pattern}': {m}")),
    };
    let mut hosts: Vec<String> = selected
        .into_iter()
        .filter(|h| limit.as_ref().is_none_or(|l| l.contains(h.name.as_str())))
        .map(|h| h.name.clone())
        .collect();
    apply_order(&mut hosts, play.order, seed);
    let (batches, _) = cut(inv, &hosts, play);
    Ok((hosts, batches))
}

/// How [`Inventory::select`] says that a term matched nothing.
const NO_MATCH: &str = "no host or group matches";

/// What each batch of the play does after its health gate, from its canary steps (merged
/// steps' gates run after the batch they were merged into): one list per batch, empty
/// without `canary`.
pub fn step_gates(play: &Play, host_count: usize) -> Vec<Vec<&StepGates>> {
    let Some(c) = &play.canary else {
        return Vec::new();
    };
    let shares: Vec<canary::Share> = c.steps.iter().map(|s| share(*s)).collect();
    canary::steps(host_count, &shares)
        .iter()
        .map(|s| s.indexes.iter().filter_map(|i| c.gates.get(*i)).collect())
        .collect()
}

fn share(step: SerialStep) -> canary::Share {
    match step {
        SerialStep::Count(n) => canary::Share::Count(n),
        SerialStep::Percent(p) => canary::Share::Percent(p),
    }
}

/// A duration as it is written in a playbook: `500ms`, `30s`, `5m`, `1h30m`.
pub fn written(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) || ms == 0 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

/// What `rdeploy plan` lists after each batch: the soak, the analysis and a canary step's
/// approval; empty when no batch has any.
fn after_batches(play: &Play, host_count: usize, batches: usize) -> Vec<Vec<String>> {
    let steps = step_gates(play, host_count);
    let out: Vec<Vec<String>> = (0..batches)
        .map(|b| {
            let gates = steps.get(b).map(Vec::as_slice).unwrap_or_default();
            let mut what = Vec::new();
            let soak = gates.iter().filter_map(|g| g.pause).max().or(play.soak);
            match soak {
                Some(d) if play.health.is_empty() => {
                    what.push(format!("pause {} (no health probes to watch)", written(d)));
                }
                Some(d) => what.push(format!("soak {}: the health probes watched", written(d))),
                None => {}
            }
            for a in play.analyses_after(gates) {
                let names = a.metric_names();
                what.push(format!(
                    "analysis for {}, every {}: {}",
                    written(a.duration),
                    written(a.interval),
                    names.join(", ")
                ));
            }
            for g in gates.iter().filter_map(|g| g.approve.as_ref()) {
                match b + 1 < batches {
                    true => what.push(format!("approval before the next step: {}", g.message)),
                    false => what.push(format!(
                        "approval never asked (no step follows): {}",
                        g.message
                    )),
                }
            }
            what
        })
        .collect();
    if out.iter().all(Vec::is_empty) {
        return Vec::new();
    }
    out
}

/// The hosts cut into batches by the play's `canary` plan (with its steps) or its `serial`.
fn cut(inv: &Inventory, hosts: &[String], play: &Play) -> (Vec<Vec<String>>, Vec<canary::Step>) {
    if let Some(c) = &play.canary {
        let shares: Vec<canary::Share> = c.steps.iter().map(|s| share(*s)).collect();
        let steps = canary::steps(hosts.len(), &shares);
        let mut batches = Vec::new();
        let mut rest = hosts;
        for s in &steps {
            let (batch, tail) = rest.split_at(s.size.min(rest.len()));
            batches.push(batch.to_vec());
            rest = tail;
        }
        return (batches, steps);
    }
    let serial: Vec<BatchSize> = play
        .serial
        .as_ref()
        .map(|s| {
            s.steps
                .iter()
                .map(|step| match *step {
                    SerialStep::Count(n) => BatchSize::Count(n),
                    SerialStep::Percent(p) => BatchSize::Percent(p),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut batches = Vec::new();
    let mut rest = hosts;
    for size in batch_sizes(hosts.len(), &serial) {
        let (batch, tail) = rest.split_at(size);
        batches.push(batch.to_vec());
        rest = tail;
    }
    match &play.max_unavailable {
        Some(m) => (budgeted(inv, hosts.len(), m, batches), Vec::new()),
        None => (batches, Vec::new()),
    }
}

/// The batches cut again under the play's disruption budgets: at most the fleet budget of the
/// play's hosts, and per `per` key at most its count of the hosts of that group (when the key
/// names a group) or sharing a value of that host variable (otherwise; hosts without it are
/// not counted).
fn budgeted(
    inv: &Inventory,
    host_count: usize,
    m: &MaxUnavailable,
    batches: Vec<Vec<String>>,
) -> Vec<Vec<String>> {
    let fleet = fleet_budget(host_count, m).unwrap_or(usize::MAX);
    let maxes: Vec<usize> = m
        .per
        .iter()
        .map(|(_, n)| usize::try_from(*n).unwrap_or(usize::MAX))
        .collect();
    let buckets = |h: &str| -> Vec<Option<String>> {
        let host = inv.hosts.get(h);
        m.per
            .iter()
            .map(|(key, _)| {
                let host = host?;
                if inv.groups.contains_key(key) {
                    return host.groups.contains(key).then(|| key.clone());
                }
                match inv.vars_of(host).get(key)? {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(v) => Some(v.clone()),
                    other => Some(other.to_string()),
                }
            })
            .collect()
    };
    batches
        .iter()
        .flat_map(|b| crate::plan::budget::pack(b, fleet, &maxes, &buckets))
        .collect()
}

/// The fleet budget in hosts: a count, or a percentage rounded down (at least one), as
/// `serial` sizes a batch.
fn fleet_budget(host_count: usize, m: &MaxUnavailable) -> Option<usize> {
    let size = match m.fleet? {
        SerialStep::Count(n) => BatchSize::Count(n),
        SerialStep::Percent(p) => BatchSize::Percent(p),
    };
    batch_sizes(host_count.max(1), &[size]).first().copied()
}

/// `rdeploy plan`'s words for the play's disruption budgets.
fn budget_words(host_count: usize, m: &MaxUnavailable) -> String {
    let mut parts = Vec::new();
    match m.fleet {
        Some(SerialStep::Count(n)) => parts.push(format!("{n} of the {host_count} hosts")),
        Some(SerialStep::Percent(p)) => parts.push(format!(
            "{p}% of the hosts ({} of {host_count})",
            fleet_budget(host_count, m).unwrap_or(1)
        )),
        None => {}
    }
    parts.extend(m.per.iter().map(|(k, n)| format!("{n} per {k}")));
    format!("at most {} out at once", parts.join(", "))
}

fn plan_play(
    inv: &Inventory,
    play: &Play,
    limit: Option<&BTreeSet<&str>>,
    opts: &PlanOptions,
    dynamic: bool,
) -> Result<PlannedPlay, Diagnostic> {
    if let Some((key, n)) = play.deferred.first() {
        // `resolve::plays` renders these before planning; a caller that skipped it must not
        // get a plan that silently ignores them.
        return Err(Diagnostic::at(
            &n.loc,
            format!("'{key}' is a template that was not rendered before planning"),
        ));
    }
    let pattern = hosts_pattern(&play.hosts);
    if crate::template::has_template(&pattern) {
        return Err(Diagnostic::at(
            &play.hosts.loc,
            "a templated 'hosts:' pattern is not supported by rdeploy: write the pattern, or pass it with --limit",
        ));
    }
    // A name only `add_host`/`group_by` of an earlier play can make is resolved when the
    // play starts; without them, a name that matches nothing stays an error (a typo).
    let (selected, deferred) = match inv.select(&pattern) {
        Ok(s) => (s, false),
        Err(m) if dynamic && m.starts_with(NO_MATCH) => (Vec::new(), true),
        Err(m) => {
            return Err(Diagnostic::at(
                &play.hosts.loc,
                format!("hosts '{pattern}': {m}"),
            ));
        }
    };
    let mut hosts: Vec<String> = selected
        .into_iter()
        .filter(|h| limit.is_none_or(|l| l.contains(h.name.as_str())))
        .map(|h| h.name.clone())
        .collect();
    apply_order(&mut hosts, play.order, opts.shuffle_seed);
    let (batches, canary) = cut(inv, &hosts, play);
    let after = after_batches(play, hosts.len(), batches.len());
    let budget = play
        .max_unavailable
        .as_ref()
        .map(|m| budget_words(hosts.len(), m));
    let mut tasks = Vec::new();
    let mut handlers = Vec::new();
    let mut rollback = Vec::new();
    for t in play.tasks_flat() {
        let list = match t.section {
            Section::Handlers => &mut handlers,
            Section::Rollback => &mut rollback,
            _ if !tags_selected(&t.tags, &opts.tags, &opts.skip_tags) => continue,
            _ => &mut tasks,
        };
        list.push(PlannedTask {
            reversible: t.reversible,
            not_reversible: t.not_reversible,
            name: t.name,
            module: t.module,
            tags: t.tags,
            role: t.role,
            location: t.loc.to_string(),
        });
    }
    Ok(PlannedPlay {
        name: play.display_name(),
        pattern,
        hosts,
        batches,
        canary,
        deferred,
        checked_when_reached: when_reached(play),
        approve: play
            .approve
            .as_ref()
            .map(|g| (g.before_batch, g.message.clone())),
        after,
        windows: play
            .windows
            .iter()
            .flat_map(|w| {
                let allow = w.allow.iter().map(|a| format!("allow {}", a.text));
                let deny = w
                    .deny_files
                    .iter()
                    .map(|f| format!("not while {} exists", f.display()));
                allow.chain(deny).collect::<Vec<_>>()
            })
            .collect(),
        max_failed_total: play.max_failed_total,
        budget,
        tasks,
        handlers,
        rollback,
        tags: play.keywords.tags.iter().map(|t| t.name.clone()).collect(),
    })
}

/// The play's includes checked when reached, with what they name as written.
fn when_reached(play: &Play) -> Vec<WhenReached> {
    play.when_reached()
        .into_iter()
        .map(|t| {
            let a = &t.action;
            let name = if a.module == "include_role" {
                a.arg("name")
            } else {
                a.free_form.as_ref().or_else(|| a.arg("file"))
            };
            WhenReached {
                location: t.loc.to_string(),
                module: a.module.clone(),
                name: name.and_then(Node::scalar_string).unwrap_or_default(),
                problems: t
                    .deferred_within()
                    .into_iter()
                    .map(|d| match &d.loc {
                        Some(l) => format!("{l}: {}", d.message),
                        None => d.message.clone(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The `hosts:` value as one pattern: a list is a union.
fn hosts_pattern(hosts: &Node) -> String {
    match &hosts.kind {
        Kind::Seq(items) => items
            .iter()
            .filter_map(Node::scalar_string)
            .collect::<Vec<_>>()
            .join(","),
        _ => hosts.scalar_string().unwrap_or_default(),
    }
}

/// `order:` applied before batching.
pub fn apply_order(hosts: &mut [String], order: Order, seed: u64) {
    match order {
        Order::Inventory => {}
        Order::ReverseInventory => hosts.reverse(),
        Order::Sorted => hosts.sort(),
        Order::ReverseSorted => {
            hosts.sort();
            hosts.reverse();
        }
        Order::Shuffle => {
            // Fisher–Yates with splitmix64: reproducible from --shuffle-seed.
            let mut state = seed;
            let mut next = || {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            };
            for i in (1..hosts.len()).rev() {
                let j = (next() % (i as u64 + 1)) as usize;
                hosts.swap(i, j);
            }
        }
    }
}

/// Ansible's tag selection (`Taggable.evaluate_tags`): an untagged task counts as tagged
/// `untagged`; `always` runs unless skipped explicitly; `never` runs only when asked for.
pub fn tags_selected(task_tags: &[String], only: &[String], skip: &[String]) -> bool {
    let untagged = ["untagged".to_string()];
    let tags: &[String] = if task_tags.is_empty() {
        &untagged
    } else {
        task_tags
    };
    let has = |set: &[String], t: &str| set.iter().any(|x| x == t);
    let meets = |set: &[String]| tags.iter().any(|t| has(set, t));
    let is_untagged = task_tags.is_empty();
    // No --tags means Ansible's default `--tags all`.
    let all = ["all".to_string()];
    let only: &[String] = if only.is_empty() { &all } else { only };
    let run = has(tags, "always")
        || (has(only, "all") && !has(tags, "never"))
        || meets(only)
        || (has(only, "tagged") && !is_untagged && !has(tags, "never"));
    let skipped = if has(skip, "all") {
        !has(tags, "always") || has(skip, "always")
    } else {
        meets(skip) || (has(skip, "tagged") && !is_untagged)
    };
    run && !skipped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn durations_are_shown_as_written() {
        let d = std::time::Duration::from_millis;
        assert_eq!(written(d(500)), "500ms");
        assert_eq!(written(d(30_000)), "30s");
        assert_eq!(written(d(300_000)), "5m");
        assert_eq!(written(d(5_400_000)), "1h30m");
        assert_eq!(written(d(0)), "0ms");
    }

    #[test]
    fn tag_selection_matches_ansible() {
        // (task tags, --tags, --skip-tags, runs?)
        type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], bool);
        let cases: &[Case] = &[
            (&[], &[], &[], true),
            (&["web"], &[], &[], true),
            (&["never"], &[], &[], false),
            (&["never", "debug"], &["debug"], &[], true),
            (&["web"], &["db"], &[], false),
            (&["web"], &["web"], &[], true),
            (&["always"], &["db"], &[], true),
            (&["always"], &[], &["always"], false),
            (&["always"], &[], &["all"], true),
            (&[], &["untagged"], &[], true),
            (&["web"], &["untagged"], &[], false),
            (&["web"], &["tagged"], &[], true),
            (&[], &["tagged"], &[], false),
            (&["web"], &[], &["web"], false),
            (&["web", "db"], &["web"], &["db"], false),
            (&[], &[], &["tagged"], true),
            (&["x"], &["all"], &[], true),
        ];
        for (task, only, skip, want) in cases {
            assert_eq!(
                tags_selected(&v(task), &v(only), &v(skip)),
                *want,
                "task={task:?} tags={only:?} skip={skip:?}"
            );
        }
    }

    #[test]
    fn order_forms() {
        let base = v(&["b", "c", "a"]);
        let mut h = base.clone();
        apply_order(&mut h, Order::Sorted, 0);
        assert_eq!(h, v(&["a", "b", "c"]));
        apply_order(&mut h, Order::ReverseSorted, 0);
        assert_eq!(h, v(&["c", "b", "a"]));
        let mut h = base.clone();
        apply_order(&mut h, Order::ReverseInventory, 0);
        assert_eq!(h, v(&["a", "c", "b"]));
        let mut s1: Vec<String> = (0..20).map(|i| format!("h{i}")).collect();
        let mut s2 = s1.clone();
        apply_order(&mut s1, Order::Shuffle, 42);
        apply_order(&mut s2, Order::Shuffle, 42);
        assert_eq!(s1, s2, "same seed, same order");
        let mut sorted = s1.clone();
        sorted.sort();
        let mut all: Vec<String> = (0..20).map(|i| format!("h{i}")).collect();
        all.sort();
        assert_eq!(sorted, all, "a shuffle keeps every host");
    }
}
