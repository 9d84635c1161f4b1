//! The file plane's nouns: typed questions about a host's files ([`FileQuery`]) and the one
//! answer form they share ([`Answer`]), which every plane produces and one parser reads.
//!
//! A stat helper ([`super::cmd::stat_cmd`] and its kin) carries its [`FileQuery`]: a transport
//! with a file plane (SFTP over SSH) answers it with protocol requests and no program on the
//! host; the shell plane runs the helper's script. Both answers come out as the same
//! [`Output`] (the stat helper's `key value` lines), so what a module reads does not depend on
//! which plane answered. This module must not talk to a host: the planes do.

use super::Output;
use super::cmd::{PathKind, PathState};

/// The user whose file-plane session serves commands with this `become`: `Some(None)` for
/// the login user, `Some(Some(user))` for a sudo without a password (its own session), `None`
/// when only shell programs can (`su`, a sudo password).
pub fn plane_user(b: Option<&super::Become>) -> Option<Option<String>> {
    match b {
        None => Some(None),
        Some(b) if b.method == super::BecomeMethod::Sudo && b.password.is_none() => {
            Some(Some(b.user.clone()))
        }
        Some(_) => None,
    }
}

/// A file's size up to which a plane reads it whole to hash it on the controller; above it,
/// the shell plane's `sha256sum` hashes it on the host.
pub const HASH_READ_MAX: u64 = 256 * 1024;

/// One question about a path, as a stat helper asks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileQuery {
    /// The path as the task gave it (relative paths are from the login's home).
    pub path: String,
    /// The sha256 of a regular file's content is wanted.
    pub hash: bool,
    /// The content is wanted too, unless its sha256 is the one given: its first bytes, at
    /// most the number given.
    pub content: Option<(Option<String>, u64)>,
    /// A symlink at `path` is followed to the file it finally names (`readlink -f`).
    pub follow: bool,
    /// What is asked: the path's state (the fields above), or one of the small questions
    /// answered as the shell would.
    pub asked: Asked,
}

/// A [`FileQuery`]'s question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// The stat helper's answer ([`Answer::Found`]).
    Stat,
    /// `test -d`: an exit status only (links followed).
    IsDir,
    /// `test -e`: an exit status only (links followed: a dangling link is not there).
    Exists,
    /// `test -L PATH && (resolved stat)`: exit 1 and nothing unless a symlink is at the path,
    /// else the stat of what it finally names ([`FileQuery::follow`]).
    StatIfLink,
    /// A regular file's bytes, links followed; nothing (and exit 0) for anything else
    /// (`read_following_cmd`).
    Read,
    /// The path after following every symlink, and a newline (`readlink -f`); exit 1 and no
    /// output in a missing folder (`realpath_cmd`).
    Realpath,
}

/// Files a plane reads for [`Asked::Read`] at most; larger ones are the shell's to read.
pub const READ_MAX: u64 = 4 << 20;

impl FileQuery {
    /// The state of `path` (a symlink not followed), hashed when `hash`.
    pub fn stat(path: &str, hash: bool) -> FileQuery {
        FileQuery {
            path: path.to_string(),
            hash,
            content: None,
            follow: false,
            asked: Asked::Stat,
        }
    }

    /// `what` asked about `path`.
    pub fn asking(path: &str, what: Asked) -> FileQuery {
        FileQuery {
            asked: what,
            ..FileQuery::stat(path, false)
        }
    }
}

/// What a plane found for a [`FileQuery`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The path's state, and its content when it was asked for and differs.
    Found(PathState, Option<Vec<u8>>),
    /// The path could not be looked at (a folder on the way that cannot be searched, a link
    /// that cannot be resolved): the helper's exit status 3 and this message.
    Refused(String),
    /// The exit status of a test (`test -d`: 0 yes, 1 no).
    Status(i32),
    /// What a program printed on stdout, with exit status 0 (a file's bytes, a path).
    Printed(Vec<u8>),
}

impl Answer {
    /// The answer as the stat helper prints it ([`super::cmd::parse_stat_content`] reads it).
    pub fn to_output(&self) -> Output {
        match self {
            Answer::Status(status) => Output {
                status: *status,
                ..Output::default()
            },
            Answer::Printed(out) => Output {
                stdout: out.clone(),
                ..Output::default()
            },
            Answer::Refused(msg) => Output {
                status: 3,
                stderr: format!("rdeploy: {msg}\n").into_bytes(),
                ..Output::default()
            },
            Answer::Found(state, content) => Output {
                status: 0,
                stdout: stat_text(state, content.as_deref()),
                ..Output::default()
            },
        }
    }
}

/// The stat helper's lines for `state`.
fn stat_text(state: &PathState, content: Option<&[u8]>) -> Vec<u8> {
    let kind = match &state.kind {
        PathKind::Absent => return b"kind absent\n".to_vec(),
        PathKind::File => "file",
        PathKind::Directory => "directory",
        PathKind::Link { .. } => "link",
        PathKind::Other => "other",
    };
    let mut out = format!(
        "kind {kind}\nmode {:o}\nuid {}\ngid {}\nowner {}\ngroup {}\nsize {}\n",
        state.mode, state.uid, state.gid, state.owner, state.group, state.size
    )
    .into_bytes();
    if let Some(h) = &state.sha256 {
        out.extend_from_slice(format!("sha256 {h}\n").as_bytes());
        if let Some(c) = content {
            out.extend_from_slice(b"content\n");
            out.extend_from_slice(c);
        }
    }
    if let PathKind::Link { target } = &state.kind {
        out.extend_from_slice(format!("target {target}\n").as_bytes());
    }
    out
}

/// The file kind in an SFTP/`lstat` mode word (`S_IFMT` bits).
pub fn kind_of_mode(mode: u32) -> Option<PathKind> {
    match mode & 0o170000 {
        0o100000 => Some(PathKind::File),
        0o040000 => Some(PathKind::Directory),
        0o120000 => Some(PathKind::Link {
            target: String::new(),
        }),
        0 => None,
        _ => Some(PathKind::Other),
    }
}

/// Id-to-name tables read from a host's `/etc/passwd` and `/etc/group`.
#[derive(Clone, Debug, Default)]
pub struct Names {
    users: std::collections::HashMap<u32, String>,
    groups: std::collections::HashMap<u32, String>,
    user_ids: std::collections::HashMap<String, u32>,
    group_ids: std::collections::HashMap<String, u32>,
}

impl Names {
    /// Reads `passwd` and `group` (the files' text: `name:x:id:...` lines).
    pub fn parse(passwd: &str, group: &str) -> Names {
        let mut n = Names::default();
        for (text, ids, names) in [
            (passwd, &mut n.users, &mut n.user_ids),
            (group, &mut n.groups, &mut n.group_ids),
        ] {
            for line in text.lines() {
                let mut f = line.split(':');
                let (Some(name), Some(_), Some(id)) = (f.next(), f.next(), f.next()) else {
                    continue;
                };
                let Ok(id) = id.parse::<u32>() else { continue };
                if name.is_empty() || name.starts_with(['#', '+', '-']) {
                    continue;
                }
                // The first line for an id or a name wins, as getpwuid/getpwnam find it.
                ids.entry(id).or_insert_with(|| name.to_string());
                names.entry(name.to_string()).or_insert(id);
            }
        }
        n
    }

    /// The user named for `uid`, when the file has it.
    pub fn user(&self, uid: u32) -> Option<&str> {
        self.users.get(&uid).map(String::as_str)
    }

    /// The group named for `gid`, when the file has it.
    pub fn group(&self, gid: u32) -> Option<&str> {
        self.groups.get(&gid).map(String::as_str)
    }

    /// The uid of `owner` (a name in the file, or a number).
    pub fn uid(&self, owner: &str) -> Option<u32> {
        self.user_ids
            .get(owner)
            .copied()
            .or_else(|| owner.parse().ok())
    }

    /// The gid of `group` (a name in the file, or a number).
    pub fn gid(&self, group: &str) -> Option<u32> {
        self.group_ids
            .get(group)
            .copied()
            .or_else(|| group.parse().ok())
    }
}

/// A change to a host's files that a file plane makes with protocol requests instead of a
/// program, carried by the [`super::cmd::Cmd`] that makes it with shell programs
/// ([`super::cmd::Cmd::file_ops`]): the plane must leave the host as the program would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileOp {
    /// `mkdir -p` under umask 022: the folders it makes are 0755.
    Mkdir(String),
    /// `chmod MODE PATH` (a symlink is followed).
    Chmod(String, u32),
    /// `chown -h OWNER:GROUP PATH` (a symlink itself is changed), names or ids; either may be
    /// left out.
    Chown {
        /// The path.
        path: String,
        /// The new owner.
        owner: Option<String>,
        /// The new group.
        group: Option<String>,
    },
    /// The hard link `path` to `src` (a symlink `src` itself, not followed) made atomically:
    /// a link at `tmp` (removed first if there) renamed over `path`, removed when the rename
    /// fails.
    Hardlink {
        /// The file linked to.
        src: String,
        /// The new name.
        path: String,
        /// The temporary name.
        tmp: String,
    },
    /// `rm -rf`: a file, a symlink (not followed) or a folder with all it holds; nothing
    /// there is no failure.
    Remove(String),
    /// The symlink `link` pointed at `target` atomically: a link at `tmp` (in `link`'s
    /// folder) renamed over it, removed when the rename fails.
    Symlink {
        /// What the link points at.
        target: String,
        /// Where the link is.
        link: String,
        /// The temporary name.
        tmp: String,
    },
}

impl FileOp {
    /// The path the operation changes.
    pub fn path(&self) -> &str {
        match self {
            FileOp::Mkdir(p)
            | FileOp::Chmod(p, _)
            | FileOp::Chown { path: p, .. }
            | FileOp::Remove(p) => p,
            FileOp::Symlink { link, .. } => link,
            FileOp::Hardlink { path, .. } => path,
        }
    }
}

/// A backup of paths before a step's change, typed: what the backup program
/// (`src/host/sh/backup.sh`) does for plain paths, for a file plane to do with protocol
/// requests instead: the same refusals, entry folders and manifest lines. Made only for paths
/// (not services, packages, sysctls, mounts, or a folder kept with its content).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupPlan {
    /// The host's state folder.
    pub state_dir: String,
    /// The run's id.
    pub run_id: String,
    /// The step's folder name (`0007`).
    pub step: String,
    /// The run's start (unix seconds): rdeploy's temporary files older than it next to a path
    /// are removed; `None`: none is.
    pub started: Option<u64>,
    /// The state folders are made first and runs beyond this many pruned (the host's first
    /// backup).
    pub prepare: Option<u32>,
    /// What is backed up, in order.
    pub items: Vec<BackupItem>,
}

/// One path of a [`BackupPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupItem {
    /// The path as the task names it.
    pub path: String,
    /// Only a regular file's mode and owner are kept, not its content.
    pub attrs_only: bool,
    /// The manifest line's fixed fields, as JSON without the closing brace.
    pub prefix: String,
}

/// The names of rdeploy's temporary files (`.NAME.rdeploy-tmp.*` and its kin) that a backup
/// removes from a folder when they are older than the run (left by a killed transfer).
pub fn is_stale_temp_name(name: &str) -> bool {
    name.strip_prefix('.').is_some_and(|rest| {
        [".rdeploy-tmp.", ".rdeploy-validate.", ".rdeploy-ln."]
            .iter()
            .any(|m| rest.contains(m))
    })
}

/// The folder `path` is in, as the backup program's `up_` finds it: trailing slashes
/// dropped, then the last component; `.` for a bare name, `/` at the top. A path ending in
/// `/` is its own folder's child (`a/b/` → `a/b`), as the program's `${1}x` makes it.
pub fn parent_of(path: &str) -> String {
    let mut q = path.trim_end_matches('/');
    if q.is_empty() {
        return "/".into();
    }
    q = match q.rsplit_once('/') {
        Some((dir, _)) => dir,
        None => return ".".into(),
    };
    let q = q.trim_end_matches('/');
    if q.is_empty() { "/".into() } else { q.into() }
}

/// The folders above `path`, nearest first, as the backup program walks them for its refusal
/// check (up to `/` or `.`, neither included; a path ending in `/` starts at itself).
pub fn ancestors(path: &str) -> Vec<String> {
    if path.ends_with('/') {
        parents(&format!("{path}x"))
    } else {
        parents(path)
    }
}

/// The folders above `path`, nearest first (trailing slashes dropped; up to `/` or `.`,
/// neither included), as the backup program counts an absent path's missing parents.
pub fn parents(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut q = path.to_string();
    loop {
        q = parent_of(&q);
        if q == "/" || q == "." || out.len() >= 4096 {
            return out;
        }
        out.push(q.clone());
    }
}

/// Answers `q` on the controller's own files (the local connection's plane: `std::fs`, no
/// program), as the stat helper would, or `None` when only the helper can say the same (a
/// relative path, a name not in `names`, a link `canonicalize` cannot resolve).
pub fn answer_local(q: &FileQuery, names: &Names) -> Option<Answer> {
    use std::io::ErrorKind;
    use std::os::unix::fs::MetadataExt;
    if !q.path.starts_with('/') {
        return None;
    }
    match q.asked {
        Asked::Stat => {}
        Asked::Exists => {
            return Some(Answer::Status(if std::path::Path::new(&q.path).exists() {
                0
            } else {
                1
            }));
        }
        Asked::StatIfLink => {
            if !std::fs::symlink_metadata(&q.path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Some(Answer::Status(1));
            }
        }
        Asked::IsDir => {
            return Some(Answer::Status(if std::path::Path::new(&q.path).is_dir() {
                0
            } else {
                1
            }));
        }
        Asked::Read => {
            let path = std::path::Path::new(&q.path);
            if !path.is_file() {
                return Some(Answer::Printed(Vec::new()));
            }
            if std::fs::metadata(path).ok()?.len() > READ_MAX {
                return None;
            }
            return std::fs::read(path).ok().map(Answer::Printed);
        }
        Asked::Realpath => {
            let path = std::path::Path::new(&q.path);
            let real = match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() || m.is_dir() => {
                    std::fs::canonicalize(path).ok()?
                }
                _ => {
                    let (dir, name) = q.path.rsplit_once('/')?;
                    if matches!(name, "" | "." | "..") {
                        return None;
                    }
                    let dir = if dir.is_empty() { "/" } else { dir };
                    match std::fs::canonicalize(dir) {
                        // `cd -P` into it must work: a file on the way is readlink -f's.
                        Ok(d) if d.is_dir() => d.join(name),
                        Ok(_) => return None,
                        Err(e)
                            if e.kind() == ErrorKind::NotFound
                                && std::fs::symlink_metadata(dir).is_err() =>
                        {
                            return Some(Answer::Status(1));
                        }
                        Err(_) => return None,
                    }
                }
            };
            let mut out = real.to_str()?.as_bytes().to_vec();
            out.push(b'\n');
            return Some(Answer::Printed(out));
        }
    }
    let mut path = std::path::PathBuf::from(&q.path);
    let mut meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Some(Answer::Found(PathState::absent(), None));
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            // As the helper: refused when the folder holding the path is there but cannot be
            // searched; a folder further up that cannot be searched hides it (absent).
            let parent = match q.path.trim_end_matches('/').rsplit_once('/') {
                Some(("", _)) => "/",
                Some((d, _)) => d,
                None => return None,
            };
            return Some(match std::fs::symlink_metadata(parent) {
                Ok(_) => Answer::Refused(format!("cannot search directory {parent}")),
                Err(_) => Answer::Found(PathState::absent(), None),
            });
        }
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) => {
            // A file on the way: absent, unless the path's own folder is a file this user may
            // not "search" (`[ -e "$q_" ] && ! [ -x "$q_" ]`), which the helper refuses.
            let trimmed = q.path.trim_end_matches('/');
            let parent = match trimmed.rsplit_once('/') {
                Some(("", _)) => "/",
                Some((d, _)) => d,
                None => return None,
            };
            let exists = std::path::Path::new(parent).exists();
            let searchable = rustix::fs::access(parent, rustix::fs::Access::EXEC_OK).is_ok();
            return Some(if exists && !searchable {
                Answer::Refused(format!("cannot search directory {parent}"))
            } else {
                Answer::Found(PathState::absent(), None)
            });
        }
        Err(_) => return None,
    };
    if q.follow && meta.file_type().is_symlink() {
        path = std::fs::canonicalize(&path).ok()?;
        meta = std::fs::symlink_metadata(&path).ok()?;
    }
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        PathKind::Link {
            target: std::fs::read_link(&path)
                .ok()?
                .to_string_lossy()
                .into_owned(),
        }
    } else if ft.is_dir() {
        PathKind::Directory
    } else if ft.is_file() {
        PathKind::File
    } else {
        PathKind::Other
    };
    let mut state = PathState {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        owner: names.user(meta.uid())?.to_string(),
        group: names.group(meta.gid())?.to_string(),
        size: meta.len(),
        sha256: None,
    };
    let mut content = None;
    if q.hash && state.kind == PathKind::File {
        // A file that cannot be read has no sha256, as with the shell helper.
        if let Ok(mut f) = std::fs::File::open(&path)
            && let Ok(sum) = super::sha256_reader(&mut f)
        {
            if let Some((unless, max)) = &q.content
                && unless.as_deref() != Some(sum.as_str())
            {
                use std::io::Read;
                let mut head = Vec::new();
                let f = std::fs::File::open(&path).ok()?;
                f.take(*max).read_to_end(&mut head).ok()?;
                content = Some(head);
            }
            state.sha256 = Some(sum);
        }
    }
    Some(Answer::Found(state, content))
}

/// The controller's own `/etc/passwd` and `/etc/group` ([`Names`]), read once.
pub fn local_names() -> &'static Names {
    static NAMES: std::sync::OnceLock<Names> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Names::parse(&read("/etc/passwd"), &read("/etc/group"))
    })
}

/// Every kind of question a plane answers, asked about `path` (stat, attributes, content
/// with and without a known sha256, resolved stat, `test -d`, `readlink -f`, a file read):
/// what the tests comparing a plane with the shell programs ask, path after path.
pub fn every_question(path: &str) -> Vec<super::cmd::Cmd> {
    use super::cmd::{
        read_following_cmd, realpath_cmd, stat_attrs_cmd, stat_cmd, stat_content_cmd,
        stat_resolved_cmd, stat_resolved_if_link_attrs_cmd, test_d, test_e,
    };
    vec![
        stat_cmd(path),
        stat_attrs_cmd(path),
        stat_content_cmd(path, None, 4),
        stat_content_cmd(path, Some("00"), 100),
        stat_resolved_cmd(path),
        test_d(path),
        test_e(path),
        stat_resolved_if_link_attrs_cmd(path),
        realpath_cmd(path),
        read_following_cmd(path),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::cmd::parse_stat_content;

    fn state(kind: PathKind) -> PathState {
        PathState {
            kind,
            mode: 0o1755,
            uid: 1000,
            gid: 27,
            owner: "deploy".into(),
            group: "domain users".into(),
            size: 12,
            sha256: None,
        }
    }

    #[test]
    fn answers_read_back_as_the_stat_helper_prints_them() {
        let mut file = state(PathKind::File);
        file.sha256 = Some("ab".repeat(32));
        let cases = [
            (Answer::Found(file.clone(), None), None),
            (
                Answer::Found(file.clone(), Some(b"old\ncontent\n".to_vec())),
                Some(b"old\ncontent\n".to_vec()),
            ),
            (Answer::Found(state(PathKind::Directory), None), None),
            (
                Answer::Found(
                    state(PathKind::Link {
                        target: "a\nb c".into(),
                    }),
                    None,
                ),
                None,
            ),
            (Answer::Found(PathState::absent(), None), None),
        ];
        for (answer, content) in cases {
            let Answer::Found(want, _) = &answer else {
                unreachable!()
            };
            let (got, got_content) = parse_stat_content(&answer.to_output()).unwrap();
            assert_eq!(&got, want);
            assert_eq!(got_content, content);
        }
        let refused = Answer::Refused("cannot search directory /root".into()).to_output();
        assert!(parse_stat_content(&refused).is_err());
        assert_eq!(refused.status, 3);
    }

    #[test]
    fn names_come_from_the_first_line_for_each_id_and_name() {
        let n = Names::parse(
            "root:x:0:0:root:/root:/bin/sh\n+nis\nbad\ntoor:x:0:0::/:/bin/sh\nweb:x:33:33::/:/bin/false\n",
            "root:x:0:\nwww data:x:33:\n",
        );
        assert_eq!(n.user(0), Some("root"));
        assert_eq!(n.uid("toor"), Some(0));
        assert_eq!(n.uid("web"), Some(33));
        assert_eq!(n.uid("1234"), Some(1234));
        assert_eq!(n.uid("nobody-here"), None);
        assert_eq!(n.group(33), Some("www data"));
        assert_eq!(n.gid("www data"), Some(33));
        assert_eq!(kind_of_mode(0o100644), Some(PathKind::File));
        assert_eq!(kind_of_mode(0o020644), Some(PathKind::Other));
    }
}

#[cfg(test)]
mod query_tests {
    use crate::transport::cmd::{stat_attrs_cmd, stat_cmd, stat_content_cmd, stat_resolved_cmd};

    #[test]
    fn the_stat_helpers_carry_their_query_until_more_is_added() {
        assert!(
            stat_cmd("/a")
                .file_query()
                .is_some_and(|q| q.hash && !q.follow)
        );
        assert!(stat_attrs_cmd("/a").file_query().is_some_and(|q| !q.hash));
        assert!(
            stat_resolved_cmd("/a")
                .file_query()
                .is_some_and(|q| q.follow)
        );
        let c = stat_content_cmd("/a", Some("ff"), 9);
        assert_eq!(
            c.file_query().and_then(|q| q.content.clone()),
            Some((Some("ff".to_string()), 9))
        );
        assert!(c.bare().is_some_and(|b| b.file_query().is_some()));
        assert!(stat_cmd("/a").op("; true").file_query().is_none());
        assert!(stat_cmd("a").chdir("/tmp").file_query().is_none());
    }
}

#[cfg(test)]
mod local_tests {
    use super::*;
    use crate::transport::cmd::parse_stat_content;
    use crate::transport::{LocalTransport, Transport};

    /// The std::fs plane says what the shell plane's helpers say, path for path.
    #[tokio::test]
    async fn the_local_plane_answers_as_the_shell_helpers_do() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::write(dir.path().join("f"), "old\ntext\n").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("f", dir.path().join("ln")).unwrap();
        std::os::unix::fs::symlink("nowhere", dir.path().join("dangling")).unwrap();
        let mut shell = LocalTransport::new("t").with_shell_files();
        let names = local_names();
        std::fs::write(dir.path().join("x"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("x"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        for p in [
            "f", "sub", "ln", "dangling", "absent", "f/below", "x/below", "nodir/x",
        ] {
            let path = format!("{d}/{p}");
            for cmd in every_question(&path) {
                let q = cmd.file_query().unwrap().clone();
                let Some(answer) = answer_local(&q, names) else {
                    // Left to the shell (a path under a file or a dangling link to resolve).
                    assert!(
                        (p.ends_with("/below") && q.asked == Asked::Realpath)
                            || (p == "dangling" && (q.follow || q.asked == Asked::Realpath)),
                        "{q:?}"
                    );
                    continue;
                };
                let want = shell.exec(&cmd).await.unwrap();
                let got = answer.to_output();
                if q.asked != Asked::Stat || want.status != 0 {
                    assert_eq!(
                        (got.status, &got.stdout, &got.stderr),
                        (want.status, &want.stdout, &want.stderr),
                        "{q:?}"
                    );
                    continue;
                }
                assert_eq!(
                    parse_stat_content(&got).unwrap(),
                    parse_stat_content(&want).unwrap(),
                    "{q:?}"
                );
            }
        }
    }
}
