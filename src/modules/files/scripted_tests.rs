//! The file modules on a scripted host ([`crate::modules::fixture`]): arguments + the host's
//! files in memory → the verdict, what `check` sent (reads only), what `apply` sent, the files
//! after, and a second `check` in sync. No process runs, no file is touched on the machine.

use serde_json::json;

use crate::modules::fixture::{check, converge, only_reads};
use crate::modules::runtime::{Change, ModuleError, Verdict};
use crate::transport::TransportError;
use crate::transport::scripted::{Host, Node, Reply, Request, ok};

fn file(data: &str, mode: u32) -> Option<Node> {
    Some(Node::File {
        data: data.as_bytes().to_vec(),
        mode,
    })
}

#[tokio::test]
async fn copy_content_onto_an_absent_file_writes_it_with_its_mode() {
    let h = Host::new("h").dir("/etc", 0o755);
    let c = converge(
        "copy",
        json!({"content": "hello\n", "dest": "/etc/motd", "mode": "0640"}),
        &h,
    )
    .await
    .unwrap();
    assert!(!c.changes.is_empty());
    assert_eq!(c.check.len(), 1, "one round trip: {:#?}", c.check);
    assert!(only_reads(&c.check), "{:#?}", c.check);
    assert_eq!(
        c.apply,
        [Request::Put {
            path: "/etc/motd".into(),
            data: b"hello\n".to_vec(),
            mode: Some(0o640),
        }]
    );
    assert_eq!(h.node("/etc/motd"), file("hello\n", 0o640));
}

#[tokio::test]
async fn copy_in_sync_reads_once_and_sends_nothing_else() {
    let h = Host::new("h")
        .dir("/etc", 0o755)
        .file("/etc/motd", "hello\n", 0o640);
    let c = converge(
        "copy",
        json!({"content": "hello\n", "dest": "/etc/motd", "mode": "0640"}),
        &h,
    )
    .await
    .unwrap();
    assert!(c.changes.is_empty(), "{:?}", c.changes);
    assert_eq!(c.check.len(), 1);
    assert!(c.apply.is_empty());
    assert_eq!(h.requests().len(), 1);
}

#[tokio::test]
async fn copy_shows_the_text_it_replaces() {
    let h = Host::new("h")
        .dir("/etc", 0o755)
        .file("/etc/motd", "old\n", 0o644);
    let (v, sent) = check("copy", json!({"content": "new\n", "dest": "/etc/motd"}), &h)
        .await
        .unwrap();
    let Verdict::Drift(d) = v else {
        panic!("in sync with other content")
    };
    assert!(
        d.changes.contains(&Change::Content {
            path: "/etc/motd".into(),
            before: Some("old\n".into()),
            after: "new\n".into(),
        }),
        "{:?}",
        d.changes
    );
    assert!(only_reads(&sent));
    assert_eq!(
        h.node("/etc/motd"),
        file("old\n", 0o644),
        "check changed nothing"
    );
}

#[tokio::test]
async fn copy_that_cannot_write_fails_with_the_hosts_words() {
    let h = Host::new("h").dir("/etc", 0o755).fails(
        "put /etc/motd",
        TransportError::Io("write /etc/motd: Read-only file system".into()),
    );
    let err = converge("copy", json!({"content": "x", "dest": "/etc/motd"}), &h)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Read-only file system"), "{err}");
    assert_eq!(h.node("/etc/motd"), None);
}

#[tokio::test]
async fn file_mode_drift_is_fixed_by_one_chmod() {
    let h = Host::new("h")
        .dir("/srv", 0o755)
        .file("/srv/run.sh", "#!/bin/sh\n", 0o644)
        .rule(
            |c| c.contains("chmod"),
            None,
            |_, files| {
                if let Some(Node::File { mode, .. }) = files.get_mut("/srv/run.sh") {
                    *mode = 0o755;
                }
                Reply::Out(ok(""))
            },
        );
    let c = converge("file", json!({"path": "/srv/run.sh", "mode": "0755"}), &h)
        .await
        .unwrap();
    assert!(only_reads(&c.check), "{:#?}", c.check);
    let cmds: Vec<&str> = c.apply.iter().flat_map(Request::commands).collect();
    assert_eq!(cmds.len(), 1, "{cmds:#?}");
    assert!(
        cmds[0].contains("chmod") && cmds[0].contains("'/srv/run.sh'"),
        "{}",
        cmds[0]
    );
    assert_eq!(h.node("/srv/run.sh"), file("#!/bin/sh\n", 0o755));
}

#[tokio::test]
async fn file_directory_absent_is_created() {
    let h = Host::new("h").dir("/srv", 0o755).rule(
        |c| c.contains("mkdir"),
        None,
        |_, files| {
            files.insert("/srv/app".into(), Node::Dir { mode: 0o755 });
            Reply::Out(ok(""))
        },
    );
    let c = converge(
        "file",
        json!({"path": "/srv/app", "state": "directory"}),
        &h,
    )
    .await
    .unwrap();
    assert!(!c.changes.is_empty());
    let cmds: Vec<&str> = c.apply.iter().flat_map(Request::commands).collect();
    assert!(cmds.iter().any(|c| c.contains("mkdir")), "{cmds:#?}");
    assert_eq!(h.node("/srv/app"), Some(Node::Dir { mode: 0o755 }));
}

#[tokio::test]
async fn file_absent_and_already_gone_is_in_sync() {
    let h = Host::new("h").dir("/srv", 0o755);
    let (v, sent) = check("file", json!({"path": "/srv/old", "state": "absent"}), &h)
        .await
        .unwrap();
    assert!(matches!(v, Verdict::InSync { .. }));
    assert_eq!(sent.len(), 1);
    assert!(only_reads(&sent));
}

#[tokio::test]
async fn a_host_lost_during_apply_is_a_transport_error() {
    let h = Host::new("h").dir("/srv", 0o755).lost_at(
        "mkdir",
        TransportError::Unresponsive("keepalives unanswered".into()),
    );
    let err = converge(
        "file",
        json!({"path": "/srv/app", "state": "directory"}),
        &h,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ModuleError::Transport(TransportError::Unresponsive(_))),
        "{err}"
    );
}
