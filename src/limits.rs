//! The controller's own resource limits: raising the open-files limit at start, bounding the
//! allocator's arenas, and telling a controller that ran out of descriptors or memory from a
//! host that failed.
//!
//! Owns the soft `RLIMIT_NOFILE` (raised to the hard limit once, at start), glibc's arena
//! count (set once, at start) and the one test
//! of whether an I/O error means the controller is out of resources (`EMFILE`, `ENFILE`,
//! `ENOMEM`, `ENOBUFS`). Such an error is the controller's, never a host's: the transport turns
//! it into [`crate::transport::TransportError::Exhausted`] instead of an unreachable host, an
//! authentication failure or a host-key refusal. It must not print.

use rustix::io::Errno;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// glibc's malloc arenas at most (`M_ARENA_MAX`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: i32 = 2;

/// Bounds glibc's malloc arenas to [`ARENAS`] unless `MALLOC_ARENA_MAX` says otherwise. By
/// default glibc gives threads up to 8 per CPU, and the memory each keeps freed but not
/// returned adds up: a first run on 500 hosts peaked 15-20 % higher with the default than
/// with 2 (`bench/run.sh 500`, measured in pairs on one fleet). Call it first thing in
/// `main`, before any thread starts.
pub fn bound_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tuning parameter of glibc's allocator; it is called
        // before the program starts any thread, as glibc's manual asks.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

/// Raises the soft open-files limit to the hard one (a fleet needs a descriptor per host in
/// flight; the common soft default, 1024, is low). Returns the limit now in force, `None`
/// when unlimited or unknown. A failure leaves the limit as it was.
pub fn raise_open_files() -> Option<u64> {
    let lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        let raised = Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "could not raise the open-files limit");
        }
    }
    open_files_limit()
}

/// The soft open-files limit in force, `None` when unlimited.
pub fn open_files_limit() -> Option<u64> {
    getrlimit(Resource::Nofile).current
}

/// What the controller ran out of, when `e` means it ran out of something.
pub fn exhausted(e: &std::io::Error) -> Option<String> {
    let errno = Errno::from_raw_os_error(e.raw_os_error()?);
    if errno == Errno::MFILE || errno == Errno::NFILE {
        let which = if errno == Errno::NFILE {
            "the system's open-files table is full".to_string()
        } else {
            match open_files_limit() {
                Some(n) => format!("limit {n}"),
                None => "no limit".to_string(),
            }
        };
        Some(format!("controller ran out of open files ({which})"))
    } else if errno == Errno::NOMEM || errno == Errno::NOBUFS {
        Some("controller ran out of memory".to_string())
    } else {
        None
    }
}

/// [`exhausted`] for an error only known by its text (a library that flattened it):
/// the messages `strerror` gives for those errors.
pub fn exhausted_text(msg: &str) -> Option<String> {
    for errno in [Errno::MFILE, Errno::NFILE, Errno::NOMEM, Errno::NOBUFS] {
        let e = std::io::Error::from_raw_os_error(errno.raw_os_error());
        let text = e.to_string();
        // "Too many open files (os error 24)": the words without the number.
        let words = text.split(" (os error").next().unwrap_or(&text);
        if msg.contains(words) {
            return exhausted(&e);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emfile_and_enomem_are_the_controllers_and_a_refused_connection_is_not() {
        let emfile = std::io::Error::from_raw_os_error(Errno::MFILE.raw_os_error());
        let said = exhausted(&emfile).unwrap();
        assert!(
            said.starts_with("controller ran out of open files ("),
            "{said}"
        );
        let enomem = std::io::Error::from_raw_os_error(Errno::NOMEM.raw_os_error());
        assert_eq!(exhausted(&enomem).unwrap(), "controller ran out of memory");
        let refused = std::io::Error::from_raw_os_error(Errno::CONNREFUSED.raw_os_error());
        assert_eq!(exhausted(&refused), None);
        assert!(exhausted(&std::io::Error::other("x")).is_none());
        assert!(
            exhausted_text("cannot read key: Too many open files (os error 24)")
                .unwrap()
                .contains("open files")
        );
        assert_eq!(exhausted_text("Connection refused (os error 111)"), None);
    }
}
