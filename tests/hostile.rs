//! Bad input and hostile values against a real sshd host: malformed playbooks, inventories and
//! options stop before any connection (the host's sshd logs none), and values that look like
//! templates or shell from every surface (inventory var, extra var, registered output, file
//! content, host name, path) arrive as the literal bytes, never rendered again or executed.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Sandbox;
use support::fleet::Fleet;

/// Every payload at once: template syntax, command substitution, backticks, separators,
/// quotes and a newline.
const PAYLOAD: &str = "{{ 7 * 7 }} {% if true %}T{% endif %} $(touch /srv/pwned) `touch /srv/pwned` ; touch /srv/pwned && echo 'q' \"dq\"\nline2";

fn inventory(fleet: &Fleet, name: &str, extra: Value) -> String {
    let h = fleet.host(0);
    let mut v = support::oracle::trusted_host_vars(fleet, h);
    if let Some(m) = extra.as_object() {
        v.extend(m.clone());
    }
    serde_saphyr::to_string(&json!({ "all": { "hosts": { name: v } } })).unwrap()
}

fn accepted(fleet: &Fleet) -> usize {
    fleet.host(0).log().matches("Accepted publickey").count()
}

#[test]
fn malformed_input_is_refused_before_any_connection() {
    let fleet = Fleet::start(1);
    let sb = Sandbox::new();
    sb.write("inv.yaml", inventory(&fleet, "web1", Value::Null));
    let cases: &[(&str, &str, &str)] = &[
        (
            "serail.yaml",
            "- hosts: all\n  serail: 2\n  tasks: []\n",
            "serail.yaml:2:3: error: unknown play keyword 'serail'",
        ),
        (
            "module.yaml",
            "- hosts: all\n  tasks:\n    - cpoy: { src: a, dest: /srv/a }\n",
            "module.yaml:3:7: error:",
        ),
        (
            "undefined.yaml",
            "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: { msg: \"{{ nope }}\" }\n",
            "undefined.yaml:4:",
        ),
        (
            "pattern.yaml",
            "- hosts: 'web1:&nosuchgroup'\n  tasks: []\n",
            "pattern.yaml:1:",
        ),
        ("syntax.yaml", "- hosts: all\n  tasks: [\n", "syntax.yaml:"),
        (
            "probe.yaml",
            "- hosts: all\n  health:\n    - htp: http://x\n  tasks: []\n",
            "probe.yaml:3:",
        ),
    ];
    for (file, text, first) in cases {
        sb.write(file, text);
        let out = sb
            .rdeploy(&["run", file, "-i", "inv.yaml"])
            .env_remove("SSH_AUTH_SOCK")
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{file}: {err}");
        let line = err.lines().next().unwrap_or("");
        assert!(line.starts_with(first), "{file}: first line {line:?}");
    }
    let bad_option = sb
        .rdeploy(&["run", "serail.yaml", "-i", "inv.yaml", "--forks", "0"])
        .output()
        .unwrap();
    assert_eq!(bad_option.status.code(), Some(4));
    assert_eq!(accepted(&fleet), 0, "{}", fleet.host(0).log());

    // The same inventory and a good playbook do connect: the log check above can see one.
    sb.write(
        "good.yaml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - ping:\n",
    );
    let good = sb
        .rdeploy(&["run", "good.yaml", "-i", "inv.yaml"])
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(good.status.code(), Some(0));
    assert!(accepted(&fleet) >= 1, "{}", fleet.host(0).log());
}

#[test]
fn hostile_values_arrive_as_their_literal_bytes_from_every_surface() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let sb = Sandbox::new();
    // The host's inventory name itself is hostile (it reaches the host through a variable).
    let name = "web1;$(touch${IFS}/srv/pwned)";
    sb.write(
        "inv.yaml",
        inventory(&fleet, name, json!({ "canary_inv": PAYLOAD })),
    );
    std::fs::create_dir_all(h.path("/srv/in")).unwrap();
    std::fs::write(h.path("/srv/in/payload"), PAYLOAD).unwrap();
    let mut bytes = PAYLOAD.as_bytes().to_vec();
    bytes.extend_from_slice(b"\0\xff\0end");
    sb.write("binary.bin", &bytes);
    sb.write(
        "pb.yaml",
        r#"- hosts: all
  gather_facts: no
  tasks:
    - file: { path: /srv/out, state: directory }
    - name: inventory variable
      copy: { dest: /srv/out/inv, content: "{{ canary_inv }}" }
    - name: extra variable
      copy: { dest: /srv/out/extra, content: "{{ canary_e }}" }
    - name: read the file on the host
      command: cat /srv/in/payload
      register: got
      changed_when: false
    - name: registered output
      copy: { dest: /srv/out/registered, content: "{{ got.stdout }}" }
    - name: file content from the controller
      copy: { src: binary.bin, dest: /srv/out/binary }
    - name: host name
      copy: { dest: /srv/out/name, content: "{{ inventory_hostname }}" }
    - name: path
      copy: { dest: "/srv/out/{{ canary_path }}", content: "x" }
    - name: command argument
      command:
        argv: [touch, "/srv/out/{{ canary_path }}.argv"]
"#,
    );
    let path = "a b;$(touch pwned)`touch pwned`'\"{{ 7 * 7 }}";
    let vars = json!({ "canary_e": PAYLOAD, "canary_path": path }).to_string();
    let out = sb
        .rdeploy(&["run", "pb.yaml", "-i", "inv.yaml", "-e", &vars])
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    let read = |p: &str| std::fs::read(h.path(p)).unwrap_or_default();
    // Inventory and extra vars are the operator's templates, as in Ansible (issue 12): their
    // `{{ }}`/`{% %}` render, and what they render to still arrives as its literal bytes.
    let rendered = |t: &str| {
        t.replace("{{ 7 * 7 }}", "49")
            .replace("{% if true %}T{% endif %}", "T")
    };
    assert_eq!(read("/srv/out/inv"), rendered(PAYLOAD).as_bytes());
    assert_eq!(read("/srv/out/extra"), rendered(PAYLOAD).as_bytes());
    assert_eq!(read("/srv/out/registered"), PAYLOAD.as_bytes());
    assert_eq!(read("/srv/out/binary"), bytes);
    assert_eq!(read("/srv/out/name"), name.as_bytes());
    let path = rendered(path);
    assert!(h.path(&format!("/srv/out/{path}")).exists(), "{text}");
    assert!(h.path(&format!("/srv/out/{path}.argv")).exists(), "{text}");
    assert!(!h.path("/srv/pwned").exists(), "a payload was executed");
    assert!(!h.path("/srv/out/pwned").exists(), "a payload was executed");
    assert!(
        !h.dir().join("home/pwned").exists(),
        "a payload was executed"
    );
    assert!(!sb.path().join("pwned").exists());
}

/// A vault secret the playbook puts into a shell line never shows in the host's process list:
/// the line travels over stdin, not in the exec request.
#[test]
fn a_secret_in_a_command_line_never_reaches_the_hosts_process_list() {
    let fleet = Fleet::start(1);
    let sb = Sandbox::new();
    sb.write("inv.yaml", inventory(&fleet, "web1", Value::Null));
    let fixtures = support::repo().join("tests/fixtures/vault");
    std::fs::copy(fixtures.join("v11.yml"), sb.path().join("secrets.yml")).unwrap();
    sb.write(
        "pb.yaml",
        "- hosts: all\n  gather_facts: no\n  vars_files: [secrets.yml]\n  tasks:\n    - shell: \"sleep 2; test -n '{{ vault_db_password }}' && echo ok > /srv/ran\"\n",
    );
    let pw = fixtures.join("password.txt");
    let mut child = sb
        .rdeploy_process(&["run", "pb.yaml", "-i", "inv.yaml", "--vault-password-file"])
        .arg(&pw)
        .env_remove("SSH_AUTH_SOCK")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut seen_sleep = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        for p in fleet.host(0).processes() {
            assert!(
                !p.cmdline.contains("s3cr3t-db-Pa55"),
                "the secret is in a host process's arguments: {}",
                p.cmdline
            );
            seen_sleep |= p.cmdline.contains("sleep 2");
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "the run did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(seen_sleep, "the check looked while the command ran");
    assert_eq!(
        std::fs::read_to_string(fleet.host(0).path("/srv/ran")).unwrap(),
        "ok\n"
    );
}
