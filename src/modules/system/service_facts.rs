//! `service_facts`: the host's services as the fact `services`, in Ansible's shape (each name
//! maps to `{name, state, status, source}`); never changes anything.
//!
//! Owns Ansible's Linux scan, ported from its `service_facts` module: sysv (`service
//! --status-all`) when there is `service` but neither `chkconfig` nor `rc-status`; upstart
//! (`initctl list`); Red Hat's `chkconfig` with `service NAME status`; OpenRC (`rc-status`,
//! `rc-update`); then systemd, when it is the init system (`systemctl list-units`, then
//! `list-unit-files`, and `systemctl show --property=ActiveState` for the unit files that
//! have no unit), whose entries replace the others'. Everything is read in one round trip
//! (two with `chkconfig`: its services' status comes second), with the programs looked up on
//! `PATH` and the sbin folders as Ansible's `get_bin_path` does. It must not format shell
//! lines and must not change the host.

use regex::Regex;
use serde_json::{Map, Value};

use super::common::result;
use crate::modules::files::common::{failed, run_batch};
use crate::modules::runtime::{Args, HostView, ModuleCtx, ModuleError, Verdict};
use crate::transport::{Cmd, Output};

/// The `service_facts` module.
pub struct ServiceFacts;

crate::module_args! {
    /// Sets the fact `services`: each service's name maps to its `name`, `state` (`running`,
    /// `stopped`, or what the init system says), `status` (`enabled`, `disabled`, `static`...,
    /// where the init system tells) and `source` (`systemd`, `sysv`, `upstart`, `openrc`), as
    /// Ansible's module gathers them on Linux. Never changes anything, so it also runs under
    /// `--check`. Takes no arguments. Not supported by rdeploy: the AIX, OpenBSD and FreeBSD
    /// scans (those hosts get what their `service` tool shows, if anything).
    #[module(
        name = "service_facts",
        backup = "Changes nothing on the host: nothing to back up.",
        returns = &[("ansible_facts.services", "each service name: {name, state, status, source}")],
        examples = "- service_facts:\n- debug:\n    msg: \"nginx is {{ ansible_facts.services['nginx.service'].state }}\"\n  when: \"'nginx.service' in ansible_facts.services\""
    )]
    pub struct ServiceFactsArgs {}
}

/// Every script starts here: Ansible's parsable locale, its `get_bin_path` folders.
const PRELUDE: &str = "LC_ALL=C.UTF-8; LANG=C.UTF-8; export LC_ALL LANG; PATH=$PATH:/sbin:/usr/sbin:/usr/local/sbin:/usr/bin:/usr/local/bin; has_() { command -v \"$1\" >/dev/null 2>&1; }; ";

/// Which programs are there, and whether systemd is the init system.
const PROBE: &str = crate::host::SERVICE_FACTS_PROBE;

const SYSV: &str =
    "has_ service && ! has_ chkconfig && ! has_ rc-status || exit 127; service --status-all";

const UPSTART: &str = "has_ initctl && ! has_ chkconfig || exit 127; initctl list";

/// `chkconfig`, with Ansible's retries: `-l --allservices` (SLES 11) when no line has seven
/// runlevels but some has one, `--list` (RHEL 5) when its error asks for it.
const CHKCONFIG: &str = crate::host::SERVICE_FACTS_CHKCONFIG;

const OPENRC: &str = crate::host::SERVICE_FACTS_OPENRC;

/// systemd as init (Ansible's `is_systemd_managed`), else 127.
const SYSTEMD_GUARD: &str = crate::host::SERVICE_FACTS_SYSTEMD_GUARD;

const UNITS: &str = "systemctl list-units --no-pager --type service --all --plain";

const UNIT_FILES: &str = "systemctl list-unit-files --no-pager --type service --all";

/// `NAME\tRC\tOUTPUT` of `systemctl show NAME --property=ActiveState` for each unit file that
/// list-units did not list.
const SHOW_STATES: &str = crate::host::SERVICE_FACTS_SHOW_STATES;

/// `NAME\tRC\tSTDERR` of `service NAME status` for each name given.
const RH_STATUS: &str = crate::host::SERVICE_FACTS_RH_STATUS;

fn script(body: &'static str) -> Cmd {
    Cmd::raw(PRELUDE).op(body)
}

fn systemd(body: &'static str) -> Cmd {
    Cmd::raw(PRELUDE).op(SYSTEMD_GUARD).op(body)
}

/// The first round trip: probe, sysv, upstart, chkconfig, openrc, units, unit files, states.
fn commands() -> Vec<Cmd> {
    vec![
        script(PROBE),
        script(SYSV),
        script(UPSTART),
        script(CHKCONFIG),
        script(OPENRC),
        systemd(UNITS),
        systemd(UNIT_FILES),
        systemd(SHOW_STATES),
    ]
}

/// Bytes kept from each end of an output.
const KEEP: u64 = 1024 * 1024;

type Services = Map<String, Value>;

fn service(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn re(pattern: &str) -> Regex {
    // The patterns are constants, tested below.
    Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
}

/// `service --status-all`'s `[ + ] NAME` lines.
fn parse_sysv(out: &str, services: &mut Services) {
    let p = re(r"(?m)^\s*\[ (\+|-) \]\s+(.+)$");
    for c in p.captures_iter(out) {
        let name = c[2].trim_end_matches('\r').to_string();
        let state = if &c[1] == "+" { "running" } else { "stopped" };
        services.insert(
            name.clone(),
            service(&[
                ("name", Value::from(name)),
                ("state", Value::from(state)),
                ("source", Value::from("sysv")),
            ]),
        );
    }
}

/// `initctl list`'s `NAME GOAL/STATE[, process PID]` lines.
fn parse_upstart(out: &str, services: &mut Services) {
    let p = re(r"^\s?(.*)\s(\w+)/(\w+)(,\sprocess\s([0-9]+))?\s*$");
    for line in out.replace('\r', "").split('\n') {
        let Some(c) = p.captures(line) else {
            continue;
        };
        services.insert(
            c[1].to_string(),
            service(&[
                ("name", Value::from(&c[1])),
                ("state", Value::from(&c[3])),
                ("goal", Value::from(&c[2])),
                ("source", Value::from("upstart")),
            ]),
        );
    }
}

/// The 7-runlevel pattern of `chkconfig`'s lines: (name, on in runlevel 3).
fn chkconfig_lines(out: &str) -> Vec<(String, bool)> {
    let p = re(
        r"^(.*?)\s+[0-9]:(on|off)\s+[0-9]:(on|off)\s+[0-9]:(on|off)\s+[0-9]:(on|off)\s+[0-9]:(on|off)\s+[0-9]:(on|off)\s+[0-9]:(on|off)",
    );
    out.split('\n')
        .filter_map(|l| p.captures(l))
        .map(|c| (c[1].to_string(), &c[5] == "on"))
        .collect()
}

/// The `chkconfig` services with their `service NAME status` results.
fn parse_rh(
    lines: &[(String, bool)],
    status: &str,
    services: &mut Services,
    warnings: &mut Vec<String>,
) {
    let results: std::collections::HashMap<&str, (i64, &str)> = status
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            let (n, rc, err) = (f.next()?, f.next()?, f.next().unwrap_or_default());
            Some((n, (rc.parse().ok()?, err)))
        })
        .collect();
    for (name, on) in lines {
        let (rc, err) = results.get(name.as_str()).copied().unwrap_or((1, ""));
        let err = err.to_lowercase();
        let state = if rc == 0 {
            Value::from("running")
        } else if ["root", "permission", "not in sudoers"]
            .iter()
            .any(|x| err.contains(x))
        {
            warnings.push(format!(
                "Insufficient permissions to query sysV service \"{name}\" and their states"
            ));
            Value::from(rc)
        } else {
            Value::from("stopped")
        };
        services.insert(
            name.clone(),
            service(&[
                ("name", Value::from(name.clone())),
                ("state", state),
                (
                    "status",
                    Value::from(if *on { "enabled" } else { "disabled" }),
                ),
                ("source", Value::from("sysv")),
            ]),
        );
    }
}

/// `rc-status` and `rc-update show -v`, separated by a `\x1e` line.
fn parse_openrc(out: &str, services: &mut Services, warnings: &mut Vec<String>) {
    let (status, update) = out.split_once("\u{1e}\n").unwrap_or((out, ""));
    let mut runlevels: std::collections::HashMap<String, Value> = Default::default();
    for line in update.split('\n') {
        let d: Vec<&str> = line.split('|').collect();
        if d.len() < 2 {
            continue;
        }
        let levels = d[1].trim();
        runlevels.insert(
            d[0].trim().to_string(),
            if levels.is_empty() {
                Value::Null
            } else {
                Value::from(levels.split_whitespace().collect::<Vec<_>>())
            },
        );
    }
    for line in status.split('\n') {
        let d: Vec<&str> = line.split_whitespace().collect();
        if d.len() < 2 || d[0] == "*" {
            continue;
        }
        let Some(levels) = runlevels.get(d[0]) else {
            warnings.push(format!("Service {} not found in the service list", d[0]));
            continue;
        };
        services.insert(
            d[0].to_string(),
            service(&[
                ("name", Value::from(d[0])),
                ("runlevels", levels.clone()),
                ("state", Value::from(d[1])),
                ("source", Value::from("openrc")),
            ]),
        );
    }
}

/// Load and active states that `list-units` may show in place of the real one.
const BAD_STATES: &[&str] = &["not-found", "masked", "failed"];

/// systemd's services: `list-units`, then `list-unit-files` (with `states` for the unit files
/// that had no unit), as Ansible's `SystemctlScanService` reads them.
fn parse_systemd(
    units: &Output,
    files: &Output,
    states: &str,
    services: &mut Services,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    if units.success() {
        for line in units
            .stdout_lossy()
            .split('\n')
            .filter(|l| l.contains(".service"))
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            let but_last = &f[..f.len().saturating_sub(1)];
            let status = match BAD_STATES.iter().find(|b| but_last.contains(b)) {
                Some(b) => b.to_string(),
                None => f.get(2).copied().unwrap_or_default().to_string(),
            };
            let state = if f.get(3) == Some(&"running") {
                "running"
            } else {
                "stopped"
            };
            let name = f.first().copied().unwrap_or_default().to_string();
            services.insert(
                name.clone(),
                service(&[
                    ("name", Value::from(name)),
                    ("state", Value::from(state)),
                    ("status", Value::from(status)),
                    ("source", Value::from("systemd")),
                ]),
            );
        }
    } else {
        warnings.push(format!(
            "Could not list units from systemd: {}",
            units.stderr_lossy()
        ));
    }
    if !files.success() {
        warnings.push(format!(
            "Could not get unit files data from systemd: {}",
            files.stderr_lossy()
        ));
        return Ok(());
    }
    let shown: std::collections::HashMap<&str, (i64, &str)> = states
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            let (n, rc, out) = (f.next()?, f.next()?, f.next().unwrap_or_default());
            Some((n, (rc.parse().ok()?, out)))
        })
        .collect();
    for line in files
        .stdout_lossy()
        .split('\n')
        .filter(|l| l.contains(".service"))
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [name, status, ..] = f.as_slice() else {
            return Err(format!(
                "Malformed output discovered from systemd list-unit-files: {line}"
            ));
        };
        match services.get_mut(*name) {
            None => {
                let state = match shown.get(name) {
                    Some((0, out)) if !out.is_empty() => {
                        out.replace("ActiveState=", "").trim_end().to_string()
                    }
                    _ => "unknown".to_string(),
                };
                services.insert(
                    name.to_string(),
                    service(&[
                        ("name", Value::from(*name)),
                        ("state", Value::from(state)),
                        ("status", Value::from(*status)),
                        ("source", Value::from("systemd")),
                    ]),
                );
            }
            Some(Value::Object(s)) => {
                let bad = s
                    .get("status")
                    .and_then(Value::as_str)
                    .is_some_and(|v| BAD_STATES.contains(&v));
                if !bad {
                    s.insert("status".into(), Value::from(*status));
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}

async fn check(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let ServiceFactsArgs {} = ServiceFactsArgs::parse(args)?;
    let outs = run_batch(tr, ctx, &commands(), KEEP).await?;
    let [probe, sysv, upstart, chk, openrc, units, files, states] = outs.as_slice() else {
        return Err(failed("the host returned fewer outputs than asked"));
    };
    for o in &outs {
        if o.truncated.stdout > 0 {
            return Err(failed(format!(
                "the host's service listing is too long to read (more than {} bytes)",
                2 * KEEP
            )));
        }
    }
    let probe = probe.stdout_lossy();
    let has = |p: &str| probe.lines().any(|l| l == p);
    let mut services = Services::new();
    let mut warnings = Vec::new();
    // ServiceScanService.
    if sysv.status != 127 {
        let missing_init_d = sysv.status == 4 && !has("init.d");
        if !missing_init_d {
            if sysv.status != 0 {
                warnings.push(format!(
                    "Unable to query 'service' tool ({}): {}",
                    sysv.status,
                    sysv.stderr_lossy()
                ));
            }
            parse_sysv(&sysv.stdout_lossy(), &mut services);
        }
    }
    if upstart.status != 127 {
        if upstart.success() {
            parse_upstart(&upstart.stdout_lossy(), &mut services);
        } else {
            warnings.push(format!(
                "Unable to query upstart for service data: {}",
                upstart.stderr_lossy()
            ));
        }
    } else if chk.status != 127 {
        let lines = chkconfig_lines(&chk.stdout_lossy());
        let status = if lines.is_empty() {
            String::new()
        } else {
            let cmd = Cmd::raw(PRELUDE)
                .op("set --")
                .args(lines.iter().map(|(n, _)| n.clone()))
                .op(";")
                .op(RH_STATUS);
            let mut o = run_batch(tr, ctx, &[cmd], KEEP).await?;
            o.pop()
                .map(|o| o.stdout_lossy().into_owned())
                .unwrap_or_default()
        };
        parse_rh(&lines, &status, &mut services, &mut warnings);
    } else if openrc.status != 127 {
        parse_openrc(&openrc.stdout_lossy(), &mut services, &mut warnings);
    }
    // SystemctlScanService: its entries replace the others'.
    if units.status != 127 {
        let mut sd = Services::new();
        parse_systemd(units, files, &states.stdout_lossy(), &mut sd, &mut warnings)
            .map_err(failed)?;
        services.extend(sd);
    }
    let mut r = if services.is_empty() {
        result([
            ("skipped", Value::from(true)),
            (
                "msg",
                Value::from(
                    "Failed to find any services. This can be due to privileges or some other configuration issue.",
                ),
            ),
        ])
    } else {
        let mut facts = Map::new();
        facts.insert("services".into(), Value::Object(services));
        result([("ansible_facts", Value::Object(facts))])
    };
    r.insert("changed".into(), Value::from(false));
    if !warnings.is_empty() {
        r.insert("warnings".into(), Value::from(warnings));
    }
    Ok(Verdict::InSync { result: r })
}

crate::read_only_facts_module!(ServiceFacts, "service_facts", &["services"], check);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn out(status: i32, stdout: &str) -> Output {
        Output {
            status,
            stdout: stdout.as_bytes().to_vec(),
            ..Output::default()
        }
    }

    #[test]
    fn systemd_units_then_unit_files_as_ansible_reads_them() {
        let units = "UNIT LOAD ACTIVE SUB DESCRIPTION\n\
            ssh.service loaded active running OpenBSD Secure Shell server\n\
            cron.service loaded inactive dead Regular background program processing daemon\n\
            bad.service not-found inactive dead bad.service\n\
            crashy.service loaded failed failed Crashy\n\
            \n\
            LOAD   = Reflects whether the unit definition was properly loaded.\n\
            4 loaded units listed.\n";
        let files = "UNIT FILE STATE VENDOR PRESET\n\
            ssh.service enabled enabled\n\
            cron.service disabled enabled\n\
            crashy.service enabled enabled\n\
            getty@.service enabled enabled\n\
            rescue.service static -\n\
            \n\
            5 unit files listed.\n";
        let states = "getty@.service\t1\t\nrescue.service\t0\tActiveState=inactive\n";
        let mut s = Services::new();
        let mut w = Vec::new();
        parse_systemd(&out(0, units), &out(0, files), states, &mut s, &mut w).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            Value::Object(s),
            json!({
                "ssh.service": {"name": "ssh.service", "state": "running", "status": "enabled", "source": "systemd"},
                "cron.service": {"name": "cron.service", "state": "stopped", "status": "disabled", "source": "systemd"},
                "bad.service": {"name": "bad.service", "state": "stopped", "status": "not-found", "source": "systemd"},
                "crashy.service": {"name": "crashy.service", "state": "stopped", "status": "failed", "source": "systemd"},
                "getty@.service": {"name": "getty@.service", "state": "unknown", "status": "enabled", "source": "systemd"},
                "rescue.service": {"name": "rescue.service", "state": "inactive", "status": "static", "source": "systemd"},
            })
        );
        // list-units failing is a warning; the unit files are still read.
        let mut s = Services::new();
        parse_systemd(&out(1, ""), &out(0, files), states, &mut s, &mut w).unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(w.len(), 1);
        let e = parse_systemd(&out(0, ""), &out(0, "lonely.service\n"), "", &mut s, &mut w);
        assert_eq!(
            e.unwrap_err(),
            "Malformed output discovered from systemd list-unit-files: lonely.service"
        );
    }

    #[test]
    fn sysv_upstart_chkconfig_and_openrc_lines() {
        let mut s = Services::new();
        let mut w = Vec::new();
        parse_sysv(" [ + ]  ssh\n [ - ]  cron\n [ ? ]  hwclock.sh\n", &mut s);
        parse_upstart(
            "tty1 start/running, process 1234\nrc stop/waiting\n",
            &mut s,
        );
        let lines = chkconfig_lines(
            "Note: This output shows SysV services only.\n\nnetconsole     \t0:off\t1:off\t2:off\t3:on\t4:off\t5:off\t6:off\nnetwork 0:off 1:off 2:on 3:off 4:on 5:on 6:off\n",
        );
        assert_eq!(
            lines,
            [
                ("netconsole".to_string(), true),
                ("network".to_string(), false)
            ]
        );
        parse_rh(
            &lines,
            "netconsole\t0\t\nnetwork\t4\tyou must be root\n",
            &mut s,
            &mut w,
        );
        parse_openrc(
            " sshd started\n * x\n crond stopped\n\u{1e}\n sshd | default\n crond |\n",
            &mut s,
            &mut w,
        );
        assert_eq!(
            Value::Object(s),
            json!({
                "ssh": {"name": "ssh", "state": "running", "source": "sysv"},
                "cron": {"name": "cron", "state": "stopped", "source": "sysv"},
                "tty1": {"name": "tty1", "state": "running", "goal": "start", "source": "upstart"},
                "rc": {"name": "rc", "state": "waiting", "goal": "stop", "source": "upstart"},
                "netconsole": {"name": "netconsole", "state": "running", "status": "enabled", "source": "sysv"},
                "network": {"name": "network", "state": 4, "status": "disabled", "source": "sysv"},
                "sshd": {"name": "sshd", "runlevels": ["default"], "state": "started", "source": "openrc"},
                "crond": {"name": "crond", "runlevels": null, "state": "stopped", "source": "openrc"},
            })
        );
        assert_eq!(
            w,
            ["Insufficient permissions to query sysV service \"network\" and their states"]
        );
    }
}
