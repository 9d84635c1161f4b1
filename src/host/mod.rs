//! The host programs: the shell scripts rdeploy sends to hosts, as files.
//!
//! Each program lives in `src/host/sh/NAME.sh` and starts with a header of `#` lines (what it
//! is, its arguments, stdin, output, exit codes, and any `# shellcheck` directive). The header
//! is for people and for shellcheck only: [`program`] strips it (the leading `#` lines, nothing
//! else) and the file's final newline at compile time, so what goes over the wire is the body
//! exactly as written. A body that must start with a newline (a fragment appended to a command
//! line) has an empty line right after its header.
//!
//! This module owns loading the files; it must not build command lines. The builders that put
//! arguments in front of these bodies, and the parsers of what they print, are in
//! [`crate::transport::cmd`]. `tests/host_sh.rs` runs shellcheck on every file and runs the
//! programs under dash, `bash --posix` and BusyBox `sh`, with GNU and with BusyBox tools.

/// The body of a host program file: `src` without its leading `#` header lines and without its
/// final newline. Evaluated at compile time; a file without a header does not compile.
pub const fn program(src: &'static str) -> &'static str {
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b'#' {
        while i < b.len() && b[i] != b'\n' {
            i += 1;
        }
        if i < b.len() {
            i += 1;
        }
    }
    assert!(i > 0, "a host program must start with its header comment");
    let mut end = b.len();
    if end > i && b[end - 1] == b'\n' {
        end -= 1;
    }
    let (_, rest) = src.split_at(i);
    let (body, _) = rest.split_at(end - i);
    body
}

/// Declares a host program: `NAME = "file.sh"` becomes a `&'static str` constant holding the
/// file's body (see [`program`]).
macro_rules! host_programs {
    ($($(#[$doc:meta])* $name:ident = $file:literal;)*) => {
        $(
            $(#[$doc])*
            pub const $name: &str = program(include_str!(concat!("sh/", $file)));
        )*
        /// Every host program: (file name, body), for the checks in `tests/host_sh.rs`.
        pub const ALL: &[(&str, &str)] = &[$(($file, $name)),*];
    };
}

host_programs! {
    /// [`crate::transport::cmd::put_file_cmd`]'s atomic write.
    PUT = "put.sh";
    /// [`crate::transport::cmd::stat_cmd`] and its variants.
    STAT = "stat.sh";
    /// The fast batch runner's head ([`crate::transport::cmd::Cmd::batch`]).
    BATCH_RUNNER = "batch_runner.sh";
    /// The batch runners' `run_` function.
    BATCH_RUN_FN = "batch_run_fn.sh";
    /// The capped batch runner ([`crate::transport::cmd::Batch::capped`]).
    BATCH_CAPPED = "batch_capped.sh";
    /// The head of [`crate::transport::cmd::Cmd::then_reads`].
    READS_HEAD = "reads_head.sh";
    /// The middle of [`crate::transport::cmd::Cmd::then_reads`].
    READS_MID = "reads_mid.sh";
    /// [`crate::transport::cmd::Cmd::after`]'s preamble runner.
    PREAMBLE = "preamble.sh";
    /// The tail of [`crate::transport::cmd::session_line`]: process group and fast path.
    SESSION = "session.sh";
    /// [`crate::transport::cmd::stdin_bootstrap`]'s fixed command.
    STDIN_BOOTSTRAP = "stdin_bootstrap.sh";
    /// [`crate::transport::cmd::kill_group_cmd`].
    KILL_GROUP = "kill_group.sh";
    /// [`crate::transport::cmd::host_lock_line`].
    HOST_LOCK = "host_lock.sh";
    /// [`crate::transport::cmd::realpath_cmd`].
    REALPATH = "realpath.sh";
    /// [`crate::transport::cmd::keep_owner`].
    KEEP_OWNER = "keep_owner.sh";
    /// [`crate::transport::cmd::ln_sf_atomic`].
    LN_SF = "ln_sf.sh";
    /// The link resolution in front of [`crate::transport::cmd::stat_resolved_cmd`].
    RESOLVE_LINK = "resolve_link.sh";
    /// A batch's stat table (one `stat` for its stat helpers' paths).
    STAT_TABLE = "stat_table.sh";
    /// A batch's sha256 table (one `sha256sum` for its stat helpers' files).
    HASH_TABLE = "hash_table.sh";
    /// The start of every fact gathering ([`crate::exec::facts`]).
    FACTS_PROLOGUE = "facts_prologue.sh";
    /// The `min` fact group.
    FACTS_MIN = "facts_min.sh";
    /// The `network` fact group.
    FACTS_NETWORK = "facts_network.sh";
    /// The `hardware` fact group.
    FACTS_HARDWARE = "facts_hardware.sh";
    /// The `virtual` fact group.
    FACTS_VIRTUAL = "facts_virtual.sh";
    /// `READ_STATE` in `service.rs`.
    SERVICE_READ_STATE = "service_read_state.sh";
    /// `DETECT` in `service.rs`.
    SERVICE_DETECT = "service_detect.sh";
    /// `SYSV_ENABLE` in `service.rs`.
    SERVICE_SYSV_ENABLE = "service_sysv_enable.sh";
    /// `QUERY` in `package.rs`.
    PACKAGE_QUERY = "package_query.sh";
    /// `DETECT` in `package.rs`.
    PACKAGE_DETECT = "package_detect.sh";
    /// `APT_CACHE_AGE` in `package.rs`.
    APT_CACHE_AGE = "apt_cache_age.sh";
    /// `POLICY_RC_D_ON` in `package.rs`.
    POLICY_RC_D_ON = "policy_rc_d_on.sh";
    /// `POLICY_RC_D_OFF` in `package.rs`.
    POLICY_RC_D_OFF = "policy_rc_d_off.sh";
    /// `PROBE` in `service_facts.rs`.
    SERVICE_FACTS_PROBE = "service_facts_probe.sh";
    /// `CHKCONFIG` in `service_facts.rs`.
    SERVICE_FACTS_CHKCONFIG = "service_facts_chkconfig.sh";
    /// `OPENRC` in `service_facts.rs`.
    SERVICE_FACTS_OPENRC = "service_facts_openrc.sh";
    /// `SYSTEMD_GUARD` in `service_facts.rs`.
    SERVICE_FACTS_SYSTEMD_GUARD = "service_facts_systemd_guard.sh";
    /// `SHOW_STATES` in `service_facts.rs`.
    SERVICE_FACTS_SHOW_STATES = "service_facts_show_states.sh";
    /// `RH_STATUS` in `service_facts.rs`.
    SERVICE_FACTS_RH_STATUS = "service_facts_rh_status.sh";
    /// `GLOB_EXISTS` in `common.rs`.
    GLOB_EXISTS = "glob_exists.sh";
    /// `BIN_PATH` in `common.rs`.
    BIN_PATH = "bin_path.sh";
    /// `PREPARE` in `backup/mod.rs`.
    BACKUP_PREPARE = "backup_prepare.sh";
    /// `BACKUP` in `backup/mod.rs`.
    BACKUP = "backup.sh";
    /// `RESTORE` in `backup/mod.rs`.
    BACKUP_RESTORE = "backup_restore.sh";
    /// What `rdeploy status --from-hosts` reads on a host.
    STATUS_SCAN = "status_scan.sh";
    /// The HAProxy runtime API client function, put before the programs that use it.
    HAPROXY_CLI = "haproxy_cli.sh";
    /// The `haproxy` module's commands to HAProxy's socket.
    HAPROXY = "haproxy.sh";
    /// `PRUNE_PARENTS` in `backup/mod.rs`.
    BACKUP_PRUNE_PARENTS = "backup_prune_parents.sh";
    /// `PENDING` in `backup/mod.rs`.
    BACKUP_PENDING = "backup_pending.sh";
    /// `WHOAMI` in `backup/mod.rs`.
    WHOAMI = "whoami.sh";
    /// `PREPARABLE` in `backup/mod.rs`.
    BACKUP_PREPARABLE = "backup_preparable.sh";
    /// `TREE_STAT` in `copy.rs`.
    TREE_STAT = "tree_stat.sh";
    /// `DOWNLOAD` in `get_url.rs`.
    GET_URL_DOWNLOAD = "get_url_download.sh";
    /// `FETCH_SUMS` in `get_url.rs`.
    GET_URL_FETCH_SUMS = "get_url_fetch_sums.sh";
    /// `REMOTE_SUM` in `fetch.rs`.
    FETCH_REMOTE_SUM = "fetch_remote_sum.sh";
    /// `PACMAN_QUERY` in `ospkg.rs`.
    OSPKG_PACMAN_QUERY = "ospkg_pacman_query.sh";
    /// `ZYPPER_QUERY` in `ospkg.rs`.
    OSPKG_ZYPPER_QUERY = "ospkg_zypper_query.sh";
    /// `PKGNG_QUERY` in `ospkg.rs`.
    OSPKG_PKGNG_QUERY = "ospkg_pkgng_query.sh";
    /// `OPENBSD_QUERY` in `ospkg.rs`.
    OSPKG_OPENBSD_QUERY = "ospkg_openbsd_query.sh";
    /// `DEB_QUERY` in `package.rs`.
    PACKAGE_DEB_QUERY = "package_deb_query.sh";
    /// `APT_LIST` in `package_facts.rs`.
    PACKAGE_FACTS_APT_LIST = "package_facts_apt_list.sh";
    /// `APT_SOURCES` in `package_facts.rs`.
    PACKAGE_FACTS_APT_SOURCES = "package_facts_apt_sources.sh";
    /// `APT_POLICY` in `package_facts.rs`.
    PACKAGE_FACTS_APT_POLICY = "package_facts_apt_policy.sh";
    /// `RPM_LIST` in `package_facts.rs`.
    PACKAGE_FACTS_RPM_LIST = "package_facts_rpm_list.sh";
    /// `PRELUDE` in `unarchive.rs`.
    UNARCHIVE_PRELUDE = "unarchive_prelude.sh";
    /// `COMPARE` in `unarchive.rs`.
    UNARCHIVE_COMPARE = "unarchive_compare.sh";
    /// `EXTRACT` in `unarchive.rs`.
    UNARCHIVE_EXTRACT = "unarchive_extract.sh";
    /// `WAIT` in `wait_for.rs`.
    WAIT_FOR = "wait_for.sh";
    /// `EXPAND_AND_EXEC` in `command.rs`.
    COMMAND_EXPAND_EXEC = "command_expand_exec.sh";
    /// `SCRIPT_RUN` in `command.rs`.
    COMMAND_SCRIPT_RUN = "command_script_run.sh";
    /// `MAKE_HOME` in `user.rs`.
    USER_MAKE_HOME = "user_make_home.sh";
    /// `HOME_EXISTS` in `user.rs`.
    USER_HOME_EXISTS = "user_home_exists.sh";
    /// `GPG_TMP` in `apt_key.rs`.
    APT_KEY_GPG = "apt_key_gpg.sh";
    /// `REBUILD` in `apt_key.rs`.
    APT_KEY_REBUILD = "apt_key_rebuild.sh";
    /// `SHOW_KEYRING` in `apt_key.rs`.
    APT_KEY_SHOW_KEYRING = "apt_key_show_keyring.sh";
    /// `GPG_TMP` in `rpm_key.rs`.
    RPM_KEY_GPG = "rpm_key_gpg.sh";
    /// `IMPORTED` in `rpm_key.rs`.
    RPM_KEY_IMPORTED = "rpm_key_imported.sh";
    /// `IMPORT_STDIN` in `rpm_key.rs`.
    RPM_KEY_IMPORT = "rpm_key_import.sh";
    /// `PIP` in `pip.rs`.
    PIP = "pip.sh";
    /// `VENV_EXISTS` in `pip.rs`.
    PIP_VENV_EXISTS = "pip_venv_exists.sh";
}

#[cfg(test)]
mod tests {
    use super::program;

    #[test]
    fn the_header_and_the_final_newline_are_not_sent() {
        assert_eq!(program("# a\n# b\necho x\n"), "echo x");
        assert_eq!(program("# a\n\necho x\n"), "\necho x");
        assert_eq!(
            program("# a\necho x # not a header\n# kept\n"),
            "echo x # not a header\n# kept"
        );
        assert_eq!(program("# a\necho x\n\n"), "echo x\n");
    }

    #[test]
    fn every_program_has_a_body_and_no_header_left() {
        for (file, body) in super::ALL {
            assert!(!body.trim().is_empty(), "{file} is empty");
            assert!(!body.starts_with('#'), "{file}");
        }
    }
}
