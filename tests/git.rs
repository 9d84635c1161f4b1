//! End to end on the sshd fleet: the native `git` module against a bare repository made on the
//! host by the host's user. A clone is a change, the same run again is ok, a new commit is a
//! change with `before`/`after`, `--check` changes nothing, `rdeploy rollback` puts the
//! previous checkout back (or removes the clone), a local modification fails with Ansible's
//! message unless `force`; ansible-playbook (the oracle `$RDEPLOY_ANSIBLE_PLAYBOOK`) reports the
//! same on the same host.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Sandbox;
use support::fleet::{Fleet, Host};
use support::oracle::{ansible_plain, fleet_sandbox_with, rollback_id};

const PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: no
  tasks:
    - git:
        repo: /srv/origin.git
        dest: "{{ dest }}"
        version: "{{ version | default('HEAD') }}"
        force: "{{ force | default(false) }}"
      register: r
    - debug: var=r
"#;

/// Runs `script` on the host as its user; its trimmed stdout.
fn on_host(fleet: &Fleet, h: &Host, script: &str) -> String {
    let out = fleet.ssh(h, script).output().expect("ssh");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Commits `text` as `app.txt` in the host's `/srv/work` and pushes it; the new commit id.
fn commit(fleet: &Fleet, h: &Host, text: &str) -> String {
    on_host(
        fleet,
        h,
        &format!(
            "cd /srv/work && printf '%s\\n' '{text}' > app.txt && git add app.txt && \
             git -c user.name=t -c user.email=t@example.org commit -q -m '{text}' && \
             git push -q origin HEAD:main && git rev-parse HEAD"
        ),
    )
}

/// What one `rdeploy run` reported: exit code, the git task's status and result, the run id.
struct Ran {
    code: i32,
    status: String,
    result: Value,
    run_id: String,
}

fn rdeploy(sb: &Sandbox, extra: &[&str]) -> Ran {
    let args = [
        &["run", "pb.yaml", "-i", "inv.yaml", "--output", "json"],
        extra,
    ]
    .concat();
    let out = sb
        .rdeploy(&args)
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run rdeploy");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let events: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let first = events
        .iter()
        .find(|e| e["event"] == "result")
        .unwrap_or_else(|| {
            panic!(
                "no result: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    Ran {
        code: out.status.code().unwrap_or(-1),
        status: first["result"]["status"].as_str().unwrap_or("").to_string(),
        result: first["result"]["result"].clone(),
        run_id: events
            .iter()
            .find_map(|e| e["run_id"].as_str().map(str::to_string))
            .unwrap_or_default(),
    }
}

fn rollback(sb: &Sandbox, run_id: &str) {
    rollback_id(sb, run_id, &["--force"]);
}

/// ansible-playbook's `ok`/`changed`/`failed` for the git task and what `debug: var=r` (or the
/// failure) printed.
fn ansible(sb: &Sandbox, extra: &[&str]) -> (String, Value) {
    let out = ansible_plain(sb, extra);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with("TASK [git]"));
    let status_line = lines
        .find(|l| l.starts_with("ok:") || l.starts_with("changed:") || l.starts_with("fatal:"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let status = status_line
        .split(':')
        .next()
        .unwrap_or("")
        .replace("fatal", "failed");
    if let Some((_, json)) = status_line.split_once("=> ") {
        return (status, serde_json::from_str(json).expect("ansible's JSON"));
    }
    let mut text = String::new();
    let mut body = lines.skip_while(|l| !l.ends_with("=> {"));
    body.next();
    text.push('{');
    for l in body {
        text.push_str(l);
        if l == "}" {
            break;
        }
    }
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (status, v["r"].clone())
}

#[test]
fn git_clones_updates_checks_rolls_back_and_refuses_local_changes_as_ansible() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    on_host(
        &fleet,
        h,
        "git init -q --bare -b main /srv/origin.git && git init -q -b main /srv/work && \
         cd /srv/work && git remote add origin /srv/origin.git",
    );
    let c1 = commit(&fleet, h, "v1");
    let sb = fleet_sandbox_with(&fleet, PLAYBOOK);
    let app = |rel: &str| fleet.host(0).path(&format!("/srv/app/{rel}"));
    let head = || on_host(&fleet, h, "git -C /srv/app rev-parse HEAD");
    let dest = ["-e", "dest=/srv/app"];

    // Clone: changed, before null, after the remote's commit.
    let r = rdeploy(&sb, &dest);
    assert_eq!((r.code, r.status.as_str()), (0, "changed"), "{}", r.result);
    assert_eq!(r.result["before"], Value::Null);
    assert_eq!(r.result["after"], json!(c1));
    assert_eq!(std::fs::read_to_string(app("app.txt")).unwrap(), "v1\n");
    let cloned = r.run_id;

    // Again: ok.
    let r = rdeploy(&sb, &dest);
    assert_eq!((r.code, r.status.as_str()), (0, "ok"), "{}", r.result);
    assert_eq!(r.result["after"], json!(c1));

    // A new commit: --check says changed and changes nothing; the run moves before → after.
    let c2 = commit(&fleet, h, "v2");
    let r = rdeploy(&sb, &[&dest[..], &["--check"]].concat());
    assert_eq!((r.code, r.status.as_str()), (0, "changed"), "{}", r.result);
    assert_eq!(head(), c1);
    let r = rdeploy(&sb, &dest);
    assert_eq!((r.code, r.status.as_str()), (0, "changed"), "{}", r.result);
    assert_eq!(
        (&r.result["before"], &r.result["after"]),
        (&json!(c1), &json!(c2))
    );
    assert_eq!(std::fs::read_to_string(app("app.txt")).unwrap(), "v2\n");

    // Rolling that run back puts the previous checkout back; rolling the clone back removes it.
    rollback(&sb, &r.run_id);
    assert_eq!(head(), c1);
    assert_eq!(std::fs::read_to_string(app("app.txt")).unwrap(), "v1\n");
    rollback(&sb, &cloned);
    assert!(!app("").exists(), "the clone is still there");

    // A tracked file changed by hand fails as Ansible says, unless force.
    let r = rdeploy(&sb, &[&dest[..], &["-e", "version=main"]].concat());
    assert_eq!(r.status, "changed", "{}", r.result);
    std::fs::write(app("app.txt"), "by hand\n").unwrap();
    let r = rdeploy(&sb, &dest);
    assert_eq!((r.code, r.status.as_str()), (2, "failed"), "{}", r.result);
    assert_eq!(
        r.result["msg"],
        "Local modifications exist in the destination: /srv/app (force=no)."
    );
    let r = rdeploy(&sb, &[&dest[..], &["-e", "force=true"]].concat());
    assert_eq!((r.code, r.status.as_str()), (0, "changed"), "{}", r.result);
    assert_eq!(std::fs::read_to_string(app("app.txt")).unwrap(), "v2\n");

    // ansible-playbook on the same repository, into a checkout of its own.
    let theirs = ["-e", "dest=/srv/app-ansible"];
    let (status, r) = ansible(&sb, &theirs);
    assert_eq!(status, "changed", "{r}");
    assert_eq!((&r["before"], &r["after"]), (&Value::Null, &json!(c2)));
    let (status, r) = ansible(&sb, &theirs);
    assert_eq!(status, "ok", "{r}");
    assert_eq!(r["remote_url_changed"], json!(false));
    let c3 = commit(&fleet, h, "v3");
    let (status, r) = ansible(&sb, &theirs);
    assert_eq!(status, "changed", "{r}");
    assert_eq!((&r["before"], &r["after"]), (&json!(c2), &json!(c3)));
    std::fs::write(fleet.host(0).path("/srv/app-ansible/app.txt"), "by hand\n").unwrap();
    let (status, r) = ansible(&sb, &theirs);
    assert_eq!(status, "failed", "{r}");
    assert_eq!(
        r["msg"],
        "Local modifications exist in the destination: /srv/app-ansible (force=no)."
    );
    // rdeploy agrees on the checkout Ansible made: after a forced run both are at c3, in sync.
    let r = rdeploy(&sb, &[&theirs[..], &["-e", "force=true"]].concat());
    assert_eq!(
        (r.status.as_str(), &r.result["after"]),
        ("changed", &json!(c3))
    );
    let r = rdeploy(&sb, &theirs);
    assert_eq!(r.status, "ok", "{}", r.result);
    let (status, _) = ansible(&sb, &theirs);
    assert_eq!(status, "ok");
}
