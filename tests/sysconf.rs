//! End to end on the SSH fleet: the system-configuration modules `ini_file`, `cron`, `sysctl`,
//! `mount` and `ufw` change a host for real (its own `/etc` with `own_etc`, its own network namespace
//! behind a bastion), report `ok` on a second run, change nothing under `--check`, and
//! `rdeploy rollback RUN` puts the file and the live state back.

mod support;

use support::fleet::{Fleet, enable_sudo};
use support::oracle::{fleet_sandbox_with, play, rdeploy_json, rollback_run, user_ids};

/// A host whose `/var/lib/rdeploy` is root's, as on a real host: become runs keep their
/// backups there and rollback reads them with become.
fn root_state_dir(h: &support::fleet::Host) {
    use std::os::unix::fs::PermissionsExt;
    let var_lib = h.path("/var/lib/rdeploy");
    std::os::unix::fs::chown(&var_lib, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&var_lib, std::fs::Permissions::from_mode(0o755)).unwrap();
    // `rdeploy rollback` takes the host lock there as the login user, without become (a lock
    // file it cannot open makes dash's `exec 9>>` exit 2, not the 71 that means "go on
    // without the lock"): the lock file is the login user's, as a run as that user leaves it.
    let lock = var_lib.join("host.lock");
    std::fs::write(&lock, "").unwrap();
    let (uid, gid) = user_ids();
    std::os::unix::fs::chown(&lock, Some(uid), Some(gid)).unwrap();
}

fn read(p: std::path::PathBuf) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// `ini_file` writes Ansible's bytes into the host's file, is ok the second time, changes
/// nothing under `--check`, and rollback puts the old file back (and removes a created one).
#[test]
fn ini_file_edits_the_hosts_file_and_rollback_restores_it() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let conf = h.path("/srv/app.ini");
    std::fs::write(&conf, "; app\n[server]\nport=80\n[log]\nlevel = info\n").unwrap();
    // The login user's file, as on a real host.
    let (uid, gid) = user_ids();
    std::os::unix::fs::chown(&conf, Some(uid), Some(gid)).unwrap();
    let sb = fleet_sandbox_with(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - ini_file:\n        path: /srv/app.ini\n        section: server\n        option: port\n        value: '8080'\n        backup: yes\n    - ini_file:\n        path: /srv/app.ini\n        section: log\n        state: absent\n    - ini_file:\n        path: /srv/new.ini\n        section: a\n        option: b\n        value: c\n        mode: '0600'\n",
    );
    let before = read(conf.clone());
    let check = play(&sb, &["--check"], &[]);
    assert_eq!(check.changed(h.name()), 3, "{}", check.text);
    assert_eq!(read(conf.clone()), before, "--check changes nothing");
    assert!(!h.path("/srv/new.ini").exists());
    let first = play(&sb, &[], &[]);
    assert_eq!(first.changed(h.name()), 3, "{}", first.text);
    assert_eq!(
        read(conf.clone()).as_deref(),
        Some("; app\n[server]\nport = 8080\n")
    );
    assert_eq!(
        read(h.path("/srv/new.ini")).as_deref(),
        Some("\n[a]\nb = c\n")
    );
    let second = play(&sb, &[], &[]);
    assert_eq!(second.changed(h.name()), 0, "{}", second.text);
    rollback_run(&sb, &first);
    assert_eq!(read(conf), before);
    assert!(
        !h.path("/srv/new.ini").exists(),
        "a created file is removed"
    );
}

/// `cron` writes a job into the host's own `/etc/cron.d` and installs a user's crontab with
/// `crontab` (become), is ok the second time, changes nothing under `--check`, and rollback
/// removes both again (the cron file, and the crontab's spool file); the machine's own cron
/// files are never touched.
#[test]
fn cron_changes_the_hosts_cron_files_and_rollback_removes_them() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::builder().own_etc().start();
    let h = fleet.host(0);
    let user = support::fleet::USER;
    root_state_dir(h);
    let pb = format!(
        "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - cron:\n        name: app backup\n        minute: '0'\n        hour: '3'\n        user: root\n        job: /usr/local/bin/backup\n        cron_file: rdeploy-e2e\n    - cron:\n        name: rotate\n        special_time: daily\n        user: {user}\n        job: /usr/local/bin/rotate\n        backup: yes\n"
    );
    let sb = fleet_sandbox_with(&fleet, &pb);
    let cron_d = h.path("/etc/cron.d/rdeploy-e2e");
    let spool = h.path(&format!("/var/spool/cron/crontabs/{user}"));
    assert!(!cron_d.exists() && !spool.exists());
    let check = play(&sb, &["--check"], &[]);
    assert_eq!(check.changed(h.name()), 2, "{}", check.text);
    assert!(
        !cron_d.exists() && !spool.exists(),
        "--check changes nothing"
    );
    let first = play(&sb, &[], &[]);
    assert_eq!(first.changed(h.name()), 2, "{}", first.text);
    assert_eq!(
        read(cron_d.clone()).as_deref(),
        Some("#Ansible: app backup\n0 3 * * * root /usr/local/bin/backup\n")
    );
    let tab = read(spool.clone()).expect("the user's crontab is installed");
    assert!(
        tab.ends_with("#Ansible: rotate\n@daily /usr/local/bin/rotate\n"),
        "{tab}"
    );
    assert!(!std::path::Path::new("/etc/cron.d/rdeploy-e2e").exists());
    let second = play(&sb, &[], &[]);
    assert_eq!(second.changed(h.name()), 0, "{}", second.text);
    rollback_run(&sb, &first);
    assert!(!cron_d.exists(), "the cron file is removed");
    assert!(!spool.exists(), "the crontab is removed");
}

/// Runs `cmd` on `h` over SSH; its stdout.
fn on_host(fleet: &Fleet, h: &support::fleet::Host, cmd: &str) -> String {
    let out = fleet.ssh(h, cmd).output().expect("ssh");
    assert!(out.status.success(), "{cmd}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sysctl` in the hosts' own network namespace (behind the bastion): the line goes into the
/// host's sysctl file and the live `net.ipv4.ip_forward` changes (`sysctl_set`), the second run
/// is ok, `--check` changes neither, and rollback puts both back: the file is removed and the
/// live value written back into /proc/sys. The machine's own value never changes.
#[test]
fn sysctl_sets_the_file_and_the_live_value_and_rollback_restores_both() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let machine = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let fleet = Fleet::builder().bastion().own_etc().start();
    let h = fleet.host(0);
    root_state_dir(h);
    let live = || on_host(&fleet, h, "cat /proc/sys/net/ipv4/ip_forward");
    let before = live();
    let want = if before.trim() == "1" { "0" } else { "1" };
    let pb = format!(
        "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - sysctl:\n        name: net.ipv4.ip_forward\n        value: '{want}'\n        sysctl_file: /etc/sysctl.d/90-rdeploy-e2e.conf\n        sysctl_set: yes\n        reload: no\n"
    );
    let sb = fleet_sandbox_with(&fleet, &pb);
    let conf = h.path("/etc/sysctl.d/90-rdeploy-e2e.conf");
    let check = play(&sb, &["--check"], &[]);
    assert_eq!(check.changed(h.name()), 1, "{}", check.text);
    assert!(!conf.exists(), "--check writes no file");
    assert_eq!(live(), before, "--check sets nothing");
    let first = play(&sb, &[], &[]);
    assert_eq!(first.changed(h.name()), 1, "{}", first.text);
    assert_eq!(
        read(conf.clone()).as_deref(),
        Some(format!("net.ipv4.ip_forward={want}\n").as_str())
    );
    assert_eq!(live().trim(), want);
    let second = play(&sb, &[], &[]);
    assert_eq!(second.changed(h.name()), 0, "{}", second.text);
    rollback_run(&sb, &first);
    assert!(!conf.exists(), "the created file is removed");
    assert_eq!(live(), before, "the live value is written back");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        machine,
        "the machine's value never changes"
    );
}

/// `mount` with `state: mounted` writes the line into the host's own fstab, creates the mount
/// point and mounts a tmpfs in the host's mount namespace; the second run is ok, `--check`
/// changes nothing, and rollback unmounts it, removes the mount point and puts fstab back.
#[test]
fn mount_mounts_a_tmpfs_on_the_host_and_rollback_unmounts_it() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let machine_fstab = std::fs::read_to_string("/etc/fstab").unwrap_or_default();
    let fleet = Fleet::builder().own_etc().start();
    let h = fleet.host(0);
    root_state_dir(h);
    let pb = "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - mount:\n        path: /srv/rdeploy-mnt\n        src: tmpfs\n        fstype: tmpfs\n        opts: size=1m\n        state: mounted\n";
    let sb = fleet_sandbox_with(&fleet, pb);
    let fstab = h.path("/etc/fstab");
    let point = h.path("/srv/rdeploy-mnt");
    let before = read(fstab.clone());
    let is_mounted = || {
        on_host(
            &fleet,
            h,
            "findmnt -rn -o FSTYPE --mountpoint /srv/rdeploy-mnt || true",
        )
    };
    let check = play(&sb, &["--check"], &[]);
    assert_eq!(check.changed(h.name()), 1, "{}", check.text);
    assert_eq!(read(fstab.clone()), before, "--check changes nothing");
    assert!(!point.exists());
    let first = play(&sb, &[], &[]);
    assert_eq!(first.changed(h.name()), 1, "{}", first.text);
    let after = read(fstab.clone()).unwrap_or_default();
    assert!(
        after.ends_with("tmpfs /srv/rdeploy-mnt tmpfs size=1m 0 0\n"),
        "{after}"
    );
    assert_eq!(is_mounted(), "tmpfs\n");
    let second = play(&sb, &[], &[]);
    assert_eq!(second.changed(h.name()), 0, "{}", second.text);
    rollback_run(&sb, &first);
    assert_eq!(read(fstab), before, "fstab is put back");
    assert_eq!(is_mounted(), "", "the tmpfs is unmounted");
    assert!(
        !point.exists(),
        "the mount point the step created is removed"
    );
    assert_eq!(
        std::fs::read_to_string("/etc/fstab").unwrap_or_default(),
        machine_fstab
    );
}

/// `ufw` in the hosts' own network namespace (behind the bastion) with the host's own /etc:
/// `--check` changes nothing, the first run enables the firewall and adds the rule (ufw's
/// files and the live status say so), the second run is ok, and rollback puts ufw's files
/// back (rule gone, `ENABLED=no`); the live firewall keeps the run's rules until ufw reloads,
/// as `rdeploy plan` says. The machine's own firewall is never touched.
#[test]
fn ufw_enables_the_firewall_and_adds_a_rule_and_rollback_restores_its_files() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    assert!(
        std::path::Path::new("/usr/sbin/ufw").exists(),
        "ufw is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::builder().bastion().own_etc().start();
    let h = fleet.host(0);
    root_state_dir(h);
    let pb = "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - community.general.ufw:\n        state: enabled\n    - ufw:\n        rule: allow\n        port: '2222'\n        proto: tcp\n        comment: e2e\n";
    let sb = fleet_sandbox_with(&fleet, pb);
    let rules = h.path("/etc/ufw/user.rules");
    let conf = h.path("/etc/ufw/ufw.conf");
    let (rules_before, conf_before) = (read(rules.clone()), read(conf.clone()));
    assert!(
        conf_before
            .as_deref()
            .is_some_and(|c| c.contains("ENABLED=no")),
        "ufw starts disabled: {conf_before:?}"
    );
    let status = || on_host(&fleet, h, "sudo -n /usr/sbin/ufw status");
    let plan = rdeploy_json(&sb, &["plan", "pb.yaml"], &[]);
    assert!(plan.text.contains("ufw reload"), "{}", plan.text);
    let check = play(&sb, &["--check"], &[]);
    assert_eq!(check.changed(h.name()), 2, "{}", check.text);
    assert_eq!(read(rules.clone()), rules_before, "--check writes no rule");
    assert!(
        status().contains("Status: inactive"),
        "--check enables nothing"
    );
    let first = play(&sb, &[], &[]);
    assert_eq!(first.changed(h.name()), 2, "{}", first.text);
    let added = read(rules.clone()).unwrap_or_default();
    assert!(
        added.contains("### tuple ### allow tcp 2222 0.0.0.0/0 any 0.0.0.0/0 in comment="),
        "{added}"
    );
    assert!(
        read(conf.clone())
            .unwrap_or_default()
            .contains("ENABLED=yes")
    );
    let live = status();
    assert!(
        live.contains("Status: active") && live.contains("2222/tcp"),
        "{live}"
    );
    let second = play(&sb, &[], &[]);
    assert_eq!(second.changed(h.name()), 0, "{}", second.text);
    rollback_run(&sb, &first);
    assert_eq!(read(rules), rules_before, "the rules file is put back");
    assert_eq!(read(conf), conf_before, "ufw.conf is put back");
}

/// `modprobe` with `persistent: present` loads the module and writes the host's own boot
/// files (the module's name in /etc/modules-load.d, its parameters in /etc/modprobe.d, an old
/// parameter line elsewhere commented out); `--check` only asks `modprobe -n`; the second run
/// is ok; rollback puts the boot files back. The kernel is a fake: `modprobe`, and `cat` of
/// /proc/modules and modules.builtin, are the host's own scripts first on `PATH` (this
/// machine's kernel has no loadable modules, and a test must not load one).
#[test]
fn modprobe_loads_the_module_writes_the_boot_files_and_rollback_restores_them() {
    use std::os::unix::fs::PermissionsExt;
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::builder().own_etc().start();
    let h = fleet.host(0);
    root_state_dir(h);
    let bin = h.path("/etc/rdeploy-test/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = |name: &str, body: &str| {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let state = "/etc/rdeploy-test";
    tool(
        "cat",
        &format!(
            "case \"$1\" in\n/proc/modules) echo 'overlay 151552 0 - Live 0x0'; exec /bin/cat {state}/loaded ;;\n/lib/modules/*/modules.builtin) echo kernel/fs/ext4/ext4.ko ;;\n*) exec /bin/cat \"$@\" ;;\nesac"
        ),
    );
    tool(
        "modprobe",
        &format!(
            "echo \"$*\" >> {state}/modprobe.log\ncase \"$1\" in -n) ;; -r) ;; *) echo \"$1 16384 0 - Live 0x0\" >> {state}/loaded ;; esac"
        ),
    );
    std::fs::write(h.path("/etc/rdeploy-test/loaded"), "").unwrap();
    std::fs::create_dir_all(h.path("/etc/modules-load.d")).unwrap();
    std::fs::create_dir_all(h.path("/etc/modprobe.d")).unwrap();
    let old = h.path("/etc/modprobe.d/old.conf");
    std::fs::write(&old, "options dummy numdummies=1\noptions other a=1\n").unwrap();
    let load = h.path("/etc/modules-load.d/dummy.conf");
    let params = h.path("/etc/modprobe.d/dummy.conf");
    let log = || read(h.path("/etc/rdeploy-test/modprobe.log")).unwrap_or_default();
    let pb = "- hosts: all\n  gather_facts: no\n  become: yes\n  environment:\n    PATH: /etc/rdeploy-test/bin:/usr/sbin:/usr/bin:/sbin:/bin\n  tasks:\n    - community.general.modprobe:\n        name: dummy\n        params: numdummies=2\n        persistent: present\n    - modprobe:\n        name: ext4\n";
    let sb = fleet_sandbox_with(&fleet, pb);
    let check = play(&sb, &["--check"], &[]);
    assert_eq!(check.changed(h.name()), 1, "{}", check.text);
    assert_eq!(
        log(),
        "-n dummy numdummies=2\n",
        "--check runs the dry run only"
    );
    assert!(!load.exists() && !params.exists(), "--check writes no file");
    let first = play(&sb, &[], &[]);
    assert_eq!(first.changed(h.name()), 1, "{}", first.text);
    assert!(log().ends_with("dummy numdummies=2\n"), "{}", log());
    assert_eq!(read(load.clone()).as_deref(), Some("dummy\n"));
    assert_eq!(
        read(params.clone()).as_deref(),
        Some("options dummy numdummies=2\n")
    );
    assert_eq!(
        read(old.clone()).as_deref(),
        Some("#options dummy numdummies=1\noptions other a=1\n")
    );
    let second = play(&sb, &[], &[]);
    assert_eq!(second.changed(h.name()), 0, "{}", second.text);
    rollback_run(&sb, &first);
    assert!(
        !load.exists() && !params.exists(),
        "created files are removed"
    );
    assert_eq!(
        read(old).as_deref(),
        Some("options dummy numdummies=1\noptions other a=1\n"),
        "the old file is put back"
    );
}

/// `debconf` pre-seeds answers (a string, a `multiselect` list) with
/// `debconf-set-selections`, compares them as Ansible's module does (the second run is ok,
/// the list in another order too), changes nothing under `--check`, and a task without
/// `question` returns the package's answers; a number for a `select` is a change under `--check`
/// and a failure when written, as in ansible-playbook. The databases are the host's own
/// (`DEBCONF_SYSTEMRC` names a debconf.conf under /srv): the machine's never change.
#[test]
fn debconf_sets_answers_in_the_hosts_database() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let machine = |f: &str| std::fs::read(format!("/var/cache/debconf/{f}")).ok();
    let (config_before, templates_before) = (machine("config.dat"), machine("templates.dat"));
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    root_state_dir(h);
    std::fs::create_dir_all(h.path("/srv/dc")).unwrap();
    std::fs::write(
        h.path("/srv/dc/debconf.conf"),
        "Config: configdb\nTemplates: templatedb\n\nName: configdb\nDriver: File\nFilename: /srv/dc/config.dat\n\nName: templatedb\nDriver: File\nMode: 644\nFilename: /srv/dc/templates.dat\n",
    )
    .unwrap();
    let pb = |order: &str| {
        format!(
            "- hosts: all\n  gather_facts: no\n  become: yes\n  environment:\n    DEBCONF_SYSTEMRC: /srv/dc/debconf.conf\n  tasks:\n    - debconf:\n        name: rdeploy-e2e\n        question: rdeploy-e2e/answer\n        vtype: string\n        value: hello\n    - debconf:\n        name: rdeploy-e2e\n        question: rdeploy-e2e/locales\n        vtype: multiselect\n        value: {order}\n    - debconf:\n        name: rdeploy-e2e\n        question: rdeploy-e2e/number\n        vtype: select\n        value: 1\n      ignore_errors: yes\n    - debconf:\n        name: rdeploy-e2e\n      register: answers\n    - assert:\n        that:\n          - answers.current['rdeploy-e2e/answer'] == 'hello'\n      when: not ansible_check_mode\n"
        )
    };
    let sb = fleet_sandbox_with(&fleet, &pb("['en_US.UTF-8 UTF-8', 'fr_FR.UTF-8 UTF-8']"));
    let db = h.path("/srv/dc/config.dat");
    let check = play(&sb, &["--check"], &[]);
    // A number for a `select` is a change under --check and a failure when written, as
    // ansible-playbook 2.19 reports it (its join fails on a non-text value).
    assert_eq!(check.changed(h.name()), 3, "{}", check.text);
    // (debconf-show itself creates an empty database file.)
    assert!(
        !read(db.clone()).unwrap_or_default().contains("rdeploy-e2e"),
        "--check writes no answer"
    );
    let sb = fleet_sandbox_with(&fleet, &pb("['en_US.UTF-8 UTF-8', 'fr_FR.UTF-8 UTF-8']"));
    let first = play(&sb, &[], &[]);
    assert_eq!(first.changed(h.name()), 2, "{}", first.text);
    assert_eq!(first.recap(h.name())["ignored"], 1, "{}", first.text);
    let text = read(db.clone()).unwrap_or_default();
    assert!(text.contains("Value: hello"), "{text}");
    assert!(
        text.contains("Value: en_US.UTF-8 UTF-8, fr_FR.UTF-8 UTF-8"),
        "{text}"
    );
    let sb = fleet_sandbox_with(&fleet, &pb("['fr_FR.UTF-8 UTF-8', 'en_US.UTF-8 UTF-8']"));
    let second = play(&sb, &[], &[]);
    assert_eq!(second.changed(h.name()), 0, "{}", second.text);
    assert_eq!(machine("config.dat"), config_before);
    assert_eq!(machine("templates.dat"), templates_before);
}
