//! The byte stream under a WebSocket: plain TCP or TLS over TCP, both
//! non-blocking `mio` sockets.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;

/// A TCP socket that remembers when a read came back short.
///
/// For a stream socket a short read proves the receive buffer is empty
/// (epoll(7)), so until the next readiness event further reads answer
/// `WouldBlock` without the `recvfrom` that would only say so: one syscall
/// saved per event on the hot path. New data raises a new edge-triggered
/// event, which calls [`DrainAware::rearm`].
pub struct DrainAware {
    tcp: TcpStream,
    drained: bool,
    eof: bool,
    clock: ReadClock,
}

impl DrainAware {
    fn new(tcp: TcpStream, clock: ReadClock) -> Self {
        DrainAware { tcp, drained: false, eof: false, clock }
    }

    /// A readiness event arrived: the socket may have data again.
    #[inline]
    pub fn rearm(&mut self) {
        self.drained = false;
    }
}

impl Read for DrainAware {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        if self.drained && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let start = Instant::now();
        let read = self.tcp.read(buf);
        self.clock.add(start.elapsed());
        let n = read?;
        self.eof = n == 0 && !buf.is_empty();
        self.drained = n < buf.len();
        Ok(n)
    }
}

impl Write for DrainAware {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// Time spent inside socket reads since the hot loop's poll last returned:
/// the kernel's share of `wire_to_decision`, summed over every connection
/// read in that iteration.
///
/// One value per loop, shared by its sockets; only the loop's own thread
/// touches it (relaxed load and store, no read-modify-write), so it costs
/// what a plain integer does. The loop resets it when the poll returns and
/// hands its reading to the frame handler with each message.
#[derive(Clone, Debug, Default)]
pub struct ReadClock(Arc<AtomicU64>);

impl ReadClock {
    /// Adds one read's duration.
    #[inline]
    fn add(&self, d: std::time::Duration) {
        let sum = self.0.load(Ordering::Relaxed).saturating_add(crate::units::nanos(d));
        self.0.store(sum, Ordering::Relaxed);
    }

    /// Nanoseconds in socket reads since [`ReadClock::reset`].
    #[inline]
    pub fn nanos(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Starts a new count (when the poll returns).
    #[inline]
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// A feed socket. The TLS session and its socket live in one value so
/// readiness interest can be derived from what the session wants.
pub enum FeedStream {
    Plain(DrainAware),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, DrainAware>>),
}

impl FeedStream {
    /// Wraps a connected TCP socket, starting a TLS session when `tls` is set.
    pub fn new(
        tcp: TcpStream,
        tls: Option<(&Arc<rustls::ClientConfig>, ServerName<'static>)>,
        clock: ReadClock,
    ) -> Result<Self, rustls::Error> {
        let tcp = DrainAware::new(tcp, clock);
        Ok(match tls {
            None => FeedStream::Plain(tcp),
            Some((config, name)) => {
                let conn = rustls::ClientConnection::new(Arc::clone(config), name)?;
                FeedStream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
        })
    }

    fn socket(&mut self) -> &mut DrainAware {
        match self {
            FeedStream::Plain(s) => s,
            FeedStream::Tls(s) => &mut s.sock,
        }
    }

    /// The socket, for registration with the poll.
    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        &mut self.socket().tcp
    }

    /// A readiness event arrived for this socket.
    #[inline]
    pub fn rearm(&mut self) {
        self.socket().rearm();
    }

    /// Whether the TLS session has bytes queued for the socket.
    pub fn tls_wants_write(&self) -> bool {
        match self {
            FeedStream::Plain(_) => false,
            FeedStream::Tls(s) => s.conn.wants_write(),
        }
    }
}

impl Read for FeedStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            FeedStream::Plain(s) => s.read(buf),
            FeedStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for FeedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            FeedStream::Plain(s) => s.write(buf),
            FeedStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            FeedStream::Plain(s) => s.flush(),
            FeedStream::Tls(s) => {
                s.flush()?;
                // Push queued TLS records (e.g. a pong) to the socket now.
                while s.conn.wants_write() {
                    s.conn.write_tls(&mut s.sock)?;
                }
                Ok(())
            }
        }
    }
}

/// `WouldBlock`: nothing more to do until the next readiness event.
#[inline]
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// `Interrupted`: a signal arrived; retry at once.
#[inline]
pub fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}
