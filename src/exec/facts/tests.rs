use serde_json::json;

use super::*;

/// `sh` of the gathering script on a Debian 12 machine (env trimmed).
const DEBIAN12: &str = include_str!("debian12.out");

fn all() -> Vec<Group> {
    groups(&[]).expect("all")
}

#[test]
fn fact_names_list_every_fact_the_parser_sets() {
    let f = parse::facts(DEBIAN12, &all());
    let listed: Vec<&str> = fact_names().collect();
    for k in f.keys() {
        let iface = f["interfaces"].as_array().is_some_and(|a| {
            a.iter()
                .any(|i| i.as_str().map(|s| s.replace('-', "_")) == Some(k.clone()))
        });
        assert!(
            listed.contains(&k.as_str()) || iface,
            "{k} is not in GROUPS"
        );
    }
    for k in &listed {
        assert!(!NOT_GATHERED.contains(k), "{k} is both gathered and not");
    }
}

#[test]
fn debian_facts_have_ansibles_names_shapes_and_types() {
    let f = parse::facts(DEBIAN12, &all());
    assert_eq!(f["hostname"], "vm");
    assert_eq!(f["fqdn"], "localhost");
    assert_eq!(f["domain"], "");
    assert_eq!(f["distribution"], "Debian");
    assert_eq!(f["os_family"], "Debian");
    assert_eq!(f["distribution_version"], "12.11");
    assert_eq!(f["distribution_major_version"], "12");
    assert_eq!(f["distribution_minor_version"], "11");
    assert_eq!(f["distribution_release"], "bookworm");
    assert_eq!(f["userspace_bits"], "64");
    assert_eq!(f["user_uid"], 0);
    assert_eq!(f["user_shell"], "/bin/bash");
    assert_eq!(f["pkg_mgr"], "apt");
    assert_eq!(f["service_mgr"], "process_api");
    assert_eq!(f["selinux"], json!({"status": "disabled"}));
    assert_eq!(f["dns"], json!({"nameservers": ["10.255.255.53"]}));
    assert_eq!(
        f["lsb"],
        json!({"codename": "bookworm", "description": "Debian GNU/Linux 12 (bookworm)",
               "id": "Debian", "major_release": "12", "release": "12"})
    );
    assert_eq!(f["env"]["MULTI"], "first\nsecond");
    assert_eq!(f["python"]["version"]["major"], 3);
    assert_eq!(f["python_version"], "3.11.2");
    let d = &f["date_time"];
    assert_eq!(d["epoch"], "1796460897");
    assert_eq!(d["iso8601"], "2026-12-05T08:54:57Z");
    assert_eq!(d["iso8601_micro"], "2026-12-05T08:54:57.014843Z");
    assert_eq!(d["iso8601_basic_short"], "20261205T085457");
    assert_eq!(d["weekday"], "Saturday");
    assert_eq!(d["tz_dst"], "UTC");
    assert_eq!(
        f["default_ipv4"],
        json!({"address": "192.0.2.2", "alias": "eth0", "broadcast": "192.0.2.255",
               "gateway": "192.0.2.1", "interface": "eth0", "macaddress": "02:fc:00:00:00:01",
               "mtu": 1400, "netmask": "255.255.255.0", "network": "192.0.2.0",
               "prefix": "24", "type": "ether"})
    );
    assert_eq!(
        f["default_ipv6"],
        json!({"address": "fd00::2", "gateway": "fd00::1", "interface": "eth0",
               "macaddress": "02:fc:00:00:00:01", "mtu": 1400, "prefix": "64",
               "scope": "global", "type": "ether"})
    );
    assert_eq!(f["all_ipv4_addresses"], json!(["192.0.2.2"]));
    assert_eq!(
        f["all_ipv6_addresses"],
        json!(["fd00::2", "fe80::fc:ff:fe00:1"])
    );
    assert_eq!(f["eth0"]["ipv4"]["netmask"], "255.255.255.0");
    assert_eq!(f["eth0"]["pciid"], "virtio2");
    assert_eq!(f["eth0"]["speed"], -1);
    assert_eq!(f["eth0"]["promisc"], false);
    assert_eq!(f["lo"]["type"], "loopback");
    assert!(f["lo"].get("macaddress").is_none());
    assert_eq!(f["ifb0"]["active"], false);
    assert_eq!(f["memtotal_mb"], 24105);
    assert_eq!(f["processor_count"], 1);
    assert_eq!(f["processor_cores"], 2);
    assert_eq!(f["processor_vcpus"], 2);
    assert_eq!(
        f["processor"],
        json!([
            "0",
            "AuthenticAMD",
            "AMD EPYC",
            "1",
            "AuthenticAMD",
            "AMD EPYC"
        ])
    );
    let root = &f["mounts"][0];
    assert_eq!(root["mount"], "/");
    assert_eq!(root["device"], "/dev/vda");
    assert_eq!(root["uuid"], "N/A");
    assert_eq!(root["block_size"], 4096);
    assert!(root["size_total"].as_i64().is_some_and(|n| n > 0));
    assert_eq!(f["virtualization_type"], "docker");
    assert_eq!(f["virtualization_role"], "guest");
    assert_eq!(
        f["virtualization_tech_guest"],
        json!(["container", "docker"])
    );
}

#[test]
fn gather_subset_reads_like_ansibles() {
    use Group::*;
    let g = |s: &[&str]| groups(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
    assert_eq!(g(&[]).unwrap(), vec![Min, Network, Hardware, Virtual]);
    assert_eq!(g(&["min"]).unwrap(), vec![Min]);
    assert_eq!(g(&["!all"]).unwrap(), vec![Min]);
    assert_eq!(g(&["network"]).unwrap(), vec![Min, Network]);
    assert_eq!(g(&["!all", "network"]).unwrap(), vec![Min, Network]);
    // ansible-core 2.19 reads a lone exclusion as `min` minus it: `!hardware` is `min`.
    assert_eq!(g(&["!hardware"]).unwrap(), vec![Min]);
    assert_eq!(
        g(&["all", "!hardware"]).unwrap(),
        vec![Min, Network, Virtual]
    );
    assert_eq!(g(&["!all", "!min"]).unwrap(), Vec::<Group>::new());
    assert_eq!(g(&["!all", "!min", "hardware"]).unwrap(), vec![Hardware]);
    assert!(
        g(&["facter"])
            .unwrap_err()
            .contains("not supported by rdeploy")
    );
    assert!(
        g(&["netwrk"])
            .unwrap_err()
            .ends_with("did you mean 'network'?")
    );
}

#[test]
fn only_the_asked_groups_are_parsed() {
    let f = parse::facts(DEBIAN12, &[Group::Min]);
    assert!(f.contains_key("hostname"));
    assert!(!f.contains_key("default_ipv4"));
    assert!(!f.contains_key("memtotal_mb"));
}

#[test]
fn filter_keeps_matching_facts_with_or_without_the_prefix() {
    let f = parse::facts(DEBIAN12, &all());
    let kept = filter(f.clone(), &["ansible_default_ipv*".into()]).unwrap();
    assert_eq!(
        kept.keys().collect::<Vec<_>>(),
        ["default_ipv4", "default_ipv6"]
    );
    let kept = filter(f.clone(), &["hostname".into(), "*_mb".into()]).unwrap();
    let mut names: Vec<&String> = kept.keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "hostname",
            "memfree_mb",
            "memory_mb",
            "memtotal_mb",
            "swapfree_mb",
            "swaptotal_mb"
        ]
    );
    assert_eq!(filter(f.clone(), &[]).unwrap().len(), f.len());
}

#[test]
fn a_fact_rdeploy_does_not_gather_is_named_so() {
    assert_eq!(
        not_gathered_path("ansible_bios_date").as_deref(),
        Some("fact 'bios_date' is not gathered by rdeploy")
    );
    assert_eq!(
        not_gathered_path("ansible_facts['product_uuid']").as_deref(),
        Some("fact 'product_uuid' is not gathered by rdeploy")
    );
    assert_eq!(not_gathered_path("ansible_hostnme"), None);
    assert_eq!(not_gathered_path("bios_date"), None);
}

#[test]
fn interface_names_are_told_from_fact_typos() {
    for yes in [
        "eth0", "ens3", "enp0s3", "lo", "docker0", "br_lan", "wlan0", "bond0",
    ] {
        assert!(may_be_interface(yes), "{yes}");
    }
    for no in [
        "hostnme",
        "hostname",
        "default_ipv4",
        "bios_date",
        "os_famliy",
        "distro",
    ] {
        assert!(!may_be_interface(no), "{no}");
    }
}

/// The distribution facts of a host whose files are `sections` (`@@NAME` blocks).
fn distro(sections: &str) -> Map<String, Json> {
    let f = parse::facts(sections, &[Group::Min]);
    [
        "distribution",
        "distribution_version",
        "distribution_major_version",
        "distribution_release",
        "os_family",
        "pkg_mgr",
    ]
    .iter()
    .map(|k| (k.to_string(), f[*k].clone()))
    .collect()
}

#[test]
fn distributions_are_named_as_ansible_names_them() {
    let rocky = distro(
        "@@os_release\nNAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n@@pkg\n/usr/bin/yum\n/usr/bin/dnf\ndnf_target=/usr/bin/dnf-3\n",
    );
    assert_eq!(
        Json::Object(rocky),
        json!({"distribution": "Rocky", "distribution_version": "9.3",
               "distribution_major_version": "9", "distribution_release": "Blue Onyx",
               "os_family": "RedHat", "pkg_mgr": "dnf"})
    );
    let ubuntu = distro(
        "@@os_release\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.3 LTS (Jammy Jellyfish)\"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n@@pkg\n/usr/bin/apt-get\n",
    );
    assert_eq!(
        Json::Object(ubuntu),
        json!({"distribution": "Ubuntu", "distribution_version": "22.04",
               "distribution_major_version": "22", "distribution_release": "jammy",
               "os_family": "Debian", "pkg_mgr": "apt"})
    );
    let centos7 = distro(
        "@@os_release\nNAME=\"CentOS Linux\"\nVERSION=\"7 (Core)\"\nID=\"centos\"\nVERSION_ID=\"7\"\n@@centos_release\nCentOS Linux release 7.9.2009 (Core)\n@@pkg\n/usr/bin/yum\n",
    );
    assert_eq!(centos7["distribution"], "CentOS");
    assert_eq!(centos7["os_family"], "RedHat");
    assert_eq!(centos7["distribution_version"], "7.9");
    assert_eq!(centos7["distribution_release"], "Core");
    // ansible-core 2.19 knows no yum: a RedHat host without dnf has no package manager.
    assert_eq!(centos7["pkg_mgr"], "unknown");
    let rhel = distro("@@os_release\nID=\"rhel\"\nVERSION_ID=\"8.9\"\n");
    assert_eq!(rhel["distribution"], "RedHat");
    assert_eq!(rhel["os_family"], "RedHat");
    let alpine = distro(
        "@@os_release\nNAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n@@pkg\n/sbin/apk\n",
    );
    assert_eq!(alpine["distribution"], "Alpine");
    assert_eq!(alpine["distribution_major_version"], "3");
    assert_eq!(alpine["os_family"], "Alpine");
    assert_eq!(alpine["pkg_mgr"], "apk");
    let nothing = distro("");
    assert_eq!(nothing["distribution"], "OtherLinux");
    assert_eq!(nothing["distribution_version"], "NA");
}

#[test]
fn a_host_without_ip_has_no_network_facts_as_in_ansible() {
    let without_ip = DEBIAN12.replace("@@ip\n/usr/sbin/ip\n", "@@ip\n");
    let f = parse::facts(&without_ip, &[Group::Min, Group::Network]);
    assert!(f.contains_key("hostname"));
    assert!(!f.contains_key("interfaces"));
    assert!(!f.contains_key("default_ipv4"));
}

#[test]
fn missing_sources_give_ansibles_defaults_not_a_panic() {
    let f = parse::facts("", &all());
    assert_eq!(f["selinux"], json!({"status": "disabled"}));
    assert_eq!(f["dns"], json!({}));
    assert_eq!(f["lsb"], json!({}));
    assert_eq!(f["service_mgr"], "service");
    assert!(!f.contains_key("python"));
    assert!(!f.contains_key("date_time"));
    assert!(!f.contains_key("memtotal_mb"));
    assert_eq!(f["virtualization_type"], "NA");
    assert_eq!(f["mounts"], json!([]));
}

#[test]
fn hostile_output_cannot_forge_sections_through_the_environment() {
    let forged = DEBIAN12.replace("MULTI=first\n+second", "MULTI=first\n+@@selinux\n+1");
    let f = parse::facts(&forged, &all());
    assert_eq!(f["selinux"], json!({"status": "disabled"}));
    assert_eq!(f["env"]["MULTI"], "first\n@@selinux\n1");
}

#[test]
fn mount_points_with_spaces_and_bind_mounts_read_like_ansible() {
    let text = "@@bind\n/srv/my\\x20dir /dev/vda[/data] ext4 rw\n/srv/b /dev/vda[/b] ext4 rw\n\
                @@lsblk\n/dev/vda abcd-1234\n\
                @@mounts\nM /dev/vda /srv/b ext4 rw,relatime 0 0\nS 4096 4096 100 40 50 20\n\
                M /dev/vda /mnt/my\\040dir ext4 rw 0 2\n";
    let f = parse::facts(text, &[Group::Hardware]);
    let m = f["mounts"].as_array().unwrap();
    assert_eq!(m[0]["options"], "rw,relatime,bind");
    assert_eq!(m[0]["uuid"], "abcd-1234");
    assert_eq!(m[0]["size_total"], 409_600);
    assert_eq!(m[0]["block_used"], 60);
    assert_eq!(m[0]["inode_used"], 30);
    assert_eq!(m[1]["mount"], "/mnt/my dir");
    assert_eq!(m[1]["passno"], 2);
    assert!(m[1].get("size_total").is_none());
}
