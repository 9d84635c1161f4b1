//! [`QuickAck`]: the TCP stream to an SSH server (a target or the first jump host),
//! acknowledging at once what it reads.
//!
//! OpenSSH's sshd turns Nagle's algorithm off (`TCP_NODELAY`) on a client's connection only
//! when a session starts a command (`ssh_packet_set_interactive`, called from `do_exec`).
//! Until then, a server sends a small write only once the previous one is acknowledged, and
//! the controller, having nothing to send back meanwhile, delays its ACK (by at least 40 ms
//! on Linux):
//! - on every connection, the login and the first command waited ~40 ms each (a one-host run
//!   that changes nothing took 160 ms instead of 104 ms);
//! - a connection that only carries `direct-tcpip` tunnels, which is all a jump host sees,
//!   keeps Nagle on for good: the jumped host answers one command in several small writes
//!   (the exec reply, the first output, the exit status and close), and each command waited
//!   ~40 ms on the jump host.
//!
//! This stream sets `TCP_QUICKACK` after every read that returned bytes: Linux then sends the
//! pending ACK at once (it clears the flag on its own, hence every read).
//!
//! It owns nothing but that socket option: the bytes pass through unchanged and unbuffered.
//! Where `TCP_QUICKACK` does not exist it is a plain stream. It cannot help a second jump
//! host (its peer is the first jump host's sshd, not us).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A [`TcpStream`] that acknowledges received data at once (see the module docs).
#[derive(Debug)]
pub(crate) struct QuickAck {
    stream: TcpStream,
}

impl QuickAck {
    pub(crate) fn new(stream: TcpStream) -> QuickAck {
        QuickAck { stream }
    }

    /// Sends the ACK of what was just read now rather than after the delayed-ACK timer.
    fn ack_now(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::sync::atomic::{AtomicBool, Ordering};
            /// Whether a failure was logged already (once per process is enough).
            static LOGGED: AtomicBool = AtomicBool::new(false);
            if let Err(e) = self.stream.set_quickack(true)
                && !LOGGED.swap(true, Ordering::Relaxed)
            {
                tracing::debug!(error = %e, "TCP_QUICKACK could not be set on an SSH socket");
            }
        }
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
        {
            this.ack_now();
        }
        polled
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.expect("connect"), server.expect("accept").0)
    }

    #[tokio::test]
    async fn bytes_pass_through_both_ways_unchanged() {
        let (client, mut server) = pair().await;
        let mut q = QuickAck::new(client);
        q.write_all(b"hello").await.expect("write");
        q.flush().await.expect("flush");
        let mut got = [0u8; 5];
        server.read_exact(&mut got).await.expect("server read");
        assert_eq!(&got, b"hello");
        server.write_all(b"world!").await.expect("server write");
        let mut back = [0u8; 6];
        q.read_exact(&mut back).await.expect("read");
        assert_eq!(&back, b"world!");
    }

    /// The fix for ~40 ms per command through a jump host: a read re-arms quick ACKs, which
    /// Linux turns off on its own (here by hand: `set_quickack(false)` is "delay ACKs").
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn a_read_turns_quick_acks_back_on() {
        let (client, mut server) = pair().await;
        let mut q = QuickAck::new(client);
        for round in 0..3u8 {
            q.stream.set_quickack(false).expect("delay ACKs");
            assert!(!q.stream.quickack().expect("read TCP_QUICKACK"));
            server.write_all(&[round]).await.expect("server write");
            let mut got = [0u8; 1];
            q.read_exact(&mut got).await.expect("read");
            assert_eq!(got, [round]);
            assert!(
                q.stream.quickack().expect("read TCP_QUICKACK"),
                "round {round}: TCP_QUICKACK is off after a read"
            );
        }
    }
}
