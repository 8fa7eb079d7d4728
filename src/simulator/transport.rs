//! The byte stream under a WebSocket: plain TCP or TLS over it, both
//! non-blocking.
//!
//! rustls' own `StreamOwned` is not used because its `read` first flushes
//! pending TLS output and reports `WouldBlock` while the peer's receive window
//! is full — exactly the state of a client being fed at full speed, whose pongs
//! would then never be read. Here reading and writing are independent: `read`
//! only pulls records from the socket, `write` only pushes them.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mio::net::TcpStream;
use rustls::ServerConnection;

/// How much encrypted output rustls may hold before `write` reports
/// `WouldBlock`; large enough for a burst of depth frames per syscall.
const TLS_BUFFER_LIMIT: usize = 256 * 1024;

/// A transport with the bytes already read from it put back in front: the
/// request head that told a WebSocket upgrade from a REST request is read
/// again by the WebSocket handshake.
pub struct Rewound {
    unread: Vec<u8>,
    at: usize,
    inner: Transport,
}

impl Rewound {
    pub fn new(inner: Transport, unread: Vec<u8>) -> Self {
        Rewound { unread, at: 0, inner }
    }

    /// The transport underneath, for socket options.
    pub fn transport_mut(&mut self) -> &mut Transport {
        &mut self.inner
    }
}

impl Read for Rewound {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(rest) = self.unread.get(self.at..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.len());
            buf.get_mut(..n).unwrap_or_default().copy_from_slice(rest.get(..n).unwrap_or_default());
            self.at += n;
            if self.at == self.unread.len() {
                self.unread = Vec::new();
                self.at = 0;
            }
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

impl Write for Rewound {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A client's byte stream.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// One TLS session and the socket it runs over.
pub struct TlsStream {
    conn: ServerConnection,
    sock: TcpStream,
    /// Set when the connection ends with an HTTP answer (a refused
    /// upgrade): dropping it then sends TLS close_notify after the answer,
    /// as a web server does, so the client reads the status rather than an
    /// unexpected end of the TLS stream.
    close_notify: Arc<AtomicBool>,
}

impl Drop for TlsStream {
    fn drop(&mut self) {
        if self.close_notify.load(Ordering::Relaxed) {
            self.conn.send_close_notify();
            // Best effort on a non-blocking socket: a short answer and the
            // alert fit the socket buffer.
            let _ = self.write_tls_out();
        }
    }
}

impl Transport {
    /// Wraps an accepted socket in a server-side TLS session; the handshake
    /// runs as the first reads and writes happen.
    pub fn tls(conn: ServerConnection, sock: TcpStream) -> Self {
        let mut conn = conn;
        conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Transport::Tls(Box::new(TlsStream { conn, sock, close_notify: Arc::new(AtomicBool::new(false)) }))
    }

    /// A switch that makes the end of this connection a clean TLS close
    /// (close_notify after what was written); `None` for plain TCP, where
    /// the FIN after the answer is already clean.
    pub fn clean_close(&self) -> Option<Arc<AtomicBool>> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(t) => Some(Arc::clone(&t.close_notify)),
        }
    }

    /// The socket, for poll registration and socket options.
    pub fn socket(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &mut t.sock,
        }
    }

    /// Makes the coming close reset the connection (RST) instead of shutting
    /// it down (FIN): `SO_LINGER` on with a zero timeout.
    pub fn set_reset_on_close(&mut self) -> io::Result<()> {
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        let fd = self.socket().as_raw_fd();
        let len = libc::socklen_t::try_from(std::mem::size_of::<libc::linger>()).unwrap_or(libc::socklen_t::MAX);
        // SAFETY: `fd` is an open socket owned by `self`; the option value
        // points to a live `linger` of the length passed.
        let rc = unsafe {
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, (&raw const linger).cast::<libc::c_void>(), len)
        };
        if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(t) => t.write_tls_out(),
        }
    }
}

impl TlsStream {
    /// Writes pending TLS records to the socket until none are left
    /// (`Ok`) or the socket is full (`WouldBlock`).
    fn write_tls_out(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Like [`Self::write_tls_out`], but a full socket is not an error: the
    /// records stay queued for the next writable event.
    fn write_tls_some(&mut self) -> io::Result<()> {
        match self.write_tls_out() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let processed = self.conn.process_new_packets();
            // Handshake messages and alerts the packets produced go out even
            // when processing failed: the alert tells the client why.
            self.write_tls_some()?;
            processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut n = self.conn.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            self.write_tls_out()?;
            n = self.conn.writer().write(buf)?;
        }
        self.write_tls_some()?;
        if n == 0 && !buf.is_empty() { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(n) }
    }
}
