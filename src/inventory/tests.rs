//! Tests of the inventory layer as a whole: loading real files from a temporary directory,
//! patterns, variable precedence, output shapes and error positions. Unit tests of single
//! helpers (ranges, literals, shlex, addresses) live next to them.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

use super::*;

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn load_text(name: &str, text: &str) -> (TempDir, PathBuf, Result<Inventory, Diagnostics>) {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), name, text);
    let inv = Inventory::load(std::slice::from_ref(&p), None);
    (dir, p, inv)
}

fn load_ok(name: &str, text: &str) -> Inventory {
    let (_d, _p, inv) = load_text(name, text);
    inv.unwrap_or_else(|e| panic!("{e}"))
}

fn names<'a>(hosts: &[&'a Host]) -> Vec<&'a str> {
    hosts.iter().map(|h| h.name.as_str()).collect()
}

fn sel<'a>(inv: &'a Inventory, pattern: &str) -> Vec<&'a str> {
    names(
        &inv.select(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}")),
    )
}

fn example(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("inventory")
        .join(rel)
}

// ---------------------------------------------------------------------------------------------
// Example files

#[test]
fn example_local_has_only_localhost_in_group_local() {
    let inv = Inventory::load(&[example("local.yaml")], None).unwrap();
    let h = &inv.hosts["localhost"];
    assert!(!h.implicit);
    assert_eq!(h.groups, ["local"]);
    assert_eq!(inv.vars_of(h)["ansible_connection"], "local");
    assert_eq!(sel(&inv, "all"), ["localhost"]);
    assert_eq!(inv.hosts.len(), 1);
}

#[test]
fn example_prod_directory_with_vars_dirs() {
    let inv = Inventory::load(&[example("prod")], None).unwrap();
    assert_eq!(sel(&inv, "web").len(), 20);
    assert_eq!(sel(&inv, "web")[0], "web01.prod.example.com");
    assert_eq!(sel(&inv, "web")[19], "web20.prod.example.com");
    let web01 = &inv.hosts["web01.prod.example.com"];
    assert_eq!(web01.groups, ["prod", "web"]);
    let v = inv.vars_of(web01);
    assert_eq!(v["app_port"], 8080);
    assert_eq!(v["app_version"], "1.4.2");
    assert_eq!(v["env"], "prod");
    assert_eq!(v["canary"], true);
    assert!(
        !inv.vars_of(&inv.hosts["web02.prod.example.com"])
            .contains_key("canary")
    );
    assert_eq!(
        sel(&inv, "db"),
        ["db01.prod.example.com", "db02.prod.example.com"]
    );
    assert_eq!(sel(&inv, "lb").len(), 2);
    assert_eq!(inv.groups["web"].vars["app_port"], 8080);
}

#[test]
fn example_dev_and_staging_have_web_db_lb_on_loopback() {
    for src in ["dev.ini", "staging.yaml"] {
        let inv = Inventory::load(&[example(src)], None).unwrap();
        for g in ["web", "db", "lb"] {
            let hosts = inv.select(g).unwrap();
            assert!(!hosts.is_empty(), "{src}: {g}");
            for h in hosts {
                let addr = inv.vars_of(h)["ansible_host"].as_str().unwrap().to_string();
                assert!(addr.starts_with("127.0.0."), "{src}: {addr}");
            }
        }
        let web = inv.select("web").unwrap();
        let port = &inv.vars_of(web[0])["app_port"];
        // INI [web:vars] values are strings; YAML keeps the number.
        assert!(port == 8080 || port == "8080", "{src}: {port}");
    }
}

// ---------------------------------------------------------------------------------------------
// Implicit localhost

#[test]
fn no_sources_gives_only_the_implicit_localhost() {
    let inv = Inventory::load(&[], None).unwrap();
    assert_eq!(inv.hosts.len(), 1);
    let h = &inv.hosts["localhost"];
    assert!(h.implicit);
    assert!(h.groups.is_empty());
    assert_eq!(
        inv.vars_of(h),
        json!({"ansible_connection": "local", "ansible_host": "127.0.0.1"})
            .as_object()
            .unwrap()
            .clone()
    );
    assert!(sel(&inv, "all").is_empty());
    assert!(sel(&inv, "*").is_empty());
    assert_eq!(sel(&inv, "localhost"), ["localhost"]);
    assert_eq!(sel(&inv, "127.0.0.1"), ["localhost"]);
    assert!(inv.graph().starts_with("@all:\n  |--@ungrouped:\n"));
    assert_eq!(inv.list_json()["_meta"]["hostvars"], json!({}));
}

#[test]
fn implicit_localhost_is_matched_only_by_name_and_gets_all_vars() {
    let inv = load_ok("h.ini", "[web]\nw1\n[all:vars]\nx=1\n");
    assert_eq!(sel(&inv, "all"), ["w1"]);
    assert_eq!(sel(&inv, "*"), ["w1"]);
    assert!(inv.select("local*").is_err());
    assert!(inv.select("~local").is_err());
    assert_eq!(sel(&inv, "web:localhost"), ["w1", "localhost"]);
    assert_eq!(sel(&inv, "all:!localhost"), ["w1"]);
    assert_eq!(inv.vars_of(&inv.hosts["localhost"])["x"], "1");
    assert!(!inv.groups["all"].hosts.contains(&"localhost".to_string()));
}

#[test]
fn an_inventory_localhost_replaces_the_implicit_one() {
    let inv = load_ok("h.ini", "localhost ansible_connection=local\nw1\n");
    assert!(!inv.hosts["localhost"].implicit);
    assert_eq!(sel(&inv, "all"), ["localhost", "w1"]);
    assert_eq!(sel(&inv, "127.0.0.1"), ["localhost"]);
}

// ---------------------------------------------------------------------------------------------
// Patterns

const PATTERN_INV: &str = "\
[web]
w1
w2
w3
[db]
d1
d2
[staging]
w3
d2
[prod:children]
web
db
[empty]
[ipv6]
fe80::1
";

#[test]
fn pattern_splitting_follows_ansible() {
    let cases: &[(&str, &[&str])] = &[
        ("a:b", &["a", "b"]),
        ("a:&b:!c", &["a", "&b", "!c"]),
        ("a, b ,c", &["a", "b", "c"]),
        ("a,b:c", &["a", "b:c"]),
        ("fe80::1", &["fe80::1"]),
        ("host:22", &["host:22"]),
        ("web[1:3]:db", &["web[1:3]", "db"]),
        ("web[0]", &["web[0]"]),
        ("", &[]),
    ];
    for (p, want) in cases {
        assert_eq!(&split_host_pattern(p), want, "{p}");
    }
}

#[test]
fn pattern_operators() {
    let inv = load_ok("h.ini", PATTERN_INV);
    assert_eq!(sel(&inv, "web"), ["w1", "w2", "w3"]);
    assert_eq!(sel(&inv, "web:db"), ["w1", "w2", "w3", "d1", "d2"]);
    assert_eq!(sel(&inv, "db,web"), ["d1", "d2", "w1", "w2", "w3"]);
    assert_eq!(sel(&inv, "prod:&staging"), ["w3", "d2"]);
    assert_eq!(sel(&inv, "web:!staging"), ["w1", "w2"]);
    assert_eq!(sel(&inv, "w2:web"), ["w2", "w1", "w3"]);
    assert_eq!(sel(&inv, "all"), ["w1", "w2", "w3", "d1", "d2", "fe80::1"]);
    assert_eq!(sel(&inv, "fe80::1"), ["fe80::1"]);
    assert!(sel(&inv, "empty").is_empty());
}

#[test]
fn pattern_evaluation_order_is_unions_then_and_then_not() {
    let inv = load_ok("h.ini", PATTERN_INV);
    // Written in any order, the result is the same.
    assert_eq!(sel(&inv, "!staging:web"), ["w1", "w2"]);
    assert_eq!(sel(&inv, "&staging:prod"), ["w3", "d2"]);
    assert_eq!(sel(&inv, "web:!w1:&staging:db"), ["w3", "d2"]);
    assert_eq!(sel(&inv, "!staging:&prod:web:db"), ["w1", "w2", "d1"]);
    // Only & and ! terms: they apply to all.
    assert_eq!(sel(&inv, "!prod"), ["fe80::1"]);
    assert_eq!(sel(&inv, "&staging"), ["w3", "d2"]);
}

#[test]
fn pattern_subscripts_slice_a_groups_hosts() {
    let inv = load_ok("h.ini", PATTERN_INV);
    assert_eq!(sel(&inv, "web[0]"), ["w1"]);
    assert_eq!(sel(&inv, "web[-1]"), ["w3"]);
    assert_eq!(sel(&inv, "web[1:]"), ["w2", "w3"]);
    assert_eq!(sel(&inv, "web[0:1]"), ["w1", "w2"]);
    assert_eq!(sel(&inv, "web[1:9]"), ["w2", "w3"]);
    assert_eq!(sel(&inv, "web[0]:db[-1]"), ["w1", "d2"]);
    let e = inv.select("web[5]").unwrap_err();
    assert!(e.contains("subscripted pattern 'web[5]'"), "{e}");
    // Not a group or host name before the brackets: a glob character class.
    assert_eq!(sel(&inv, "d[12]"), ["d1", "d2"]);
    assert_eq!(sel(&inv, "w[13]"), ["w1", "w3"]);
}

#[test]
fn pattern_regex_and_globs() {
    let inv = load_ok("h.ini", PATTERN_INV);
    assert_eq!(sel(&inv, "~w[12]"), ["w1", "w2"]);
    // Matched from the start, like Python's re.match.
    assert!(inv.select("~1").is_err());
    assert_eq!(sel(&inv, "~.*1"), ["w1", "d1", "fe80::1"]);
    assert_eq!(sel(&inv, "w*"), ["w1", "w2", "w3"]);
    assert_eq!(sel(&inv, "*1"), ["w1", "d1", "fe80::1"]);
    assert_eq!(sel(&inv, "?2"), ["w2", "d2"]);
    // A glob matching a group name brings the group's hosts.
    assert_eq!(sel(&inv, "stag*"), ["w3", "d2"]);
    let e = inv.select("~(").unwrap_err();
    assert!(e.contains("invalid regular expression"), "{e}");
    // A stray `)` must not break out of the anchoring group.
    assert!(inv.select("~zz)|(.*").is_err());
}

#[test]
fn pattern_terms_matching_nothing_are_errors() {
    let inv = load_ok("h.ini", PATTERN_INV);
    let e = inv.select("wbe").unwrap_err();
    assert_eq!(e, "no host or group matches 'wbe' (did you mean 'web'?)");
    assert!(inv.select("web:!nosuch").unwrap_err().contains("'nosuch'"));
    assert!(inv.select("web:&nosuch").unwrap_err().contains("'nosuch'"));
    assert!(inv.select("x*").unwrap_err().contains("'x*'"));
    assert!(inv.select("  ").unwrap_err().contains("empty"));
}

// ---------------------------------------------------------------------------------------------
// Variable precedence

#[test]
fn group_vars_merge_all_parent_child_host() {
    let inv = load_ok(
        "h.yaml",
        "
all:
  vars: {x: all, a: all}
  children:
    parent:
      vars: {x: parent, p: parent}
      children:
        child:
          vars: {x: child}
          hosts:
            h1: {a: host}
",
    );
    let h = &inv.hosts["h1"];
    assert_eq!(h.groups, ["child", "parent"]);
    let v = inv.vars_of(h);
    assert_eq!(v["x"], "child");
    assert_eq!(v["p"], "parent");
    assert_eq!(v["a"], "host");
    assert_eq!(h.group_vars["a"], "all");
}

#[test]
fn sibling_groups_merge_by_name_unless_priority_says_otherwise() {
    let text = "
[bbb]
h1
[aaa]
h1
[aaa:vars]
x=aaa
[bbb:vars]
x=bbb
";
    let inv = load_ok("h.ini", text);
    assert_eq!(inv.vars_of(&inv.hosts["h1"])["x"], "bbb");
    let inv = load_ok(
        "h.ini",
        &format!("{text}[aaa:vars]\nansible_group_priority=10\n"),
    );
    assert_eq!(inv.groups["aaa"].priority, 10);
    assert!(
        !inv.groups["aaa"]
            .vars
            .contains_key("ansible_group_priority")
    );
    assert_eq!(inv.vars_of(&inv.hosts["h1"])["x"], "aaa");
}

#[test]
fn a_deeper_group_wins_over_a_higher_priority_shallower_one() {
    let inv = load_ok(
        "h.yaml",
        "
top:
  vars: {x: top, ansible_group_priority: 99}
  hosts: {h1: }
outer:
  children:
    inner:
      vars: {x: inner}
      hosts: {h1: }
",
    );
    assert_eq!(inv.vars_of(&inv.hosts["h1"])["x"], "inner");
}

#[test]
fn playbook_dir_vars_win_over_inventory_vars_and_dirs_merge_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inv_file = write(
        d,
        "inv/hosts.ini",
        "[web]\nw1 inline=1\nw2\n[web:vars]\nfrom_inline=web\n",
    );
    write(
        d,
        "inv/group_vars/all.yml",
        "scope: inv-all\nfrom_inline: all-file\n",
    );
    write(
        d,
        "inv/group_vars/web/01-base.yml",
        "a: 1\nb: 1\nscope: inv-web\n",
    );
    write(d, "inv/group_vars/web/02-more.yaml", "b: 2\n");
    write(d, "inv/group_vars/web/README~", "ignored: true\n");
    write(d, "inv/host_vars/w1", "inline: 2\nh: inv\n");
    write(d, "play/group_vars/web.yml", "scope: play-web\n");
    write(d, "play/group_vars/web.yaml", "never: read\n");
    write(d, "play/host_vars/w1.json", "{\"h\": \"play\"}");
    let inv = Inventory::load(&[inv_file], Some(&d.join("play"))).unwrap();
    let v = inv.vars_of(&inv.hosts["w1"]);
    assert_eq!(v["a"], 1);
    assert_eq!(v["b"], 2);
    assert!(!v.contains_key("ignored"));
    assert_eq!(v["scope"], "play-web");
    assert!(
        !v.contains_key("never"),
        "only the first of NAME, NAME.yml, NAME.yaml is read"
    );
    assert_eq!(v["inline"], 2);
    assert_eq!(v["h"], "play");
    // Ansible's tiers: group_vars/all files beat inline [web:vars].
    assert_eq!(v["from_inline"], "all-file");
    assert_eq!(inv.vars_of(&inv.hosts["w2"])["scope"], "play-web");
    assert_eq!(inv.groups["web"].vars["scope"], "play-web");
}

#[test]
fn directory_source_reads_files_in_name_order_and_skips_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "02-more.yaml", "web:\n  hosts:\n    w2:\n");
    write(d, "01-base.ini", "[web]\nw1\n[web:vars]\nx=1\n");
    write(d, "notes.md", "this is not inventory [\n");
    write(d, "old.ini~", "[broken\n");
    write(d, ".hidden", "[broken\n");
    write(d, "sub/03.yml", "db:\n  hosts:\n    d1:\n");
    write(d, "group_vars/web.yml", "y: 2\n");
    let inv = Inventory::load(&[d.to_path_buf()], None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sel(&inv, "all"), ["w1", "w2", "d1"]);
    let v = inv.vars_of(&inv.hosts["w2"]);
    // [g:vars] values are strings (the documented INI rule); group_vars files keep YAML types.
    assert_eq!((v["x"].clone(), v["y"].clone()), (json!("1"), json!(2)));
}

#[test]
fn host_list_source() {
    let inv = Inventory::load(&[PathBuf::from("web1,web2:2222,")], None).unwrap();
    assert_eq!(sel(&inv, "all"), ["web1", "web2"]);
    assert_eq!(inv.vars_of(&inv.hosts["web2"])["ansible_port"], 2222);
    assert_eq!(inv.hosts["web1"].groups, ["ungrouped"]);
}

// ---------------------------------------------------------------------------------------------
// Formats

#[test]
fn ini_typing_rules() {
    let inv = load_ok(
        "h.ini",
        r#"
# comment
; another
w1:2222 i=5 f=1.5 t=True y=yes s="hello world" l='[1, "a"]' d="{'k': 'v'}" z=0123 n=None e= q='"5"'
[web]
w1
[web:vars]
port=8080
flag=False
word = some text
quoted="5"
"#,
    );
    let h = &inv.hosts["w1"];
    let want = json!({
        "ansible_port": 2222, "i": 5, "f": 1.5, "t": true, "y": "yes", "s": "hello world",
        "l": [1, "a"], "d": {"k": "v"}, "z": "0123", "n": null, "e": "", "q": "5"
    });
    assert_eq!(Value::Object(h.host_vars.clone()), want);
    assert_eq!(h.groups, ["web"], "no longer ungrouped once in web");
    assert_eq!(
        Value::Object(inv.groups["web"].vars.clone()),
        json!({"port": "8080", "flag": "False", "word": "some text", "quoted": "5"}),
        "[g:vars] values are strings, as Ansible's inventory guide says"
    );
}

#[test]
fn ini_children_may_be_declared_later_and_ranges_expand() {
    let inv = load_ok(
        "h",
        "[prod:children]\nweb\n[web]\nweb[01:03].example.com\nnode[a:b]\n",
    );
    assert_eq!(
        sel(&inv, "prod"),
        [
            "web01.example.com",
            "web02.example.com",
            "web03.example.com",
            "nodea",
            "nodeb"
        ]
    );
    assert_eq!(inv.groups["web"].parents, ["prod"]);
    assert_eq!(inv.groups["prod"].parents, ["all"]);
}

#[test]
fn yaml_format() {
    let inv = load_ok(
        "h.yml",
        "
all:
  hosts:
    solo:
  children:
    web:
      hosts:
        w[1:2]:2222:
          role: web
    db:
      hosts: d1
      vars:
        engine: pg
extra:
  hosts:
    w1:
",
    );
    assert_eq!(sel(&inv, "all"), ["solo", "w1", "w2", "d1"]);
    assert_eq!(inv.hosts["solo"].groups, ["ungrouped"]);
    assert_eq!(inv.hosts["w1"].groups, ["extra", "web"]);
    let v = inv.vars_of(&inv.hosts["w2"]);
    assert_eq!(
        (v["ansible_port"].clone(), v["role"].clone()),
        (json!(2222), json!("web"))
    );
    assert_eq!(inv.vars_of(&inv.hosts["d1"])["engine"], "pg");
    let loc = inv.hosts["w1"].loc.clone().unwrap();
    assert_eq!((loc.line, loc.col), (8, 9));
    let gloc = inv.groups["web"].loc.clone().unwrap();
    assert_eq!((gloc.line, gloc.col), (6, 5));
    assert_eq!(
        inv.groups["all"].children,
        ["ungrouped", "web", "db", "extra"]
    );
}

#[test]
fn json_file_and_extensionless_yaml_are_yaml() {
    let inv = load_ok("h.json", r#"{"web": {"hosts": {"w1": {"x": [1, 2]}}}}"#);
    assert_eq!(inv.vars_of(&inv.hosts["w1"])["x"], json!([1, 2]));
    let inv = load_ok("hosts", "web:\n  hosts:\n    w1:\n");
    assert_eq!(sel(&inv, "web"), ["w1"]);
    let inv = load_ok("hosts", "w1 a=1\nw2\n");
    assert_eq!(sel(&inv, "all"), ["w1", "w2"]);
}

// ---------------------------------------------------------------------------------------------
// Dynamic inventory

#[cfg(unix)]
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = write(dir, name, &format!("#!/bin/sh\n{body}"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[cfg(unix)]
#[test]
fn dynamic_inventory_with_meta() {
    let dir = tempfile::tempdir().unwrap();
    let p = script(
        dir.path(),
        "inv.sh",
        r#"[ "$1" = "--list" ] || exit 3
cat <<'EOF'
{
  "web": {"hosts": ["w1", "w2"], "vars": {"port": 80}, "children": ["canary"]},
  "canary": ["c1"],
  "db": ["d1"],
  "solo": {"ansible_host": "10.0.0.9"},
  "_meta": {"hostvars": {"w1": {"ansible_host": "10.0.0.1"}}}
}
EOF
"#,
    );
    write(dir.path(), "group_vars/db.yml", "engine: pg\n");
    let inv = Inventory::load(&[p], None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sel(&inv, "web"), ["w1", "w2", "c1"]);
    assert_eq!(inv.hosts["c1"].groups, ["canary", "web"]);
    assert_eq!(inv.vars_of(&inv.hosts["w1"])["ansible_host"], "10.0.0.1");
    assert_eq!(inv.vars_of(&inv.hosts["c1"])["port"], 80);
    assert_eq!(inv.vars_of(&inv.hosts["d1"])["engine"], "pg");
    assert_eq!(inv.vars_of(&inv.hosts["solo"])["ansible_host"], "10.0.0.9");
}

#[cfg(unix)]
#[test]
fn dynamic_inventory_without_meta_asks_per_host() {
    let dir = tempfile::tempdir().unwrap();
    let p = script(
        dir.path(),
        "inv",
        r#"case "$1" in
--list) echo '{"web": ["w1", "w2"]}' ;;
--host) echo "{\"who\": \"$2\"}" ;;
esac
"#,
    );
    let inv = Inventory::load(&[p], None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inv.vars_of(&inv.hosts["w2"])["who"], "w2");
}

#[cfg(unix)]
#[test]
fn dynamic_inventory_errors_name_the_script_and_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let failing = script(dir.path(), "fail.sh", "echo 'no credentials' >&2\nexit 2\n");
    let e = Inventory::load(std::slice::from_ref(&failing), None).unwrap_err();
    let s = e.to_string();
    assert!(
        s.starts_with(&format!(
            "{}:1:1: error: inventory script",
            failing.display()
        )),
        "{s}"
    );
    assert!(s.contains("no credentials"), "{s}");

    let bad = script(dir.path(), "bad.sh", "echo 'not json'; echo oops >&2\n");
    let s = Inventory::load(&[bad], None).unwrap_err().to_string();
    assert!(
        s.contains("printed invalid JSON") && s.contains("oops"),
        "{s}"
    );

    let slow = script(dir.path(), "slow.sh", "sleep 5\necho '{}'\n");
    let mut b = build::Builder::new();
    let start = std::time::Instant::now();
    script::read_with_timeout(&mut b, &slow, std::time::Duration::from_millis(300));
    assert!(start.elapsed() < std::time::Duration::from_secs(4));
    assert!(
        b.diags.to_string().contains("did not finish"),
        "{}",
        b.diags
    );
}

// ---------------------------------------------------------------------------------------------
// Output shapes

const SHAPE_INV: &str = "\
solo
[web]
w2 ansible_host=10.0.0.2
w1
[db]
d1
[prod:children]
web
db
[prod:vars]
env=prod
";

#[test]
fn list_json_has_ansible_inventory_shape() {
    let inv = load_ok("h.ini", SHAPE_INV);
    let want = json!({
        "_meta": {"hostvars": {
            "d1": {"env": "prod"},
            "w1": {"env": "prod"},
            "w2": {"ansible_host": "10.0.0.2", "env": "prod"}
        }},
        "all": {"children": ["prod", "ungrouped"]},
        "db": {"hosts": ["d1"]},
        "prod": {"children": ["db", "web"], "vars": {"env": "prod"}},
        "ungrouped": {"hosts": ["solo"]},
        "web": {"hosts": ["w1", "w2"]}
    });
    let got = inv.list_json();
    assert_eq!(got, want);
    let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["_meta", "all", "db", "prod", "ungrouped", "web"]);
}

#[test]
fn graph_has_ansible_inventory_shape() {
    let inv = load_ok("h.ini", SHAPE_INV);
    assert_eq!(
        inv.graph(),
        "\
@all:
  |--@prod:
  |  |--@db:
  |  |  |--d1
  |  |--@web:
  |  |  |--w1
  |  |  |--w2
  |--@ungrouped:
  |  |--solo
"
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed inventories: exact positions

#[test]
fn malformed_inventories_report_line_and_column() {
    // (file name, content, "LINE:COL: error: message start")
    let cases: &[(&str, &str, &str)] = &[
        (
            "a.yml",
            "web:\n  hots:\n    w1:\n",
            "2:3: error: unknown key 'hots' in group 'web'",
        ),
        (
            "b.yml",
            "web:\n  hosts: [a, b]\n",
            "2:10: error: 'hosts' of group 'web' must be a mapping",
        ),
        (
            "c.yml",
            "web:\n  hosts:\n    w[5:1]:\n",
            "3:6: error: host range '[5:1]' is backwards",
        ),
        (
            "d.yml",
            "web: [a]\n",
            "1:6: error: group 'web' must be a mapping",
        ),
        (
            "e.yml",
            "web:\n  hosts:\n    a: 5\n",
            "3:8: error: variables of host 'a' must be a mapping",
        ),
        (
            "f.yml",
            "web:\n  vars: [1]\n",
            "2:9: error: 'vars' of group 'web' must be a mapping",
        ),
        (
            "g.yml",
            "plugin: aws_ec2\n",
            "1:1: error: inventory plugin configuration files",
        ),
        (
            "h.yml",
            "a:\n  children:\n    b:\n      children:\n        a:\n",
            "5:9: error: making 'a' a child of 'b' creates a cycle",
        ),
        (
            "i.yml",
            "web:\n  hosts:\n    w1:\n  hosts:\n",
            "4:3: error: ",
        ),
        (
            "j.ini",
            "[web:childs]\nw1\n",
            "1:6: error: section [web:childs] has unknown type",
        ),
        (
            "k.ini",
            "[web group]\n",
            "1:1: error: invalid section header",
        ),
        (
            "l.ini",
            "[web]\nw1 foo\n",
            "2:4: error: expected a 'key=value' host variable, found 'foo'",
        ),
        (
            "m.ini",
            "[web]\n  web[01:5]\n",
            "2:6: error: host range '[01:5]'",
        ),
        (
            "n.ini",
            "[web]\nw1 a='x\n",
            "2:6: error: cannot split host line: no closing quotation",
        ),
        (
            "o.ini",
            "[web]\nw1\n[web:vars]\nfoo\n",
            "4:1: error: expected 'key=value' in [web:vars]",
        ),
        (
            "p.ini",
            "[nope:vars]\nx=1\n",
            "1:2: error: section [nope:vars] is for group 'nope'",
        ),
        (
            "q.ini",
            "[p:children]\nwbe\n[web]\nw1\n",
            "2:1: error: [p:children] includes undefined group 'wbe'",
        ),
        (
            "r.ini",
            "[web]\nw1\n[web:vars]\nansible_group_priority=high\n",
            "4:24: error: ansible_group_priority of group 'web' must be an integer",
        ),
        ("s.ini", "w1:\n", "1:3: error: host 'w1:' ends with ':'"),
        (
            "t.ini",
            "web]x\n",
            "1:4: error: unbalanced ']' in host name",
        ),
    ];
    for (name, text, want) in cases {
        let (_d, p, res) = load_text(name, text);
        let err = match res {
            Ok(_) => panic!("{name}: expected an error"),
            Err(e) => e,
        };
        let first = err.to_string();
        let first = first.lines().next().unwrap_or_default().to_string();
        let want = format!("{}:{want}", p.display());
        assert!(
            first.starts_with(&want),
            "{name}:\n got: {first}\nwant: {want}"
        );
    }
}

#[test]
fn positions_after_quotes_and_multibyte_names_do_not_panic() {
    let (_d, _p, res) = load_text("u.ini", "[web]\n\"wé b\"[5:1] x='é'\n\"ü\"x]\n");
    assert_eq!(res.unwrap_err().len(), 2);
    let (_d, _p, res) = load_text("u.yml", "web:\n  hosts:\n    \"é\u{e9}[5:1]\":\n");
    assert!(res.unwrap_err().to_string().contains(":3:"));
}

#[test]
fn did_you_mean_notes() {
    let (_d, _p, res) = load_text("a.yml", "web:\n  hots:\n");
    assert!(
        res.unwrap_err()
            .to_string()
            .contains("note: did you mean 'hosts'?")
    );
    let (_d, _p, res) = load_text("b.ini", "[p:children]\nwbe\n[web]\n");
    assert!(
        res.unwrap_err()
            .to_string()
            .contains("note: did you mean 'web'?")
    );
}

#[test]
fn every_error_of_every_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.ini", "[web]\nw1 x\nw2 y\n");
    let b = write(dir.path(), "b.yml", "db:\n  hots:\n");
    write(dir.path(), "group_vars/web.yml", "- not a mapping\n");
    let err = Inventory::load(&[a.clone(), b.clone()], None).unwrap_err();
    let s = err.to_string();
    assert_eq!(err.len(), 4, "{s}");
    assert!(s.contains(&format!("{}:2:4:", a.display())), "{s}");
    assert!(s.contains(&format!("{}:3:4:", a.display())), "{s}");
    assert!(s.contains(&format!("{}:2:3:", b.display())), "{s}");
    assert!(
        s.contains("group_vars/web.yml:1:1: error: a vars file must be a mapping"),
        "{s}"
    );
}

#[test]
fn missing_source_is_an_error() {
    let e = Inventory::load(&[PathBuf::from("/nonexistent/inventory.yml")], None).unwrap_err();
    assert!(e.to_string().contains("does not exist"));
}
