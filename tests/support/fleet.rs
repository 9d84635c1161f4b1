//! The SSH test fleet: real OpenSSH `sshd` hosts for end-to-end tests, started and stopped
//! by the test that uses them.
//!
//! Each sshd runs as PID 1 of its own PID namespace, in its own mount namespace where
//! `/srv`, `/etc/rdeploy-test`, `/var/lib/rdeploy` and the test user's home are bind mounts
//! of folders in the fleet's temporary directory, so a playbook can use absolute paths, hosts
//! do not see each other's files and a test reads a host's files through [`Host::path`].
//! Logins are as the plain user [`USER`] (created once per machine) with the fleet's own
//! client key; each host has its own host keys, and [`Fleet::known_hosts`] lists them all.
//! Plain hosts listen on `127.0.0.1` with a free port each. With [`FleetBuilder::bastion`]
//! the hosts and a bastion live in a network namespace the fleet creates: the controller
//! reaches only the bastion (a relay thread forwards `127.0.0.1:PORT` to it) and the bastion
//! reaches the hosts on their loopback addresses inside that namespace. The relay is the
//! bastion's TCP peer: the bastion sees the relay's ACK timing, not the controller's (a
//! thread that enters [`Fleet::netns_path`] talks to the bastion directly).
//!
//! Everything the fleet starts is stopped by PID when the fleet is dropped, also when the
//! test panics: each host's sshd is killed through a pidfd, which ends its whole PID
//! namespace (sessions, and anything they left running), and the fleet then reaps the
//! `unshare` process it spawned. It never signals a process outside its hosts' namespaces.
//! Needs root, `unshare`/`nsenter`/`mount` (util-linux), `ip` (iproute2), `ssh-keygen` and
//! `/usr/sbin/sshd`: `scripts/test.sh --install-only` installs them. On the machine itself
//! it creates [`USER`], `/run/sshd` and the empty mount points, once, and
//! [`enable_sudo`] a sudoers file; it uses no address but loopback ones.
//!
//! ```text
//! let fleet = Fleet::start(3);                  // or Fleet::builder().hosts(3).bastion().start()
//! fleet.write_inventory(sandbox.path().join("inv.yaml"), json!({ "app_version": "1.0" }));
//! // rdeploy run site.yaml -i inv.yaml, with fleet.ssh_config() as its ~/.ssh/config (the
//! // client key, fleet.known_hosts(), ProxyJump); then look at the hosts' files:
//! assert_eq!(fs::read_to_string(fleet.host(0).path("/srv/app/VERSION"))?, "1.0\n");
//! fleet.host(1).kill();                         // or freeze()/thaw(); drop(fleet) stops all
//! ```
//!
//! A fleet must be dropped to stop its hosts: keep it in the test, not in a `static`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
use serde_json::{Map, Value, json};

/// The plain user every test host logs in as.
pub const USER: &str = "rdeploy-test";
/// [`USER`]'s password on hosts of a fleet built with [`FleetBuilder::password_auth`] (and
/// nowhere else: the machine's own account has no usable password).
pub const PASSWORD: &str = "rdeploy-test-password";
/// `openssl passwd -6 -salt rdeploytestsalt rdeploy-test-password`
const PASSWORD_HASH: &str = "$6$rdeploytestsalt$0RWch0TfO4iAnwxtc3G5lLqqFC4Boy6UA6pSfqNRu/cF3TrZ.lp5VuIn5Tk0jjGa5o5dUzn/LPYzpkIGjI4EY/";
/// The passphrase of [`Fleet::encrypted_client_key`].
pub const PASSPHRASE: &str = "rdeploy-test-passphrase";

const SSHD: &str = "/usr/sbin/sshd";
/// How long an sshd may take to listen before the fleet gives up and shows its log.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a killed host may take to disappear.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// Taken while creating the user or the sudoers file, by every test binary on the machine.
const LOCK_FILE: &str = "/run/rdeploy-test-fleet.lock";
/// The first private host's address inside a bastion fleet's network namespace.
const PRIVATE_BASE: Ipv4Addr = Ipv4Addr::new(127, 1, 0, 1);

/// A host key algorithm. Every host has an Ed25519 key; [`FleetBuilder::host_key`] adds
/// others, so tests can exercise "known under another key type".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Ed25519,
    Ecdsa,
    Rsa,
}

impl KeyType {
    fn keygen_args(self) -> &'static [&'static str] {
        match self {
            KeyType::Ed25519 => &["-t", "ed25519"],
            KeyType::Ecdsa => &["-t", "ecdsa", "-b", "256"],
            KeyType::Rsa => &["-t", "rsa", "-b", "2048"],
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ssh_host_ed25519_key",
            KeyType::Ecdsa => "ssh_host_ecdsa_key",
            KeyType::Rsa => "ssh_host_rsa_key",
        }
    }
}

/// One public host key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKey {
    pub kind: KeyType,
    /// `ALGORITHM BASE64`, as in a known_hosts line (no comment).
    pub public: String,
}

/// A process seen in `/proc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    /// PID in the machine's (the test's) PID namespace.
    pub pid: u32,
    /// PID as the host sees it (1 is the host's sshd).
    pub ns_pid: u32,
    pub uid: u32,
    /// Start time in clock ticks since boot: with `pid`, names the process even after the
    /// PID is reused.
    pub start_time: u64,
    pub cmdline: String,
}

impl Proc {
    fn read(pid: u32) -> Option<Proc> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (state, _ppid, start_time) = parse_stat(&stat)?;
        if state == 'Z' || state == 'X' {
            return None;
        }
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> Option<Vec<u32>> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            line[name.len()..]
                .split_whitespace()
                .map(|v| v.parse().ok())
                .collect()
        };
        let uid = *field("Uid:")?.first()?;
        let ns_pid = *field("NSpid:")?.last()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline)
            .trim_end_matches('\0')
            .replace('\0', " ");
        Some(Proc {
            pid,
            ns_pid,
            uid,
            start_time,
            cmdline,
        })
    }

    /// Whether this very process (same PID and start time) still runs; a zombie does not.
    pub fn is_running(&self) -> bool {
        fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| parse_stat(&s))
            .is_some_and(|(state, _, start)| {
                start == self.start_time && state != 'Z' && state != 'X'
            })
    }
}

/// `(state, ppid, starttime)` from the text of `/proc/PID/stat`.
fn parse_stat(stat: &str) -> Option<(char, u32, u64)> {
    // The command name is in parentheses and may contain anything, so split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, ppid, start))
}

/// A namespace's identity: the device and inode of its nsfs file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NsId(u64, u64);

impl NsId {
    fn of(path: impl AsRef<Path>) -> Option<NsId> {
        fs::metadata(path).ok().map(|m| NsId(m.dev(), m.ino()))
    }
}

/// Every live process whose PID namespace is `ns`.
fn processes_in(ns: NsId) -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<Proc> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| NsId::of(format!("/proc/{pid}/ns/pid")) == Some(ns))
        .filter_map(Proc::read)
        .collect();
    out.sort_by_key(|p| p.pid);
    out
}

/// Sends `sig` to `pid` if it is (still) in namespace `ns`. The pidfd pins the process, so
/// the check and the signal are about the same process even if the PID was reused.
fn signal_in(pid: u32, ns: NsId, sig: Signal) {
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    let Ok(fd) = pidfd_open(raw, PidfdFlags::empty()) else {
        return;
    };
    if NsId::of(format!("/proc/{pid}/ns/pid")) == Some(ns) {
        let _ = pidfd_send_signal(&fd, sig);
    }
}

// ------------------------------------------------------------------ machine set-up

/// The paths each host has to itself: (folder in the sshd's directory, path on the host).
fn host_folders(user: &User) -> [(&'static str, PathBuf); 4] {
    [
        ("srv", PathBuf::from("/srv")),
        ("etc-rdeploy-test", PathBuf::from("/etc/rdeploy-test")),
        ("var-lib-rdeploy", PathBuf::from("/var/lib/rdeploy")),
        ("home", user.home.clone()),
    ]
}

/// The folders [`FleetBuilder::own_etc`] binds over the machine's, before [`host_folders`]
/// (which are then bound inside them).
fn own_etc_folders() -> [(&'static str, PathBuf); 3] {
    [
        ("etc", PathBuf::from("/etc")),
        ("home-root", PathBuf::from("/home")),
        ("var-spool-cron", PathBuf::from("/var/spool/cron")),
    ]
}

/// The test user as the machine knows it.
struct User {
    uid: u32,
    home: PathBuf,
    /// `ssh -V` says 9.8 or newer: sshd knows (and defaults on) `PerSourcePenalties`.
    penalties: bool,
}

/// Once per test binary: checks the tools, creates [`USER`], `/run/sshd` and the mount
/// points. Panics with what is missing.
fn machine() -> &'static User {
    static SETUP: OnceLock<Result<User, String>> = OnceLock::new();
    match SETUP.get_or_init(set_up_machine) {
        Ok(user) => user,
        Err(e) => panic!("the SSH test fleet cannot start: {e}"),
    }
}

fn set_up_machine() -> Result<User, String> {
    if !rustix::process::geteuid().is_root() {
        return Err("it needs root (unshare, mount, ip netns)".into());
    }
    if !Path::new(SSHD).exists() {
        return Err(format!(
            "{SSHD} is missing: run scripts/test.sh --install-only"
        ));
    }
    for dir in [
        "/run/sshd",
        "/srv",
        "/etc/rdeploy-test",
        "/var/lib/rdeploy",
        "/var/spool/cron",
    ] {
        fs::create_dir_all(dir).map_err(|e| format!("create {dir}: {e}"))?;
    }
    let (uid, home) = {
        let _lock = machine_lock()?;
        match lookup_user()? {
            Some(found) => found,
            None => {
                let out = Command::new("useradd")
                    .args(["--create-home", "--user-group", "--shell", "/bin/sh"])
                    .args(["--password", "*", USER])
                    .output()
                    .map_err(|e| format!("useradd: {e}"))?;
                // 9: another machine-wide tool created it meanwhile.
                if !out.status.success() && out.status.code() != Some(9) {
                    return Err(format!(
                        "useradd {USER}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                lookup_user()?.ok_or(format!("useradd did not create {USER}"))?
            }
        }
    };
    fs::create_dir_all(&home).map_err(|e| format!("create {}: {e}", home.display()))?;
    Ok(User {
        uid,
        home,
        penalties: openssh_at_least(9, 8),
    })
}

/// `(uid, home)` of [`USER`] from `/etc/passwd`.
fn lookup_user() -> Result<Option<(u32, PathBuf)>, String> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    let prefix = format!("{USER}:");
    let Some(line) = passwd.lines().find(|l| l.starts_with(&prefix)) else {
        return Ok(None);
    };
    let f: Vec<&str> = line.split(':').collect();
    match (f.get(2).and_then(|u| u.parse().ok()), f.get(5)) {
        (Some(uid), Some(home)) => Ok(Some((uid, PathBuf::from(home)))),
        _ => Err(format!("unexpected /etc/passwd line: {line}")),
    }
}

/// An exclusive lock shared by every test binary on the machine, released on drop.
fn machine_lock() -> Result<File, String> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .map_err(|e| format!("{LOCK_FILE}: {e}"))?;
    file.lock().map_err(|e| format!("lock {LOCK_FILE}: {e}"))?;
    Ok(file)
}

fn openssh_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("ssh").arg("-V").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stderr);
    let Some(version) = text.strip_prefix("OpenSSH_") else {
        return false;
    };
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let num = |p: Option<&str>| p.and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    (num(parts.next()), num(parts.next())) >= (major, minor)
}

/// Gives [`USER`] passwordless sudo (`/etc/sudoers.d/rdeploy-test`) for become tests.
/// Returns false, changing nothing, when sudo is not installed.
pub fn enable_sudo() -> bool {
    machine();
    if !Path::new("/usr/bin/sudo").exists() {
        return false;
    }
    let path = Path::new("/etc/sudoers.d/rdeploy-test");
    let body = format!("{USER} ALL=(ALL:ALL) NOPASSWD: ALL\n");
    let _lock = machine_lock().expect("take the fleet's machine lock");
    if fs::read_to_string(path).ok().as_deref() != Some(body.as_str()) {
        // sudo ignores names with a dot, so the temporary file is never read half-written.
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, &body).expect("write the sudoers file");
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o440)).expect("chmod sudoers");
        fs::rename(&tmp, path).expect("install the sudoers file");
    }
    true
}

// ------------------------------------------------------------------ the builder

/// Options for a [`Fleet`]; [`Fleet::start`] is `Fleet::builder().hosts(n).start()`.
#[derive(Clone, Debug)]
pub struct FleetBuilder {
    hosts: usize,
    hosts_per_sshd: usize,
    bastion: bool,
    key_types: Vec<KeyType>,
    password_auth: bool,
    sudo_password: bool,
    encrypted_key: bool,
    own_etc: bool,
    no_sftp: bool,
}

impl FleetBuilder {
    /// Hosts without the `sftp` subsystem (no `Subsystem` line in sshd_config): rdeploy's file
    /// plane falls back to shell programs there.
    pub fn no_sftp(mut self) -> Self {
        self.no_sftp = true;
        self
    }

    /// How many inventory hosts (default 1).
    pub fn hosts(mut self, n: usize) -> Self {
        self.hosts = n;
        self
    }

    /// Serve `k` inventory hosts from each sshd (default 1). Hosts of one sshd share its
    /// address, port, keys and files: cheap large fleets for benchmarks.
    pub fn hosts_per_sshd(mut self, k: usize) -> Self {
        self.hosts_per_sshd = k.max(1);
        self
    }

    /// Put the hosts behind a bastion: see [`Fleet::bastion`].
    pub fn bastion(mut self) -> Self {
        self.bastion = true;
        self
    }

    /// Give every host a key of this type too (Ed25519 is always there).
    pub fn host_key(mut self, kind: KeyType) -> Self {
        if !self.key_types.contains(&kind) {
            self.key_types.push(kind);
        }
        self
    }

    /// Accept password logins ([`PASSWORD`]) besides keys.
    pub fn password_auth(mut self) -> Self {
        self.password_auth = true;
        self
    }

    /// [`USER`]'s sudo asks for [`PASSWORD`] inside the hosts (a sudoers rule without
    /// `NOPASSWD` bound over the machine's, and the shadow file of [`Self::password_auth`]).
    /// Needs [`enable_sudo`] first.
    pub fn sudo_password(mut self) -> Self {
        self.sudo_password = true;
        self
    }

    /// Give every host its own copy of the machine's `/etc` (taken at start), its own `/home`
    /// (holding only [`USER`]'s home) and its own `/var/spool/cron`, bound over the
    /// machine's inside the host's mount namespace: `user`, `group`, `cron`, `mount`
    /// (fstab), `hostname` and `timezone` change the host, never the machine. Every host
    /// also has its own UTS namespace (hostname) in any fleet.
    pub fn own_etc(mut self) -> Self {
        self.own_etc = true;
        self
    }

    /// Also create a passphrase-protected client key ([`Fleet::encrypted_client_key`]).
    pub fn encrypted_client_key(mut self) -> Self {
        self.encrypted_key = true;
        self
    }

    /// Starts every sshd and waits until each listens; panics with the sshd log if one
    /// does not within 10 s.
    pub fn start(self) -> Fleet {
        Fleet::launch(self)
    }
}

// ------------------------------------------------------------------ the fleet

/// A running set of SSH hosts; dropping it stops them all.
pub struct Fleet {
    hosts: Vec<Host>,
    bastion: Option<Host>,
    servers: Vec<Arc<Server>>,
    relay: Option<Relay>,
    netns: Option<Netns>,
    client_key: PathBuf,
    encrypted_key: Option<PathBuf>,
    known_hosts: PathBuf,
    ssh_config: PathBuf,
    dir: tempfile::TempDir,
}

impl Fleet {
    /// `n` hosts with the default options.
    pub fn start(n: usize) -> Fleet {
        Fleet::builder().hosts(n).start()
    }

    pub fn builder() -> FleetBuilder {
        FleetBuilder {
            hosts: 1,
            hosts_per_sshd: 1,
            bastion: false,
            key_types: vec![KeyType::Ed25519],
            password_auth: false,
            sudo_password: false,
            encrypted_key: false,
            own_etc: false,
            no_sftp: false,
        }
    }

    fn launch(opts: FleetBuilder) -> Fleet {
        let user = machine();
        let mut fleet = Fleet::empty(&opts);
        let relay_listener = opts.bastion.then(|| {
            fleet.netns = Some(Netns::create());
            TcpListener::bind("127.0.0.1:0").expect("bind the bastion's relay port")
        });
        let specs = fleet.server_specs(&opts, relay_listener.as_ref());
        fleet.make_keys(&opts, &specs, user);
        let sshd = fleet.sshd_options(&opts, user);
        fleet.servers = start_servers(specs, &sshd);
        fleet.name_hosts(&opts, relay_listener);
        fleet.write_client_files();
        fleet
    }

    /// The fleet's directory and file names; no host yet. Dropped from here on (a failed
    /// start), it stops whatever it started.
    fn empty(opts: &FleetBuilder) -> Fleet {
        let dir = tempfile::Builder::new()
            .prefix("rdeploy-fleet-")
            .tempdir()
            .expect("create the fleet's directory");
        // sshd reads AuthorizedKeysFile as the user, who must be able to pass through.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711))
            .expect("chmod the fleet's directory");
        fs::create_dir(dir.path().join("client")).expect("create the client key folder");
        Fleet {
            hosts: Vec::new(),
            bastion: None,
            servers: Vec::new(),
            relay: None,
            netns: None,
            client_key: dir.path().join("client/id_ed25519"),
            encrypted_key: opts
                .encrypted_key
                .then(|| dir.path().join("client/id_ed25519_encrypted")),
            known_hosts: dir.path().join("known_hosts"),
            ssh_config: dir.path().join("ssh_config"),
            dir,
        }
    }

    /// One spec per sshd: on 127.0.0.1 with a free port each, or, behind a bastion, all on
    /// the relay's port inside the fleet's network namespace, the bastion first.
    fn server_specs(&self, opts: &FleetBuilder, relay: Option<&TcpListener>) -> Vec<ServerSpec> {
        let root = self.dir.path();
        let sshds = (0..opts.hosts.div_ceil(opts.hosts_per_sshd)).map(|i| format!("sshd{i}"));
        let Some(relay) = relay else {
            let spec =
                |name: String| ServerSpec::new(root, name, Ipv4Addr::LOCALHOST, free_port(), None);
            return sshds.map(spec).collect();
        };
        let port = relay.local_addr().expect("relay address").port();
        let netns = self.netns.as_ref().map(Netns::path);
        let bastion = ServerSpec::new(root, "bastion".into(), Ipv4Addr::LOCALHOST, port, netns);
        let private = sshds.enumerate().map(|(i, name)| {
            let addr = Ipv4Addr::from(u32::from(PRIVATE_BASE) + i as u32);
            ServerSpec::new(root, name, addr, port, netns)
        });
        std::iter::once(bastion).chain(private).collect()
    }

    /// The client keys, each sshd's folders and its host keys (all ssh-keygens at once).
    fn make_keys(&self, opts: &FleetBuilder, specs: &[ServerSpec], user: &User) {
        let client = KeyType::Ed25519;
        let mut keygens = vec![keygen(client, &self.client_key, "", "rdeploy-test client")];
        if let Some(enc) = &self.encrypted_key {
            keygens.push(keygen(client, enc, PASSPHRASE, "rdeploy-test encrypted"));
        }
        for spec in specs {
            spec.make_dirs(user);
            if opts.own_etc {
                spec.make_own_etc(user);
            }
            for &kind in &opts.key_types {
                let path = spec.dir.join(kind.file_name());
                keygens.push(keygen(kind, &path, "", &spec.name));
            }
        }
        run_all(keygens);
    }

    /// What every sshd shares: authorized_keys (the client keys), the shadow file with
    /// [`PASSWORD`] when asked for, the bind mounts.
    fn sshd_options(&self, opts: &FleetBuilder, user: &User) -> SshdOptions {
        let root = self.dir.path();
        let mut authorized = String::new();
        for key in std::iter::once(&self.client_key).chain(&self.encrypted_key) {
            authorized.push_str(&read(&key.with_extension("pub")));
        }
        let authorized_keys = root.join("authorized_keys");
        fs::write(&authorized_keys, authorized).expect("write authorized_keys");
        let shadow = (opts.password_auth || opts.sudo_password).then(|| write_shadow(root));
        let sudoers = opts.sudo_password.then(|| {
            let path = root.join("sudoers-password");
            fs::write(&path, format!("{USER} ALL=(ALL:ALL) ALL\n")).expect("write sudoers");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o440)).expect("chmod sudoers");
            (path, PathBuf::from("/etc/sudoers.d/rdeploy-test"))
        });
        SshdOptions {
            authorized_keys,
            key_types: opts.key_types.clone(),
            password_auth: opts.password_auth,
            penalties: user.penalties,
            sftp: !opts.no_sftp,
            binds: opts
                .own_etc
                .then(own_etc_folders)
                .into_iter()
                .flatten()
                .chain(host_folders(user))
                .map(|(folder, target)| (PathBuf::from(folder), target))
                .chain(shadow.map(|s| (s, PathBuf::from("/etc/shadow"))))
                .chain(sudoers)
                .collect(),
        }
    }

    /// `host{i}` for each inventory host, and the bastion with its relay.
    fn name_hosts(&mut self, opts: &FleetBuilder, relay_listener: Option<TcpListener>) {
        let mut servers = self.servers.iter();
        if let Some(listener) = relay_listener {
            let bastion = servers.next().expect("the bastion server").clone();
            let netns = self.netns.as_ref().expect("the bastion's namespace");
            let target = SocketAddr::from((bastion.addr, bastion.port));
            self.relay = Some(Relay::start(listener, netns.path(), target));
            self.bastion = Some(Host {
                name: "bastion".into(),
                server: bastion,
            });
        }
        let servers: Vec<&Arc<Server>> = servers.collect();
        self.hosts = (0..opts.hosts)
            .map(|i| Host {
                name: format!("host{i}"),
                server: servers[i / opts.hosts_per_sshd].clone(),
            })
            .collect();
    }

    fn write_client_files(&self) {
        let mut known = String::new();
        let mut config = format!(
            "Host *\n  User {USER}\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  \
             StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 5\n  LogLevel ERROR\n",
            self.client_key.display(),
            self.known_hosts.display()
        );
        for host in self.bastion.iter().chain(&self.hosts) {
            let line = host.known_hosts_lines();
            if !known.contains(&line) {
                known.push_str(&line);
            }
            config.push_str(&format!(
                "Host {}\n  HostName {}\n  Port {}\n",
                host.name,
                host.addr(),
                host.port()
            ));
            if self.bastion.is_some() && host.name != "bastion" {
                config.push_str("  ProxyJump bastion\n");
            }
        }
        fs::write(&self.known_hosts, known).expect("write known_hosts");
        fs::write(&self.ssh_config, config).expect("write ssh_config");
    }

    /// The hosts (the bastion is not one of them).
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Host `i`, named `host{i}`.
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// With [`FleetBuilder::bastion`]: the bastion, at `127.0.0.1:PORT` for the controller.
    /// The hosts are then at `127.1.0.1`, `127.1.0.2`, ... on the same port, addresses that
    /// only exist inside the fleet's network namespace, so the controller reaches them only
    /// by jumping through the bastion.
    pub fn bastion(&self) -> Option<&Host> {
        self.bastion.as_ref()
    }

    /// With [`FleetBuilder::bastion`]: the network namespace the bastion and the hosts live
    /// in. A thread that enters it reaches the bastion at the same `127.0.0.1:PORT` without
    /// the relay, so [`Fleet::ssh_config`] works there too (`examples/jump_bench.rs`).
    pub fn netns_path(&self) -> Option<&Path> {
        self.netns.as_ref().map(Netns::path)
    }

    /// The fleet's directory (one folder per sshd, the client keys, known_hosts, ...).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The client's private key (Ed25519, no passphrase), authorized on every host.
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }

    /// With [`FleetBuilder::encrypted_client_key`]: a second authorized key, protected by
    /// [`PASSPHRASE`].
    pub fn encrypted_client_key(&self) -> Option<&Path> {
        self.encrypted_key.as_deref()
    }

    /// A known_hosts file with every key of every host (and the bastion).
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// An OpenSSH client config naming each host (and `bastion`, with `ProxyJump bastion`
    /// on the hosts behind it), with the fleet's key and known_hosts and strict checking:
    /// `ssh -F CONFIG host0 CMD` works, and so does `~/.ssh/config` for rdeploy.
    pub fn ssh_config(&self) -> &Path {
        &self.ssh_config
    }

    /// `ssh -F CONFIG`: the OpenSSH client set up for the fleet; add options, then a host
    /// name and a command.
    pub fn ssh_client(&self) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.arg("-F").arg(&self.ssh_config);
        ssh
    }

    /// `ssh -F CONFIG HOST CMD`: the reference client for tests.
    pub fn ssh(&self, host: &Host, cmd: &str) -> Command {
        let mut ssh = self.ssh_client();
        ssh.arg(&host.name).arg(cmd);
        ssh
    }

    /// The connection variables of `host` for an Ansible inventory: `ansible_host`,
    /// `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`, and behind a bastion
    /// `ansible_ssh_common_args: -o ProxyJump=USER@127.0.0.1:PORT`.
    pub fn host_vars(&self, host: &Host) -> Map<String, Value> {
        let mut vars = Map::new();
        vars.insert("ansible_host".into(), json!(host.addr().to_string()));
        vars.insert("ansible_port".into(), json!(host.port()));
        vars.insert("ansible_user".into(), json!(USER));
        vars.insert(
            "ansible_ssh_private_key_file".into(),
            json!(self.client_key.display().to_string()),
        );
        if let Some(b) = &self.bastion {
            let jump = format!("-o ProxyJump={USER}@{}:{}", b.addr(), b.port());
            vars.insert("ansible_ssh_common_args".into(), json!(jump));
        }
        vars
    }

    /// A YAML inventory with every host under `all.hosts` (with [`Fleet::host_vars`]) and
    /// `vars` (a JSON object, may be `null`) under `all.vars`.
    pub fn inventory_yaml(&self, vars: Value) -> String {
        let hosts: Map<String, Value> = self
            .hosts
            .iter()
            .map(|h| (h.name.clone(), Value::Object(self.host_vars(h))))
            .collect();
        let mut all = Map::new();
        all.insert("hosts".into(), Value::Object(hosts));
        if !vars.is_null() {
            all.insert("vars".into(), vars);
        }
        serde_saphyr::to_string(&json!({ "all": all })).expect("serialize the inventory")
    }

    /// Writes [`Fleet::inventory_yaml`] to `path`.
    pub fn write_inventory(&self, path: impl AsRef<Path>, vars: Value) {
        fs::write(path, self.inventory_yaml(vars)).expect("write the inventory");
    }

    /// Every process the fleet started that still runs: the `unshare` wrappers it spawned
    /// and every process inside its hosts.
    pub fn processes(&self) -> Vec<Proc> {
        let mut out = Vec::new();
        for s in &self.servers {
            out.extend(s.wrapper_pid().and_then(Proc::read));
            out.extend(processes_in(s.pidns));
        }
        out
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for s in &self.servers {
            s.send_kill();
        }
        for s in &self.servers {
            s.reap();
        }
        self.relay.take();
        self.netns.take();
    }
}

/// A port that was free on 127.0.0.1 a moment ago. Another process may take it before
/// sshd binds it: [`start_servers`] then tries another (a test's own server binds at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// `ssh-keygen` writing a new `kind` key pair to `path` and `path.pub`.
fn keygen(kind: KeyType, path: &Path, passphrase: &str, comment: &str) -> Command {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(kind.keygen_args())
        .args(["-q", "-N", passphrase, "-C", comment, "-f"])
        .arg(path);
    cmd
}

/// Runs the commands side by side; panics with the output of the first that fails.
fn run_all(cmds: Vec<Command>) {
    let children: Vec<(String, Child)> = cmds
        .into_iter()
        .map(|mut c| {
            let what = format!("{c:?}");
            let child = c
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("start {what}: {e}"));
            (what, child)
        })
        .collect();
    for (what, child) in children {
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A copy of `/etc/shadow` in which [`USER`] has [`PASSWORD`], bind-mounted over
/// `/etc/shadow` inside the hosts only.
fn write_shadow(root: &Path) -> PathBuf {
    let prefix = format!("{USER}:");
    let shadow: String = read(Path::new("/etc/shadow"))
        .lines()
        .map(|line| match line.strip_prefix(&prefix) {
            Some(rest) => {
                let after_hash = rest.split_once(':').map_or("", |(_, r)| r);
                format!("{prefix}{PASSWORD_HASH}:{after_hash}\n")
            }
            None => format!("{line}\n"),
        })
        .collect();
    let path = root.join("shadow");
    let mut file = File::options()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .expect("create the fleet's shadow file");
    file.write_all(shadow.as_bytes())
        .expect("write the fleet's shadow file");
    path
}

// ------------------------------------------------------------------ hosts and servers

/// One inventory host: a name and the sshd serving it.
pub struct Host {
    name: String,
    server: Arc<Server>,
}

impl Host {
    /// `host{i}` or `bastion`: the name in [`Fleet::inventory_yaml`] and [`Fleet::ssh_config`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address the controller dials (with a bastion: the address behind it).
    pub fn addr(&self) -> Ipv4Addr {
        self.server.addr
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    pub fn host_keys(&self) -> &[HostKey] {
        &self.server.keys
    }

    /// `[ADDR]:PORT ALGORITHM KEY`, one line per host key, for a known_hosts file.
    pub fn known_hosts_lines(&self) -> String {
        let pattern = format!("[{}]:{}", self.addr(), self.port());
        self.host_keys()
            .iter()
            .map(|k| format!("{pattern} {}\n", k.public))
            .collect()
    }

    /// Where the host's absolute path `on_host` (under `/srv`, `/etc/rdeploy-test`,
    /// `/var/lib/rdeploy` or [`USER`]'s home; with [`FleetBuilder::own_etc`] also under `/etc`,
    /// `/home` and `/var/spool/cron`) is in the fleet's directory, to read or prepare the
    /// host's files directly. Panics for other paths.
    pub fn path(&self, on_host: &str) -> PathBuf {
        let path = Path::new(on_host);
        let own = self.server.dir.join("etc").is_dir();
        let own_folders = own_etc_folders().into_iter().filter(|_| own);
        for (folder, root) in host_folders(machine()).into_iter().chain(own_folders) {
            if let Ok(rest) = path.strip_prefix(&root) {
                return self.server.dir.join(folder).join(rest);
            }
        }
        panic!(
            "{on_host} is not in a per-host folder (/srv, /etc/rdeploy-test, /var/lib/rdeploy, ~{USER})"
        )
    }

    /// The sshd's folder: `sshd_config`, host keys, `sshd.log`.
    pub fn dir(&self) -> &Path {
        &self.server.dir
    }

    /// The sshd's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.server.dir.join("sshd.log")).unwrap_or_default()
    }

    /// The sshd's PID (as the test sees it; on the host it is 1).
    pub fn sshd_pid(&self) -> u32 {
        self.server.init_pid
    }

    /// Every process running on the host, its sshd first.
    pub fn processes(&self) -> Vec<Proc> {
        processes_in(self.server.pidns)
    }

    /// The processes of [`USER`] on the host: what a session left behind.
    pub fn user_processes(&self) -> Vec<Proc> {
        let uid = machine().uid;
        self.processes()
            .into_iter()
            .filter(|p| p.uid == uid)
            .collect()
    }

    /// SIGKILLs the host's sshd, which ends every process on the host, and waits until
    /// they are gone. The host then refuses connections. (Hosts sharing the sshd go too.)
    pub fn kill(&self) {
        self.server.send_kill();
        self.server.reap();
    }

    /// SIGSTOPs every process on the host: connections stay open and new ones are
    /// accepted by the kernel, but nothing answers.
    pub fn freeze(&self) {
        self.server.signal_all(Signal::STOP);
    }

    /// Undoes [`Host::freeze`].
    pub fn thaw(&self) {
        self.server.signal_all(Signal::CONT);
    }
}

/// What every sshd of a fleet has in common.
struct SshdOptions {
    authorized_keys: PathBuf,
    key_types: Vec<KeyType>,
    password_auth: bool,
    penalties: bool,
    /// Whether sshd serves the `sftp` subsystem.
    sftp: bool,
    /// (source, relative to the sshd's directory or absolute; path it is mounted on inside
    /// the host)
    binds: Vec<(PathBuf, PathBuf)>,
}

/// One sshd to start.
struct ServerSpec {
    name: String,
    dir: PathBuf,
    addr: Ipv4Addr,
    port: u16,
    netns: Option<PathBuf>,
}

impl ServerSpec {
    fn new(root: &Path, name: String, addr: Ipv4Addr, port: u16, netns: Option<&Path>) -> Self {
        ServerSpec {
            dir: root.join(&name),
            name,
            addr,
            port,
            netns: netns.map(Path::to_path_buf),
        }
    }

    /// The server's folder and the host's private folders, owned by [`USER`].
    fn make_dirs(&self, user: &User) {
        fs::create_dir(&self.dir).expect("create the sshd's folder");
        for (folder, _) in host_folders(user) {
            let path = self.dir.join(folder);
            fs::create_dir(&path).expect("create a host folder");
            std::os::unix::fs::chown(&path, Some(user.uid), None).expect("chown a host folder");
        }
    }

    /// [`FleetBuilder::own_etc`]'s folders: a copy of `/etc` and of `/var/spool/cron`, and a
    /// `/home` with an empty mount point for [`USER`]'s home.
    fn make_own_etc(&self, user: &User) {
        for (from, to) in [("/etc", "etc"), ("/var/spool/cron", "var-spool-cron")] {
            let out = Command::new("cp")
                .arg("-a")
                .arg(from)
                .arg(self.dir.join(to))
                .output()
                .expect("run cp");
            assert!(
                out.status.success(),
                "copy {from}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let home_root = self.dir.join("home-root");
        fs::create_dir(&home_root).expect("create the host's /home");
        if let Ok(rest) = user.home.strip_prefix("/home") {
            fs::create_dir_all(home_root.join(rest)).expect("create the user's home mount point");
        }
    }

    fn write_config(&self, opts: &SshdOptions) {
        let mut c = format!(
            "# Written by tests/support/fleet.rs\nListenAddress {}:{}\nPidFile {}\n",
            self.addr,
            self.port,
            self.dir.join("sshd.pid").display()
        );
        for kind in &opts.key_types {
            c.push_str(&format!(
                "HostKey {}\n",
                self.dir.join(kind.file_name()).display()
            ));
        }
        c.push_str(&format!(
            "AuthorizedKeysFile {}\nPasswordAuthentication {}\n",
            opts.authorized_keys.display(),
            if opts.password_auth { "yes" } else { "no" }
        ));
        // The fleet's folder is under /tmp, which is world-writable: StrictModes would
        // refuse authorized_keys there.
        c.push_str(
            "StrictModes no\nAllowUsers rdeploy-test\nPermitRootLogin no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nUseDNS no\nPrintMotd no\n\
             PrintLastLog no\nMaxStartups 1000\nMaxSessions 100\nLogLevel VERBOSE\n",
        );
        if opts.sftp {
            c.push_str("Subsystem sftp internal-sftp\n");
        }
        if opts.penalties {
            // Tests fail logins on purpose; sshd 9.8+ would then refuse 127.0.0.1 a while.
            c.push_str("PerSourcePenalties no\n");
        }
        fs::write(self.dir.join("sshd_config"), c).expect("write sshd_config");
    }

    /// `[nsenter --net=NETNS] unshare --pid --fork --kill-child --mount-proc sh -c
    /// 'mount --bind ... && exec sshd -D'`: sshd becomes PID 1 of a new PID and mount
    /// namespace; `unshare` stays our child and kills it if it dies.
    fn spawn(&self, opts: &SshdOptions) -> Child {
        let _ = fs::remove_file(self.dir.join("sshd.pid"));
        // A new log per attempt: a retry must not see the previous attempt's failure.
        // Appending, like sshd -E, so neither writer overwrites the other.
        let log_path = self.dir.join("sshd.log");
        File::create(&log_path).expect("create sshd.log");
        let log = File::options()
            .append(true)
            .open(&log_path)
            .expect("open sshd.log");
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display())).arg("unshare");
                c
            }
            None => Command::new("unshare"),
        };
        cmd.args(["--pid", "--uts", "--fork", "--kill-child", "--mount-proc"])
            .args(["--propagation", "private", "sh", "-c"])
            .arg(
                "set -e; cfg=$1; log=$2; shift 2
                 while [ $# -gt 0 ]; do mount --bind \"$1\" \"$2\"; shift 2; done
                 exec /usr/sbin/sshd -D -E \"$log\" -f \"$cfg\"",
            )
            .arg("sh")
            .arg(self.dir.join("sshd_config"))
            .arg(&log_path);
        for (source, target) in &opts.binds {
            cmd.arg(self.dir.join(source)).arg(target);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup sshd.log"))
            .stderr(log)
            .spawn()
            .expect("spawn unshare for sshd")
    }
}

/// One running sshd.
struct Server {
    dir: PathBuf,
    addr: Ipv4Addr,
    port: u16,
    keys: Vec<HostKey>,
    /// The `unshare` we spawned; reaped once, by [`Server::reap`].
    wrapper: Mutex<Option<Child>>,
    init_pid: u32,
    /// A pidfd of the sshd, so it is never confused with a later process of the same PID.
    init: OwnedFd,
    pidns: NsId,
    /// Keeps the PID namespace (and so `pidns`) from being freed and its inode reused
    /// while the fleet may still compare against it.
    _pidns_file: File,
}

impl Server {
    /// The `unshare` wrapper's PID while it is our unreaped child (so the PID is its).
    fn wrapper_pid(&self) -> Option<u32> {
        let guard = self.wrapper.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(Child::id)
    }

    fn send_kill(&self) {
        let _ = pidfd_send_signal(self.init.as_fd(), Signal::KILL);
    }

    /// Waits for the `unshare` wrapper, which exits once its child, the sshd, has died and
    /// with it every process of the namespace. Kills the wrapper if that takes too long.
    fn reap(&self) {
        let mut guard = self.wrapper.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = guard.take() {
            let deadline = Instant::now() + KILL_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(guard);
        let deadline = Instant::now() + KILL_TIMEOUT;
        while !processes_in(self.pidns).is_empty() && Instant::now() < deadline {
            for p in processes_in(self.pidns) {
                signal_in(p.pid, self.pidns, Signal::KILL);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Signals the sshd first (so it forks nothing new), then every other process.
    fn signal_all(&self, sig: Signal) {
        let _ = pidfd_send_signal(self.init.as_fd(), sig);
        for p in processes_in(self.pidns) {
            signal_in(p.pid, self.pidns, sig);
        }
    }
}

impl Drop for Server {
    /// Only does work for a server the fleet did not stop itself (a failed start).
    fn drop(&mut self) {
        self.send_kill();
        self.reap();
    }
}

/// Starts every spec side by side and waits for each to listen. A server on 127.0.0.1
/// whose port was taken meanwhile is retried on another port.
fn start_servers(specs: Vec<ServerSpec>, opts: &SshdOptions) -> Vec<Arc<Server>> {
    let mut pending: Vec<Pending> = specs
        .into_iter()
        .map(|spec| Pending::spawn(spec, opts))
        .collect();
    let mut ready: Vec<Option<Arc<Server>>> = (0..pending.len()).map(|_| None).collect();
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut retries = 0;
    while ready.iter().any(Option::is_none) {
        for (i, p) in pending.iter_mut().enumerate() {
            if ready[i].is_some() {
                continue;
            }
            match p.poll() {
                Poll::Waiting => {}
                Poll::Ready => ready[i] = Some(Arc::new(p.finish(&opts.key_types))),
                Poll::Exited(log)
                    if log.contains("Address already in use")
                        && p.spec.netns.is_none()
                        && retries < 10 =>
                {
                    retries += 1;
                    p.spec.port = free_port();
                    p.respawn(opts);
                }
                Poll::Exited(log) => panic!("sshd {} exited:\n{log}", p.spec.name),
            }
        }
        if Instant::now() > deadline {
            let late: Vec<_> = pending
                .iter()
                .zip(&ready)
                .filter(|(_, r)| r.is_none())
                .map(|(p, _)| format!("sshd {}:\n{}", p.spec.name, p.log()))
                .collect();
            panic!(
                "sshd did not listen within {READY_TIMEOUT:?}:\n{}",
                late.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ready.into_iter().flatten().collect()
}

enum Poll {
    Waiting,
    Ready,
    Exited(String),
}

/// A spawned sshd that may not listen yet. Dropped before [`Pending::finish`] (the fleet
/// failed to start), it kills and reaps its `unshare`.
struct Pending {
    spec: ServerSpec,
    child: Option<Child>,
}

impl Pending {
    fn spawn(spec: ServerSpec, opts: &SshdOptions) -> Pending {
        spec.write_config(opts);
        let child = Some(spec.spawn(opts));
        Pending { spec, child }
    }

    fn respawn(&mut self, opts: &SshdOptions) {
        self.spec.write_config(opts);
        self.child = Some(self.spec.spawn(opts));
    }

    fn log(&self) -> String {
        fs::read_to_string(self.spec.dir.join("sshd.log")).unwrap_or_default()
    }

    fn poll(&mut self) -> Poll {
        let child = self.child.as_mut().expect("a pending sshd has a child");
        if let Ok(Some(_)) = child.try_wait() {
            self.child = None;
            return Poll::Exited(self.log());
        }
        // sshd writes its PidFile once its sockets listen.
        match fs::metadata(self.spec.dir.join("sshd.pid")) {
            Ok(m) if m.len() > 0 => Poll::Ready,
            _ => Poll::Waiting,
        }
    }

    /// The listening sshd: finds it (the wrapper's only child) and pins it and its PID
    /// namespace.
    fn finish(&mut self, key_types: &[KeyType]) -> Server {
        let child = self.child.take().expect("a ready sshd has a child");
        let wrapper_pid = child.id();
        let children =
            fs::read_to_string(format!("/proc/{wrapper_pid}/task/{wrapper_pid}/children"))
                .expect("read the children of unshare (needs CONFIG_PROC_CHILDREN)");
        let init_pid: u32 = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("unshare has a child, the sshd");
        let init = Pid::from_raw(init_pid as i32)
            .and_then(|pid| pidfd_open(pid, PidfdFlags::empty()).ok())
            .expect("pidfd_open the sshd");
        let pidns_file =
            File::open(format!("/proc/{init_pid}/ns/pid")).expect("open the sshd's PID namespace");
        let meta = pidns_file.metadata().expect("stat the PID namespace");
        let pidns = NsId(meta.dev(), meta.ino());
        // The one check that keeps freeze/kill from ever reaching the test's own processes.
        assert_ne!(
            Some(pidns),
            NsId::of("/proc/self/ns/pid"),
            "the sshd is not in a PID namespace of its own"
        );
        let keys = key_types
            .iter()
            .map(|&kind| {
                let text = read(&self.spec.dir.join(format!("{}.pub", kind.file_name())));
                let public = text
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                HostKey { kind, public }
            })
            .collect();
        Server {
            dir: self.spec.dir.clone(),
            addr: self.spec.addr,
            port: self.spec.port,
            keys,
            wrapper: Mutex::new(Some(child)),
            init_pid,
            init,
            pidns,
            _pidns_file: pidns_file,
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // --kill-child takes the sshd (and its namespace) along.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ------------------------------------------------------------------ bastion plumbing

/// A network namespace `rdt-PID-N` (`ip netns add`), with loopback up; deleted on drop.
struct Netns {
    name: String,
    path: PathBuf,
}

impl Netns {
    fn create() -> Netns {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        for _ in 0..100 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("rdt-{}-{n}", std::process::id());
            // A name left by a crashed earlier process with our PID: take the next one.
            let added = Command::new("ip")
                .args(["netns", "add", &name])
                .stderr(Stdio::null())
                .status()
                .expect("run ip netns add (iproute2)");
            if added.success() {
                let up = Command::new("ip")
                    .args(["-n", &name, "link", "set", "lo", "up"])
                    .status()
                    .expect("run ip link");
                assert!(up.success(), "ip -n {name} link set lo up failed");
                let path = PathBuf::from("/run/netns").join(&name);
                return Netns { name, path };
            }
        }
        panic!("ip netns add failed 100 times")
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// Forwards connections to a listener on the test's loopback to `target` inside a network
/// namespace: how the controller reaches the bastion and nothing else.
struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    fn start(listener: TcpListener, netns: &Path, target: SocketAddr) -> Relay {
        let addr = listener.local_addr().expect("relay address");
        let stop = Arc::new(AtomicBool::new(false));
        let ns = File::open(netns).expect("open the fleet's network namespace");
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // Only this thread enters the namespace; the listener was bound outside it.
                let entered = rustix::thread::move_into_link_name_space(
                    ns.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                );
                let ok = entered.is_ok();
                let _ = entered_tx.send(entered);
                if ok {
                    relay_loop(&listener, target, &stop);
                }
            })
        };
        match entered.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the relay could not enter the network namespace: {e}"),
            Err(_) => panic!("the relay thread ended before entering the network namespace"),
        }
        Relay {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

fn relay_loop(listener: &TcpListener, target: SocketAddr, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = conn else { continue };
        // A dead bastion: the client sees the connection closed.
        let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
            continue;
        };
        // A forwarder must not hold back what it read: without TCP_NODELAY its writes wait
        // for the ACK of the previous one (Nagle), ~40 ms per command to the bastion.
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        std::thread::spawn(move || pump(client, server));
        std::thread::spawn(move || pump(s2, c2));
    }
}

/// Copies `from` to `to` until either side ends, then closes both.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
