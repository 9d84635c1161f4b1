//! End to end on the SSH fleet: the package-repository modules (`apt_repository`,
//! `deb822_repository`, `yum_repository`, `apt_key` with a keyring) change a host that has its own `/etc`
//! ([`FleetBuilder::own_etc`]) through `become`: `--check` writes nothing, a run changes,
//! the same run again is ok, and `rdeploy rollback RUN` puts every file back as it was. The
//! apt cache is not refreshed (`update_cache: no`): the host shares the machine's
//! `/var/lib/apt`.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use support::Sandbox;
use support::fleet::{Fleet, enable_sudo};

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

fn rdeploy(sb: &Sandbox, args: &[&str]) -> (i32, String, String) {
    let out = sb
        .rdeploy(args)
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(180))
        .output()
        .expect("run rdeploy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn recap(out: &str) -> String {
    out.lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .nth(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn run_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("run ")?.split_whitespace().next())
        .expect("a run id")
        .to_string()
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

const REPOS: &str = r#"
- hosts: all
  gather_facts: no
  become: true
  tasks:
    - apt_repository:
        repo: deb [trusted=yes] file:/srv/repo ./
        filename: rdeploy-e2e
        update_cache: no
    - deb822_repository:
        name: rdeploy e2e
        uris: file:/srv/repo
        suites: ./
        trusted: yes
    - yum_repository:
        name: rdeploy-e2e
        description: rdeploy e2e
        baseurl: file:///srv/repo
        gpgcheck: no
        reposdir: /etc/rdeploy-test/yum.repos.d
    - apt_key:
        data: "{{ lookup('file', 'key.asc') }}"
        keyring: /etc/apt/keyrings/rdeploy-e2e.gpg
"#;

/// An armored public key made with the machine's gpg, and its 16-digit id.
fn test_key(dir: &Path) -> (String, String) {
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let out = std::process::Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--quiet"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let uid = "rdeploy e2e <e2e@example.com>";
    gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        uid,
        "ed25519",
        "sign",
        "never",
    ]);
    let listing = gpg(&["--with-colons", "--list-keys", uid]);
    let id = listing
        .lines()
        .find(|l| l.starts_with("pub:"))
        .and_then(|l| l.split(':').nth(4))
        .unwrap()
        .to_string();
    (gpg(&["--armor", "--export", uid]), id)
}

/// The key ids in a keyring file, as gpg lists them.
fn keyring_ids(path: &Path) -> String {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("gpg")
        .env("GNUPGHOME", home.path())
        .args(["--batch", "--with-colons", "--show-keys"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn repository_modules_change_check_converge_and_roll_back_on_a_host() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::builder().hosts(1).own_etc().start();
    let h = fleet.host(0);
    let list = h.path("/etc/apt/sources.list.d/rdeploy-e2e.list");
    let sources = h.path("/etc/apt/sources.list.d/rdeploy-e2e.sources");
    let yum_dir = h.path("/etc/rdeploy-test/yum.repos.d");
    let repo = yum_dir.join("rdeploy-e2e.repo");
    std::fs::create_dir_all(&yum_dir).unwrap();
    // A disabled copy of the line is there before: the run enables it in place.
    let before_list = "# deb [trusted=yes] file:/srv/repo ./\n";
    std::fs::write(&list, before_list).unwrap();
    // The backups are root's, as on a real host: the fleet gives the login user its own
    // /var/lib/rdeploy, where root's manifest (umask 077) would be unreadable to the rollback.
    let state = h.path("/var/lib/rdeploy");
    std::os::unix::fs::chown(&state, Some(0), Some(0)).unwrap();
    let keyring = h.path("/etc/apt/keyrings/rdeploy-e2e.gpg");
    let sb = sandbox(&fleet, REPOS);
    let (key, key_id) = test_key(sb.path());
    sb.write("key.asc", &key);
    let run = ["run", "pb.yaml", "-i", "inv.yaml"];

    let (code, out, err) = rdeploy(&sb, &[&run[..], &["--check"]].concat());
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(recap(&out).contains("changed=4"), "{out}");
    assert_eq!(read(&list).as_deref(), Some(before_list), "--check wrote");
    assert!(
        !sources.exists() && !repo.exists() && !keyring.exists(),
        "--check wrote"
    );

    let (code, out, err) = rdeploy(&sb, &run);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(recap(&out).contains("changed=4"), "{out}");
    let first = run_id(&out);
    assert_eq!(
        read(&list).as_deref(),
        Some("deb [trusted=yes] file:/srv/repo ./\n")
    );
    assert_eq!(
        read(&sources).as_deref(),
        Some(
            "X-Repolib-Name: rdeploy e2e\nSuites: ./\nTrusted: yes\nTypes: deb\nURIs: file:/srv/repo\n"
        )
    );
    assert_eq!(
        read(&repo).as_deref(),
        Some("[rdeploy-e2e]\nbaseurl = file:///srv/repo\ngpgcheck = 0\nname = rdeploy e2e\n\n")
    );
    assert!(keyring_ids(&keyring).contains(&key_id), "{out}");
    // The host sees them (its own /etc), the machine does not.
    assert!(!Path::new("/etc/apt/sources.list.d/rdeploy-e2e.sources").exists());
    let seen = fleet
        .ssh(h, "cat /etc/apt/sources.list.d/rdeploy-e2e.sources")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&seen.stdout).contains("URIs: file:/srv/repo"));

    let (code, out, err) = rdeploy(&sb, &run);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(recap(&out).contains("changed=0"), "{out}");

    let (code, out, err) = rdeploy(&sb, &["rollback", &first, "-i", "inv.yaml", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(read(&list).as_deref(), Some(before_list), "{out}");
    assert!(!sources.exists(), "{out}");
    assert!(!repo.exists(), "{out}");
    assert!(!keyring.exists(), "{out}");

    // A key removed from a keyring: the keyring is rewritten without it; rollback puts the
    // keyring's bytes back.
    let (code, out, err) = rdeploy(&sb, &run);
    assert_eq!(code, 0, "{out}\n{err}");
    let with_key = std::fs::read(&keyring).unwrap();
    sb.write(
        "absent.yaml",
        format!(
            "- hosts: all\n  gather_facts: no\n  become: true\n  tasks:\n    - apt_key: {{ id: '{key_id}', keyring: /etc/apt/keyrings/rdeploy-e2e.gpg, state: absent }}\n"
        ),
    );
    let (code, out, err) = rdeploy(&sb, &["run", "absent.yaml", "-i", "inv.yaml"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(recap(&out).contains("changed=1"), "{out}");
    assert!(!keyring_ids(&keyring).contains(&key_id), "{out}");
    let removed = run_id(&out);
    let (code, out, err) = rdeploy(&sb, &["run", "absent.yaml", "-i", "inv.yaml"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(recap(&out).contains("changed=0"), "{out}");
    let (code, out, err) = rdeploy(&sb, &["rollback", &removed, "-i", "inv.yaml", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(std::fs::read(&keyring).unwrap(), with_key, "{out}");
}
