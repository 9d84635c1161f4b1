//! The cost of one command over an open connection, direct and through a `ProxyJump` host,
//! measured in the same run on the test fleet (`tests/support/fleet.rs`; needs root and sshd).
//!
//! `jump_bench [N] [--hold SECS]` starts a plain fleet with one host and a fleet with one
//! host behind a bastion, connects with rdeploy's own [`SshTransport`] (from the fleets' ssh
//! configs, as a run does) and runs `true` N times (default 50) on each connection, one
//! command after the other, after 5 warm-up commands. It prints the median and the mean per
//! command for:
//! - the plain host (127.0.0.1);
//! - the bastion itself and the private host through it, as the tests reach them: through
//!   the fleet's relay thread (a TCP forwarder between the controller's network namespace and
//!   the fleet's);
//! - the same two from inside the fleet's network namespace (a thread that entered it, with
//!   its own runtime): no relay, the controller talks TCP to the bastion's sshd, as it would
//!   to a real bastion; and the private host through a chain of two jump hosts (the bastion
//!   twice, the second hop being the bastion reaching itself).
//!
//! `--hold SECS` waits that long before connecting, so strace can be attached to the sshds
//! (their PIDs are printed) and see the connections from their start, or OpenSSH's client be
//! measured against the same hosts (the ssh configs and the namespace are printed).
//!
//! A measurement, not a test: nothing here asserts a duration.

#[allow(dead_code)]
#[path = "../tests/support/fleet.rs"]
mod fleet;

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rdeploy::transport::ssh_config::{self, SshOptions};
use rdeploy::transport::{Cmd, SshTransport, Transport};

use fleet::Fleet;

/// One connection to measure: a label, the ssh config to read, the host to connect to, and
/// its `ansible_ssh_common_args` if any.
type Target = (&'static str, PathBuf, &'static str, Option<&'static str>);

/// A chain of two jump hosts: the bastion, then the bastion again (reaching itself).
const TWO_JUMPS: &str = "-o ProxyJump=bastion,bastion";

/// Per-command durations of one target, sorted.
type Times = Vec<Duration>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut n = 50usize;
    let mut hold = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (a.as_str(), a.parse::<usize>()) {
            ("--hold", _) => hold = it.next().and_then(|s| s.parse::<u64>().ok()),
            (_, Ok(v)) if v > 0 => n = v,
            _ => {
                eprintln!("usage: jump_bench [N] [--hold SECS]");
                return ExitCode::from(2);
            }
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("RDEPLOY_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let plain = Fleet::start(1);
    let jumped = Fleet::builder().hosts(1).bastion().start();
    let (Some(bastion), Some(netns)) = (jumped.bastion(), jumped.netns_path()) else {
        eprintln!("the fleet has no bastion");
        return ExitCode::FAILURE;
    };
    println!(
        "sshd pids: plain host0 {}, bastion {}, private host0 {}",
        plain.host(0).sshd_pid(),
        bastion.sshd_pid(),
        jumped.host(0).sshd_pid()
    );
    if let Some(secs) = hold {
        println!(
            "holding {secs}s before connecting; ssh configs: plain {}, bastion fleet {} (network namespace {})",
            plain.ssh_config().display(),
            jumped.ssh_config().display(),
            netns.display()
        );
        std::thread::sleep(Duration::from_secs(secs));
    }
    let (plain_cfg, jump_cfg) = (plain.ssh_config(), jumped.ssh_config());
    let outside: Vec<Target> = vec![
        ("direct: plain host", plain_cfg.into(), "host0", None),
        ("relay: bastion itself", jump_cfg.into(), "bastion", None),
        ("relay: through ProxyJump", jump_cfg.into(), "host0", None),
    ];
    let inside: Vec<Target> = vec![
        ("netns: bastion itself", jump_cfg.into(), "bastion", None),
        ("netns: through ProxyJump", jump_cfg.into(), "host0", None),
        (
            "netns: two jumps",
            jump_cfg.into(),
            "host0",
            Some(TWO_JUMPS),
        ),
    ];
    let measured = measure_all(outside, n).and_then(|mut rows| {
        rows.extend(measure_in(netns, inside, n)?);
        Ok(rows)
    });
    let rows = match measured {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{n} commands (`true`) each, one after the other; per command, ms:");
    for (what, times) in rows {
        println!(
            "  {what:<26} median {:>6.2}  mean {:>6.2}  min {:>6.2}  max {:>6.2}",
            ms(percentile(&times, 50)),
            ms(times.iter().sum::<Duration>() / u32::try_from(times.len()).unwrap_or(1)),
            ms(percentile(&times, 0)),
            ms(percentile(&times, 100)),
        );
    }
    ExitCode::SUCCESS
}

/// [`measure_all`] on a thread that entered the network namespace at `netns` (its runtime's
/// threads are created there, so they inherit it).
fn measure_in(
    netns: &Path,
    targets: Vec<Target>,
    n: usize,
) -> Result<Vec<(&'static str, Times)>, String> {
    let ns = File::open(netns).map_err(|e| format!("{}: {e}", netns.display()))?;
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            ns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| format!("entering the fleet's network namespace: {e}"))?;
        measure_all(targets, n)
    })
    .join()
    .unwrap_or_else(|_| Err("the measuring thread panicked".into()))
}

/// Connects to every target, then measures them one after the other.
fn measure_all(targets: Vec<Target>, n: usize) -> Result<Vec<(&'static str, Times)>, String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| format!("tokio: {e}"))?;
    // As in a run, connections are made inside a task of the runtime.
    let work = rt.spawn(async move {
        let mut conns = Vec::new();
        for (what, config, host, args) in targets {
            let t = connect(&config, host, args)
                .await
                .map_err(|e| format!("{what}: {e}"))?;
            conns.push((what, t));
        }
        let mut rows = Vec::new();
        for (what, t) in &mut conns {
            let times = measure(t, n).await.map_err(|e| format!("{what}: {e}"))?;
            rows.push((*what, times));
        }
        for (_, t) in conns {
            t.close().await;
        }
        Ok(rows)
    });
    rt.block_on(work)
        .unwrap_or_else(|e| Err(format!("the measuring task failed: {e}")))
}

async fn connect(
    config_file: &Path,
    host: &str,
    ssh_args: Option<&str>,
) -> Result<SshTransport, String> {
    let config = ssh_config::load_config(Some(config_file))?;
    let opts = SshOptions {
        config_file: Some(config_file.to_path_buf()),
        ..SshOptions::default()
    };
    let var = |k: &str| match (k, ssh_args) {
        ("ansible_ssh_common_args", Some(a)) => Some(serde_json::Value::from(a)),
        _ => None,
    };
    let settings = ssh_config::resolve(host, &var, &opts, &config)?;
    SshTransport::connect(&settings, &opts)
        .await
        .map_err(|e| e.to_string())
}

/// `true` n times after 5 warm-up runs: each command's duration, sorted.
async fn measure(t: &mut SshTransport, n: usize) -> Result<Times, String> {
    let cmd = Cmd::raw("true");
    for _ in 0..5 {
        t.exec(&cmd).await.map_err(|e| e.to_string())?;
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let out = t.exec(&cmd).await.map_err(|e| e.to_string())?;
        times.push(start.elapsed());
        if !out.success() {
            return Err(format!("`true` exited {}", out.status));
        }
    }
    times.sort();
    Ok(times)
}

/// The `p`th percentile (0 = min, 100 = max) of sorted durations.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        len => sorted[(len - 1) * p / 100],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
