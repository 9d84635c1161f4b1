//! End to end, through the `rdeploy` binary on the local connection, under a pseudo-terminal
//! (util-linux `script`, which scripts/test.sh installs): on a terminal, progress bars are
//! drawn below the result lines and cleared at the end, leaving on screen exactly the lines a
//! run without a terminal prints; `RDEPLOY_LOG` lines do not tear them; `-q`, `CI`,
//! `TERM=dumb` and `--progress never` turn them off, `--progress always` back on (but for a
//! dumb terminal); a terminal that hangs up mid-run does not stop it; without a terminal
//! nothing changes, whatever `--progress` says. The transcript is read back through a
//! terminal emulator (vt100) to see the screen a person would see.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use regex::Regex;

const ROWS: u16 = 400;
/// Wide enough that no line (log lines hold commands) wraps.
const COLS: u16 = 400;

const INVENTORY: &str = "local:\n  hosts:\n    h1:\n      ansible_connection: local\n    h2:\n      ansible_connection: local\n";

/// One host per batch (so that the lines come in one order), a task that takes a moment, a
/// health gate with a soak.
const PLAYBOOK: &str = r#"
- name: Progress
  hosts: local
  gather_facts: no
  serial: 1
  health:
    - command: "true"
  soak: 0.3s
  tasks:
    - name: Take a moment
      command: sleep 0.4
    - name: Say hello
      debug:
        msg: hello
"#;

/// Long enough to hang up the terminal in the middle.
const SLOW: &str = r#"
- name: Slow
  hosts: local
  gather_facts: no
  tasks:
    - name: One
      command: sleep 1
    - name: Two
      command: sleep 1
"#;

/// The same without waiting, for the tests that only look for bars.
const QUICK: &str = r#"
- name: Quick
  hosts: local
  gather_facts: no
  serial: 1
  tasks:
    - name: Say hello
      debug:
        msg: hello
"#;

struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new(playbook: &str) -> Dir {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("inv.yaml"), INVENTORY).expect("write inventory");
        std::fs::write(tmp.path().join("pb.yaml"), playbook).expect("write playbook");
        Dir { tmp }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The environment of every run: no colours (so that screens compare with pipes), a
    /// terminal type, no CI, state in the temp dir.
    fn env(&self, c: &mut Command) {
        c.current_dir(self.path())
            .env("NO_COLOR", "1")
            .env("TERM", "xterm")
            .env("RDEPLOY_STATE_DIR", self.path().join("state"))
            .env_remove("CI")
            .env_remove("RDEPLOY_PROGRESS")
            .env_remove("RDEPLOY_LOG")
            .env_remove("RDEPLOY_INVENTORY")
            .stdin(Stdio::null());
    }

    /// `rdeploy run pb.yaml -i inv.yaml ARGS` with stdout and stderr on pipes.
    fn run_piped(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(bin());
        self.env(&mut c);
        c.args(["run", "pb.yaml", "-i", "inv.yaml"])
            .args(args)
            .envs(env.iter().copied());
        let out = wait(c.stdout(Stdio::piped()).stderr(Stdio::piped()));
        assert!(out.status.success(), "{out:?}");
        out
    }

    /// The same on a pseudo-terminal of ROWS x COLS: everything the terminal received.
    fn run_on_tty(&self, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
        let line = format!(
            "stty rows {ROWS} cols {COLS} && exec '{}' run pb.yaml -i inv.yaml {}",
            bin().display(),
            args.join(" ")
        );
        let mut c = Command::new("script");
        self.env(&mut c);
        c.args(["-qec", &line, "/dev/null"])
            .envs(env.iter().copied());
        let out = wait(c.stdout(Stdio::piped()).stderr(Stdio::piped()));
        assert!(out.status.success(), "{out:?}");
        out.stdout
    }
}

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("rdeploy")
}

/// Runs `c` to its end, at most a minute (a run that hangs fails the test, it does not hang it).
fn wait(c: &mut Command) -> Output {
    let mut child = c.spawn().unwrap_or_else(|e| {
        panic!("cannot start {c:?}: {e} (util-linux's `script` is installed by scripts/test.sh)")
    });
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{c:?} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// What a terminal of ROWS x COLS shows after receiving `bytes`, without trailing blanks.
fn screen(bytes: &[u8]) -> Vec<String> {
    let mut p = vt100::Parser::new(ROWS, COLS, 0);
    p.process(bytes);
    let mut rows: Vec<String> = p
        .screen()
        .rows(0, COLS)
        .map(|r| r.trim_end().to_string())
        .collect();
    while rows.last().is_some_and(|r| r.is_empty()) {
        rows.pop();
    }
    rows
}

/// Lines of plain output, without trailing blanks.
fn lines(text: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(text);
    let mut rows: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    while rows.last().is_some_and(|r| r.is_empty()) {
        rows.pop();
    }
    rows
}

/// Run ids (and so journal paths) differ from run to run.
fn same_run_ids(rows: Vec<String>) -> Vec<String> {
    let id = Regex::new(r"\d{8}T\d{6}Z-[0-9a-f]+").expect("regex");
    rows.into_iter()
        .map(|r| id.replace_all(&r, "RUN_ID").into_owned())
        .collect()
}

/// Text only the bars show: the batch bar's `batch i/N` followed by its bar or its clock (the
/// result lines say `BATCH 1/2 [h1]` and `HEALTH [batch 1/2]`).
fn has_bars(transcript: &[u8]) -> bool {
    let bar = Regex::new(r"batch \d+/\d+ (\[|\s*\d+s )").expect("regex");
    bar.is_match(&String::from_utf8_lossy(transcript))
}

#[test]
fn on_a_terminal_bars_are_drawn_then_cleared_leaving_the_plain_lines() {
    let d = Dir::new(PLAYBOOK);
    let tty = d.run_on_tty(&[], &[]);
    let text = String::from_utf8_lossy(&tty);
    assert!(has_bars(&tty), "no progress bars drawn:\n{text}");
    for shown in [
        "TASK [Take a moment]",
        "HEALTH probing",
        "HEALTH soak: watching the probes for 0.3s",
    ] {
        assert!(
            text.contains(shown),
            "the bars never showed {shown:?}:\n{text}"
        );
    }
    // Once the bars are cleared, the screen holds exactly what a pipe gets.
    let on_screen = same_run_ids(screen(&tty));
    let piped = d.run_piped(&[], &[]);
    let plain = same_run_ids(lines(&piped.stdout));
    assert_eq!(on_screen, plain);
    assert!(
        plain.iter().any(|l| l.starts_with("PLAY RECAP")),
        "{plain:?}"
    );
    assert!(plain.iter().any(|l| l.starts_with("h2 ")), "{plain:?}");
}

#[test]
fn log_lines_do_not_tear_the_bars() {
    let d = Dir::new(PLAYBOOK);
    let tty = d.run_on_tty(&[], &[("RDEPLOY_LOG", "debug")]);
    assert!(has_bars(&tty));
    let written = String::from_utf8_lossy(&tty).matches(" DEBUG ").count();
    assert!(written > 0, "RDEPLOY_LOG=debug logged nothing");
    let rows = screen(&tty);
    let logged: Vec<&String> = rows.iter().filter(|r| r.contains(" DEBUG ")).collect();
    // Every log line is still on screen, whole, on a line of its own.
    assert_eq!(logged.len(), written, "{rows:#?}");
    let stamp = Regex::new(r"^\d{4}-\d\d-\d\dT[0-9:.]+Z DEBUG rdeploy::").expect("regex");
    for l in &logged {
        assert!(stamp.is_match(l), "torn log line: {l:?}\n{rows:#?}");
    }
    // The result lines are all there, in order, between the log lines.
    let results: Vec<String> = rows
        .into_iter()
        .filter(|r| !r.contains(" DEBUG "))
        .collect();
    let piped = d.run_piped(&[], &[]);
    assert_eq!(same_run_ids(results), same_run_ids(lines(&piped.stdout)));
}

#[test]
fn quiet_dumb_terminals_ci_and_never_turn_the_bars_off_and_always_on() {
    let d = Dir::new(QUICK);
    assert!(has_bars(&d.run_on_tty(&[], &[])), "auto on a terminal");
    for (args, env, why) in [
        (&["-q"][..], &[][..], "-q"),
        (&[], &[("TERM", "dumb")], "TERM=dumb"),
        (&[], &[("CI", "true")], "CI"),
        (&["--progress", "never"], &[], "--progress never"),
        (
            &[],
            &[("RDEPLOY_PROGRESS", "never")],
            "RDEPLOY_PROGRESS=never",
        ),
        (&["--output", "json"], &[], "--output json"),
    ] {
        let tty = d.run_on_tty(args, env);
        assert!(
            !has_bars(&tty),
            "{why} drew bars:\n{}",
            String::from_utf8_lossy(&tty)
        );
        if why == "-q" {
            let rows = screen(&tty);
            assert!(rows.iter().any(|r| r.starts_with("PLAY RECAP")), "{rows:?}");
        }
    }
    // A dumb terminal cannot move its cursor: no bars, whatever the flag.
    let dumb = d.run_on_tty(&["--progress", "always"], &[("TERM", "dumb")]);
    assert!(!has_bars(&dumb), "{}", String::from_utf8_lossy(&dumb));
    for (args, env, why) in [
        (&["--progress", "always", "-q"][..], &[][..], "-q"),
        (&[], &[("RDEPLOY_PROGRESS", "always"), ("CI", "1")], "CI"),
    ] {
        let tty = d.run_on_tty(args, env);
        assert!(has_bars(&tty), "always with {why} drew no bars");
        let rows = screen(&tty);
        assert!(rows.iter().any(|r| r.starts_with("PLAY RECAP")), "{rows:?}");
        assert!(!has_bars(rows.join("\n").as_bytes()), "{rows:#?}");
    }
}

#[test]
fn without_a_terminal_nothing_changes_whatever_progress_says() {
    let d = Dir::new(PLAYBOOK);
    let always = d.run_piped(&["--progress", "always"], &[]);
    let never = d.run_piped(&["--progress", "never"], &[]);
    for out in [&always, &never] {
        assert!(!out.stdout.contains(&0x1b), "escape sequences in {out:?}");
        assert!(!out.stderr.contains(&0x1b), "escape sequences in {out:?}");
        assert!(!has_bars(&out.stdout), "{out:?}");
    }
    assert_eq!(
        same_run_ids(lines(&always.stdout)),
        same_run_ids(lines(&never.stdout))
    );
    // JSON events stay what they were: one object per line, no progress-only events.
    let json = d.run_piped(&["--output", "json", "--progress", "always"], &[]);
    let events: Vec<String> = lines(&json.stdout)
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["event"].as_str().expect("an event name").to_string()
        })
        .collect();
    let known = [
        "play", "batch", "task", "result", "health", "probe", "recap", "run_end",
    ];
    assert!(
        events.iter().all(|e| known.contains(&e.as_str())),
        "{events:?}"
    );
}

#[test]
fn a_terminal_that_hangs_up_does_not_stop_the_run() {
    let d = Dir::new(SLOW);
    // The hangup signal ignored (as under `nohup` with output left on the terminal): the
    // run goes on, and each write to the closed terminal fails.
    let line = format!(
        "trap '' HUP; stty rows {ROWS} cols {COLS}; '{}' run pb.yaml -i inv.yaml \
         --report report.json; echo $? > rc",
        bin().display()
    );
    let mut c = Command::new("script");
    d.env(&mut c);
    c.args(["-qec", &line, "/dev/null"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("start script");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !has_bars(&seen) {
        let n = out.read(&mut buf).expect("read the terminal");
        assert!(
            n > 0,
            "no bars before the end:\n{}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    // The terminal goes away while the first task runs.
    child.kill().expect("kill script");
    let _ = child.wait();
    drop(out);
    let rc = d.path().join("rc");
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        match std::fs::read_to_string(&rc) {
            Ok(code) if code.ends_with('\n') => break code,
            _ => {
                assert!(Instant::now() < deadline, "the run did not end");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert_eq!(code.trim(), "0", "the run's exit code");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.path().join("report.json")).expect("the report is written"),
    )
    .expect("JSON report");
    assert_eq!(report["outcome"], "success", "{report}");
}
