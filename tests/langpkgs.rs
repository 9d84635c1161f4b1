//! End to end on the SSH fleet: the language package managers rdeploy carries natively. `pip`
//! creates a virtualenv under the host's `/srv` with the machine's `python3 -m venv` and
//! installs a wheel the test builds (no network: every pip call is `--no-index` with
//! `--find-links`); `npm` installs a tarball made with `npm pack` in the test. Each: `--check`
//! changes nothing, a run changes, the same run again is ok, `state: absent`, and
//! `rdeploy rollback` puts the host back.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::Sandbox;
use support::fleet::{Fleet, USER};

/// A sandbox with the fleet's inventory as `inv.yaml` and `pb.yaml`.
fn sandbox(fleet: &Fleet, playbook: &str) -> Sandbox {
    let sb = Sandbox::new();
    let known = format!("-o UserKnownHostsFile={}", fleet.known_hosts().display());
    fleet.write_inventory(
        sb.path().join("inv.yaml"),
        json!({ "ansible_ssh_extra_args": known }),
    );
    sb.write("pb.yaml", playbook);
    sb
}

/// `rdeploy ARGS`: (exit code, stdout + stderr).
fn rdeploy(sb: &Sandbox, args: &[&str]) -> (i32, String) {
    let out = sb
        .rdeploy(args)
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(300))
        .output()
        .expect("run rdeploy");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `rdeploy run pb.yaml -i inv.yaml ARGS`, which must succeed: its output.
fn run_ok(sb: &Sandbox, args: &[&str]) -> String {
    let (code, out) = rdeploy(sb, &[&["run", "pb.yaml", "-i", "inv.yaml"], args].concat());
    assert_eq!(code, 0, "{out}");
    out
}

/// The `changed=N` count of the recap.
fn changed(out: &str) -> String {
    out.lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("changed="))
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// The run id `rdeploy run` printed.
fn run_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("run ")?.split_whitespace().next())
        .expect("a run id")
        .to_string()
}

/// Writes a pure-Python wheel `rdeploy_demo-VERSION-py3-none-any.whl` into `dir`: a package
/// `rdeploy_demo` whose `VERSION` is `version`.
fn write_wheel(dir: &Path, version: &str) {
    const MAKE: &str = r#"
import base64, hashlib, os, sys, zipfile
out, version = sys.argv[1], sys.argv[2]
name = "rdeploy_demo"
files = {
    f"{name}/__init__.py": f'VERSION = "{version}"\n',
    f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: rdeploy-demo\nVersion: {version}\n",
    f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: rdeploy-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = f"{name}-{version}.dist-info/RECORD"
lines = []
for p, body in files.items():
    d = base64.urlsafe_b64encode(hashlib.sha256(body.encode()).digest()).rstrip(b"=").decode()
    lines.append(f"{p},sha256={d},{len(body.encode())}")
files[record] = "\n".join(lines + [f"{record},,"]) + "\n"
with zipfile.ZipFile(os.path.join(out, f"{name}-{version}-py3-none-any.whl"), "w") as z:
    for p, body in files.items():
        z.writestr(p, body)
"#;
    std::fs::create_dir_all(dir).unwrap();
    let st = Command::new("python3")
        .args(["-c", MAKE])
        .arg(dir)
        .arg(version)
        .status()
        .expect("python3 builds the wheel");
    assert!(st.success());
}

const PIP_PLAY: &str = r#"
- hosts: all
  gather_facts: no
  tasks:
    - pip:
        name: rdeploy-demo
        version: "{{ demo_version | default('1.0') }}"
        virtualenv: /srv/venv
        virtualenv_command: /usr/bin/python3 -m venv
        extra_args: --no-index --find-links /srv/wheels
"#;

const PIP_ABSENT: &str = r#"
- hosts: all
  gather_facts: no
  tasks:
    - pip:
        name: rdeploy-demo
        state: absent
        virtualenv: /srv/venv
"#;

#[test]
fn pip_installs_into_a_new_virtualenv_offline_checks_again_removes_and_rolls_back() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    write_wheel(&h.path("/srv/wheels"), "1.0");
    write_wheel(&h.path("/srv/wheels"), "2.0");
    let sb = sandbox(&fleet, PIP_PLAY);
    let venv = h.path("/srv/venv");
    let installed = |v: &str| {
        h.path(&format!(
            "/srv/venv/lib/python3.11/site-packages/rdeploy_demo-{v}.dist-info"
        ))
        .is_dir()
    };
    // The machine's python3 is what the fleet host runs.
    assert!(Path::new("/usr/lib/python3.11").is_dir(), "python3.11");

    // --check: predicted, nothing created.
    let out = run_ok(&sb, &["--check"]);
    assert_eq!(changed(&out), "changed=1", "{out}");
    assert!(!venv.exists(), "--check created the virtualenv\n{out}");

    // The run creates the virtualenv and installs 1.0.
    let out = run_ok(&sb, &[]);
    assert_eq!(changed(&out), "changed=1", "{out}");
    assert!(installed("1.0"), "{out}");
    let first = run_id(&out);

    // Again: nothing to do; --check too.
    let out = run_ok(&sb, &[]);
    assert_eq!(changed(&out), "changed=0", "{out}");
    let out = run_ok(&sb, &["--check"]);
    assert_eq!(changed(&out), "changed=0", "{out}");

    // A new version: --check predicts it and changes nothing; the run upgrades.
    let out = run_ok(&sb, &["--check", "-e", "demo_version=2.0"]);
    assert_eq!(changed(&out), "changed=1", "{out}");
    assert!(installed("1.0") && !installed("2.0"), "{out}");
    let out = run_ok(&sb, &["-e", "demo_version=2.0"]);
    assert_eq!(changed(&out), "changed=1", "{out}");
    assert!(installed("2.0") && !installed("1.0"), "{out}");
    let upgrade = run_id(&out);

    // Rolling the upgrade back puts the whole virtualenv back: 1.0 again.
    let (code, out) = rdeploy(&sb, &["rollback", &upgrade, "-i", "inv.yaml"]);
    assert_eq!(code, 0, "{out}");
    assert!(installed("1.0") && !installed("2.0"), "{out}");
    let out = run_ok(&sb, &[]);
    assert_eq!(changed(&out), "changed=0", "{out}");

    // state: absent removes it, then is ok.
    sb.write("pb.yaml", PIP_ABSENT);
    let out = run_ok(&sb, &[]);
    assert_eq!(changed(&out), "changed=1", "{out}");
    assert!(
        !installed("1.0") && venv.join("bin/python").exists(),
        "{out}"
    );
    let out = run_ok(&sb, &[]);
    assert_eq!(changed(&out), "changed=0", "{out}");

    // Rolling the first run back removes the virtualenv it created.
    let (code, out) = rdeploy(&sb, &["rollback", &first, "-i", "inv.yaml", "--force"]);
    assert_eq!(code, 0, "{out}");
    assert!(!venv.exists(), "{out}");
}

/// `npm pack` of a one-file package `rdeploy-demo` 1.0.0 into `dir`.
fn write_npm_tarball(dir: &Path) {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("package.json"),
        r#"{"name": "rdeploy-demo", "version": "1.0.0", "main": "index.js"}"#,
    )
    .unwrap();
    std::fs::write(src.path().join("index.js"), "module.exports = 1;\n").unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let st = Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(dir)
        .current_dir(src.path())
        .output()
        .expect("npm pack");
    assert!(st.status.success(), "{st:?}");
    assert!(dir.join("rdeploy-demo-1.0.0.tgz").is_file());
}

const NPM_PLAY: &str = r#"
- hosts: all
  gather_facts: no
  environment:
    npm_config_offline: "true"
    npm_config_audit: "false"
    npm_config_fund: "false"
    npm_config_update_notifier: "false"
  tasks:
    - npm:
        path: /srv/app
"#;

const NPM_ABSENT: &str = r#"
- hosts: all
  gather_facts: no
  environment:
    npm_config_offline: "true"
    npm_config_audit: "false"
  tasks:
    - npm:
        name: rdeploy-demo
        path: /srv/app
        state: absent
"#;

#[test]
fn npm_installs_a_projects_packed_dependency_offline_removes_it_and_rolls_back() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    write_npm_tarball(&h.path("/srv/pkgs"));
    std::fs::create_dir_all(h.path("/srv/app")).unwrap();
    let manifest = r#"{"name": "app", "version": "1.0.0", "dependencies": {"rdeploy-demo": "file:/srv/pkgs/rdeploy-demo-1.0.0.tgz"}}"#;
    std::fs::write(h.path("/srv/app/package.json"), manifest).unwrap();
    // The project belongs to the user the host logs in as.
    let st = Command::new("chown")
        .args(["-R", &format!("{USER}:")])
        .arg(h.path("/srv/app"))
        .status()
        .unwrap();
    assert!(st.success());
    let sb = sandbox(&fleet, NPM_PLAY);
    let module = h.path("/srv/app/node_modules/rdeploy-demo/index.js");

    let out = run_ok(&sb, &["--check"]);
    assert_eq!(changed(&out), "changed=1", "{out}");
    assert!(!h.path("/srv/app/node_modules").exists(), "{out}");

    let out = run_ok(&sb, &[]);
    assert_eq!(changed(&out), "changed=1", "{out}");
    assert!(module.is_file(), "{out}");
    let out = run_ok(&sb, &[]);
    assert_eq!(changed(&out), "changed=0", "{out}");

    // state: absent removes it (npm also drops it from package.json), then is ok.
    sb.write("pb.yaml", NPM_ABSENT);
    let out = run_ok(&sb, &["--check"]);
    assert_eq!(changed(&out), "changed=1", "{out}");
    assert!(module.is_file(), "{out}");
    let out = run_ok(&sb, &[]);
    assert_eq!(changed(&out), "changed=1", "{out}");
    assert!(!module.exists(), "{out}");
    let removal = run_id(&out);
    let out = run_ok(&sb, &[]);
    assert_eq!(changed(&out), "changed=0", "{out}");

    // Rollback puts node_modules and package.json back.
    let (code, out) = rdeploy(&sb, &["rollback", &removal, "-i", "inv.yaml"]);
    assert_eq!(code, 0, "{out}");
    assert!(module.is_file(), "{out}");
    assert_eq!(
        std::fs::read_to_string(h.path("/srv/app/package.json")).unwrap(),
        manifest
    );
}
