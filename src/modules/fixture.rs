//! Test fixtures for modules on a scripted host ([`crate::transport::scripted`]): a module's
//! `check` and `apply` driven against canned replies and in-memory files, with what each step
//! sent recorded. Test-only (`#[cfg(test)]`); module code must not use it.
//!
//! A case is: arguments + the host's state (its files, its scripted replies) → the verdict
//! (and its changes), the requests `check` sent (only reads), the requests `apply` sent, the
//! host's files after, and a second `check` in sync.

use std::path::Path;

use serde_json::Value;

use crate::modules::implementation;
use crate::modules::runtime::{Args, Change, HostView, ModuleCtx, ModuleError, Verdict};
use crate::transport::AnyTransport;
use crate::transport::scripted::{Host, Request};

/// Renders nothing: a task's templates were rendered before its module runs.
fn no_render(s: &str) -> Result<String, String> {
    Ok(s.to_string())
}

/// A task's context for a module: no become, no environment, no timeout, no controller source.
pub fn ctx(controller_dir: &Path) -> ModuleCtx<'_> {
    ModuleCtx {
        local_src: None,
        render: &no_render,
        become_: None,
        environment: Vec::new(),
        timeout: None,
        controller_dir,
        no_log: false,
        python: None,
    }
}

/// What one check → apply → check cycle did on a scripted host.
#[derive(Debug)]
pub struct Cycle {
    /// The first check's changes (empty when it was in sync).
    pub changes: Vec<Change>,
    /// The requests the first check sent.
    pub check: Vec<Request>,
    /// The requests apply sent (none when the first check was in sync).
    pub apply: Vec<Request>,
    /// The in-sync result, or apply's.
    pub result: Args,
}

/// Runs `module`'s `check` with `args` on `host`: the verdict and the requests it sent.
pub async fn check(
    module: &str,
    args: Value,
    host: &Host,
) -> Result<(Verdict, Vec<Request>), ModuleError> {
    let m = implementation(module).unwrap_or_else(|| panic!("no module {module}"));
    let args = args.as_object().cloned().unwrap_or_default();
    let controller = tempfile::tempdir().map_err(|e| ModuleError::Args(e.to_string()))?;
    let ctx = ctx(controller.path());
    let mut tr = AnyTransport::Scripted(host.connect().map_err(ModuleError::Transport)?);
    let before = host.requests().len();
    let v = m.check(&mut HostView::of(&mut tr), &args, &ctx).await?;
    Ok((v, host.requests().split_off(before)))
}

/// check → apply (when the check found drift) → check again, which must be in sync: a module
/// that does not converge on the host it just changed fails the test.
pub async fn converge(module: &str, args: Value, host: &Host) -> Result<Cycle, ModuleError> {
    let m = implementation(module).unwrap_or_else(|| panic!("no module {module}"));
    let args = args.as_object().cloned().unwrap_or_default();
    let controller = tempfile::tempdir().map_err(|e| ModuleError::Args(e.to_string()))?;
    let ctx = ctx(controller.path());
    let mut tr = AnyTransport::Scripted(host.connect().map_err(ModuleError::Transport)?);
    let mark = host.requests().len();
    let verdict = m.check(&mut HostView::of(&mut tr), &args, &ctx).await?;
    let check = host.requests().split_off(mark);
    let drift = match verdict {
        Verdict::InSync { result } => {
            return Ok(Cycle {
                changes: Vec::new(),
                check,
                apply: Vec::new(),
                result,
            });
        }
        Verdict::Drift(d) => d,
    };
    let mark = host.requests().len();
    let result = m.apply(&mut tr, &args, &ctx, &drift).await?;
    let apply = host.requests().split_off(mark);
    match m.check(&mut HostView::of(&mut tr), &args, &ctx).await? {
        Verdict::InSync { .. } => {}
        Verdict::Drift(d) => panic!(
            "{module} did not converge: still {:?} after sending {apply:#?}",
            d.changes
        ),
    }
    Ok(Cycle {
        changes: drift.changes,
        check,
        apply,
        result,
    })
}

/// Whether every request only looks (reads in one round trip, or file reads).
pub fn only_reads(reqs: &[Request]) -> bool {
    reqs.iter()
        .all(|r| matches!(r, Request::Batch(_) | Request::Get { .. }))
}
