//! The byte stream under a WebSocket: plain TCP or TLS over TCP, both
//! non-blocking `mio` sockets.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;

/// A feed socket. The TLS session and its socket live in one value so
/// readiness interest can be derived from what the session wants.
pub enum FeedStream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl FeedStream {
    /// Wraps a connected TCP socket, starting a TLS session when `tls` is set.
    pub fn new(
        tcp: TcpStream,
        tls: Option<(&Arc<rustls::ClientConfig>, ServerName<'static>)>,
    ) -> Result<Self, rustls::Error> {
        Ok(match tls {
            None => FeedStream::Plain(tcp),
            Some((config, name)) => {
                let conn = rustls::ClientConnection::new(Arc::clone(config), name)?;
                FeedStream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
        })
    }

    /// The socket, for registration with the poll.
    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            FeedStream::Plain(s) => s,
            FeedStream::Tls(s) => &mut s.sock,
        }
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
