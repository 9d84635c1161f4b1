//! A plan pinned to its inputs: `rdeploy plan --out FILE` and `rdeploy run --plan FILE`.
//!
//! Owns the pin's shape (the plan as `rdeploy plan --output json` prints it, the `--limit` and
//! shuffle seed it was made with, a digest of the extra variables, and the sha256 of every
//! input file: the playbook's folder, the roles path and the inventory sources), writing it
//! (JSON, or Markdown for review with the same JSON at its end) and checking a run against it:
//! any changed, added or removed input, other extra variables, another `--limit`, or a plan
//! that comes out different refuses the run before any host is touched, naming what drifted.
//! With `plan --check` the pin also holds what check mode found on each host ([`Predicted`]:
//! the tasks that would change, and a digest of every task's check-mode status and diff, the
//! host's observed state); `run --plan` then checks the hosts again and refuses when one
//! differs. It must not run anything itself: the caller runs check mode and hands the events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::settings::Settings;
use crate::plan::Plan;

/// Files hashed at most: a playbook folder larger than this is not a deployment repository.
const MAX_FILES: usize = 20_000;

/// What `plan --out` writes and `run --plan` reads.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Pin {
    /// The format's version.
    pub rdeploy_plan: u32,
    /// The playbook as given.
    pub playbook: String,
    /// `--limit`.
    pub limit: Option<String>,
    /// The shuffle seed (`order: shuffle` comes out the same).
    pub shuffle_seed: u64,
    /// sha256 of the extra variables (never their values: they may be secrets).
    pub extra_vars: String,
    /// sha256 of every input file, by path.
    pub inputs: BTreeMap<String, String>,
    /// The plan.
    pub plan: serde_json::Value,
    /// `plan --check`: what check mode found on each host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, Predicted>,
}

/// What check mode found on one host when the plan was made.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Predicted {
    /// The tasks that would change it, in order (`TASK` or `TASK (handler)`).
    pub changes: Vec<String>,
    /// Tasks that failed, or `unreachable`, in check mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    /// sha256 of every task's check-mode status and diff on the host, in order: the host's
    /// state as the plan's tasks observe it (diffs are hashed, never kept: they may hold
    /// secrets).
    pub state: String,
}

/// Each host's [`Predicted`] from the JSON events of a check-mode run (`--output json
/// --diff`): the `task` events name what the `result` events after them are of.
pub fn predictions(events: &str) -> BTreeMap<String, Predicted> {
    let mut task = String::new();
    let mut seen: BTreeMap<String, (Predicted, Sha256)> = BTreeMap::new();
    for line in events.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        match e["event"].as_str() {
            Some("task") => {
                let name = e["name"].as_str().unwrap_or_default();
                task = if e["handler"] == true {
                    format!("{name} (handler)")
                } else {
                    name.to_string()
                };
            }
            Some("result") => {
                let r = &e["result"];
                let Some(host) = r["host"].as_str() else {
                    continue;
                };
                let status = r["status"].as_str().unwrap_or_default();
                let (p, h) = seen.entry(host.to_string()).or_default();
                h.update(
                    serde_json::json!([task, status, r["diff"]])
                        .to_string()
                        .as_bytes(),
                );
                h.update(b"\n");
                match status {
                    "changed" => p.changes.push(task.clone()),
                    "failed" => p.failed.push(task.clone()),
                    "unreachable" => p.failed.push("unreachable".into()),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    seen.into_iter()
        .map(|(host, (mut p, h))| {
            p.state = hex::encode(h.finalize());
            (host, p)
        })
        .collect()
}

/// The plan as JSON, as `rdeploy plan --output json` prints it.
fn plan_value(plan: &Plan) -> serde_json::Value {
    let mut buf = Vec::new();
    let _ = crate::report::plan_json(&mut buf, plan);
    serde_json::from_slice(&buf).unwrap_or(serde_json::Value::Null)
}

/// The pin of a checked plan.
pub fn pin(settings: &Settings, plan: &Plan, skip: &[PathBuf]) -> Result<Pin, String> {
    Ok(Pin {
        rdeploy_plan: 1,
        playbook: settings.playbook.display().to_string(),
        limit: settings.limit.clone(),
        shuffle_seed: settings.shuffle_seed,
        extra_vars: extra_digest(settings),
        inputs: inputs(settings, skip)?,
        plan: plan_value(plan),
        hosts: BTreeMap::new(),
    })
}

fn extra_digest(settings: &Settings) -> String {
    let sorted: BTreeMap<&String, &serde_json::Value> = settings.extra_vars.iter().collect();
    let text = serde_json::to_string(&sorted).unwrap_or_default();
    crate::modules::files::common::sha256_hex(text.as_bytes())
}

/// Every input file: the playbook's folder, the roles path and the inventory sources (folders
/// recursively), without hidden entries (`.git`), the controller's state folder and `skip`.
fn inputs(settings: &Settings, skip: &[PathBuf]) -> Result<BTreeMap<String, String>, String> {
    let mut roots: Vec<PathBuf> = Vec::new();
    let dir = settings
        .playbook
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    roots.push(dir);
    roots.extend(settings.roles_path.iter().cloned());
    roots.extend(settings.inventory.iter().cloned());
    // The controller's state folder (journals, locks, local backups) changes with every run.
    let flag = std::env::var_os("RDEPLOY_STATE_DIR").map(PathBuf::from);
    let state = crate::backup::journal::state_dir(flag.as_deref());
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut skipped: Vec<PathBuf> = skip.iter().map(|p| absolute(p)).collect();
    skipped.push(absolute(&state));
    let mut out = BTreeMap::new();
    let mut stack: Vec<PathBuf> = roots;
    while let Some(p) = stack.pop() {
        if skipped.iter().any(|s| absolute(&p).starts_with(s)) {
            continue;
        }
        let meta = match std::fs::metadata(&p) {
            Ok(m) => m,
            Err(_) => continue,
        };
        if meta.is_dir() {
            let entries = std::fs::read_dir(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            for e in entries.flatten() {
                if !e.file_name().to_string_lossy().starts_with('.') {
                    stack.push(e.path());
                }
            }
        } else if meta.is_file() {
            if out.len() >= MAX_FILES {
                return Err(format!(
                    "more than {MAX_FILES} input files under the playbook's folder, the roles path and the inventory: pin a smaller folder"
                ));
            }
            out.insert(p.display().to_string(), file_digest(&p)?);
        }
    }
    Ok(out)
}

fn file_digest(p: &Path) -> Result<String, String> {
    let mut f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let mut h = Sha256::new();
    crate::transport::read_chunks(&mut f, |chunk| h.update(chunk))
        .map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(hex::encode(h.finalize()))
}

/// The pin as its file holds it: JSON, or Markdown (`.md`) for review, with the JSON at its end
/// so that the same file pins the run.
pub fn render(p: &Pin, human_plan: &str, markdown: bool) -> String {
    let json = serde_json::to_string_pretty(p).unwrap_or_default();
    if !markdown {
        return json + "\n";
    }
    let mut md = format!("# rdeploy plan: {}\n\n", p.playbook);
    if let Some(l) = &p.limit {
        md.push_str(&format!("Limited to `{l}`.\n\n"));
    }
    md.push_str("```\n");
    md.push_str(human_plan.trim_end());
    md.push_str("\n```\n\n## Inputs\n\n| file | sha256 |\n|---|---|\n");
    for (f, h) in &p.inputs {
        md.push_str(&format!("| `{f}` | `{}` |\n", &h[..16.min(h.len())]));
    }
    if !p.hosts.is_empty() {
        md.push_str("\n## What check mode found on each host\n\n| host | would change | failed | state |\n|---|---|---|---|\n");
        for (h, pr) in &p.hosts {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.join("; ")
                }
            };
            md.push_str(&format!(
                "| `{h}` | {} | {} | `{}` |\n",
                list(&pr.changes),
                list(&pr.failed),
                &pr.state[..16.min(pr.state.len())]
            ));
        }
    }
    md.push_str(&format!(
        "\nExtra variables: sha256 `{}`.\n\n## Pin\n\n`rdeploy run --plan` reads this block.\n\n```json\n{json}\n```\n",
        &p.extra_vars[..16.min(p.extra_vars.len())]
    ));
    md
}

/// Reads a pin from its file (JSON, or the JSON block of the Markdown form).
pub fn read(path: &Path) -> Result<Pin, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json = match text.rfind("```json\n") {
        Some(i) if !text.trim_start().starts_with('{') => {
            let body = &text[i + "```json\n".len()..];
            body.find("\n```").map_or(body, |end| &body[..end])
        }
        _ => text.as_str(),
    };
    serde_json::from_str(json).map_err(|e| {
        format!(
            "{}: not a plan written by `rdeploy plan --out` ({e})",
            path.display()
        )
    })
}

/// What differs between the pinned plan and the one made now (inputs, variables, `--limit`,
/// the plan itself; the hosts are [`host_drift`]'s); empty when nothing does.
pub fn drift(pinned: &Pin, now: &Pin) -> Vec<String> {
    let mut out = Vec::new();
    let changed: Vec<&str> = pinned
        .inputs
        .iter()
        .filter(|(f, h)| now.inputs.get(*f).is_some_and(|n| n != *h))
        .map(|(f, _)| f.as_str())
        .collect();
    let removed: Vec<&str> = pinned
        .inputs
        .keys()
        .filter(|f| !now.inputs.contains_key(*f))
        .map(String::as_str)
        .collect();
    let added: Vec<&str> = now
        .inputs
        .keys()
        .filter(|f| !pinned.inputs.contains_key(*f))
        .map(String::as_str)
        .collect();
    for (what, list) in [("changed", changed), ("removed", removed), ("added", added)] {
        if !list.is_empty() {
            out.push(format!("{what}: {}", list.join(", ")));
        }
    }
    if pinned.playbook != now.playbook {
        out.push(format!(
            "the playbook is {} (the plan is of {})",
            now.playbook, pinned.playbook
        ));
    }
    if pinned.limit != now.limit {
        out.push(format!(
            "--limit is {} (the plan's: {})",
            now.limit.as_deref().unwrap_or("none"),
            pinned.limit.as_deref().unwrap_or("none")
        ));
    }
    if pinned.extra_vars != now.extra_vars {
        out.push("the extra variables (-e) differ".into());
    }
    if out.is_empty() && pinned.plan != now.plan {
        out.push(
            "the plan comes out different (hosts, batches, gates or tasks: a dynamic inventory?)"
                .into(),
        );
    }
    out
}

/// The hosts that are not as the pin's check mode found them, against what check mode finds
/// now (`now`); empty when every host is.
pub fn host_drift(pinned: &Pin, now: &BTreeMap<String, Predicted>) -> Vec<String> {
    let mut out = Vec::new();
    for (h, was) in &pinned.hosts {
        match now.get(h) {
            None => out.push(format!("host {h}: check mode no longer reaches it")),
            Some(is) if is.state != was.state => {
                let said = |v: &[String]| {
                    if v.is_empty() {
                        "nothing".to_string()
                    } else {
                        v.join(", ")
                    }
                };
                out.push(format!(
                    "host {h} is not as planned: check mode now finds {} to change (the plan: {})",
                    said(&is.changes),
                    said(&was.changes)
                ));
            }
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::predictions;

    const EVENTS: &str = r#"{"event":"task","name":"config","handler":false}
{"event":"result","result":{"host":"web1","status":"changed","diff":[{"before":"a","after":"b"}]}}
{"event":"result","result":{"host":"web2","status":"ok","diff":[]}}
{"event":"task","name":"restart","handler":true}
{"event":"result","result":{"host":"web1","status":"changed","diff":[]}}
{"event":"result","result":{"host":"web3","status":"unreachable"}}
"#;

    /// Per host: the changing tasks in order (handlers named so), failures, and a digest that
    /// moves with any task's status or diff, and only with that host's.
    #[test]
    fn check_mode_events_become_each_hosts_prediction() {
        let p = predictions(EVENTS);
        assert_eq!(p["web1"].changes, ["config", "restart (handler)"]);
        assert!(p["web2"].changes.is_empty());
        assert_eq!(p["web3"].failed, ["unreachable"]);
        let other = predictions(&EVENTS.replace(r#""before":"a""#, r#""before":"hand-edited""#));
        assert_ne!(other["web1"].state, p["web1"].state);
        assert_eq!(other["web1"].changes, p["web1"].changes);
        assert_eq!(other["web2"].state, p["web2"].state);
    }
}
