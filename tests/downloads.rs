//! End to end on the SSH fleet: `unarchive` of an archive that is already on the host (Ansible's
//! deprecated `copy: no`, a templated `copy`, a URL with `remote_src`), and `get_url` with
//! basic authentication and `force`. Each changes the hosts for real, is `ok` on a second run,
//! changes nothing under `--check`, and `rdeploy rollback RUN` restores what was there; the
//! password never shows in rdeploy's output, journal or the host's backups.

mod support;

use std::io::{Read, Write};

use support::fleet::Fleet;
use support::oracle::{fleet_sandbox_with, play, rollback_run, user_ids};

/// A tar.gz of `app/README` (`hello`) and `app/bin/run`, written to `path`.
fn make_archive(path: &std::path::Path) {
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("app/bin")).unwrap();
    std::fs::write(src.path().join("app/README"), "hello\n").unwrap();
    std::fs::write(src.path().join("app/bin/run"), "#!/bin/sh\n").unwrap();
    let ok = std::process::Command::new("tar")
        .arg("czf")
        .arg(path)
        .args(["-C"])
        .arg(src.path())
        .arg("app")
        .status()
        .unwrap();
    assert!(ok.success());
}

/// `unarchive` with `copy: no` unpacks the archive the host already has (it is not on the
/// controller at all, and the playbook is not refused for it), as does a templated `copy`
/// that renders false, and `remote_src` with a URL the hosts download; `--check` changes nothing (a tar archive is not looked at, as in
/// Ansible), the second run is ok, and rollback puts `dest` back as it was.
#[test]
fn unarchive_copy_no_unpacks_the_hosts_own_archive_and_rollback_restores_dest() {
    let fleet = Fleet::start(2);
    let (uid, gid) = user_ids();
    for h in fleet.hosts() {
        std::fs::create_dir_all(h.path("/srv/cache")).unwrap();
        make_archive(&h.path("/srv/cache/app.tar.gz"));
        for dest in ["/srv/u", "/srv/t", "/srv/w"] {
            std::fs::create_dir_all(h.path(dest)).unwrap();
            std::os::unix::fs::chown(h.path(dest), Some(uid), Some(gid)).unwrap();
        }
        std::fs::write(h.path("/srv/u/KEEP"), "kept\n").unwrap();
    }
    let archive = tempfile::tempdir().unwrap();
    make_archive(&archive.path().join("app.tar.gz"));
    let port = serve_file(std::fs::read(archive.path().join("app.tar.gz")).unwrap());
    let sb = fleet_sandbox_with(
        &fleet,
        &format!(
            "- hosts: all\n  gather_facts: no\n  vars:\n    from_controller: false\n  tasks:\n    - unarchive:\n        src: /srv/cache/app.tar.gz\n        dest: /srv/u\n        copy: no\n    - unarchive:\n        src: /srv/cache/app.tar.gz\n        dest: /srv/t\n        copy: \"{{{{ from_controller }}}}\"\n    - unarchive:\n        src: http://127.0.0.1:{port}/app.tar.gz\n        dest: /srv/w\n        remote_src: yes\n"
        ),
    );
    let check = play(&sb, &["--check"], &[]);
    for h in fleet.hosts() {
        assert_eq!(check.changed(h.name()), 0, "{}", check.text);
        assert!(!h.path("/srv/u/app").exists(), "--check changes nothing");
    }
    let first = play(&sb, &[], &[]);
    for h in fleet.hosts() {
        assert_eq!(
            first.statuses(h.name()),
            ["changed", "changed", "changed"],
            "{}",
            first.text
        );
        for dest in ["/srv/u", "/srv/t", "/srv/w"] {
            assert_eq!(
                std::fs::read_to_string(h.path(&format!("{dest}/app/README"))).unwrap(),
                "hello\n"
            );
        }
    }
    let second = play(&sb, &[], &[]);
    for h in fleet.hosts() {
        assert_eq!(
            second.statuses(h.name()),
            ["ok", "ok", "ok"],
            "{}",
            second.text
        );
    }
    rollback_run(&sb, &first);
    for h in fleet.hosts() {
        assert!(
            !h.path("/srv/u/app").exists(),
            "rollback removes what was unpacked"
        );
        assert!(!h.path("/srv/t/app").exists());
        assert!(!h.path("/srv/w/app").exists());
        assert_eq!(
            std::fs::read_to_string(h.path("/srv/u/KEEP")).unwrap(),
            "kept\n"
        );
        assert!(h.path("/srv/cache/app.tar.gz").exists());
    }
}

/// Serves `body` to every request on 127.0.0.1, where the fleet's hosts reach it.
fn serve_file(body: Vec<u8>) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut buf = [0u8; 4096];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    port
}

const BODY: &[u8] = b"release 2.1\n";
const PASSWORD: &str = "pw-7f3a9c-secret";

/// Serves [`BODY`] at `/app.bin` to `deploy`/[`PASSWORD`] by HTTP basic authentication (a 401
/// asking for it otherwise), on 127.0.0.1, where the fleet's hosts reach it.
fn serve() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let served = hits.clone();
    let auth = format!(
        "Authorization: Basic {}",
        // base64("deploy:pw-7f3a9c-secret")
        "ZGVwbG95OnB3LTdmM2E5Yy1zZWNyZXQ="
    );
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut buf = [0u8; 4096];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&req).to_string();
            let ok = head.lines().any(|l| l.trim() == auth);
            let (status, extra, body): (&str, &str, &[u8]) = if !ok {
                (
                    "401 Unauthorized",
                    "WWW-Authenticate: Basic realm=\"r\"\r\n",
                    b"",
                )
            } else if head.starts_with("GET /app.bin ") {
                served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                ("200 OK", "", BODY)
            } else {
                ("404 Not Found", "", b"")
            };
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = s.write_all(body);
        }
    });
    (port, hits)
}

/// `get_url` with `url_username`/`url_password` and `force: yes`: the host downloads with the
/// credentials (the password comes from the environment and never shows in rdeploy's output,
/// its journal or the host's backups and manifests); `--check` predicts a change and changes
/// nothing; every run downloads again but the second is `ok` (same content, as Ansible says
/// `changed: false`; before, a forced download failed as "did not converge"); rolling both runs
/// back, newest first, removes the downloaded file.
#[test]
fn get_url_with_basic_auth_and_force_is_ok_when_the_content_is_the_same() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let (port, hits) = serve();
    let sb = fleet_sandbox_with(
        &fleet,
        &format!(
            "- hosts: all\n  gather_facts: no\n  tasks:\n    - get_url:\n        url: http://127.0.0.1:{port}/app.bin\n        dest: /srv/app.bin\n        username: deploy\n        password: \"{{{{ lookup('env', 'APP_REPO_PASSWORD') }}}}\"\n        force: yes\n        mode: \"0640\"\n"
        ),
    );
    let env = [
        ("APP_REPO_PASSWORD", PASSWORD),
        ("no_proxy", "127.0.0.1"),
        ("NO_PROXY", "127.0.0.1"),
    ];
    let check = play(&sb, &["--check"], &env);
    assert_eq!(check.changed(h.name()), 1, "{}", check.text);
    assert!(!h.path("/srv/app.bin").exists(), "--check changes nothing");
    let first = play(&sb, &["-vvv"], &env);
    assert_eq!(first.statuses(h.name()), ["changed"], "{}", first.text);
    assert_eq!(std::fs::read(h.path("/srv/app.bin")).unwrap(), BODY);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(h.path("/srv/app.bin"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o640
    );
    let second = play(&sb, &["-vvv"], &env);
    assert_eq!(second.statuses(h.name()), ["ok"], "{}", second.text);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
    for run in [&check, &first, &second] {
        assert!(!run.text.contains(PASSWORD), "{}", run.text);
    }
    for (path, bytes) in sb.snapshot() {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PASSWORD),
            "{} holds the password",
            path.display()
        );
    }
    let state = h.path("/var/lib/rdeploy");
    for e in walk(&state) {
        let text = std::fs::read(&e).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&text).contains(PASSWORD),
            "{} holds the password",
            e.display()
        );
    }
    // The second run downloaded over the file too (with the same content): newest first.
    rollback_run(&sb, &second);
    assert_eq!(std::fs::read(h.path("/srv/app.bin")).unwrap(), BODY);
    rollback_run(&sb, &first);
    assert!(!h.path("/srv/app.bin").exists(), "rollback removes it");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// With `become` (sudo reads its own lines from stdin first), the URL and credentials still
/// reach curl on stdin: the file is downloaded as root, and the second run is `ok`.
#[test]
fn get_url_with_become_reads_the_credentials_after_sudo() {
    assert!(
        support::fleet::enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let (port, hits) = serve();
    let sb = fleet_sandbox_with(
        &fleet,
        &format!(
            "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - get_url:\n        url: http://127.0.0.1:{port}/app.bin\n        dest: /srv/root.bin\n        url_username: deploy\n        url_password: \"{{{{ lookup('env', 'APP_REPO_PASSWORD') }}}}\"\n        force_basic_auth: yes\n        owner: root\n        mode: \"0600\"\n"
        ),
    );
    let env = [("APP_REPO_PASSWORD", PASSWORD)];
    let first = play(&sb, &[], &env);
    assert_eq!(first.statuses(h.name()), ["changed"], "{}", first.text);
    let f = h.path("/srv/root.bin");
    assert_eq!(std::fs::read(&f).unwrap(), BODY);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&f).unwrap().uid(), 0);
    let second = play(&sb, &[], &env);
    assert_eq!(second.statuses(h.name()), ["ok"], "{}", second.text);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(!first.text.contains(PASSWORD) && !second.text.contains(PASSWORD));
}
