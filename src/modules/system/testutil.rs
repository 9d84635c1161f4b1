//! Test support for the system modules: a recording local transport, a [`ModuleCtx`] in a
//! temporary directory, fake host tools placed first on `PATH`, and a check → apply driver.
//!
//! Test-only; must not be used by module code.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::modules::runtime::{Args, HostView, Module, ModuleCtx, ModuleError, Verdict};
use crate::transport::{AnyTransport, LocalTransport};

/// Renders nothing: templates were rendered before modules run.
pub fn no_render(s: &str) -> Result<String, String> {
    Ok(s.to_string())
}

/// A recording local transport named `testhost`.
pub fn transport() -> AnyTransport {
    AnyTransport::Local(LocalTransport::new("testhost").with_recording())
}

/// The commands `tr` ran so far.
pub fn recorded(tr: &AnyTransport) -> Vec<String> {
    tr.recorded().to_vec()
}

/// Arguments from a JSON object.
pub fn args(v: Value) -> Args {
    v.as_object().cloned().unwrap_or_default()
}

/// A context with a 60 s timeout, `environment` and an optional controller source.
pub fn ctx<'a>(
    dir: &'a Path,
    local_src: Option<&'a Path>,
    environment: Vec<(String, String)>,
) -> ModuleCtx<'a> {
    ModuleCtx {
        local_src,
        render: &no_render,
        become_: None,
        environment,
        timeout: Some(Duration::from_secs(60)),
        controller_dir: dir,
        no_log: false,
        python: None,
    }
}

/// Writes an executable `sh` script `name` into `dir`.
pub fn fake_tool(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    let text = format!("#!/bin/sh\n{body}\n");
    std::fs::write(&p, text).expect("write fake tool");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// A temporary folder with `bin/` (for fake tools, see [`fake_tool`]) and `state/` (their
/// `$FAKE`): (the folder, `bin`, `state`).
pub fn fake_dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    (dir, bin, state)
}

/// `PATH=dir:$PATH` (the controller's PATH) plus `FAKE=state_dir`, for fake tools.
pub fn fake_env(bin: &Path, state: &Path) -> Vec<(String, String)> {
    let path = std::env::var("PATH").unwrap_or_default();
    vec![
        ("PATH".into(), format!("{}:{path}", bin.display())),
        ("FAKE".into(), state.display().to_string()),
    ]
}

/// What a check (and the apply it led to) produced.
#[derive(Debug)]
pub enum Ran {
    /// `check` said in sync.
    InSync(Args),
    /// `check` found drift (these changes) and `apply` returned this.
    Applied(Vec<crate::modules::runtime::Change>, Result<Args, String>),
    /// `check` failed.
    CheckFailed(String, Args),
}

/// Runs `check`, then `apply` on drift.
pub async fn check_apply(
    m: &dyn Module,
    tr: &mut AnyTransport,
    a: &Args,
    c: &ModuleCtx<'_>,
) -> Ran {
    match m.check(&mut HostView::of(tr), a, c).await {
        Ok(Verdict::InSync { result }) => Ran::InSync(result),
        Ok(Verdict::Drift(d)) => {
            let r = m.apply(tr, a, c, &d).await.map_err(|e| match e {
                ModuleError::Failed { msg, result } => format!("{msg} {}", Value::Object(result)),
                other => other.to_string(),
            });
            Ran::Applied(d.changes.clone(), r)
        }
        Err(ModuleError::Failed { msg, result }) => Ran::CheckFailed(msg, result),
        Err(e) => Ran::CheckFailed(e.to_string(), Args::new()),
    }
}

/// Only `check`: `Ok(Some(result))` when in sync, `Ok(None)` on drift.
pub async fn check_only(
    m: &dyn Module,
    tr: &mut AnyTransport,
    a: &Args,
    c: &ModuleCtx<'_>,
) -> Result<Option<Args>, ModuleError> {
    match m.check(&mut HostView::of(tr), a, c).await? {
        Verdict::InSync { result } => Ok(Some(result)),
        Verdict::Drift(_) => Ok(None),
    }
}

/// Whether the machine has `tool` in one of the folders Ansible's `get_bin_path` adds to
/// `PATH` (`/sbin`, `/usr/sbin`, `/usr/local/sbin`): a test of a host without the tool can
/// only hide it from `PATH`, not from those.
pub fn sbin_has(tool: &str) -> bool {
    ["/sbin", "/usr/sbin", "/usr/local/sbin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}
