//! End to end: the executor on the local connection, through the `rdeploy` binary, with
//! playbooks written into a temp directory. Covers the task keywords that need no host
//! module (when, loop, register, set_fact, assert, block/rescue/always, handlers, tags,
//! --start-at-task, run_once, meta) and the exit codes a user relies on.

mod support;

use std::path::Path;

use assert_cmd::Command;
use support::{LOCAL_INVENTORY as INVENTORY, recap_line};

/// Runs `rdeploy run` on `playbook` text with extra args; returns (exit code, stdout, stderr).
fn run(dir: &Path, playbook: &str, args: &[&str]) -> (i32, String, String) {
    support::run_local(dir, &[("pb.yaml", playbook)], args, &[])
}

#[test]
fn set_fact_register_and_assert_flow_between_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - set_fact:
        base: 40
    - set_fact:
        answer: "{{ base + 2 }}"
    - assert:
        that:
          - answer | int == 42
    - debug:
        msg: "answer={{ answer }}"
      register: said
    - assert:
        that: said.msg == 'answer=42'
"#,
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(r#"ok: [localhost] => {"msg":"answer=42"}"#),
        "{out}"
    );
    assert_eq!(
        recap_line(&out),
        "localhost : ok=5 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"
    );
}

#[test]
fn a_failed_task_stops_the_host_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - fail:
        msg: "deliberate"
    - debug:
        msg: "never printed"
"#,
        &[],
    );
    assert_eq!(code, 2);
    assert!(out.contains("fatal: [localhost]: FAILED!"), "{out}");
    assert!(out.contains("deliberate"), "{out}");
    assert!(!out.contains("never printed"), "{out}");
    assert!(recap_line(&out).contains("failed=1"), "{out}");
}

#[test]
fn ignore_errors_keeps_going_and_counts_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - fail:
        msg: "tolerated"
      ignore_errors: yes
    - debug:
        msg: "after"
"#,
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("FAILED! (ignored)"), "{out}");
    assert!(out.contains(r#"{"msg":"after"}"#), "{out}");
    assert!(recap_line(&out).contains("ignored=1"), "{out}");
}

#[test]
fn rescue_recovers_the_host_and_always_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - block:
        - fail:
            msg: "in block"
        - debug:
            msg: "skipped by the failure"
      rescue:
        - debug:
            msg: "rescued"
      always:
        - debug:
            msg: "always ran"
    - debug:
        msg: "play goes on"
"#,
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("skipped by the failure"), "{out}");
    for want in ["rescued", "always ran", "play goes on"] {
        assert!(out.contains(want), "{want} missing in {out}");
    }
    assert!(recap_line(&out).contains("rescued=1"), "{out}");
    assert!(recap_line(&out).contains("failed=0"), "{out}");
}

#[test]
fn always_runs_even_when_nothing_rescues() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - block:
        - fail:
            msg: "no rescue"
      always:
        - debug:
            msg: "cleanup"
"#,
        &[],
    );
    assert_eq!(code, 2);
    assert!(out.contains("cleanup"), "{out}");
}

#[test]
fn when_loop_and_loop_control() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - set_fact:
        seen: []
    - set_fact:
        seen: "{{ seen + [pkg.name ~ '@' ~ idx] }}"
      loop:
        - { name: a }
        - { name: b }
        - { name: c }
      loop_control:
        loop_var: pkg
        index_var: idx
        label: "{{ pkg.name }}"
      when: pkg.name != 'b'
    - assert:
        that: seen == ['a@0', 'c@2']
"#,
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(item=a)"), "{out}");
    assert!(out.contains("skipping: [localhost] => (item=b)"), "{out}");
}

#[test]
fn handlers_run_once_at_the_end_of_the_section_in_definition_order() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - debug:
        msg: "one"
      changed_when: true
      notify: [second, first]
    - debug:
        msg: "two"
      changed_when: true
      notify: first
    - debug:
        msg: "not notifying"
      notify: never
  handlers:
    - name: first
      debug:
        msg: "handler first"
    - name: second
      debug:
        msg: "handler second"
    - name: never
      debug:
        msg: "handler never"
"#,
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("handler first").count(), 1, "{out}");
    let first = out.find("handler first").unwrap();
    let second = out.find("handler second").unwrap();
    assert!(first < second, "handlers run in definition order: {out}");
    assert!(
        out.find("not notifying").unwrap() < first,
        "after the section's tasks: {out}"
    );
    assert!(!out.contains("handler never"), "{out}");
    assert!(out.contains("RUNNING HANDLER [first]"), "{out}");
}

#[test]
fn tags_and_start_at_task_select_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let pb = r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - debug: { msg: "alpha" }
      tags: [a]
    - debug: { msg: "beta" }
      tags: [b]
    - debug: { msg: "gamma" }
      tags: [always]
    - debug: { msg: "delta" }
      tags: [never, debug]
"#;
    let (code, out, _) = run(dir.path(), pb, &["--tags", "b"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("alpha")
            && out.contains("beta")
            && out.contains("gamma")
            && !out.contains("delta"),
        "{out}"
    );
    let (_, out, _) = run(dir.path(), pb, &["--skip-tags", "b"]);
    assert!(
        out.contains("alpha") && !out.contains("beta") && !out.contains("delta"),
        "{out}"
    );
    let (_, out, _) = run(dir.path(), pb, &["--tags", "debug"]);
    assert!(out.contains("delta"), "never runs when asked for: {out}");
    let named = r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - name: first
      debug: { msg: "m1" }
    - name: second
      debug: { msg: "m2" }
"#;
    let (_, out, _) = run(dir.path(), named, &["--start-at-task", "second"]);
    assert!(!out.contains("m1") && out.contains("m2"), "{out}");
}

#[test]
fn meta_end_play_stops_the_play() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - debug: { msg: "before" }
    - meta: end_play
    - debug: { msg: "after" }
"#,
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("before") && !out.contains(r#""msg":"after""#),
        "{out}"
    );
}

#[test]
fn until_retries_then_fails_with_the_attempt_count() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - debug: { msg: "try" }
      register: r
      until: r.msg == 'never'
      retries: 2
      delay: 0
"#,
        &[],
    );
    assert_eq!(code, 2, "{out}");
    // Three runs; Ansible (2.19) reports one less when the retries run out.
    assert!(out.contains(r#""attempts":2"#), "{out}");
}

/// `retries` without `until` ran the task once; ansible-core 2.19 retries it while it fails,
/// and `retries: 0` never looks at `until`.
#[test]
fn retries_without_until_retry_while_the_task_fails() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    let pb = format!(
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - shell: echo x >> {c}; test $(wc -l < {c}) -ge 2
      register: r
      retries: 3
      delay: 0
    - assert: {{ that: ["r.attempts == 2", "r is succeeded"] }}
    - debug: {{ msg: once }}
      register: once
      until: false
      retries: 0
    - assert: {{ that: ["once.attempts is not defined"] }}
"#,
        c = count.display()
    );
    let (code, out, err) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "x\nx\n");
}

#[test]
fn facts_are_gathered_by_default_and_skippable() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        r#"
- hosts: localhost
  tasks:
    - assert:
        that:
          - ansible_facts.system == 'Linux'
          - ansible_system == 'Linux'
          - ansible_hostname | length > 0
"#,
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("TASK [Gathering Facts]"), "{out}");
}

#[test]
fn json_output_is_one_event_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: { msg: hi }\n",
        &["--output", "json"],
    );
    assert_eq!(code, 0, "{out}");
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["play", "batch", "task", "result", "recap", "run_end"]
    );
    assert_eq!(events[3]["result"]["status"], "ok");
    assert_eq!(events[4]["hosts"]["localhost"]["ok"], 1);
    // The run is recorded: its journal is where the last event says.
    let journal = events[5]["journal"].as_str().unwrap();
    assert!(journal.starts_with(&dir.path().join("state").display().to_string()));
    assert!(
        std::fs::read_to_string(journal)
            .unwrap()
            .contains("\"event\":\"run_end\"")
    );
}

#[test]
fn no_log_hides_results_on_screen_and_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - fail: { msg: 'token=s3cr3t' }\n      no_log: true\n";
    let (code, out, err) = run(dir.path(), pb, &[]);
    assert_eq!(code, 2);
    assert!(
        !out.contains("s3cr3t") && !err.contains("s3cr3t"),
        "{out}{err}"
    );
    assert!(out.contains("censored"), "{out}");
    let (_, out, err) = run(dir.path(), pb, &["--output", "json"]);
    assert!(
        !out.contains("s3cr3t") && !err.contains("s3cr3t"),
        "{out}{err}"
    );
}

/// A one-shot HTTP server on loopback answering `status` with `body`.
fn http_once(status: u16, body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    port
}

#[test]
fn uri_checks_the_status_and_parses_json() {
    let dir = tempfile::tempdir().unwrap();
    let port = http_once(200, r#"{"version": "1.2.3"}"#);
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - uri:\n        url: http://127.0.0.1:{port}/health\n        return_content: yes\n      register: h\n    - assert:\n        that: h.json.version == '1.2.3' and h.status == 200\n"
    );
    let (code, out, _) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 0, "{out}");
    let port = http_once(503, "{}");
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - uri:\n        url: http://127.0.0.1:{port}/\n"
    );
    let (code, out, _) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("Status code was 503"), "{out}");
}

/// A loopback HTTP server that answers every request 200 and counts the requests it got.
fn http_counter() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering;
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&hits);
    let port = http_serve(move |_, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_string()
    });
    (port, hits)
}

/// `--check` changes nothing anywhere: `uri` (any method), `command`, `shell` and `raw` are
/// not run and are reported `skipping`, as ansible-playbook 2.19 reports them (same recap on
/// this playbook: ok=3 changed=1 skipped=6); a skipped task notifies no handler (before, the
/// POST was sent and the "would run" command notified a failing handler: exit 2).
#[test]
fn check_mode_sends_no_request_and_skipped_commands_notify_no_handler() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let (port, hits) = http_counter();
    let pb = format!(
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - uri: {{ url: "http://127.0.0.1:{port}/hook", method: POST, body: "deploy" }}
    - uri: {{ url: "http://127.0.0.1:{port}/health" }}
      register: health
    - assert: {{ that: [health is skipped] }}
    - command: touch {{{{ playbook_dir }}}}/touched
      notify: restart
    - shell: echo hi > {{{{ playbook_dir }}}}/shell
      register: sh
    - assert: {{ that: ["sh is skipped", "sh.stdout == ''", "sh.rc == 0"] }}
    - raw: touch {{{{ playbook_dir }}}}/raw
    - command: touch {{{{ playbook_dir }}}}/guarded
      args: {{ creates: "{{{{ playbook_dir }}}}/guarded" }}
      notify: reload
  handlers:
    - name: restart
      command: /bin/false
    - name: reload
      command: touch {{{{ playbook_dir }}}}/reloaded
"#
    );
    let (code, out, err) = run(dir.path(), &pb, &["--check", "-v"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "--check sent a request: {out}"
    );
    for f in ["touched", "shell", "raw", "guarded", "reloaded"] {
        assert!(!dir.path().join(f).exists(), "--check created {f}: {out}");
    }
    assert!(
        out.contains("This action (uri) does not support check mode."),
        "{out}"
    );
    assert!(
        out.contains("Command would have run if not in check mode"),
        "{out}"
    );
    assert!(!out.contains("RUNNING HANDLER [restart]"), "{out}");
    assert_eq!(
        recap_line(&out),
        "localhost : ok=3 changed=1 unreachable=0 failed=0 skipped=6 rescued=0 ignored=0"
    );
    // The server counts: the real run sends both requests.
    let pb = pb
        .replace("    - assert: { that: [health is skipped] }\n", "")
        .replace("\"sh is skipped\", ", "");
    let (code, out, _) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 2, "the real run's handler fails: {out}");
    assert!(out.contains("RUNNING HANDLER [restart]"), "{out}");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "{out}");
}

/// Modules Ansible does not run under `--check` are reported `skipping` with its message:
/// `wait_for` (before, it waited for a port that check mode never opened, and failed),
/// `fetch`, and `unarchive` of a tar archive (before, the archive was copied to the host to be
/// listed).
#[test]
fn check_mode_skips_wait_for_fetch_and_tar_unarchive_as_ansible_does() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::create_dir(dir.path().join("content")).unwrap();
    std::fs::write(dir.path().join("content/a"), "a\n").unwrap();
    let tar = std::process::Command::new("tar")
        .args(["czf", "app.tgz", "-C", "content", "a"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(tar.success());
    std::fs::create_dir(dir.path().join("unpacked")).unwrap();
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - wait_for: {{ port: {port}, timeout: 20 }}\n    - fetch: {{ src: /etc/hostname, dest: \"{{{{ playbook_dir }}}}/fetched/\" }}\n    - unarchive: {{ src: app.tgz, dest: \"{{{{ playbook_dir }}}}/unpacked\" }}\n"
    );
    let started = std::time::Instant::now();
    let (code, out, _) = run(dir.path(), &pb, &["--check", "-v"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "it waited: {out}"
    );
    for msg in [
        "remote module (wait_for) does not support check mode",
        "check mode not (yet) supported for this module",
        "remote module (ansible.legacy.unarchive) does not support check mode when using gtar",
    ] {
        assert!(out.contains(msg), "{msg}: {out}");
    }
    assert!(!dir.path().join("fetched").exists());
    assert!(!dir.path().join("unpacked/a").exists());
    assert_eq!(
        recap_line(&out),
        "localhost : ok=0 changed=0 unreachable=0 failed=0 skipped=3 rescued=0 ignored=0"
    );
}

const TWO_HOSTS: &str = "local:\n  hosts:\n    h1:\n      ansible_connection: local\n    h2:\n      ansible_connection: local\n";

fn run_two(dir: &Path, playbook: &str, args: &[&str]) -> (i32, String) {
    std::fs::write(dir.join("two.yaml"), TWO_HOSTS).unwrap();
    std::fs::write(dir.join("pb2.yaml"), playbook).unwrap();
    let out = Command::cargo_bin("rdeploy")
        .unwrap()
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("RDEPLOY_STATE_DIR", dir.join("state"))
        .args(["run", "pb2.yaml", "-i", "two.yaml"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_failed_host_stops_only_that_host() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = run_two(
        dir.path(),
        r#"
- hosts: local
  gather_facts: no
  tasks:
    - fail: { msg: "h1 breaks" }
      when: inventory_hostname == 'h1'
    - command: "touch {{ inventory_hostname }}.done"
      args: { chdir: "{{ playbook_dir }}" }
"#,
        &[],
    );
    assert_eq!(code, 2, "{out}");
    assert!(!dir.path().join("h1.done").exists());
    assert!(dir.path().join("h2.done").exists(), "{out}");
    assert!(out.contains("h1") && out.contains("failed=1"), "{out}");
}

#[test]
fn run_once_runs_on_the_first_host_and_registers_for_all() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = run_two(
        dir.path(),
        r#"
- hosts: local
  gather_facts: no
  tasks:
    - shell: "echo once >> {{ playbook_dir }}/count; echo {{ inventory_hostname }}"
      run_once: true
      register: once
    - assert:
        that: once.stdout == 'h1'
"#,
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("count")).unwrap(),
        "once\n"
    );
}

/// A failed `run_once` task fails every host of the batch, as in Ansible: none goes on to the
/// next task or play (before, only the first host stopped). Output as ansible-playbook 2.19
/// prints it: one `fatal` line, counted for the host that ran it; exit 2.
#[test]
fn a_failed_run_once_task_stops_every_host_of_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = run_two(
        dir.path(),
        r#"
- hosts: local
  gather_facts: no
  tasks:
    - debug: { msg: one }
    - command: /bin/false
      run_once: true
    - shell: "touch {{ playbook_dir }}/after-{{ inventory_hostname }}"
- hosts: local
  gather_facts: no
  tasks:
    - shell: "touch {{ playbook_dir }}/play2-{{ inventory_hostname }}"
"#,
        &[],
    );
    assert_eq!(code, 2, "{out}");
    for f in ["after-h1", "after-h2", "play2-h1", "play2-h2"] {
        assert!(!dir.path().join(f).exists(), "{f}: {out}");
    }
    assert!(out.contains("fatal: [h1]: FAILED!"), "{out}");
    assert!(!out.contains("fatal: [h2]"), "{out}");
    let mut recap: Vec<String> = out
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .take(2)
        .collect();
    recap.sort();
    assert_eq!(
        recap,
        [
            "h1 : ok=1 changed=0 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0",
            "h2 : ok=1 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"
        ]
    );
    // With `ignore_errors`, every host goes on.
    let (code, out) = run_two(
        dir.path(),
        "- hosts: local\n  gather_facts: no\n  tasks:\n    - command: /bin/false\n      run_once: true\n      ignore_errors: true\n    - shell: \"touch {{ playbook_dir }}/after-{{ inventory_hostname }}\"\n",
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(dir.path().join("after-h2").exists(), "{out}");
}

#[test]
fn environment_timeout_and_check_mode_false() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - shell: 'printf %s "$GREETING"'
      environment:
        GREETING: "hello there"
      register: env_out
      check_mode: false
    - assert:
        that: env_out.stdout == 'hello there'
"#,
        &["--check"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(r#"All assertions passed"#),
        "check_mode: false ran the shell task in --check: {out}"
    );
    let (code, out, _) = run(
        dir.path(),
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - command: sleep 30\n      timeout: 1\n",
        &[],
    );
    assert_eq!(code, 2, "the sleep times out: {out}");
    assert!(out.contains("timed out after 1s"), "{out}");
}

/// A step that times out inside one of rdeploy's own scripts (here: reading a FIFO nobody
/// writes to) says so in one line; the script itself is shown only at -vvv. A user's own
/// command is named as written.
#[test]
fn a_timed_out_step_names_the_users_command_not_the_internal_script() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - fetch: {{ src: '{}', dest: '{}/out', flat: true }}\n      timeout: 1\n      ignore_errors: true\n    - shell: sleep 30 && echo done\n      timeout: 1\n",
        fifo.display(),
        dir.path().display()
    );
    let (code, out, _) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(
            r#""msg":"timed out after 1s in one of rdeploy's own steps (-vvv shows its script)""#
        ),
        "{out}"
    );
    assert!(
        out.contains(r#""msg":"timed out after 1s: sleep 30 && echo done""#),
        "{out}"
    );
    assert!(
        !out.contains("\"script\""),
        "no internal script by default: {out}"
    );
    assert!(out.lines().all(|l| l.len() < 400), "{out}");
    let (_, out, _) = run(dir.path(), &pb, &["-vvv"]);
    assert!(out.contains("\"script\":"), "-vvv shows the script: {out}");
}

/// A step that fails before changing anything (its file is on a read-only filesystem) is
/// rolled back by doing nothing: the run ends "rolled back" (exit 3), not "manual action
/// needed" (exit 5) for a host that was never touched. The read-only folder is a bind mount
/// in a mount namespace of the run's own (`unshare -m`, root).
#[test]
fn a_step_that_changed_nothing_is_not_a_failed_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::write(ro.join("app.ini"), "old\n").unwrap();
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{}/app.ini', content: 'new' }}\n  rollback:\n    - debug: msg=rolled\n",
        ro.display()
    );
    std::fs::write(dir.path().join("pb.yaml"), pb).unwrap();
    std::fs::write(dir.path().join("inv.yaml"), INVENTORY).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("rdeploy");
    let script = format!(
        "mount --bind '{r}' '{r}' && mount -o remount,bind,ro '{r}' && exec '{b}' run pb.yaml -i inv.yaml",
        r = ro.display(),
        b = bin.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("RDEPLOY_STATE_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Read-only file system"), "{text}{err}");
    assert_eq!(out.status.code(), Some(3), "{text}{err}");
    assert!(!text.contains("manual action"), "{text}");
    assert_eq!(
        std::fs::read_to_string(ro.join("app.ini")).unwrap(),
        "old\n"
    );
}

#[test]
fn delegate_to_localhost_runs_on_the_controller() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = run_two(
        dir.path(),
        r#"
- hosts: local
  gather_facts: no
  tasks:
    - command: "touch {{ playbook_dir }}/from-{{ inventory_hostname }}"
      delegate_to: localhost
"#,
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("[h1 -> localhost]"), "{out}");
    assert!(dir.path().join("from-h1").exists() && dir.path().join("from-h2").exists());
}

#[test]
fn include_tasks_with_a_loop_runs_the_file_per_item() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("step.yaml"),
        "- set_fact:\n    acc: \"{{ acc + [item * scale] }}\"\n",
    )
    .unwrap();
    let (code, out, _) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  vars:
    acc: []
  tasks:
    - include_tasks: step.yaml
      loop: [1, 2, 3]
      vars:
        scale: 10
    - assert:
        that: acc == [10, 20, 30]
"#,
        &[],
    );
    assert_eq!(code, 0, "{out}");
}

/// `become` wraps the command in `sudo -n -u USER`; the harness runs as root, so sudo needs no
/// password (the README's test command installs sudo when it is missing).
#[test]
fn become_runs_the_command_as_become_user() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - command: id -un
      become: yes
      become_user: nobody
      register: as_nobody
    - shell: id -un
      become: true
      register: as_root
    - assert:
        that:
          - as_nobody.stdout == 'nobody'
          - as_root.stdout == 'root'
    - command: id -un
      become: yes
      become_user: no-such-user-rdeploy
"#,
        &[],
    );
    assert_eq!(code, 2, "the unknown become_user fails the host: {out}");
    assert!(out.contains("All assertions passed"), "{out}");
    assert!(out.contains("no-such-user-rdeploy"), "{out}");
}

/// SIGINT (and SIGTERM) during a step: the step in flight finishes and is recorded, no
/// further step starts, and the exit code says which signal stopped the run.
#[test]
fn a_signal_finishes_the_step_in_flight_and_stops() {
    for (sig, code) in [
        (rustix::process::Signal::INT, 130),
        (rustix::process::Signal::TERM, 143),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::write(dir.path().join("inv.yaml"), INVENTORY).unwrap();
        let pb = format!(
            "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{d}/one', content: '1' }}\n    - shell: 'touch {d}/started; sleep 1.5; echo done > {d}/slow'\n    - copy: {{ dest: '{d}/two', content: '2' }}\n"
        );
        std::fs::write(dir.path().join("pb.yaml"), pb).unwrap();
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rdeploy"))
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("RDEPLOY_STATE_DIR", dir.path().join("state"))
            .args(["run", "pb.yaml", "-i", "inv.yaml", "--output", "json"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        // Signal while the second step is known to be running.
        while !dir.path().join("started").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the slow step never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{stdout}");
        assert!(
            dir.path().join("slow").exists(),
            "the step in flight finished"
        );
        assert!(
            !dir.path().join("two").exists(),
            "no step started after the signal"
        );
        let end = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["event"] == "run_end")
            .expect("the run is recorded");
        let journal = std::fs::read_to_string(end["journal"].as_str().unwrap()).unwrap();
        assert!(journal.contains("\"outcome\":\"interrupted\""), "{journal}");
    }
}

/// `throttle: 1` runs the task on one host at a time although forks allow more: three hosts
/// taking the same lock directory never collide.
#[test]
fn throttle_caps_the_hosts_in_flight_for_one_task() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let inv = "local:\n  hosts:\n    a: { ansible_connection: local }\n    b: { ansible_connection: local }\n    c: { ansible_connection: local }\n";
    let task = format!("shell: 'mkdir {d}/lock && sleep 0.3 && rmdir {d}/lock'");
    for (throttle, want) in [("\n      throttle: 1", 0), ("", 2)] {
        std::fs::write(dir.path().join("inv.yaml"), inv).unwrap();
        std::fs::write(
            dir.path().join("pb.yaml"),
            format!("- hosts: local\n  gather_facts: no\n  tasks:\n    - {task}{throttle}\n"),
        )
        .unwrap();
        let out = Command::cargo_bin("rdeploy")
            .unwrap()
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("RDEPLOY_STATE_DIR", dir.path().join("state"))
            .args(["run", "pb.yaml", "-i", "inv.yaml", "--output", "json"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let failed = stdout.matches("\"status\":\"failed\"").count();
        assert_eq!(failed, want, "throttle {throttle:?}: {stdout}");
        let _ = std::fs::remove_dir(dir.path().join("lock"));
    }
}

/// A health gate that cannot pass: its `deadline` cuts the probing short, the batch is rolled
/// back (the file it wrote is gone again), and since the gate still fails after the rollback
/// the run asks for a person (exit 5).
#[test]
fn a_health_gate_deadline_fails_the_batch_in_time_and_it_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{d}/conf', content: 'new' }}\n  health:\n    - command: 'false'\n  probe: {{ retries: 1000, interval: 50ms, deadline: 1s }}\n"
    );
    let started = std::time::Instant::now();
    let (code, out, _) = run(dir.path(), &pb, &["--output", "json"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{out}"
    );
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("deadline"), "{out}");
    assert!(out.contains("\"event\":\"rollback\""), "{out}");
    assert!(
        !dir.path().join("conf").exists(),
        "the change was rolled back"
    );
}

/// A host that failed its health gate and was rolled back cleanly counted `failed=0` in the
/// recap: the gate failure is a failure of that host (exit 3 all the same, and the report
/// says `rolled_back`). A host that passed its gate keeps `failed=0`.
#[test]
fn a_host_that_failed_its_health_gate_and_was_rolled_back_counts_failed_in_the_recap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("app.conf"), "v1\n").unwrap();
    // The gate fails while `broken` exists; the rollback removes it, so it passes again.
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{d}/app.conf', content: \"v2\\n\" }}\n    - copy: {{ dest: '{d}/broken', content: x }}\n  health:\n    - command: 'test ! -e {d}/broken'\n  probe: {{ retries: 0, interval: 10ms }}\n"
    );
    let (code, out, err) = run(dir.path(), &pb, &["--report", "rep.json"]);
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(
        recap_line(&out),
        "localhost : ok=2 changed=2 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0",
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app.conf")).unwrap(),
        "v1\n"
    );
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("rep.json")).unwrap())
            .unwrap();
    assert_eq!(rep["hosts"]["localhost"]["state"], "rolled_back", "{rep:#}");

    // The same play with a gate that passes: failed=0, exit 0.
    let pass = pb.replace("test ! -e", "test -e");
    let (code, out, err) = run(dir.path(), &pass, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(recap_line(&out).contains(" failed=0 "), "{out}");

    // Two hosts in one batch, only h1 fails its gate: both are rolled back, only h1 failed.
    let two = "all:\n  hosts:\n    h1: {ansible_connection: local}\n    h2: {ansible_connection: local}\n";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let pb = format!(
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{d}/conf-{{{{ inventory_hostname }}}}', content: x }}\n    - copy: {{ dest: '{d}/broken', content: x }}\n      when: inventory_hostname == 'h1'\n  health:\n    - command: \"test ! -e {d}/broken -o {{{{ inventory_hostname }}}} != h1\"\n  probe: {{ retries: 0, interval: 10ms }}\n"
    );
    let (code, out, err) =
        support::run_local(dir.path(), &[("inv.yaml", two), ("pb.yaml", &pb)], &[], &[]);
    assert_eq!(code, 3, "{out}{err}");
    let recap: Vec<String> = out
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        recap
            .iter()
            .any(|l| l.starts_with("h1 : ") && l.contains(" failed=1 ")),
        "{out}"
    );
    assert!(
        recap
            .iter()
            .any(|l| l.starts_with("h2 : ") && l.contains(" failed=0 ")),
        "{out}"
    );
    assert!(
        !dir.path().join("conf-h2").exists(),
        "h2 was rolled back: {out}"
    );
}

/// The vault fixtures (made by ansible-vault; see tests/fixtures/vault/README.md).
fn vault_fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vault")
        .join(name)
}

/// A play whose secrets come from an inline `!vault` value, a whole-file vault in
/// `vars_files` and `secret_vars`, printed by debug, a failure message and a `--diff`.
fn vault_playbook(dir: &Path) -> String {
    std::fs::copy(vault_fixture("v11.yml"), dir.join("secrets.yml")).unwrap();
    let inline: String = std::fs::read_to_string(vault_fixture("inline.yml"))
        .unwrap()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    format!(
        r#"
- hosts: localhost
  gather_facts: no
  vars_files: [secrets.yml]
  vars:
{inline}    db_url: "postgres://app:{{{{ vault_db_password }}}}@db/app"
    secret_vars: [db_url]
  tasks:
    - debug: msg="{{{{ vault_pw }}}}"
    - debug: msg="token {{{{ vault_api_token }}}} url {{{{ db_url }}}}"
    - copy:
        content: "pw={{{{ vault_pw }}}} url={{{{ db_url }}}}"
        dest: "{dest}"
    - fail: msg="failed with {{{{ vault_pw }}}}"
"#,
        dest = dir.join("out.txt").display()
    )
}

#[test]
fn vault_secrets_are_masked_in_every_output_but_written_to_files() {
    let secrets = [
        "hunter2-inline-Secret",
        "s3cr3t-db-Pa55",
        "tok_9f8e7d6c5b4a",
        "postgres://app:",
    ];
    for format in ["human", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let pb = vault_playbook(dir.path());
        let pw = vault_fixture("password.txt");
        let (code, out, err) = run(
            dir.path(),
            &pb,
            &[
                "--diff",
                "--output",
                format,
                "--vault-password-file",
                pw.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 2, "the fail task fails: {out}{err}");
        for s in secrets {
            assert!(!out.contains(s), "{format}: '{s}' on stdout:\n{out}");
            assert!(!err.contains(s), "{format}: '{s}' on stderr:\n{err}");
        }
        assert!(out.contains("********"), "{out}");
        assert!(out.contains("failed with ********"), "{out}");
        assert!(
            out.contains("+pw=********"),
            "{format}: the diff is masked: {out}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
            "pw=hunter2-inline-Secret url=postgres://app:s3cr3t-db-Pa55@db/app"
        );
    }
}

/// A health probe whose URL carries a vault value: the probe fails, the batch is rolled back,
/// and the secret reaches neither the journal nor `rdeploy show` (human and JSON), the report
/// or the log; those files are 0600 and the run's folder 0700.
#[test]
fn a_vault_value_in_a_probe_url_never_reaches_the_journal_and_run_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(vault_fixture("v11.yml"), dir.path().join("secrets.yml")).unwrap();
    let d = dir.path().display().to_string();
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  vars_files: [secrets.yml]\n  tasks:\n    - copy: {{ dest: '{d}/conf', content: 'new' }}\n  health:\n    - http: \"http://127.0.0.1:1/health?token={{{{ vault_api_token }}}}\"\n  probe: {{ retries: 1, interval: 50ms, deadline: 5s }}\n"
    );
    let pw = vault_fixture("password.txt");
    let (code, out, err) = run(
        dir.path(),
        &pb,
        &[
            "--vault-password-file",
            pw.to_str().unwrap(),
            "--report",
            "report.json",
            "--log-file",
            "run.log",
        ],
    );
    // The gate fails, the batch is rolled back, the gate still fails: a person is needed.
    assert_eq!(code, 5, "{out}{err}");
    let secret = "tok_9f8e7d6c5b4a";
    let runs = dir.path().join("state/runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"gate_failed\""), "{journal}");
    assert!(journal.contains("token=********"), "{journal}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&run_dir.join("journal.jsonl")), 0o600);
    assert_eq!(mode(&run_dir), 0o700);
    for f in ["report.json", "run.log"] {
        let p = dir.path().join(f);
        assert_eq!(mode(&p), 0o600, "{f}");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains(secret), "{f}: {text}");
    }
    assert!(!journal.contains(secret), "{journal}");
    let id = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    for format in ["human", "json"] {
        let shown = Command::cargo_bin("rdeploy")
            .unwrap()
            .env("RDEPLOY_STATE_DIR", dir.path().join("state"))
            .args(["show", &id, "--output", format])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(shown.status.success(), "{text}");
        assert!(text.contains("health"), "{format}: {text}");
        assert!(!text.contains(secret), "{format}: {text}");
    }
}

/// On the host, the copy kept of a file about to change is 0600 (the original was 0640) and
/// the state folders are 0700, even when an older run left them 0755; the file itself gets its
/// mode back on rollback.
#[test]
fn host_backups_are_0600_and_state_folders_0700() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let conf = dir.path().join("app.ini");
    std::fs::write(&conf, "old\n").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o640)).unwrap();
    let hs = dir.path().join("hoststate");
    for sub in ["runs", "backups"] {
        std::fs::create_dir_all(hs.join(sub)).unwrap();
        std::fs::set_permissions(hs.join(sub), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{d}/app.ini', content: 'new', mode: '0644' }}\n"
    );
    let hs_arg = format!("rdeploy_state_dir={}", hs.display());
    let (code, out, err) = run(dir.path(), &pb, &["-e", &hs_arg]);
    assert_eq!(code, 0, "{out}{err}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&hs.join("runs")), 0o700);
    assert_eq!(mode(&hs.join("backups")), 0o700);
    let mut data = Vec::new();
    let mut stack = vec![hs.join("backups")];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap().path();
            if e.is_dir() {
                assert_eq!(mode(&e), 0o700, "{}", e.display());
                stack.push(e);
            } else if e.file_name().unwrap() == "data" {
                data.push(e);
            }
        }
    }
    assert_eq!(data.len(), 1, "one file backed up");
    assert_eq!(mode(&data[0]), 0o600);
    assert_eq!(std::fs::read_to_string(&data[0]).unwrap(), "old\n");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let back = Command::cargo_bin("rdeploy")
        .unwrap()
        .current_dir(dir.path())
        .env("RDEPLOY_STATE_DIR", dir.path().join("state"))
        .args(["rollback", &id, "-i", "inv.yaml"])
        .output()
        .unwrap();
    assert!(
        back.status.success(),
        "{}{}",
        String::from_utf8_lossy(&back.stdout),
        String::from_utf8_lossy(&back.stderr)
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "old\n");
    assert_eq!(mode(&conf), 0o640, "the file's own mode comes back");
}

#[test]
fn vault_without_a_password_is_invalid_input_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let pb = vault_playbook(dir.path());
    let (code, out, err) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains(
            "pb.yaml:7:15: error: vault-encrypted: give --vault-password-file or --vault-id"
        ),
        "{err}"
    );
    let wrong = vault_fixture("prod-password.txt");
    let (code, _, err) = run(
        dir.path(),
        &pb,
        &["--vault-id", &format!("prod@{}", wrong.display())],
    );
    assert_eq!(code, 4);
    assert!(
        err.contains("no vault password given decrypts this"),
        "{err}"
    );
}

#[test]
fn vault_files_in_group_vars_and_extra_vars_are_decrypted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("group_vars")).unwrap();
    std::fs::copy(
        vault_fixture("v11.yml"),
        dir.path().join("group_vars/all.yml"),
    )
    .unwrap();
    std::fs::copy(vault_fixture("v11.yml"), dir.path().join("extra.yml")).unwrap();
    let pw = vault_fixture("password-script.sh");
    let (code, out, err) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - assert:
        that:
          - vault_db_password == "s3cr3t-db-Pa55"
          - replicas == 3
"#,
        &[
            "-e",
            "@extra.yml",
            "--vault-password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn vault_encrypt_view_decrypt_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yml");
    std::fs::write(&file, "k: v-secret\n").unwrap();
    let pw = format!("prod@{}", vault_fixture("prod-password.txt").display());
    let vault = |args: &[&str]| {
        Command::cargo_bin("rdeploy")
            .unwrap()
            .current_dir(dir.path())
            .arg("vault")
            .args(args)
            .args(["--vault-id", &pw])
            .output()
            .unwrap()
    };
    assert!(vault(&["encrypt", "s.yml"]).status.success());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"),
        "{text}"
    );
    let view = vault(&["view", "s.yml"]);
    assert_eq!(view.stdout, b"k: v-secret\n");
    assert!(
        vault(&["decrypt", "s.yml", "--output", "plain.yml"])
            .status
            .success()
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "--output leaves FILE"
    );
    assert!(vault(&["decrypt", "s.yml"]).status.success());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "k: v-secret\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("plain.yml")).unwrap(),
        "k: v-secret\n"
    );
    assert!(
        !vault(&["decrypt", "s.yml"]).status.success(),
        "not encrypted"
    );
}

/// Diagnostic logs (`RDEPLOY_LOG=debug` prints every command a host runs) mask vault values
/// too.
#[test]
fn vault_secrets_are_masked_in_diagnostic_logs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(vault_fixture("v11.yml"), dir.path().join("secrets.yml")).unwrap();
    std::fs::write(dir.path().join("inv.yaml"), INVENTORY).unwrap();
    std::fs::write(
        dir.path().join("pb.yaml"),
        "- hosts: localhost\n  gather_facts: no\n  vars_files: [secrets.yml]\n  tasks:\n    - shell: \"test -n '{{ vault_db_password }}'\"\n      changed_when: false\n",
    )
    .unwrap();
    let out = Command::cargo_bin("rdeploy")
        .unwrap()
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("RDEPLOY_LOG", "debug")
        .env("RDEPLOY_STATE_DIR", dir.path().join("state"))
        .args(["run", "pb.yaml", "-i", "inv.yaml", "--vault-password-file"])
        .arg(vault_fixture("password.txt"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("local exec"), "the command is logged: {err}");
    assert!(err.contains("test -n"), "{err}");
    assert!(!err.contains("s3cr3t"), "{err}");
    assert!(err.contains("********"), "{err}");
}

/// On the local connection a vault secret in a shell line never shows in the controller's
/// process list either, and the command still runs with it.
#[test]
fn a_secret_in_a_local_command_line_stays_out_of_the_process_list() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(vault_fixture("v11.yml"), dir.path().join("secrets.yml")).unwrap();
    std::fs::write(dir.path().join("inv.yaml"), INVENTORY).unwrap();
    let out_file = dir.path().join("ran");
    std::fs::write(
        dir.path().join("pb.yaml"),
        format!(
            "- hosts: localhost\n  gather_facts: no\n  vars_files: [secrets.yml]\n  tasks:\n    - shell: \"sleep 1.5; printf %s '{{{{ vault_db_password }}}}' > {}\"\n",
            out_file.display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rdeploy"))
        .current_dir(dir.path())
        .env("RDEPLOY_STATE_DIR", dir.path().join("state"))
        .args(["run", "pb.yaml", "-i", "inv.yaml", "--vault-password-file"])
        .arg(vault_fixture("password.txt"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut seen_sleep = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&raw);
            assert!(
                !cmdline.contains("s3cr3t-db-Pa55"),
                "the secret is in a process's arguments: {cmdline}"
            );
            seen_sleep |= cmdline.contains("sleep") && cmdline.contains("1.5");
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "the run did not end");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(seen_sleep, "the check looked while the command ran");
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "s3cr3t-db-Pa55"
    );
}

/// Each task's status on localhost, from `--output json`.
fn statuses(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "result")
        .map(|e| e["result"]["status"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn reads_run_ahead_never_hide_a_change_made_before_their_turn() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let playbook = format!(
        r#"
- hosts: localhost
  gather_facts: no
  vars:
    d: {d}
  tasks:
    - file: {{ path: "{{{{ d }}}}", state: directory }}
    - copy: {{ content: "{{{{ v }}}}", dest: "{{{{ d }}}}/f" }}
    # The same file again: the change just made must be seen (ok), not what was read before.
    - copy: {{ content: "{{{{ v }}}}", dest: "{{{{ d }}}}/f" }}
    - stat: {{ path: "{{{{ d }}}}/f" }}
      register: s
    - assert:
        that: s.stat.size == v | length
    - shell: echo other > {{{{ d }}}}/f
    # Changed behind the modules' back: seen again.
    - copy: {{ content: "{{{{ v }}}}", dest: "{{{{ d }}}}/f" }}
    - lineinfile: {{ path: "{{{{ d }}}}/f", line: extra }}
    - lineinfile: {{ path: "{{{{ d }}}}/f", line: extra }}
"#,
        d = d.display()
    );
    for (v, first) in [("one", "changed"), ("two", "ok")] {
        for ahead in ["true", "false"] {
            let (code, out, err) = run(
                dir.path(),
                &playbook,
                &[
                    "--output",
                    "json",
                    "-e",
                    &format!("v={v}"),
                    "-e",
                    &format!("rdeploy_read_ahead={ahead}"),
                ],
            );
            assert_eq!(code, 0, "{out}{err}");
            let mut want = vec![first, "changed", "ok", "ok", "ok", "changed", "changed"];
            want.extend(["changed", "ok"]);
            // Only the very first run creates the folder; then the content alternates.
            let got = statuses(&out);
            let rest: Vec<&str> = got.iter().skip(1).map(String::as_str).collect();
            assert_eq!(rest, want[1..], "v={v} read-ahead={ahead}\n{out}");
            assert_eq!(
                std::fs::read_to_string(d.join("f")).unwrap(),
                format!("{v}\nextra\n")
            );
        }
    }
}

#[test]
fn vault_encrypted_copy_and_template_sources_are_decrypted_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(vault_fixture("v11.yml"), dir.path().join("secrets.bin")).unwrap();
    std::fs::copy(vault_fixture("v12.txt"), dir.path().join("page.j2")).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    // What was there before is not shown either.
    std::fs::write(out_dir.join("secrets.yml"), "old-secret-line\n").unwrap();
    let playbook = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ src: secrets.bin, dest: {o}/secrets.yml, mode: '0600' }}\n    - template: {{ src: page.j2, dest: {o}/page.txt }}\n",
        o = out_dir.display()
    );
    let prod = vault_fixture("prod-password.txt");
    let (code, out, err) = run(
        dir.path(),
        &playbook,
        &[
            "--diff",
            "--vault-password-file",
            vault_fixture("password.txt").to_str().unwrap(),
            "--vault-id",
            &format!("prod@{}", prod.display()),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read(out_dir.join("secrets.yml")).unwrap(),
        std::fs::read(vault_fixture("plain.yml")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("page.txt")).unwrap(),
        std::fs::read_to_string(vault_fixture("plain12.txt")).unwrap()
    );
    for secret in [
        "s3cr3t-db-Pa55",
        "tok_9f8e7d6c5b4a",
        "old-secret-line",
        "second line",
    ] {
        assert!(!out.contains(secret), "{secret} shown:\n{out}");
        assert!(!err.contains(secret), "{secret} shown:\n{err}");
    }
    assert!(out.contains("decrypted from Ansible Vault"), "{out}");
    // Without the password: a clear failure naming the file; the ciphertext is never copied.
    let again = tempfile::tempdir().unwrap();
    std::fs::copy(vault_fixture("v11.yml"), again.path().join("secrets.bin")).unwrap();
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ src: secrets.bin, dest: {}/x }}\n",
        again.path().display()
    );
    let (code, out, err) = run(again.path(), &pb, &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("secrets.bin: vault-encrypted: give --vault-password-file or --vault-id"),
        "{out}"
    );
    assert!(!again.path().join("x").exists());
}

#[test]
fn ansible_cfg_vault_password_file_and_identity_list_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("keys")).unwrap();
    std::fs::copy(vault_fixture("password.txt"), d.join("keys/pw.txt")).unwrap();
    std::fs::copy(vault_fixture("prod-password.txt"), d.join("keys/prod.txt")).unwrap();
    std::fs::copy(vault_fixture("v11.yml"), d.join("secrets.yml")).unwrap();
    std::fs::copy(vault_fixture("v12.txt"), d.join("page.j2")).unwrap();
    std::fs::write(
        d.join("ansible.cfg"),
        "[defaults]\nvault_password_file = keys/pw.txt\nvault_identity_list = prod@keys/prod.txt\n",
    )
    .unwrap();
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  vars_files: [secrets.yml]\n  tasks:\n    - copy: {{ content: \"{{{{ vault_db_password }}}}\", dest: {d}/db.txt }}\n    - template: {{ src: page.j2, dest: {d}/page.txt }}\n",
        d = d.display()
    );
    let (code, out, err) = run(d, &pb, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("not used by rdeploy"), "{err}");
    assert_eq!(
        std::fs::read_to_string(d.join("db.txt")).unwrap(),
        "s3cr3t-db-Pa55"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("page.txt")).unwrap(),
        std::fs::read_to_string(vault_fixture("plain12.txt")).unwrap()
    );
}

#[test]
fn a_vault_encrypted_script_runs_decrypted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let marker = d.join("ran");
    std::fs::write(
        d.join("run.sh"),
        format!("#!/bin/sh\necho decrypted > '{}'\n", marker.display()),
    )
    .unwrap();
    let pw = vault_fixture("password.txt");
    let enc = Command::cargo_bin("rdeploy")
        .unwrap()
        .current_dir(d)
        .args(["vault", "encrypt", "run.sh", "--vault-password-file"])
        .arg(&pw)
        .output()
        .unwrap();
    assert!(
        enc.status.success(),
        "{}",
        String::from_utf8_lossy(&enc.stderr)
    );
    assert!(
        std::fs::read_to_string(d.join("run.sh"))
            .unwrap()
            .starts_with("$ANSIBLE_VAULT;")
    );
    let pb = "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - script: run.sh\n";
    let (code, out, err) = run(d, pb, &["--vault-password-file", pw.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "decrypted\n");
}

#[test]
fn ansible_vault_password_environment_variables_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let view = |file: &str| {
        Command::cargo_bin("rdeploy")
            .unwrap()
            .current_dir(dir.path())
            .env("ANSIBLE_VAULT_PASSWORD_FILE", vault_fixture("password.txt"))
            .env(
                "ANSIBLE_VAULT_IDENTITY_LIST",
                format!("prod@{}", vault_fixture("prod-password.txt").display()),
            )
            .args(["vault", "view"])
            .arg(vault_fixture(file))
            .output()
            .unwrap()
    };
    let v11 = view("v11.yml");
    assert!(
        v11.status.success(),
        "{}",
        String::from_utf8_lossy(&v11.stderr)
    );
    assert_eq!(
        v11.stdout,
        std::fs::read(vault_fixture("plain.yml")).unwrap()
    );
    let v12 = view("v12.txt");
    assert!(
        v12.status.success(),
        "{}",
        String::from_utf8_lossy(&v12.stderr)
    );
    assert_eq!(
        v12.stdout,
        std::fs::read(vault_fixture("plain12.txt")).unwrap()
    );
}

/// `ping: data:` given as a mapping or a list was refused ("expects a string, found a
/// mapping"); Ansible turns it into text with Python's `str()`, and so does rdeploy now.
#[test]
fn ping_data_given_as_a_mapping_is_returned_as_python_text() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - ping:
        data: {a: 1, b: [x, "y"], c: true, d: null}
      register: r
    - ping:
        data: [1, 2]
      register: r2
    - debug: { msg: "{{ r.ping }}|{{ r2.ping }}" }
"#,
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(r#""msg":"{'a': 1, 'b': ['x', 'y'], 'c': True, 'd': None}|[1, 2]""#),
        "{out}"
    );
}

/// `package: update_cache: true` and `service: daemon_reload: true` without `name` (and
/// without `state`) were refused before the run; Ansible hands them to apt/dnf and systemd.
/// Under `--check` the cache refresh is reported `changed` and not run, as ansible-playbook
/// 2.19 reports it; this machine runs no systemd, so `service` fails on the missing name there,
/// as Ansible's does.
#[test]
fn package_update_cache_and_service_daemon_reload_need_no_name() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - package:
        update_cache: true
      register: r
    - debug: { msg: "cache_updated={{ r.cache_updated | default('unset') }}" }
    - service:
        daemon_reload: true
      ignore_errors: true
"#,
        &["--check"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("TASK [package]"), "{out}");
    let after = |task: &str| {
        out.split(&format!("TASK [{task}]"))
            .nth(1)
            .and_then(|s| s.lines().nth(1))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(after("package"), "changed: [localhost]", "{out}");
    if !Path::new("/run/systemd/system").exists() {
        assert!(
            after("service").starts_with("fatal: [localhost]")
                && out.contains("missing required arguments: name"),
            "{out}"
        );
        assert_eq!(
            recap_line(&out),
            "localhost : ok=3 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=1"
        );
    }
}

/// The run id `rdeploy run` printed.
fn run_id_of(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("run "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

/// CVE-2024-9902 class: run as root, a folder on the destination's way that another user
/// replaced by a symlink (to a folder they do not own) is refused, naming it; nothing is
/// written where the link points. (The machine the tests run on runs them as root.)
#[test]
fn a_write_through_a_parent_symlink_owned_by_another_user_is_refused() {
    if !rustix::process::geteuid().is_root() {
        return; // only root can give a link to another user
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::create_dir_all(dir.path().join("srv/app")).unwrap();
    std::fs::create_dir_all(dir.path().join("etc-target")).unwrap();
    let conf = dir.path().join("srv/app/conf");
    std::os::unix::fs::symlink(dir.path().join("etc-target"), &conf).unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-h", "nobody"])
        .arg(&conf)
        .status()
        .unwrap();
    assert!(chown.success());
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{d}/srv/app/conf/app.ini', content: 'secret=1' }}\n"
    );
    let (code, out, err) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 2, "{out}{err}");
    let uid = std::fs::symlink_metadata(&conf).unwrap();
    let uid = std::os::unix::fs::MetadataExt::uid(&uid);
    assert!(
        out.contains(&format!(
            "refusing to write {d}/srv/app/conf/app.ini: parent {d}/srv/app/conf is a symlink owned by uid {uid} (neither root nor the user the task runs as); nothing was changed"
        )),
        "{out}{err}"
    );
    assert_eq!(
        recap_line(&out),
        "localhost : ok=0 changed=0 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0"
    );
    let written: Vec<_> = std::fs::read_dir(dir.path().join("etc-target"))
        .unwrap()
        .collect();
    assert!(written.is_empty(), "written through the link: {written:?}");
    // A link root owns (like /var/run -> /run) is written through as before.
    std::os::unix::fs::lchown(&conf, Some(0), None).unwrap();
    let (code, out, err) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc-target/app.ini")).unwrap(),
        "secret=1"
    );
}

/// `rdeploy rollback` of a copy into `a/b/` when `a` did not exist leaves no `a`.
#[test]
fn rollback_removes_the_folders_a_copy_created() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("c.txt"), "c\n").unwrap();
    std::fs::create_dir(dir.path().join("srv")).unwrap();
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ src: c.txt, dest: '{d}/srv/a/b/' }}\n    - file: {{ path: '{d}/srv/x/y/z', state: directory }}\n"
    );
    let hs_arg = format!("rdeploy_state_dir={d}/hoststate");
    let (code, out, err) = run(dir.path(), &pb, &["-e", &hs_arg]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("srv/a/b/c.txt")).unwrap(),
        "c\n"
    );
    assert!(dir.path().join("srv/x/y/z").is_dir());
    let back = Command::cargo_bin("rdeploy")
        .unwrap()
        .current_dir(dir.path())
        .env("RDEPLOY_STATE_DIR", dir.path().join("state"))
        .args(["rollback", &run_id_of(&out), "-i", "inv.yaml"])
        .output()
        .unwrap();
    assert!(
        back.status.success(),
        "{}{}",
        String::from_utf8_lossy(&back.stdout),
        String::from_utf8_lossy(&back.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join("srv"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A transfer killed outright left `.NAME.rdeploy-tmp.*` next to its destination: the next
/// run that writes in that folder removes it.
#[test]
fn a_stale_temp_file_next_to_a_destination_is_gone_after_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let stale = www.join(".index.html.rdeploy-tmp.12345.9f8e7d");
    std::fs::write(&stale, "half a file").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(600))
        .unwrap();
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{d}/www/index.html', content: 'hello' }}\n"
    );
    let (code, out, err) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!stale.exists(), "the stale temp file is still there");
    let left: Vec<_> = std::fs::read_dir(&www)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["index.html"]);
}

/// A loopback HTTP server that answers each request (its head, as text) with what `reply`
/// returns for it, the server's port given too; returns the port.
fn http_serve(reply: impl Fn(&str, u16) -> String + Send + 'static) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let answer = reply(&String::from_utf8_lossy(&buf[..n]), port);
            let _ = s.write_all(answer.as_bytes());
        }
    });
    port
}

/// A loopback HTTP server for `uri`: `/redirect` answers 302 to `/target` (200 "target");
/// `/secret` answers 401 with a Basic challenge unless `u:p` comes with the request. It logs
/// each request as `PATH auth|noauth`.
fn http_auth_redirect() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&log);
    let port = http_serve(move |req, port| {
        let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
        // base64("u:p") = "dTpw"
        let auth = req
            .to_ascii_lowercase()
            .contains("authorization: basic dtpw");
        seen.lock()
            .unwrap()
            .push(format!("{path} {}", if auth { "auth" } else { "noauth" }));
        match (path.as_str(), auth) {
            ("/redirect", _) => format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/target\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
            ("/secret", false) => "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
            _ => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_string(),
        }
    });
    (port, log)
}

/// `uri: url_username/url_password/force_basic_auth` were accepted and ignored (no
/// credentials were sent), and redirects were followed for every method; Ansible sends
/// credentials to a server that asks (or at once with `force_basic_auth`) and, by default
/// (`follow_redirects: safe`), follows redirects of GET and HEAD only.
#[test]
fn uri_sends_basic_auth_as_ansible_and_follows_only_safe_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let (port, log) = http_auth_redirect();
    let pb = format!(
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - uri: {{ url: "http://127.0.0.1:{port}/redirect" }}
      register: followed
    - uri: {{ url: "http://127.0.0.1:{port}/redirect", method: POST, status_code: 302 }}
    - uri: {{ url: "http://127.0.0.1:{port}/redirect", follow_redirects: none, status_code: 302 }}
    - uri: {{ url: "http://127.0.0.1:{port}/secret", url_username: u, url_password: p }}
    - uri: {{ url: "http://127.0.0.1:{port}/secret", url_username: u, url_password: p, force_basic_auth: yes }}
    - assert: {{ that: ["followed.url is search('/target')", "followed.status == 200"] }}
"#
    );
    let (code, out, err) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "/redirect noauth",
            "/target noauth",
            "/redirect noauth",
            "/redirect noauth",
            "/secret noauth",
            "/secret auth",
            "/secret auth",
        ]
    );
}

/// `debug: verbosity: 1` printed on every run; Ansible prints it only from `-v` on and
/// otherwise reports the task `skipping` ("Verbosity threshold not met.").
#[test]
fn debug_verbosity_prints_only_from_that_many_v_on() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: { msg: hidden-unless-v, verbosity: 1 }\n      register: r\n    - assert: { that: [r is skipped, \"r.skipped_reason == 'Verbosity threshold not met.'\"] }\n";
    let (code, out, err) = run(dir.path(), pb, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("hidden-unless-v"), "{out}");
    assert!(recap_line(&out).contains("skipped=1"), "{out}");
    let pb = "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: { msg: hidden-unless-v, verbosity: 1 }\n";
    let (code, out, err) = run(dir.path(), pb, &["-v"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(r#"{"msg":"hidden-unless-v"}"#), "{out}");
}

/// `uri: body_format: form-urlencoded` was documented and sent the mapping as JSON text, and
/// `body_format: json` sent a text body JSON-quoted; Ansible encodes a mapping as a form and
/// sends text as it is.
#[test]
fn uri_encodes_form_bodies_and_sends_json_text_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&bodies);
    let port = http_serve(move |req, _| {
        let (head, body) = req.split_once("\r\n\r\n").unwrap_or((req, ""));
        let ctype = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-type: ")
                    .map(str::to_string)
            })
            .unwrap_or_default();
        seen.lock().unwrap().push(format!("{ctype} {body}"));
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_string()
    });
    let pb = format!(
        r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - uri:
        url: "http://127.0.0.1:{port}/form"
        method: POST
        body_format: form-urlencoded
        body: {{ name: "web 1", note: "a&b" }}
    - uri:
        url: "http://127.0.0.1:{port}/json"
        method: POST
        body_format: json
        body: '{{"version": "2.1"}}'
    - uri:
        url: "http://127.0.0.1:{port}/json"
        method: POST
        body_format: json
        body: {{ version: "2.1" }}
"#
    );
    let (code, out, err) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        *bodies.lock().unwrap(),
        [
            "application/x-www-form-urlencoded name=web+1&note=a%26b",
            r#"application/json {"version": "2.1"}"#,
            r#"application/json {"version":"2.1"}"#,
        ]
    );
}

/// `pause` documented `prompt` and `echo` and read neither; now the prompt is shown and the
/// result is Ansible's. (A pause without a time asks on a terminal: tests/play_level.rs.)
#[test]
fn pause_shows_its_prompt_and_returns_ansibles_result() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - pause: { seconds: 1, prompt: warming caches }\n      register: p\n    - assert: { that: [\"p.stdout == 'Paused for 1.0 seconds'\", \"p.delta >= 1\", \"p.user_input == ''\"] }\n";
    let (code, out, err) = run(dir.path(), pb, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("warming caches"), "{out}");
}

/// `lineinfile: firstmatch` was read by the module but not in its spec, so a playbook using
/// it was refused before the run; Ansible inserts after the first matching line with it.
#[test]
fn lineinfile_firstmatch_inserts_after_the_first_match() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conf");
    std::fs::write(&file, "a\nx=1\nb\nx=2\n").unwrap();
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - lineinfile: {{ path: {}, insertafter: '^x=', line: new, firstmatch: yes }}\n",
        file.display()
    );
    let (code, out, err) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "a\nx=1\nnew\nb\nx=2\n"
    );
}

/// `async:` with a `poll:` other than 0 was refused before the run; Ansible waits for such a
/// task, at most `async` seconds. rdeploy waits the same way (the task's time limit).
#[test]
fn async_with_poll_waits_for_the_task_at_most_async_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - command: sleep 0.2\n      async: 30\n      poll: 5\n      register: r\n    - assert: { that: [r is changed, r.finished == 1, r.rc == 0] }\n    - command: sleep 20\n      async: 1\n      poll: 1\n";
    let started = std::time::Instant::now();
    let (code, out, err) = run(dir.path(), pb, &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{out}"
    );
    assert!(out.contains("timed out after 1s"), "{out}");
    assert!(recap_line(&out).contains("ok=2"), "{out}");
}

/// Three things public playbooks use that differed from ansible-playbook: `inventory_dir` and
/// `inventory_file` were undefined, `lookup('ansible.builtin.env', ...)` (the full name
/// ansible-lint asks for) was refused, and a `meta:` task counted as `ok` in the recap.
#[test]
fn inventory_dir_fqcn_lookups_and_meta_in_the_recap_are_as_in_ansible() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().canonicalize().unwrap();
    let pb = "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: { msg: \"{{ inventory_dir }}|{{ inventory_file }}|{{ lookup('ansible.builtin.env', 'RDEPLOY_PROBE') }}\" }\n    - meta: noop\n";
    let (code, out, err) = support::run_local(
        &dir,
        &[("pb.yaml", pb)],
        &[],
        &[("RDEPLOY_PROBE", "probe-value")],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let expected = format!(
        "{}|{}|probe-value",
        dir.display(),
        dir.join("inv.yaml").display()
    );
    assert!(out.contains(&expected), "{out}");
    assert!(recap_line(&out).contains("ok=1 "), "{out}");
}

/// `include_role: apply:` was refused as an unknown argument (include_tasks had it); Ansible
/// applies its keywords to every task of the role.
#[test]
fn include_role_apply_gives_its_keywords_to_the_roles_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - include_role:\n        name: r\n        apply:\n          tags: [deploy]\n      tags: [deploy]\n";
    let (code, out, err) = support::run_local(
        dir.path(),
        &[
            ("pb.yaml", pb),
            (
                "roles/r/tasks/main.yml",
                "- debug: { msg: from-the-role }\n",
            ),
        ],
        &["--tags", "deploy"],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("from-the-role"), "{out}");
}

/// A loop over no items was reported `ok` (Ansible: `skipping`, as geerlingguy.certbot's
/// include over an empty list showed), and a loop's result lacked Ansible's `msg`/`skipped`.
#[test]
fn a_loop_result_has_ansibles_shape_and_an_empty_loop_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: { msg: x }\n      loop: []\n      register: empty\n    - command: echo {{ item }}\n      loop: [a, b]\n      register: two\n    - assert:\n        that:\n          - empty is skipped\n          - \"empty.skipped_reason == 'No items in the list'\"\n          - \"two.msg == 'All items completed'\"\n          - two.skipped == false\n          - \"two.results | map(attribute='stdout') | list == ['a', 'b']\"\n";
    let (code, out, err) = run(dir.path(), pb, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(recap_line(&out).contains("skipped=1"), "{out}");
}

/// A play's `environment:` that uses a fact (`{{ ansible_env.PATH }}`) failed fact gathering
/// itself with "'ansible_env' is undefined" (geerlingguy.supervisor's converge playbook);
/// ansible-playbook gathers, then every task gets the environment.
#[test]
fn a_play_environment_that_uses_facts_does_not_stop_gathering() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "- hosts: localhost\n  environment:\n    PATH: \"/opt/probe-bin:{{ ansible_env.PATH }}\"\n  tasks:\n    - command: printenv PATH\n      register: p\n      changed_when: false\n    - assert: { that: [\"p.stdout.startswith('/opt/probe-bin:')\"] }\n";
    let (code, out, err) = run(dir.path(), pb, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
}

/// A `systemctl` keeping unit state in `$FAKE/<unit>.{active,enabled}` and logging each call
/// (`FAKE` defaults to `{units}`: rollback passes on the task's `PATH`, not its other variables).
const FAKE_SYSTEMCTL: &str = r#"#!/bin/sh
FAKE=${FAKE:-{units}}
echo "systemctl $*" >> "$FAKE/log"
while :; do case $1 in --system|--no-block|--force) shift ;; *) break ;; esac; done
verb=$1; shift; [ "$1" = -- ] && shift
case $verb in
  show) eval u=\${$#}; if [ -e "$FAKE/$u.active" ]; then echo loaded; else echo not-found; fi ;;
  is-active) s=$(cat "$FAKE/$1.active" 2>/dev/null || echo inactive); echo "$s"; [ "$s" = active ] ;;
  is-enabled) s=$(cat "$FAKE/$1.enabled" 2>/dev/null || echo disabled); echo "$s"; [ "$s" = enabled ] ;;
  start|restart) echo active > "$FAKE/$1.active" ;;
  stop) echo inactive > "$FAKE/$1.active" ;;
  enable) echo enabled > "$FAKE/$1.enabled" ;;
  disable) echo disabled > "$FAKE/$1.enabled" ;;
  daemon-reload|daemon-reexec) ;;
  *) exit 9 ;;
esac
"#;

/// `systemd: state: restarted` (and `daemon_reload: true`) failed every real run with "did not
/// converge": after the restart, `check` still finds a restart to do, as it must. They act on
/// every run and are `changed` each time (a `daemon-reload` too, as the README's "differs on
/// purpose" table says); `force`, `no_block` and `daemon_reexec` reach `systemctl`; rollback
/// disables what the run enabled; `--check` predicts the restart without running it.
#[test]
fn systemd_restarted_and_daemon_reload_act_every_run_and_converge() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let units = d.join("units");
    std::fs::create_dir_all(d.join("bin")).unwrap();
    std::fs::create_dir_all(&units).unwrap();
    let tool = d.join("bin/systemctl");
    let script = FAKE_SYSTEMCTL.replace("{units}", &units.display().to_string());
    std::fs::write(&tool, script).unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(units.join("web.active"), "active\n").unwrap();
    let pb = format!(
        r#"
- hosts: localhost
  gather_facts: no
  environment:
    PATH: "{bin}:{{{{ lookup('env', 'PATH') }}}}"
  tasks:
    - systemd: {{ name: web, state: restarted }}
    - systemd: {{ name: web, state: started, daemon_reload: true }}
    - systemd_service: {{ daemon_reexec: true, no_block: true }}
    - systemd: {{ name: web, enabled: true, force: true }}
"#,
        bin = d.join("bin").display(),
    );
    let host_state = format!("rdeploy_state_dir={}/hoststate", d.display());
    let log = || std::fs::read_to_string(units.join("log")).unwrap_or_default();
    let enabled = || std::fs::read_to_string(units.join("web.enabled")).unwrap_or_default();
    let recap = |changed: u32| {
        format!(
            "localhost : ok=4 changed={changed} unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"
        )
    };
    let (code, out, err) = run(d, &pb, &["-e", &host_state]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(recap_line(&out), recap(4), "{out}");
    assert_eq!(enabled(), "enabled\n");
    let back = Command::cargo_bin("rdeploy")
        .unwrap()
        .current_dir(d)
        .env("RDEPLOY_STATE_DIR", d.join("state"))
        .args(["rollback", &run_id_of(&out), "-i", "inv.yaml"])
        .output()
        .unwrap();
    assert!(
        back.status.success(),
        "{}{}",
        String::from_utf8_lossy(&back.stdout),
        String::from_utf8_lossy(&back.stderr)
    );
    assert_eq!(enabled(), "disabled\n", "{}", log());
    for changed in [4, 3] {
        let (code, out, err) = run(d, &pb, &["-e", &host_state]);
        assert_eq!(code, 0, "{out}\n{err}");
        assert_eq!(recap_line(&out), recap(changed), "{out}");
    }
    let ran = log();
    assert_eq!(
        ran.matches("systemctl --system restart -- web").count(),
        3,
        "{ran}"
    );
    assert_eq!(
        ran.matches("systemctl --system daemon-reload").count(),
        3,
        "{ran}"
    );
    assert_eq!(
        ran.matches("systemctl --system --no-block daemon-reexec")
            .count(),
        3,
        "{ran}"
    );
    assert_eq!(
        ran.matches("systemctl --system --force enable -- web")
            .count(),
        2,
        "{ran}"
    );
    let (code, out, err) = run(d, &pb, &["--check", "-e", &host_state]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.split("TASK [systemd]")
            .nth(1)
            .is_some_and(|t| t.lines().nth(1) == Some("changed: [localhost]")),
        "{out}"
    );
    assert_eq!(
        log().matches("restart").count(),
        3,
        "--check restarted: {}",
        log()
    );
}
