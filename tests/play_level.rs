//! End to end: what is settled once per play before any host is touched (issue 12, "Which
//! values are templates"): templated play keywords, templated `vars_files` names, and
//! `vars_prompt` asked on a real pseudo-terminal. Expected batches and values are what
//! ansible-playbook 2.19 prints for the same playbooks.

mod support;

use std::path::Path;

const TWO_HOSTS: &str = "all:\n  hosts:\n    h1: {ansible_connection: local, hv: 1}\n    h2: {ansible_connection: local}\n";

fn run(dir: &Path, files: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut all = vec![("inv.yaml", TWO_HOSTS)];
    all.extend_from_slice(files);
    support::run_local(dir, &all, args, &[])
}

#[test]
fn templated_hosts_serial_and_max_fail_percentage_were_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "- hosts: \"{{ target | default('all') }}\"\n  gather_facts: false\n  serial: \"{{ n }}\"\n  vars: {mf: 10, n: 1}\n  max_fail_percentage: \"{{ mf }}\"\n  tasks:\n    - debug: {msg: \"{{ ansible_play_batch }}\"}\n";
    let (code, out, err) = run(dir.path(), &[("pb.yaml", pb)], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PLAY [all]"), "{out}");
    assert!(out.contains(r#"ok: [h1] => {"msg":["h1"]}"#), "{out}");
    assert!(out.contains(r#"ok: [h2] => {"msg":["h2"]}"#), "{out}");
    // -e wins over play vars, and a list form renders item by item.
    let pb2 = "- hosts: \"{{ target }}\"\n  gather_facts: false\n  serial: [\"{{ first }}\", \"100%\"]\n  vars: {first: 1}\n  tasks:\n    - debug: {msg: \"{{ ansible_play_batch | length }}\"}\n";
    let (code, out, err) = run(dir.path(), &[("pb.yaml", pb2)], &["-e", "target=h2"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PLAY [h2]") && !out.contains("[h1]"), "{out}");
}

#[test]
fn templated_play_keywords_with_bad_values_name_the_keyword_before_any_host() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "- hosts: all\n  gather_facts: false\n  serial: \"{{ hv }}\"\n  vars: {mf: 150}\n  max_fail_percentage: \"{{ mf }}\"\n  soak: \"{{ '3x' }}\"\n  probe: {retries: \"{{ -1 }}\"}\n  tasks:\n    - file: {path: \"{{ playbook_dir }}/touched\", state: touch}\n";
    let (code, out, err) = run(dir.path(), &[("pb.yaml", pb)], &[]);
    assert_eq!(code, 4, "{out}{err}");
    // `hv` is an inventory variable: ansible-playbook does not have it there either.
    assert!(
        err.contains("pb.yaml:3:11: error: 'hv' is undefined"),
        "{err}"
    );
    assert!(
        err.contains("inventory variables and facts are not defined there"),
        "{err}"
    );
    assert!(
        err.contains("pb.yaml:5:24: error: 'max_fail_percentage' must be a percentage between 0 and 100, found '150'"),
        "{err}"
    );
    assert!(
        err.contains("pb.yaml:6:9: error: invalid duration '3x' for 'soak'"),
        "{err}"
    );
    assert!(
        err.contains("pb.yaml:7:20: error: 'retries' must be a non-negative integer, found '-1'"),
        "{err}"
    );
    assert!(!dir.path().join("touched").exists());
}

#[test]
fn templated_vars_files_names_were_silently_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("vars/prod.yml", "color: blue\n"),
        ("vars/default.yml", "shape: round\n"),
        (
            "pb.yaml",
            "- hosts: h1\n  gather_facts: false\n  vars: {env: prod}\n  vars_files:\n    - \"vars/{{ env }}.yml\"\n    - [\"vars/{{ flavour | default('none') }}.yml\", vars/default.yml]\n  tasks:\n    - debug: {msg: \"{{ color }} {{ shape }}\"}\n",
        ),
    ];
    let (code, out, err) = run(dir.path(), &files, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(r#"{"msg":"blue round"}"#), "{out}");
    // A name that renders to no file is an error at the entry.
    let (code, out, err) = run(dir.path(), &files, &["-e", "env=staging"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains("pb.yaml:5:7: error: vars file 'vars/staging.yml' not found (rendered from 'vars/{{ env }}.yml')"),
        "{err}"
    );
}

#[test]
fn play_level_timeout_was_refused_and_applies_to_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "- hosts: h1\n  gather_facts: false\n  vars: {t: 1}\n  timeout: \"{{ t }}\"\n  tasks:\n    - command: sleep 5\n";
    let (code, out, err) = run(dir.path(), &[("pb.yaml", pb)], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("timed out after 1s"), "{out}");
}

/// Runs `rdeploy run pb.yaml` in `dir` on a pseudo-terminal (python3's pty module), answering
/// each (question, reply) in turn; returns everything the terminal showed.
fn on_terminal(dir: &Path, dialogue: &[(&str, &str)]) -> String {
    on_terminal_with(dir, &[], dialogue)
}

/// [`on_terminal`] with more arguments to `rdeploy run`.
fn on_terminal_with(dir: &Path, extra: &[&str], dialogue: &[(&str, &str)]) -> String {
    let script = r#"
import os, pty, select, sys, time
steps = [(sys.argv[i], sys.argv[i + 1]) for i in range(2, len(sys.argv), 2)]
pid, fd = pty.fork()
if pid == 0:
    extra = os.environ["RDEPLOY_TEST_EXTRA"].split()
    os.execv(sys.argv[1], [sys.argv[1], "run", "pb.yaml", "-i", "inv.yaml"] + extra)
out = b""
def read(until, seen):
    global out
    end = time.time() + 20
    while time.time() < end:
        if out.count(until) > seen:
            return
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            out += data
for q, a in steps:
    read(q.encode(), out.count(q.encode()))
    # The question is written before the terminal's echo is turned off, which discards
    # input typed too early (TCSAFLUSH): give it that moment, as a person would.
    time.sleep(0.5)
    os.write(fd, a.encode() + b"\r")
read(b"PLAY RECAP", 0)
read(b"journal.jsonl", 0)
for _ in range(100):
    if os.waitpid(pid, os.WNOHANG)[0]:
        break
    time.sleep(0.1)
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
"#;
    let bin = assert_cmd::cargo::cargo_bin("rdeploy");
    let mut cmd = std::process::Command::new("python3");
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env("RDEPLOY_STATE_DIR", dir.join("state"))
        .env("RDEPLOY_TEST_EXTRA", extra.join(" "))
        .arg("-c")
        .arg(script)
        .arg(bin);
    for (q, a) in dialogue {
        cmd.arg(q).arg(a);
    }
    let out = cmd.output().expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn vars_prompt_on_a_terminal_was_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inv.yaml"), TWO_HOSTS).unwrap();
    let pb = "- hosts: \"{{ where }}\"\n  gather_facts: false\n  vars_prompt:\n    - name: rel\n      prompt: Which release?\n      confirm: true\n    - name: where\n      prompt: Where\n      private: false\n      default: h1\n  tasks:\n    - debug: {msg: \"{{ rel }} on {{ where }}\"}\n";
    std::fs::write(dir.path().join("pb.yaml"), pb).unwrap();
    let shown = on_terminal(
        dir.path(),
        &[
            ("Which release?: ", "s3cret1"),
            ("confirm Which release?: ", "other"),
            ("Which release?: ", "v3"),
            ("confirm Which release?: ", "v3"),
            ("Where [h1]: ", ""),
        ],
    );
    assert!(
        shown.contains("***** VALUES ENTERED DO NOT MATCH ****"),
        "{shown}"
    );
    // `private` is the default: what was typed is not echoed; the empty reply takes the default.
    assert!(!shown.contains("s3cret1"), "{shown}");
    assert!(
        shown.contains(r#"ok: [h1] => {"msg":"v3 on h1"}"#),
        "{shown}"
    );
    assert!(!shown.contains("[h2]"), "{shown}");
    // An echoed prompt shows what is typed, and the reply is used.
    let shown = on_terminal(
        dir.path(),
        &[
            ("Which release?: ", "v4"),
            ("confirm Which release?: ", "v4"),
            ("Where [h1]: ", "h2"),
        ],
    );
    assert!(shown.contains("Where [h1]: h2"), "{shown}");
    assert!(
        shown.contains(r#"ok: [h2] => {"msg":"v4 on h2"}"#),
        "{shown}"
    );
    // Without a terminal: the precise error, before any host.
    let (code, out, err) = support::run_local(dir.path(), &[], &[], &[]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains("pb.yaml:4:7: error: vars_prompt 'rel' has no default and no -e value"),
        "{err}"
    );
}

#[test]
fn become_and_timeout_templates_with_bad_values_were_silently_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "- hosts: h1\n  gather_facts: false\n  vars: {b: false}\n  become: \"{{ b }}\"\n  tasks:\n    - command: \"true\"\n    - command: \"true\"\n      become: \"{{ nb }}\"\n      vars: {nb: maybe}\n      ignore_errors: true\n    - command: \"true\"\n      timeout: \"{{ t }}\"\n      vars: {t: soon}\n";
    let (code, out, err) = run(dir.path(), &[("pb.yaml", pb)], &[]);
    assert_eq!(code, 2, "{out}{err}");
    // ansible-playbook 2.19: "Error processing keyword 'become': The value 'maybe' could not
    // be converted to 'bool'." on that task (ignored, which counts as ok as well).
    assert!(
        out.contains("become (pb.yaml:8:15): 'maybe' is not a boolean"),
        "{out}"
    );
    assert!(
        out.contains(r#"timeout (pb.yaml:12:16): expected a number of seconds, found \"soon\""#),
        "{out}"
    );
    assert_eq!(
        support::recap_line(&out),
        "h1 : ok=2 changed=1 unreachable=0 failed=1 skipped=0 rescued=0 ignored=1"
    );
}

#[test]
fn templated_rollout_keywords_were_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Typed fields (status, max_latency, probe settings, soak, rollback_scope) are rendered
    // with the play's variables before the run; the probe's command stays a per-host template.
    let pb = "- hosts: h1\n  gather_facts: false\n  vars: {code: 200, lat: 2s, s: 0s}\n  soak: \"{{ s }}\"\n  probe: {retries: \"{{ 0 }}\", timeout: \"{{ lat }}\"}\n  rollback_scope: \"{{ 'all' }}\"\n  on_failure: halt\n  health:\n    - command: \"test {{ inventory_hostname }} = h1\"\n    - http: \"http://127.0.0.1:1/{{ inventory_hostname }}\"\n      status: [\"{{ code }}\"]\n      max_latency: \"{{ lat }}\"\n  tasks:\n    - debug: {msg: hi}\n";
    let (code, out, err) = run(dir.path(), &[("pb.yaml", pb)], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("ok: [h1] => command test h1 = h1: exit 0 (1 try)"),
        "{out}"
    );
    assert!(
        out.contains("http http://127.0.0.1:1/h1: connection refused (1 try)"),
        "{out}"
    );
}

/// `pause` without a time, as ansible-playbook 2.19 runs it: on a terminal it asks once per
/// batch (not once per host) and registers what was typed on the host that ran it; without a
/// terminal it warns and goes on at once (the reply empty).
#[test]
fn pause_with_a_prompt_was_refused_and_asks_once_per_batch_or_warns_without_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inv.yaml"), TWO_HOSTS).unwrap();
    let pb = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: Canary gate\n      pause:\n        prompt: Canary ok? type yes\n      register: gate\n    - debug: {msg: \"reply={{ gate.user_input }} {{ gate.stdout }}\"}\n      when: gate is defined\n    - fail: {msg: stopped}\n      when: gate is defined and gate.user_input != 'yes'\n";
    std::fs::write(dir.path().join("pb.yaml"), pb).unwrap();
    let shown = on_terminal(dir.path(), &[("Canary ok? type yes:", "yes")]);
    assert_eq!(shown.matches("Canary ok? type yes:").count(), 1, "{shown}");
    assert!(shown.contains("[Canary gate]"), "{shown}");
    assert!(
        shown.contains(r#"ok: [h1] => {"msg":"reply=yes Paused for "#),
        "{shown}"
    );
    // As in Ansible, the result is the host's that ran it: h2 has no `gate`.
    assert!(shown.contains("skipping: [h2]"), "{shown}");
    assert!(!shown.contains("FAILED!"), "{shown}");

    let (code, out, err) = support::run_local(dir.path(), &[("inv.yaml", TWO_HOSTS)], &[], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("[WARNING]: Not waiting for response to prompt as stdin is not interactive"),
        "{out}"
    );
    assert!(
        out.contains(r#"ok: [h1] => {"msg":"reply= Paused for 0.0 minutes"}"#),
        "{out}"
    );
    assert!(
        out.contains("fatal: [h1]: FAILED! => {\"msg\":\"stopped\"}"),
        "{out}"
    );
}

/// Ctrl-C, a signal or the deadline end a pause at once, timed or asking, and stop the run
/// (the next task does not run); they used to wait out a timed pause until `--stop-grace` and
/// forced the exit, and a signal while the question was asked left rdeploy waiting for the
/// terminal's reply forever.
#[test]
fn a_signal_or_the_deadline_ends_a_pause_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("inv.yaml"), TWO_HOSTS).unwrap();
    let pb = |pause: &str| {
        format!(
            "- hosts: h1\n  gather_facts: false\n  tasks:\n    - file: {{path: '{d}/before', state: touch}}\n    - pause: {pause}\n    - file: {{path: '{d}/after', state: touch}}\n"
        )
    };
    // On the terminal: Ctrl-C typed while the question waits; then the deadline.
    std::fs::write(dir.path().join("pb.yaml"), pb("{prompt: Go on?}")).unwrap();
    let began = std::time::Instant::now();
    let shown = on_terminal_with(dir.path(), &["--stop-grace", "20s"], &[("Go on?:", "\x03")]);
    assert!(began.elapsed().as_secs() < 15, "{shown}");
    assert!(
        shown.contains("pause interrupted: the run is stopping"),
        "{shown}"
    );
    assert!(shown.contains("interrupted by SIGINT"), "{shown}");
    assert!(!dir.path().join("after").exists());
    let began = std::time::Instant::now();
    let shown = on_terminal_with(
        dir.path(),
        &["--deadline", "3s", "--stop-grace", "20s"],
        &[],
    );
    assert!(began.elapsed().as_secs() < 15, "{shown}");
    assert!(shown.contains("Go on?:"), "{shown}");
    assert!(
        shown.contains("pause interrupted: the run is stopping"),
        "{shown}"
    );
    assert!(!dir.path().join("after").exists());

    // A timed pause, no terminal: SIGTERM ends it at once, not after --stop-grace.
    std::fs::write(dir.path().join("pb.yaml"), pb("{minutes: 5}")).unwrap();
    let _ = std::fs::remove_file(dir.path().join("before"));
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rdeploy"))
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("RDEPLOY_STATE_DIR", dir.path().join("state"))
        .args(["run", "pb.yaml", "-i", "inv.yaml", "--stop-grace", "20s"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !dir.path().join("before").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let began = std::time::Instant::now();
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(began.elapsed().as_secs() < 5, "{stdout}");
    assert_eq!(out.status.code(), Some(143), "{stdout}");
    assert!(
        stdout.contains("pause interrupted: the run is stopping"),
        "{stdout}"
    );
    assert!(!dir.path().join("after").exists());
}

/// An `approve:` gate on a real pseudo-terminal: it asks once before batch 2, `y` goes on;
/// `n` (or no answer within the timeout) stops the run before batch 2, awaiting approval.
#[test]
fn an_approval_gate_asks_on_the_terminal_and_y_goes_on_n_or_silence_stops() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inv.yaml"), TWO_HOSTS).unwrap();
    let pb = "- hosts: all\n  gather_facts: false\n  serial: 1\n  approve: {before_batch: 2, message: canary ok?, timeout: 2s}\n  tasks:\n    - debug: {msg: \"deployed {{ inventory_hostname }}\"}\n";
    std::fs::write(dir.path().join("pb.yaml"), pb).unwrap();
    let yes = on_terminal(dir.path(), &[("canary ok? (y/N)", "y")]);
    assert_eq!(yes.matches("canary ok? (y/N)").count(), 1, "{yes}");
    assert!(yes.contains("[approval before batch 2/2]"), "{yes}");
    assert!(yes.contains("deployed h1"), "{yes}");
    assert!(yes.contains("deployed h2"), "{yes}");
    assert!(!yes.contains("awaits approval"), "{yes}");
    for dialogue in [&[("canary ok? (y/N)", "n")][..], &[][..]] {
        let no = on_terminal(dir.path(), dialogue);
        assert!(no.contains("deployed h1"), "{no}");
        assert!(!no.contains("deployed h2"), "{no}");
        assert!(no.contains("the run awaits approval"), "{no}");
        // Let the next run in: reject this one.
        let id = no
            .split("rdeploy reject ")
            .nth(1)
            .and_then(|r| r.split('`').next())
            .unwrap_or_default()
            .to_string();
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("rdeploy"))
            .current_dir(dir.path())
            .env("RDEPLOY_STATE_DIR", dir.path().join("state"))
            .args(["reject", &id])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
}
