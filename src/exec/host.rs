//! One host's state for the whole run: its connection, its run-time variables (registered
//! results, `set_fact`, facts), notified handlers, and whether it failed.
//!
//! Owns opening the host's connection (lazily, on the first task that needs it, then reused
//! while the host is in flight; connections to `delegate_to` targets are kept the same way),
//! closing them when the executor says the host holds nothing (see [`HostState::release`]), and
//! reopening them the way they were first opened. Each host's state is moved into that host's future for a
//! task and handed back after it: nothing here is shared or locked. It must not print.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::exec::RunOptions;
use crate::exec::outcome::Recap;
use crate::template::{Layer, VarValue};
use crate::transport::ssh_config::{self, HostSettings};
use crate::transport::{AnyTransport, LocalTransport, SshTransport, TransportError};
use crate::vars::Tier;

/// How rdeploy reaches a host, from its `ansible_connection`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// Commands run on the controller (`ansible_connection: local`).
    Local,
    /// Over SSH (the default).
    Ssh,
}

impl Connection {
    /// The connection a host's variables ask for.
    pub fn from_vars(vars: &serde_json::Map<String, Json>) -> Result<Connection, String> {
        match vars.get("ansible_connection").and_then(Json::as_str) {
            None => Ok(Connection::Ssh),
            Some(c) => Connection::parse(c)
                .ok_or_else(|| format!("ansible_connection '{c}' is not supported (local or ssh)")),
        }
    }

    /// A connection plugin's name (`local`, `ssh` and Ansible's other names for SSH).
    pub fn parse(name: &str) -> Option<Connection> {
        match name {
            "local" | "ansible.builtin.local" => Some(Connection::Local),
            "ssh" | "smart" | "paramiko" | "ansible.builtin.ssh" => Some(Connection::Ssh),
            _ => None,
        }
    }
}

/// Everything rdeploy knows about one host during a run.
pub struct HostState {
    /// The inventory name.
    pub name: String,
    /// How to reach it.
    pub connection: Connection,
    /// The open connection, once a task needed it (closed again by [`HostState::release`]).
    pub transport: Option<AnyTransport>,
    /// How the host's own connection was first opened, and the host lock's folder: a
    /// connection released between tasks is reopened the same way, whatever variables the
    /// caller has at hand (a rollback has none).
    opened: Option<(Opening, Option<String>)>,
    /// Connections to `delegate_to` targets, by name, kept for the run.
    pub delegates: HashMap<String, AnyTransport>,
    /// The play's variables for this host, tiers 1–5, 8, 9 (set at play start).
    pub base: Arc<Vec<Layer>>,
    /// Host-list magic variables of the current play and batch, shared by every host.
    pub magic: Arc<Vec<(String, minijinja::Value)>>,
    /// Registered results, `set_fact`, `include_vars` and facts (tier 7). Persist across plays.
    pub runtime: IndexMap<String, Json>,
    /// Variables of enclosing `include_tasks` loops (`item`...), innermost last.
    pub scoped: Vec<IndexMap<String, Json>>,
    /// Handler names and `listen` topics notified since handlers were last looked up.
    pub notified: BTreeSet<String>,
    /// Handlers of the play's handler list (by index) notified and not yet run.
    pub due: BTreeSet<usize>,
    /// Defaults (tier 1) and `vars/` (tier 5) of roles an `include_role` with `public: true`
    /// ran on this host in the current play: the rest of the play sees them.
    pub exported: Vec<(Tier, String, Json)>,
    /// Role instances of the current play (by identity) in which a task ran on this host: a
    /// later `roles:` entry or dependency naming the same role the same way is not run again
    /// (unless the role says `allow_duplicates`).
    pub roles_ran: std::collections::HashSet<String>,
    /// A task failed (and was not rescued).
    pub failed: bool,
    /// The last task that failed on this host and its result: `ansible_failed_task` and
    /// `ansible_failed_result` once a `rescue:` catches it.
    pub last_failure: Option<(Json, Json)>,
    /// The host could not be reached.
    pub unreachable: bool,
    /// `meta: end_host` was reached, or the play ended for it.
    pub ended: bool,
    /// PLAY RECAP counters.
    pub recap: Recap,
    /// Backups taken on this host in this run.
    pub backups: crate::exec::backups::HostBackups,
    /// The host was rolled back in this run.
    pub rolled_back: bool,
    /// The host failed a health gate in this run (counted once in `recap.failed`).
    pub gate_failed: bool,
    /// Cached layers including `runtime`, rebuilt when `runtime` changes.
    layers: Option<Arc<Vec<Layer>>>,
}

impl HostState {
    /// Forgets what was read ahead on the host's connections (something else may have
    /// changed it).
    pub fn forget_reads(&mut self) {
        if let Some(t) = self.transport.as_mut() {
            t.reads().forget();
        }
        for t in self.delegates.values_mut() {
            t.reads().forget();
        }
    }

    /// A host that has not been contacted.
    pub fn new(name: impl Into<String>, connection: Connection) -> HostState {
        HostState {
            name: name.into(),
            connection,
            transport: None,
            opened: None,
            delegates: HashMap::new(),
            base: Arc::new(Vec::new()),
            magic: Arc::new(Vec::new()),
            runtime: IndexMap::new(),
            scoped: Vec::new(),
            notified: BTreeSet::new(),
            due: BTreeSet::new(),
            roles_ran: std::collections::HashSet::new(),
            exported: Vec::new(),
            failed: false,
            last_failure: None,
            unreachable: false,
            ended: false,
            recap: Recap::default(),
            backups: Default::default(),
            rolled_back: false,
            gate_failed: false,
            layers: None,
        }
    }

    /// Sets the play's variables for this host.
    pub fn set_base(&mut self, base: Arc<Vec<Layer>>) {
        self.base = base;
        self.layers = None;
    }

    /// Sets a run-time variable (data: never rendered).
    pub fn set_runtime(&mut self, name: impl Into<String>, value: Json) {
        self.runtime.insert(name.into(), value);
        self.layers = None;
    }

    /// Makes a public `include_role`'s defaults and vars the play's on this host.
    pub fn export(&mut self, vars: Vec<(Tier, String, Json)>) {
        self.exported.extend(vars);
        self.layers = None;
    }

    /// Forgets what public `include_role`s exported (a new play starts).
    pub fn clear_exported(&mut self) {
        self.exported.clear();
        self.layers = None;
    }

    /// Removes run-time variables whose name matches (clear_facts).
    pub fn clear_runtime(&mut self, keep: impl Fn(&str) -> bool) {
        self.runtime.retain(|k, _| keep(k));
        self.layers = None;
    }

    /// The host's layers with run-time variables in their tier.
    pub fn layers(&mut self) -> Arc<Vec<Layer>> {
        if let Some(l) = &self.layers {
            return Arc::clone(l);
        }
        let mut layers: Vec<Layer> = (*self.base).clone();
        if layers.len() <= Tier::Runtime as usize {
            layers.resize_with(Tier::ALL.len(), Layer::new);
        }
        for (tier, k, v) in &self.exported {
            layers[*tier as usize].insert(k.clone(), VarValue::Template(v.clone()));
        }
        let rt = &mut layers[Tier::Runtime as usize];
        for (k, v) in &self.runtime {
            rt.insert(k.clone(), VarValue::Data(v.clone()));
        }
        let l = Arc::new(layers);
        self.layers = Some(Arc::clone(&l));
        l
    }

    /// Whether the host takes part in the next task.
    pub fn active(&self, in_always: bool) -> bool {
        !self.ended && !self.unreachable && (!self.failed || in_always)
    }

    /// The host's connection, opened on first use with the settings `var` gives (the host's
    /// variables, templated).
    pub async fn transport(
        &mut self,
        opts: &RunOptions,
        var: &(dyn Fn(&str) -> Option<Json> + Sync),
    ) -> Result<&mut AnyTransport, TransportError> {
        if self.transport.is_none() {
            let (how, dir) = match &self.opened {
                Some((how, dir)) => (how.clone(), dir.clone()),
                None => {
                    let how = Opening::plan(&self.name, &self.connection, opts, var)?;
                    let dir = match var("rdeploy_state_dir") {
                        Some(Json::String(d)) => Some(d),
                        _ => None,
                    };
                    (how, dir)
                }
            };
            let mut tr = how.clone().open(opts).await?;
            if let Some(run) = &opts.run
                && let Err(e) = lock_host(&mut tr, &self.name, dir.as_deref(), &run.holder).await
            {
                tr.close().await;
                return Err(e);
            }
            self.opened = Some((how, dir));
            self.transport = Some(tr);
        }
        self.transport
            .as_mut()
            .ok_or_else(|| TransportError::Unreachable("no connection".into()))
    }

    /// The connection for a task whose `connection:` (or `ansible_connection`) is `connection`:
    /// the host's own when it is the host's, else another one to the same host (the
    /// controller for `local`), kept for the run like a delegate's.
    pub async fn transport_via(
        &mut self,
        connection: &Connection,
        opts: &RunOptions,
        var: &(dyn Fn(&str) -> Option<Json> + Sync),
    ) -> Result<&mut AnyTransport, TransportError> {
        if *connection == self.connection {
            return self.transport(opts, var).await;
        }
        let key = self.via_key(connection);
        if !self.delegates.contains_key(&key) {
            let how = Opening::plan(&self.name, connection, opts, var)?;
            let t = how.open(opts).await?;
            self.delegates.insert(key.clone(), t);
        }
        self.delegates
            .get_mut(&key)
            .ok_or_else(|| TransportError::Unreachable(format!("{}: no connection", self.name)))
    }

    /// The connection to `delegate_to: name`, opened on first use.
    pub async fn delegate(
        &mut self,
        name: &str,
        connection: &Connection,
        opts: &RunOptions,
        var: &(dyn Fn(&str) -> Option<Json> + Sync),
    ) -> Result<&mut AnyTransport, TransportError> {
        if !self.delegates.contains_key(name) {
            let how = Opening::plan(name, connection, opts, var)?;
            let t = how.open(opts).await?;
            self.delegates.insert(name.to_string(), t);
        }
        self.delegates
            .get_mut(name)
            .ok_or_else(|| TransportError::Unreachable(format!("{name}: no connection")))
    }

    /// Commands run on this host so far (for per-task counts).
    pub fn commands_run(&self) -> usize {
        self.transport
            .as_ref()
            .map(AnyTransport::commands_run)
            .unwrap_or(0)
            + self
                .delegates
                .values()
                .map(AnyTransport::commands_run)
                .sum::<usize>()
    }

    /// Forgets the host's connection if it was lost, so the next [`HostState::transport`]
    /// opens a new one (verifying the host's identity again). True when it was lost.
    pub async fn forget_lost_connection(&mut self) -> bool {
        if !self.transport.as_ref().is_some_and(AnyTransport::is_lost) {
            return false;
        }
        if let Some(t) = self.transport.take() {
            t.close().await;
        }
        true
    }

    /// Where the connection of kind `connection` (not the host's own) is kept in `delegates`.
    fn via_key(&self, connection: &Connection) -> String {
        format!("{}\0{connection:?}", self.name)
    }

    /// Closes the host's connection of kind `connection` (its own, or the one kept for a
    /// task's `connection:`), so that the next use opens a new one.
    pub async fn reset_connection(&mut self, connection: &Connection) {
        let t = if *connection == self.connection {
            self.transport.take()
        } else {
            self.delegates.remove(&self.via_key(connection))
        };
        if let Some(t) = t {
            t.close().await;
        }
    }

    /// True while the host holds a connection.
    pub fn connected(&self) -> bool {
        self.transport.is_some() || !self.delegates.is_empty()
    }

    /// Closes this host's connections when it is not in flight, so that descriptors stay
    /// bounded by `--forks`, not by the fleet: the next task that needs one reopens it (and
    /// retakes the host lock). Nothing queued on a connection outlives a task.
    pub async fn release(&mut self) {
        self.close().await;
    }

    /// Closes this host's connections (end of the run).
    pub async fn close(&mut self) {
        if let Some(t) = self.transport.take() {
            t.close().await;
        }
        for (_, t) in self.delegates.drain() {
            t.close().await;
        }
    }
}

/// How often a lock still held by this run's own lost connection is tried (200 ms apart).
const OWN_LOCK_TRIES: u32 = 25;

/// How long the host lock's command may take to answer.
const HOST_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Takes the host's lock for this run (over SSH; the local connection is the controller, where
/// the run lock applies): one command on a channel of its own, held until the connection
/// closes. Another run holding it is [`TransportError::HostLocked`], naming it; nothing else
/// is sent to the host.
pub async fn lock_host(
    tr: &mut AnyTransport,
    name: &str,
    dir: Option<&str>,
    holder: &str,
) -> Result<(), TransportError> {
    let AnyTransport::Ssh(ssh) = tr else {
        return Ok(());
    };
    let line = crate::transport::cmd::host_lock_line(dir, holder)?;
    let started = std::time::Instant::now();
    let mut tries = 0;
    let (out, status, held) = loop {
        let taken = ssh.hold(&line, HOST_LOCK_WAIT).await?;
        tracing::debug!(host = %name, took_ms = started.elapsed().as_secs_f64() * 1e3, taken = taken.is_none(), "host lock");
        let Some((out, status)) = taken else {
            return Ok(());
        };
        let held = out
            .lines()
            .find_map(|l| l.strip_prefix(crate::transport::cmd::HOST_LOCK_HELD))
            .map(str::to_string);
        // Held by this very run: its lost connection's lock, released as soon as the host
        // notices the connection is gone (a reconnection for the rollback).
        tries += 1;
        if status == 75 && held.as_deref().map(str::trim) == Some(holder) && tries < OWN_LOCK_TRIES
        {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        break (out, status, held);
    };
    let held = held.as_deref();
    Err(match (status, held) {
        (75, Some(h)) => TransportError::HostLocked(format!(
            "{name}: locked by {} (its host lock); nothing was sent to this host",
            h.trim()
        )),
        // The folder cannot be made as the login user (a home that is not writable, a state
        // directory only a become user may create): the run goes on without the host lock,
        // and the step that needs the state directory reports why it cannot be prepared.
        (71, _) => {
            tracing::warn!(host = %name, "the host lock's folder cannot be created as the login user; running without the host lock");
            return Ok(());
        }
        (127, _) => TransportError::Io(format!(
            "{name}: the host lock needs flock(1) on the host (util-linux)"
        )),
        (s, _) => TransportError::Io(format!(
            "{name}: the host lock could not be taken in its state directory (exit {s}): {}",
            out.trim()
        )),
    })
}

/// What the run's connections reach: the hosts themselves (SSH, or the controller for
/// `ansible_connection: local`), or, in tests, scripted hosts answering from canned replies.
#[derive(Clone, Debug, Default)]
pub enum Connect {
    /// Each host as its variables say.
    #[default]
    Hosts,
    /// Every connection goes to the test's scripted host of that name
    /// ([`crate::transport::scripted`]), whatever the host's connection settings.
    #[cfg(test)]
    Scripted(crate::transport::scripted::Fleet),
}

/// How a connection will be opened, decided (and its settings checked) before any I/O.
#[derive(Clone, Debug)]
pub enum Opening {
    /// On the controller.
    Local(String),
    /// Over SSH with these settings.
    Ssh(Box<HostSettings>),
    /// To the test's scripted host of this name ([`Connect::Scripted`]).
    #[cfg(test)]
    Scripted(String),
}

impl Opening {
    /// Resolves `name`'s connection settings from its variables (`var`) and the run's options.
    pub fn plan(
        name: &str,
        connection: &Connection,
        opts: &RunOptions,
        var: &(dyn Fn(&str) -> Option<Json> + Sync),
    ) -> Result<Opening, TransportError> {
        #[cfg(test)]
        if let Connect::Scripted(_) = &opts.connect {
            return Ok(Opening::Scripted(name.to_string()));
        }
        match connection {
            Connection::Local => Ok(Opening::Local(name.to_string())),
            Connection::Ssh => ssh_config::resolve(name, var, &opts.ssh, &opts.ssh_config)
                .map(|s| Opening::Ssh(Box::new(s)))
                .map_err(TransportError::Unreachable),
        }
    }

    /// Opens the connection.
    pub async fn open(self, opts: &RunOptions) -> Result<AnyTransport, TransportError> {
        match self {
            #[cfg(test)]
            Opening::Scripted(name) => match &opts.connect {
                Connect::Scripted(fleet) => fleet.connect(&name),
                Connect::Hosts => Err(TransportError::Unreachable(format!(
                    "{name}: no scripted hosts in this run"
                ))),
            },
            Opening::Local(name) => Ok(AnyTransport::Local(
                LocalTransport::new(name).with_recording(),
            )),
            Opening::Ssh(settings) => Ok(AnyTransport::Ssh(
                SshTransport::connect(&settings, &opts.ssh).await?,
            )),
        }
    }
}
