//! One test per lookup plugin, with the results ansible-playbook 2.19 gives for the same
//! expressions (checked with `debug: msg=...` on the local connection).

use std::path::Path;

use serde_json::json;

use crate::diag::Loc;
use crate::template::{environment, plan_environment, render_str, run_environment};

fn ctx(dir: &Path, extra: serde_json::Value) -> minijinja::Value {
    let mut m = serde_json::Map::new();
    m.insert("playbook_dir".into(), json!(dir.display().to_string()));
    if let serde_json::Value::Object(e) = extra {
        m.extend(e);
    }
    crate::template::json_to_value(&serde_json::Value::Object(m))
}

/// Renders `src` as a task would: against lazy variables (`playbook_dir` = `dir`, plus `extra`).
fn r_in(dir: &Path, src: &str, extra: serde_json::Value) -> Result<String, String> {
    let env = std::sync::Arc::new(environment());
    let mut layer = crate::template::Layer::new();
    let ctx = ctx(dir, extra);
    let json = crate::template::value_to_json(&ctx).unwrap();
    for (k, v) in json.as_object().unwrap() {
        layer.insert(k.clone(), crate::template::VarValue::Data(v.clone()));
    }
    let lazy = crate::template::LazyVars::new(vec![layer], std::sync::Arc::clone(&env));
    render_str(&env, src, &lazy.to_value(), &Loc::file_start("t.yml")).map_err(|d| d.to_string())
}

fn r(src: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    r_in(dir.path(), src, json!({})).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn err(src: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    r_in(dir.path(), src, json!({})).expect_err(src)
}

#[test]
fn lookup_joins_strings_query_gives_a_list() {
    assert_eq!(r("{{ lookup('items', ['a', 'b']) }}"), "a,b");
    assert_eq!(
        r("{{ lookup('items', ['a', 'b'], wantlist=True) }}"),
        "['a', 'b']"
    );
    assert_eq!(r("{{ query('items', ['a', 'b']) }}"), "['a', 'b']");
    assert_eq!(r("{{ q('items', 'a') }}"), "['a']");
    // One element is that element, not a string of it; mixed types stay a list.
    assert_eq!(r("{{ lookup('items', [1]) + 1 }}"), "2");
    assert_eq!(r("{{ lookup('items', [1, 'a']) }}"), "[1, 'a']");
    assert_eq!(r("{{ lookup('items', []) }}"), "[]");
}

#[test]
fn unknown_lookup_and_option_are_not_supported_by_rdeploy() {
    let e = err("{{ lookup('hashi_vault', 'x') }}");
    assert!(
        e.contains("lookup plugin 'hashi_vault' is not supported by rdeploy"),
        "{e}"
    );
    let e = err("{{ lookup('fiel', 'x') }}");
    assert!(e.contains("did you mean 'file'?"), "{e}");
    let e = err("{{ lookup('password', '/dev/null', encrypt='sha512_crypt') }}");
    assert!(
        e.contains("lookup('password') option 'encrypt' is not supported by rdeploy"),
        "{e}"
    );
    let e = err("{{ lookup('file', 'x', bogus=1) }}");
    assert!(e.contains("lookup('file') has no option 'bogus'"), "{e}");
}

#[test]
fn errors_ignore_and_warn_give_none_or_empty_list() {
    assert_eq!(
        r("{{ lookup('file', 'missing.txt', errors='ignore') }}"),
        ""
    );
    assert_eq!(
        r("{{ lookup('file', 'missing.txt', errors='ignore') is none }}"),
        "True"
    );
    assert_eq!(r("{{ query('file', 'missing.txt', errors='warn') }}"), "[]");
}

#[test]
fn file_reads_from_files_dir_then_playbook_dir_and_strips_the_end() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("files")).unwrap();
    std::fs::write(dir.path().join("files/a.txt"), "  from files\n\n").unwrap();
    std::fs::write(dir.path().join("a.txt"), "top\n").unwrap();
    std::fs::write(dir.path().join("b.txt"), "b {{ not_rendered }}\n").unwrap();
    let got = r_in(dir.path(), "[{{ lookup('file', 'a.txt') }}]", json!({})).unwrap();
    assert_eq!(got, "[  from files]");
    let got = r_in(
        dir.path(),
        "[{{ lookup('file', 'a.txt', lstrip=true) }}]",
        json!({}),
    )
    .unwrap();
    assert_eq!(got, "[from files]");
    let got = r_in(
        dir.path(),
        "{{ lookup('file', 'a.txt', rstrip=false) | length }}",
        json!({}),
    )
    .unwrap();
    assert_eq!(got, "14");
    // The contents are data: template text in them is not rendered.
    let got = r_in(dir.path(), "{{ lookup('file', 'b.txt') }}", json!({})).unwrap();
    assert_eq!(got, "b {{ not_rendered }}");
    // Several files join with commas.
    let got = r_in(
        dir.path(),
        "{{ lookup('file', 'files/a.txt', 'b.txt') }}",
        json!({}),
    )
    .unwrap();
    assert_eq!(got, "  from files,b {{ not_rendered }}");
    let e = r_in(dir.path(), "{{ lookup('file', 'nope.txt') }}", json!({})).unwrap_err();
    assert!(e.contains("could not find 'nope.txt'"), "{e}");
    assert!(e.contains("files/nope.txt"), "{e}");
}

#[test]
fn file_in_a_role_looks_in_the_roles_files_first() {
    let dir = tempfile::tempdir().unwrap();
    let role = dir.path().join("roles/r");
    std::fs::create_dir_all(role.join("files")).unwrap();
    std::fs::write(role.join("files/a.txt"), "role").unwrap();
    std::fs::write(dir.path().join("a.txt"), "playbook").unwrap();
    let extra = json!({"role_path": role.display().to_string()});
    assert_eq!(
        r_in(dir.path(), "{{ lookup('file', 'a.txt') }}", extra).unwrap(),
        "role"
    );
    assert_eq!(
        r_in(dir.path(), "{{ lookup('file', 'a.txt') }}", json!({})).unwrap(),
        "playbook"
    );
}

#[test]
fn file_decrypts_a_vault_file_with_the_runs_password() {
    let secret = crate::vault::VaultSecret::new("lookup-test", "lookup-test-pw");
    crate::vault::secrets::install([secret.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let text = crate::vault::encrypt(b"s3cr3t-lookup-value\n", &secret, None);
    std::fs::write(dir.path().join("key.txt"), text).unwrap();
    let got = r_in(dir.path(), "{{ lookup('file', 'key.txt') }}", json!({})).unwrap();
    assert_eq!(got, "s3cr3t-lookup-value");
    assert!(crate::vault::redact::contains_secret(
        "x s3cr3t-lookup-value y"
    ));
}

#[test]
fn template_renders_with_the_task_variables_and_template_vars() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(
        dir.path().join("templates/t.j2"),
        "port={{ port }} extra={{ extra | default('-') }}\n",
    )
    .unwrap();
    let got = r_in(
        dir.path(),
        "{{ lookup('template', 't.j2') }}",
        json!({"port": 8080}),
    )
    .unwrap();
    assert_eq!(got, "port=8080 extra=-\n");
    let got = r_in(
        dir.path(),
        "{{ lookup('template', 't.j2', template_vars={'extra': 'x'}) }}",
        json!({"port": 1}),
    )
    .unwrap();
    assert_eq!(got, "port=1 extra=x\n");
    std::fs::write(dir.path().join("templates/bad.j2"), "a\n{{ missing }}\n").unwrap();
    let e = r_in(dir.path(), "{{ lookup('template', 'bad.j2') }}", json!({})).unwrap_err();
    assert!(e.contains("bad.j2:2:4:"), "{e}");
    assert!(e.contains("`missing` is undefined"), "{e}");
}

#[test]
fn env_reads_the_controller_environment() {
    let path = std::env::var("PATH").unwrap_or_default();
    assert_eq!(r("{{ lookup('env', 'PATH') }}"), path);
    assert_eq!(r("{{ lookup('env', 'RDEPLOY_SURELY_UNSET_VAR') }}"), "");
    assert_eq!(
        r("{{ lookup('env', 'RDEPLOY_SURELY_UNSET_VAR', default='d') }}"),
        "d"
    );
    assert_eq!(
        r("{{ query('env', 'RDEPLOY_SURELY_UNSET_VAR', 'PATH') | length }}"),
        "2"
    );
}

#[test]
fn pipe_runs_in_the_playbook_dir_and_fails_on_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker"), "").unwrap();
    assert_eq!(
        r_in(
            dir.path(),
            "{{ lookup('pipe', 'ls; echo; echo') }}",
            json!({})
        )
        .unwrap(),
        "marker"
    );
    let e = r_in(dir.path(), "{{ lookup('pipe', 'exit 3') }}", json!({})).unwrap_err();
    assert!(e.contains("lookup_plugin.pipe(exit 3) returned 3"), "{e}");
}

#[test]
fn lines_gives_one_item_per_output_line() {
    assert_eq!(
        r("{{ query('lines', 'printf \"a\\nb\\n\"') }}"),
        "['a', 'b']"
    );
    assert_eq!(r("{{ lookup('lines', 'printf \"a\\nb\\n\"') }}"), "a,b");
}

#[test]
fn fileglob_matches_files_only_in_files_dir_first() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(files.join("sub.conf")).unwrap();
    std::fs::write(files.join("b.conf"), "").unwrap();
    std::fs::write(files.join("a.conf"), "").unwrap();
    std::fs::write(files.join(".hidden.conf"), "").unwrap();
    std::fs::write(files.join("c.txt"), "").unwrap();
    let got = r_in(dir.path(), "{{ query('fileglob', '*.conf') }}", json!({})).unwrap();
    let f = files.display();
    assert_eq!(got, format!("['{f}/a.conf', '{f}/b.conf']"));
    let got = r_in(
        dir.path(),
        "{{ query('fileglob', 'files/*.txt') }}",
        json!({}),
    )
    .unwrap();
    assert_eq!(got, format!("['{f}/c.txt']"));
    let got = r_in(dir.path(), "{{ query('fileglob', '*.none') }}", json!({})).unwrap();
    assert_eq!(got, "[]");
}

#[test]
fn first_found_takes_files_paths_and_skip() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("vars")).unwrap();
    std::fs::write(dir.path().join("vars/Debian.yml"), "").unwrap();
    std::fs::write(dir.path().join("default.yml"), "").unwrap();
    let d = dir.path().display();
    let got = r_in(
        dir.path(),
        "{{ lookup('first_found', ['vars/RedHat.yml', 'vars/Debian.yml', 'default.yml']) }}",
        json!({}),
    )
    .unwrap();
    assert_eq!(got, format!("{d}/vars/Debian.yml"));
    let got = r_in(
        dir.path(),
        "{{ lookup('first_found', {'files': ['RedHat.yml', 'Debian.yml'], 'paths': ['vars']}) }}",
        json!({}),
    )
    .unwrap();
    assert_eq!(got, format!("{d}/vars/Debian.yml"));
    let got = r_in(
        dir.path(),
        "{{ lookup('first_found', 'nope.yml,default.yml') }}",
        json!({}),
    )
    .unwrap();
    assert_eq!(got, format!("{d}/default.yml"));
    let got = r_in(
        dir.path(),
        "{{ query('first_found', {'files': ['nope.yml'], 'skip': true}) }}",
        json!({}),
    )
    .unwrap();
    assert_eq!(got, "[]");
    let e = r_in(
        dir.path(),
        "{{ lookup('first_found', ['nope.yml']) }}",
        json!({}),
    )
    .unwrap_err();
    assert!(e.contains("no file was found"), "{e}");
}

#[test]
fn password_creates_its_file_once_with_0600_and_reads_it_back() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let first = r_in(
        dir.path(),
        "{{ lookup('password', 'creds/db length=12 chars=digits') }}",
        json!({}),
    )
    .unwrap();
    assert_eq!(first.len(), 12);
    assert!(first.chars().all(|c| c.is_ascii_digit()), "{first}");
    let path = dir.path().join("creds/db");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{first}\n")
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dmode = std::fs::metadata(dir.path().join("creds"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dmode, 0o700);
    let again = r_in(
        dir.path(),
        "{{ lookup('password', 'creds/db') }}",
        json!({}),
    )
    .unwrap();
    assert_eq!(again, first);
    // A file written by Ansible with a salt gives the part before it.
    std::fs::write(dir.path().join("salted"), "pw123 salt=abcdefgh\n").unwrap();
    assert_eq!(
        r_in(dir.path(), "{{ lookup('password', 'salted') }}", json!({})).unwrap(),
        "pw123"
    );
    let d = r("{{ lookup('password', '/dev/null') }}");
    assert_eq!(d.len(), 20);
    assert!(
        d.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".,:-_".contains(c)),
        "{d}"
    );
    let p = r("{{ lookup('password', '/dev/null', length=30, chars=['ascii_lowercase', ',,']) }}");
    assert_eq!(p.len(), 30);
}

#[test]
fn password_under_check_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let env = run_environment(true);
    let got = render_str(
        &env,
        "{{ lookup('password', 'creds/new length=8') }}",
        &ctx(dir.path(), json!({})),
        &Loc::file_start("t.yml"),
    )
    .unwrap();
    assert_eq!(got.len(), 8);
    assert!(!dir.path().join("creds").exists());
}

#[test]
fn plan_time_lookups_touch_nothing_but_unknown_plugins_fail() {
    let dir = tempfile::tempdir().unwrap();
    let env = plan_environment(minijinja::Value::from("STAND-IN"));
    let c = ctx(dir.path(), json!({}));
    let loc = Loc::file_start("t.yml");
    let got = render_str(
        &env,
        "{{ lookup('pipe', 'touch ran') }}{{ lookup('password', 'pw') }}",
        &c,
        &loc,
    )
    .unwrap();
    assert_eq!(got, "STAND-INSTAND-IN");
    assert!(!dir.path().join("ran").exists());
    assert!(!dir.path().join("pw").exists());
    let e = render_str(&env, "{{ lookup('nope', 'x') }}", &c, &loc).unwrap_err();
    assert!(e.message.contains("not supported by rdeploy"), "{e}");
}

#[test]
fn vars_renders_a_variable_by_name() {
    assert_eq!(
        r_in(
            Path::new("/"),
            "{{ lookup('vars', 'a_' + 'b') }}",
            json!({"a_b": "v"})
        )
        .unwrap(),
        "v"
    );
    assert_eq!(r("{{ lookup('vars', 'nope', default='d') }}"), "d");
    let e = err("{{ lookup('vars', 'nope') }}");
    assert!(e.contains("No variable named 'nope' was found"), "{e}");
}

#[test]
fn items_flattens_one_level_and_list_keeps() {
    // Ansible's `_flatten`: a list term is spliced in, one level only.
    assert_eq!(
        r("{{ query('items', [1, [2, [3]]], 4) }}"),
        "[1, [2, [3]], 4]"
    );
    assert_eq!(r("{{ query('items', 1, [2, 3]) }}"), "[1, 2, 3]");
    assert_eq!(r("{{ query('list', [1, 2]) }}"), "[[1, 2]]");
}

#[test]
fn dict_gives_key_value_items() {
    assert_eq!(
        r("{{ query('dict', {'a': 1, 'b': {'c': 2}}) }}"),
        "[{'key': 'a', 'value': 1}, {'key': 'b', 'value': {'c': 2}}]"
    );
    let e = err("{{ query('dict', [1]) }}");
    assert!(e.contains("expects a dictionary"), "{e}");
}

#[test]
fn subelements_pairs_parent_and_child() {
    let users = "[{'name': 'a', 'keys': ['k1', 'k2']}, {'name': 'b', 'keys': []}]";
    assert_eq!(
        r(&format!("{{{{ query('subelements', {users}, 'keys') }}}}")),
        "[[{'name': 'a'}, 'k1'], [{'name': 'a'}, 'k2']]"
    );
    let e = err("{{ query('subelements', [{'name': 'a'}], 'keys') }}");
    assert!(e.contains("could not find 'keys' key"), "{e}");
    assert_eq!(
        r("{{ query('subelements', [{'name': 'a'}], 'keys', {'skip_missing': True}) }}"),
        "[]"
    );
    assert_eq!(
        r("{{ query('subelements', [{'a': {'b': [1]}}], 'a.b') }}"),
        "[[{'a': {}}, 1]]"
    );
}

#[test]
fn sequence_shortcut_and_key_value_forms() {
    assert_eq!(
        r("{{ query('sequence', '5') }}"),
        "['1', '2', '3', '4', '5']"
    );
    assert_eq!(r("{{ query('sequence', '2-10/4') }}"), "['2', '6', '10']");
    assert_eq!(
        r("{{ query('sequence', '3:host%02d') }}"),
        "['host01', 'host02', 'host03']"
    );
    assert_eq!(
        r("{{ query('sequence', 'start=5 end=11 stride=2 format=0x%02x') }}"),
        "['0x05', '0x07', '0x09', '0x0b']"
    );
    assert_eq!(
        r("{{ query('sequence', 'start=0 count=3 stride=2') }}"),
        "['0', '2', '4']"
    );
    assert_eq!(r("{{ query('sequence', start=1, end=2) }}"), "['1', '2']");
    assert_eq!(r("{{ query('sequence', 'count=0') }}"), "[]");
    assert!(err("{{ query('sequence', 'start=5 end=1') }}").contains("count backwards"));
    assert!(err("{{ query('sequence', 'start=1') }}").contains("count or end"));
}

#[test]
fn indexed_items_together_nested() {
    assert_eq!(
        r("{{ query('indexed_items', ['a', 'b']) }}"),
        "[[0, 'a'], [1, 'b']]"
    );
    assert_eq!(
        r("{{ query('together', [1, 2], ['a']) }}"),
        "[[1, 'a'], [2, None]]"
    );
    assert_eq!(
        r("{{ query('nested', ['a', 'b'], [1, 2]) }}"),
        "[['a', 1], ['a', 2], ['b', 1], ['b', 2]]"
    );
    assert_eq!(r("{{ query('nested', ['a']) }}"), "[['a']]");
}
