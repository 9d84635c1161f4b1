//! Table tests of `ini_file`: the pure edit against Ansible's own output for the same input
//! (`ini_file_cases.json`, recorded by running community.general's `ini_file.py` on each case,
//! most of them from its integration tests), and check → apply on a local file.

use serde_json::{Value, json};

use super::*;
use crate::modules::system::testutil::{Ran, args, check_apply, ctx, transport};

/// One recorded case: the file before (`None`: absent), the arguments, and what Ansible wrote,
/// reported and said.
#[derive(serde::Deserialize)]
struct Case {
    name: String,
    before: Option<String>,
    args: Value,
    after: Option<String>,
    changed: bool,
    msg: String,
}

#[test]
fn edits_are_byte_exact_with_ansible() {
    let cases: Vec<Case> =
        serde_json::from_str(include_str!("ini_file_cases.json")).expect("cases parse");
    assert!(cases.len() >= 40);
    for c in cases {
        let mut a = args(c.args.clone());
        a.insert("path".into(), Value::from("/x.ini"));
        let parsed = IniFileArgs::parse(&a).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let edit = edit_of(&parsed, a.contains_key("values")).expect("valid case");
        let (text, changed, msg) =
            edit_ini(c.before.as_deref(), &edit).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(changed, c.changed, "{}: changed", c.name);
        assert_eq!(msg, c.msg, "{}: msg", c.name);
        let written = if changed {
            Some(text)
        } else {
            c.before.clone()
        };
        assert_eq!(written, c.after, "{}: content", c.name);
    }
}

#[test]
fn arguments_are_refused_as_ansible_refuses_them() {
    let table: &[(Value, &str)] = &[
        (
            json!({"path": "/x", "section": "cars", "option": "audi"}),
            "Parameter 'value(s)' must be defined if state=present and allow_no_value=False.",
        ),
        (
            json!({"path": "/x", "section": "cars", "option": "audi", "values": []}),
            "Parameter 'value(s)' must be defined if state=present and allow_no_value=False.",
        ),
        (
            json!({"path": "/x", "option": "a", "value": "1", "values": ["2"]}),
            "parameters are mutually exclusive: value|values",
        ),
        (
            json!({"path": "/x", "option": "a", "value": "1", "section_has_values": [{"option": "b", "value": "1", "values": ["2"]}]}),
            "parameters are mutually exclusive: value|values found in section_has_values",
        ),
        (
            json!({"path": "/x", "option": "a", "value": "1", "follow": true}),
            "argument 'follow' of module 'ini_file' is not supported by rdeploy",
        ),
    ];
    for (a, want) in table {
        let a = args(a.clone());
        let err = IniFileArgs::parse(&a)
            .and_then(|p| edit_of(&p, a.contains_key("values")))
            .expect_err(want);
        assert_eq!(err.to_string(), *want);
    }
}

#[tokio::test]
async fn check_apply_writes_the_file_then_is_in_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("conf/app.ini");
    let p = path.display().to_string();
    let c = ctx(dir.path(), None, Vec::new());
    let mut tr = transport();
    let a = args(
        json!({"path": p, "section": "server", "option": "port", "value": "8080", "mode": "0640", "backup": true}),
    );
    match check_apply(&IniFile, &mut tr, &a, &c).await {
        Ran::Applied(changes, Ok(r)) => {
            assert!(!changes.is_empty());
            assert_eq!(r["msg"], "section and option added");
        }
        Ran::Applied(_, Err(e)) => panic!("apply failed: {e}"),
        Ran::CheckFailed(e, _) => panic!("check failed: {e}"),
        Ran::InSync(r) => panic!("in sync: {r:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(&path).expect("written"),
        "\n[server]\nport = 8080\n"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    match check_apply(&IniFile, &mut tr, &a, &c).await {
        Ran::InSync(r) => assert_eq!(r["msg"], "OK"),
        _ => panic!("second run must be in sync"),
    }
    let missing = args(
        json!({"path": dir.path().join("nope.ini").display().to_string(), "option": "a", "value": "1", "create": false}),
    );
    match check_apply(&IniFile, &mut tr, &missing, &c).await {
        Ran::CheckFailed(msg, r) => {
            assert!(msg.starts_with("Destination ") && msg.ends_with(" does not exist!"));
            assert_eq!(r["rc"], 257);
        }
        _ => panic!("create: no on a missing file must fail"),
    }
    assert_eq!(
        IniFile.resources(&a),
        vec![Resource::Path(p)],
        "the file is backed up"
    );
}
