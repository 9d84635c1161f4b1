//! The host programs (`src/host/sh/*.sh`) checked as files and as what rdeploy sends.
//!
//! Two checks: `shellcheck -s sh` finds nothing in any of them, and a handful of their real
//! cases, built by the same `transport::cmd` builders and read back by the same parsers the
//! transports use, behave the same under dash, `bash --posix` and BusyBox `sh`, once with the
//! machine's GNU tools and once with BusyBox's tools first on `PATH`. `scripts/test.sh`
//! installs shellcheck and busybox; without them these tests fail rather than pass unchecked.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rdeploy::transport::Output;
use rdeploy::transport::cmd::{
    Cmd, HOST_LOCK_TAKEN, PGID_MARKER, PathKind, host_lock_line, kill_group_cmd, ln_sf_atomic,
    parse_stat, parse_stat_content, put_file_cmd, put_file_keeping_cmd, realpath_cmd, session_line,
    stat_attrs_cmd, stat_cmd, stat_content_cmd, stat_resolved_cmd, stdin_bootstrap,
};

fn sh_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/host/sh")
}

#[test]
fn shellcheck_finds_nothing_in_the_host_programs() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(sh_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        rdeploy::host::ALL.len(),
        "every file in src/host/sh is a declared host program"
    );
    let out = Command::new("shellcheck")
        .args(["-s", "sh", "-f", "gcc"])
        .args(&files)
        .output()
        .expect("shellcheck is installed (scripts/test.sh --install-only)");
    assert!(
        out.status.success(),
        "shellcheck findings:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A shell of the matrix: its argv before `-c SCRIPT`.
const SHELLS: &[&[&str]] = &[&["dash"], &["bash", "--posix"], &["busybox", "sh"]];

/// The BusyBox applets the host programs and these cases use. Debian's BusyBox has no `flock`
/// and its `setsid` no `-w`: the host lock and the session line's fallback use util-linux's in
/// every cell.
const APPLETS: &[&str] = &[
    "awk",
    "basename",
    "cat",
    "chmod",
    "chown",
    "cp",
    "cut",
    "date",
    "dd",
    "env",
    "grep",
    "head",
    "id",
    "ip",
    "kill",
    "ln",
    "ls",
    "mkdir",
    "mktemp",
    "mv",
    "nproc",
    "readlink",
    "rm",
    "rmdir",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "sync",
    "tail",
    "timeout",
    "tr",
    "uname",
    "wc",
];

/// One cell of the matrix: a shell, and a `PATH` (GNU tools, or BusyBox's first).
struct Env {
    shell: &'static [&'static str],
    path: String,
    name: String,
}

fn matrix(bin: &Path) -> Vec<Env> {
    for applet in APPLETS {
        let link = bin.join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink(which("busybox"), &link).unwrap();
        }
    }
    let system = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    // The BusyBox cells really run BusyBox's tools (its `stat` does not know `--version`).
    let probe = Command::new("sh")
        .args(["-c", "stat --version"])
        .env("PATH", format!("{}:{system}", bin.display()))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&probe.stdout).contains("coreutils"),
        "BusyBox's stat is first on PATH: {probe:?}"
    );
    let mut cells = Vec::new();
    for shell in SHELLS {
        for (tools, path) in [
            ("gnu", system.clone()),
            ("busybox", format!("{}:{system}", bin.display())),
        ] {
            cells.push(Env {
                shell,
                path,
                name: format!("{} with {tools} tools", shell.join(" ")),
            });
        }
    }
    cells
}

fn which(program: &str) -> PathBuf {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is installed (scripts/test.sh --install-only)"))
}

impl Env {
    /// Runs `script` as `SHELL -c SCRIPT` with `stdin`, as a transport runs `sh -c`.
    fn run(&self, script: &str, stdin: &[u8]) -> Output {
        self.run_with(script, stdin, false)
    }

    fn run_with(&self, script: &str, stdin: &[u8], group_leader: bool) -> Output {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(self.shell[0]);
        cmd.args(&self.shell[1..])
            .arg("-c")
            .arg(script)
            .env("PATH", &self.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if group_leader {
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            // The script may stop reading early; a broken pipe is its business.
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        Output {
            status: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
            truncated: Default::default(),
        }
    }

    /// `cmd` run as the transports run it: its script with its stdin.
    fn run_cmd(&self, cmd: &Cmd) -> Output {
        self.run(
            &cmd.to_shell().unwrap(),
            &cmd.stdin_bytes().unwrap_or_default(),
        )
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("rdeploy-"))
        .collect()
}

#[test]
fn put_writes_atomically_with_its_mode_and_checks_the_sha_in_every_shell() {
    let tmp = tempfile::tempdir().unwrap();
    let cells = matrix(&mkdir(tmp.path(), "bin"));
    for (n, env) in cells.iter().enumerate() {
        let dir = mkdir(tmp.path(), &format!("put{n}"));
        let dest = dir.join("app.conf");
        let d = dest.to_str().unwrap();
        // A new file with a mode (chmod path: an execute bit).
        let data = b"port = 80\n\0binary too\n".repeat(1000);
        let cmd = put_file_cmd(d, &sha256_hex(&data), Some(0o750), None, None).stdin(data.clone());
        let out = env.run_cmd(&cmd);
        assert_eq!(out.status, 0, "{}: {out:?}", env.name);
        assert_eq!(std::fs::read(&dest).unwrap(), data, "{}", env.name);
        assert_eq!(mode(&dest), 0o750, "{}", env.name);
        // Replacing it with no mode keeps the old file's mode.
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cmd = put_file_cmd(d, &sha256_hex(b"v2\n"), None, None, None).stdin(b"v2\n".to_vec());
        let out = env.run_cmd(&cmd);
        assert_eq!(out.status, 0, "{}: {out:?}", env.name);
        assert_eq!(std::fs::read(&dest).unwrap(), b"v2\n", "{}", env.name);
        assert_eq!(mode(&dest), 0o600, "{}", env.name);
        // A new file with a mode the umask gives (no chmod process), keeping our own ids.
        let other = dir.join("other");
        let (uid, gid) = {
            let m = std::fs::metadata(&dest).unwrap();
            (m.uid().to_string(), m.gid().to_string())
        };
        let cmd = put_file_keeping_cmd(
            other.to_str().unwrap(),
            &sha256_hex(b""),
            Some(0o640),
            Some(&uid),
            Some(&gid),
            true,
        )
        .stdin(Vec::new());
        let out = env.run_cmd(&cmd);
        assert_eq!(out.status, 0, "{}: {out:?}", env.name);
        assert!(out.stdout.is_empty(), "{}: {out:?}", env.name);
        assert_eq!(mode(&other), 0o640, "{}", env.name);
        // Bytes that do not match the sha: exit 3, the old content stays, no temp file.
        let cmd = put_file_cmd(d, &sha256_hex(b"expected"), None, None, None)
            .stdin(b"corrupted".to_vec());
        let out = env.run_cmd(&cmd);
        assert_eq!(out.status, 3, "{}: {out:?}", env.name);
        assert_eq!(std::fs::read(&dest).unwrap(), b"v2\n", "{}", env.name);
        assert_eq!(leftovers(&dir), Vec::<String>::new(), "{}", env.name);
        // A symlink to a folder swapped to another folder: replaced, not moved into.
        let current = dir.join("current");
        std::os::unix::fs::symlink(&dir, &current).unwrap();
        let out = env.run_cmd(&ln_sf_atomic("/tmp", current.to_str().unwrap()));
        assert_eq!(out.status, 0, "{}: {out:?}", env.name);
        assert_eq!(
            std::fs::read_link(&current).unwrap(),
            Path::new("/tmp"),
            "{}",
            env.name
        );
        assert_eq!(leftovers(&dir), Vec::<String>::new(), "{}", env.name);
    }
}

#[test]
fn stat_reports_files_folders_links_and_absent_paths_in_every_shell() {
    let tmp = tempfile::tempdir().unwrap();
    let cells = matrix(&mkdir(tmp.path(), "bin"));
    let dir = mkdir(tmp.path(), "tree");
    let file = dir.join("f");
    std::fs::write(&file, b"hello\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o4751)).unwrap();
    let sub = mkdir(&dir, "sub");
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let link = dir.join("l");
    std::os::unix::fs::symlink("f", &link).unwrap();
    let odd = dir.join("odd link");
    std::os::unix::fs::symlink("a\nb c", &odd).unwrap();
    let me = std::fs::metadata(&file).unwrap().uid();
    let p = |path: &Path| path.to_str().unwrap().to_string();
    for env in &cells {
        let s = parse_stat(&env.run_cmd(&stat_cmd(&p(&file))))
            .unwrap_or_else(|e| panic!("{}: {e}", env.name));
        assert_eq!(s.kind, PathKind::File, "{}", env.name);
        assert_eq!(s.mode, 0o4751, "{}", env.name);
        assert_eq!((s.size, s.uid), (6, me), "{}", env.name);
        assert_eq!(s.sha256, Some(sha256_hex(b"hello\n")), "{}", env.name);
        let s = parse_stat(&env.run_cmd(&stat_attrs_cmd(&p(&file)))).unwrap();
        assert_eq!((s.kind, s.sha256), (PathKind::File, None), "{}", env.name);
        let s = parse_stat(&env.run_cmd(&stat_cmd(&p(&sub)))).unwrap();
        assert_eq!(
            (s.kind, s.mode),
            (PathKind::Directory, 0o1777),
            "{}",
            env.name
        );
        let s = parse_stat(&env.run_cmd(&stat_cmd(&p(&link)))).unwrap();
        assert_eq!(
            s.kind,
            PathKind::Link { target: "f".into() },
            "{}",
            env.name
        );
        let s = parse_stat(&env.run_cmd(&stat_cmd(&p(&odd)))).unwrap();
        assert_eq!(
            s.kind,
            PathKind::Link {
                target: "a\nb c".into()
            },
            "{}",
            env.name
        );
        let s = parse_stat(&env.run_cmd(&stat_resolved_cmd(&p(&link)))).unwrap();
        assert_eq!((s.kind, s.size), (PathKind::File, 6), "{}", env.name);
        let s = parse_stat(&env.run_cmd(&stat_cmd(&p(&dir.join("none/x"))))).unwrap();
        assert_eq!(s.kind, PathKind::Absent, "{}", env.name);
        // Content comes along only when it differs from what the controller has.
        let (s, content) = parse_stat_content(&env.run_cmd(&stat_content_cmd(
            &p(&file),
            Some(&sha256_hex(b"other")),
            3,
        )))
        .unwrap();
        assert_eq!(
            (s.kind, content),
            (PathKind::File, Some(b"hel".to_vec())),
            "{}",
            env.name
        );
        let (_, content) = parse_stat_content(&env.run_cmd(&stat_content_cmd(
            &p(&file),
            Some(&sha256_hex(b"hello\n")),
            3,
        )))
        .unwrap();
        assert_eq!(content, None, "{}", env.name);
        let out = env.run_cmd(&realpath_cmd(&p(&link)));
        let real = std::fs::canonicalize(&file).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}\n", real.display()),
            "{}",
            env.name
        );
    }
}

#[test]
fn a_batch_splits_back_into_each_commands_output_in_every_shell() {
    let tmp = tempfile::tempdir().unwrap();
    let cells = matrix(&mkdir(tmp.path(), "bin"));
    let dir = mkdir(tmp.path(), "tree");
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::fs::write(&a, b"A").unwrap();
    std::fs::write(&b, b"BB").unwrap();
    let cmds = vec![
        stat_cmd(a.to_str().unwrap()),
        stat_cmd(b.to_str().unwrap()),
        stat_attrs_cmd(dir.to_str().unwrap()),
        Cmd::raw("printf 'no newline'; echo oops >&2; exit 3"),
        Cmd::raw("echo \"$$ ${n_-unset}\""),
    ];
    let batch = Cmd::batch(&cmds).unwrap();
    for env in &cells {
        for (runner, b) in [("fast", batch.clone()), ("capped", batch.capped())] {
            let out = env.run_cmd(&b.cmd);
            let outs = b
                .parse(&out)
                .unwrap_or_else(|e| panic!("{} ({runner}): {e}", env.name));
            assert_eq!(outs.len(), 5, "{} ({runner})", env.name);
            let sa = parse_stat(&outs[0]).unwrap();
            assert_eq!(sa.sha256, Some(sha256_hex(b"A")), "{} ({runner})", env.name);
            let sb = parse_stat(&outs[1]).unwrap();
            assert_eq!(sb.size, 2, "{} ({runner})", env.name);
            let sd = parse_stat(&outs[2]).unwrap();
            assert_eq!(sd.kind, PathKind::Directory, "{} ({runner})", env.name);
            assert_eq!(outs[3].status, 3, "{} ({runner})", env.name);
            assert_eq!(outs[3].stdout, b"no newline", "{} ({runner})", env.name);
            assert_eq!(outs[3].stderr, b"oops\n", "{} ({runner})", env.name);
            // The nonce never reaches a sub-command.
            let last = String::from_utf8_lossy(&outs[4].stdout).into_owned();
            assert!(
                last.ends_with(" unset\n"),
                "{} ({runner}): {last}",
                env.name
            );
        }
        // Reads riding after a command that reads its own stdin.
        let (cmd, frame) = Cmd::raw("cat; exit 4")
            .then_reads(&cmds[..2], true)
            .unwrap();
        let mut stdin = frame.stdin_prefix();
        stdin.extend_from_slice(b"own input\n");
        let (main, reads) = frame.split(env.run(&cmd.to_shell().unwrap(), &stdin));
        assert_eq!(
            (main.status, main.stdout),
            (4, b"own input\n".to_vec()),
            "{}",
            env.name
        );
        let reads = reads.unwrap_or_else(|| panic!("{}: no reads", env.name));
        assert_eq!(parse_stat(&reads[1]).unwrap().size, 2, "{}", env.name);
    }
}

#[test]
fn the_session_line_reports_its_group_and_runs_the_command_in_every_shell() {
    let tmp = tempfile::tempdir().unwrap();
    let cells = matrix(&mkdir(tmp.path(), "bin"));
    let cmd = Cmd::raw("echo \"args=$# $(cat)\"; exit 5");
    for env in &cells {
        // As sshd starts it: the login shell leads its own group, the line finds that itself.
        let line = session_line(&cmd, true).unwrap();
        let out = env.run_with(&line, b"in\n", true);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (first, rest) = text.split_once('\n').unwrap_or_default();
        assert!(first.starts_with(PGID_MARKER), "{}: {out:?}", env.name);
        assert_eq!(
            (out.status, rest),
            (5, "args=0 in\n"),
            "{}: {out:?}",
            env.name
        );
        // The secret-holding form: the line comes on stdin, ahead of the command's own input.
        let (boot, mut stdin) = stdin_bootstrap(&line);
        stdin.extend_from_slice(b"in\n");
        let out = env.run_with(boot, &stdin, true);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.starts_with(PGID_MARKER), "{}: {out:?}", env.name);
        assert!(text.ends_with("\nargs=0 in\n"), "{}: {out:?}", env.name);
        assert_eq!(out.status, 5, "{}: {out:?}", env.name);
        // Not a group leader (another SSH server): util-linux `setsid -w` makes one. BusyBox's
        // setsid has no `-w` (it would not wait for the command): not in the BusyBox cells.
        let out = env.run_with(&line, b"in\n", false);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (first, rest) = text.split_once('\n').unwrap_or_default();
        assert!(first.starts_with(PGID_MARKER), "{}: {out:?}", env.name);
        assert_eq!(
            (out.status, rest),
            (5, "args=0 in\n"),
            "{}: {out:?}",
            env.name
        );
    }
}

#[test]
fn the_host_lock_is_taken_and_released_in_every_shell() {
    let tmp = tempfile::tempdir().unwrap();
    let cells = matrix(&mkdir(tmp.path(), "bin"));
    for (n, env) in cells.iter().enumerate() {
        let dir = mkdir(tmp.path(), &format!("lock{n}"));
        let line = host_lock_line(Some(dir.to_str().unwrap()), "run-A from c1").unwrap();
        // Stdin ends at once: taken, then released.
        let out = env.run(&line, b"");
        assert_eq!(out.status, 0, "{}: {out:?}", env.name);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{HOST_LOCK_TAKEN}\n"),
            "{}",
            env.name
        );
        let holder = std::fs::read_to_string(dir.join("host.lock")).unwrap();
        assert_eq!(holder, "run-A from c1\n", "{}", env.name);
        // No lock file can be made there: 71, on which the run goes on without the lock.
        let blocked = mkdir(tmp.path(), &format!("blocked{n}"));
        mkdir(&blocked, "host.lock");
        let line = host_lock_line(Some(blocked.to_str().unwrap()), "run-A").unwrap();
        assert_eq!(env.run(&line, b"").status, 71, "{}", env.name);
    }
}

#[test]
fn kill_group_ends_a_process_group_in_every_shell() {
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let cells = matrix(&mkdir(tmp.path(), "bin"));
    for env in &cells {
        let mut victim = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = victim.id();
        let out = env.run_cmd(&kill_group_cmd(pgid, std::time::Duration::from_millis(500)));
        assert_eq!(out.status, 0, "{}: {out:?}", env.name);
        let status = victim.wait().unwrap();
        assert!(!status.success(), "{}: {status:?}", env.name);
    }
}

fn mkdir(parent: &Path, name: &str) -> PathBuf {
    let p = parent.join(name);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn fact_gathering_prints_every_section_in_every_shell() {
    use rdeploy::host::{FACTS_HARDWARE, FACTS_MIN, FACTS_NETWORK, FACTS_PROLOGUE, FACTS_VIRTUAL};
    let tmp = tempfile::tempdir().unwrap();
    let cells = matrix(&mkdir(tmp.path(), "bin"));
    // As `exec::facts` joins them: the prologue, then each group in a subshell.
    let mut script = FACTS_PROLOGUE.to_string();
    for group in [FACTS_MIN, FACTS_NETWORK, FACTS_HARDWARE, FACTS_VIRTUAL] {
        script.push_str(" ; ( ");
        script.push_str(group);
        script.push_str("\n)");
    }
    for env in &cells {
        let out = env.run(&script, b"");
        assert_eq!(out.status, 0, "{}: {out:?}", env.name);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let section = |name: &str| -> Vec<String> {
            let head = format!("\n@@{name}\n");
            let Some(at) = text.find(&head) else {
                panic!("{}: no section {name} in {text}", env.name)
            };
            let rest = &text[at + head.len()..];
            let end = rest.find("\n@@").unwrap_or(rest.len());
            rest[..end].lines().map(String::from).collect()
        };
        assert_eq!(section("uname").len(), 5, "{}", env.name);
        assert_eq!(section("id")[1], own_uid(), "{}", env.name);
        assert!(
            section("os_release").iter().any(|l| l.starts_with("ID=")),
            "{}",
            env.name
        );
        assert_eq!(section("date")[0].split('|').count(), 13, "{}", env.name);
        assert!(
            section("env").iter().any(|l| l.starts_with("PATH=")),
            "{}",
            env.name
        );
        let python = section("python");
        assert!(
            python.is_empty() || python[0].starts_with("{\"executable\""),
            "{}",
            env.name
        );
        let mounts = section("mounts");
        assert!(mounts.iter().any(|l| l.starts_with("M ")), "{}", env.name);
        assert!(mounts.iter().any(|l| l.starts_with("S ")), "{}", env.name);
        assert!(!section("meminfo").is_empty(), "{}", env.name);
        assert!(
            section("if lo").iter().any(|l| l.starts_with("mtu=")),
            "{}",
            env.name
        );
    }
}

/// This process's uid, as `id -u` prints it.
fn own_uid() -> String {
    std::fs::metadata("/proc/self").unwrap().uid().to_string()
}

#[test]
fn the_package_and_service_probes_answer_in_every_shell() {
    use rdeploy::host::{APT_CACHE_AGE, PACKAGE_DETECT, SERVICE_DETECT};
    let tmp = tempfile::tempdir().unwrap();
    let cells = matrix(&mkdir(tmp.path(), "bin"));
    for env in &cells {
        for (script, answers) in [
            (
                PACKAGE_DETECT,
                &[
                    "apt",
                    "dnf",
                    "pacman",
                    "zypper",
                    "pkgng",
                    "openbsd_pkg",
                    "none",
                ][..],
            ),
            (SERVICE_DETECT, &["systemd", "sysv", "none"][..]),
        ] {
            let out = env.run(script, b"");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let manager = text.trim_end().strip_prefix("manager ").unwrap_or_default();
            assert!(answers.contains(&manager), "{}: {out:?}", env.name);
            assert_eq!(out.status, 0, "{}: {out:?}", env.name);
        }
        let out = env.run(APT_CACHE_AGE, b"");
        let age = String::from_utf8_lossy(&out.stdout).trim().parse::<i64>();
        assert!(age.is_ok_and(|a| a >= 0), "{}: {out:?}", env.name);
    }
}

#[test]
fn a_backup_restores_files_links_folders_and_absent_paths_in_every_shell() {
    use rdeploy::backup::{
        Store, Target, TargetKind, backup_cmd, parse_backup, prepare_cmd, restore_cmd,
    };
    let tmp = tempfile::tempdir().unwrap();
    let cells = matrix(&mkdir(tmp.path(), "bin"));
    for (n, env) in cells.iter().enumerate() {
        let root = mkdir(tmp.path(), &format!("backup{n}"));
        let store = Store {
            state_dir: root.join("state").to_str().unwrap().to_string(),
            run_id: "20261206T081022Z-291cb7".into(),
            keep_runs: 5,
            stamp: Some(r#"{"label":"app 2.0 \"blue\" $x `y`","user":"ops"}"#.into()),
            switch: false,
        };
        let out = env.run_cmd(&prepare_cmd(&store));
        assert_eq!(out.status, 0, "{}: {out:?}", env.name);
        let file = root.join("app.conf");
        std::fs::write(&file, b"v1\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = root.join("current");
        std::os::unix::fs::symlink("app.conf", &link).unwrap();
        let dir = mkdir(&root, "site");
        std::fs::write(dir.join("index.html"), b"old").unwrap();
        let absent = root.join("new/sub/x");
        let path = |p: &Path| p.to_str().unwrap().to_string();
        let targets = [
            (path(&file), false),
            (path(&link), false),
            (path(&dir), true),
            (path(&absent), false),
        ]
        .map(|(path, deep)| Target {
            path,
            deep,
            kind: TargetKind::Path,
        });
        let out = env.run_cmd(&backup_cmd(&store, 1, "t", &targets, None, None));
        assert_eq!(out.status, 0, "{}: {out:?}", env.name);
        let entries = parse_backup(&out, &targets).unwrap();
        let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["file", "link", "directory", "absent"],
            "{}",
            env.name
        );
        assert_eq!(
            entries[0].run.as_ref().map(|r| r["label"].clone()),
            Some(serde_json::json!("app 2.0 \"blue\" $x `y`")),
            "{}: the stamp goes through the shell as written",
            env.name
        );
        // The step changes everything.
        std::fs::write(&file, b"v2 longer\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink("/elsewhere", &link).unwrap();
        std::fs::remove_file(dir.join("index.html")).unwrap();
        std::fs::write(dir.join("new.html"), b"new").unwrap();
        std::fs::create_dir_all(absent.parent().unwrap()).unwrap();
        std::fs::write(&absent, b"made").unwrap();
        // Rollback: newest entry first.
        for e in entries.iter().rev() {
            let out = env.run_cmd(&restore_cmd(&store.state_dir, &store.run_id, e));
            assert_eq!(out.status, 0, "{} ({}): {out:?}", env.name, e.path);
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"v1\n", "{}", env.name);
        assert_eq!(mode(&file), 0o640, "{}", env.name);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("app.conf"),
            "{}",
            env.name
        );
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["index.html"], "{}", env.name);
        assert!(
            !root.join("new").exists(),
            "{}: created folders pruned",
            env.name
        );
    }
}
