//! The one error type of the simulator's public API.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::recording::RecordingError;

/// Why the simulator could not start, or stopped running.
///
/// Every message names what failed and, where there is one, the fix; network
/// errors of a single client are never fatal and never appear here (they are
/// counted in [`SimStats`](super::SimStats) instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    #[error("no market source: give recordings to replay, or ask for the synthetic walk")]
    NoSource,
    #[error("two market sources: replay recordings or run the synthetic walk, not both")]
    TwoSources,
    #[error("rate 0 frames/s would never send a frame; give a positive rate, `recorded` or `max`")]
    ZeroRate,
    #[error("ping interval and pong timeout must be longer than zero")]
    ZeroKeepalive,
    #[error("`garbage_every` is 0; give at least 1 (a malformed frame after every N data frames)")]
    ZeroGarbage,
    #[error("cannot listen on {addr}: {source} (is the port taken? use port 0 for any free port)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error("TLS: generating the test CA and server certificate failed: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS: building the server configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot write the CA certificate to {path}: {source}")]
    WriteCa {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`gap_every` is {0}; give at least 2 (one diff event in N is skipped; 1 would skip them all)")]
    GapEvery(u64),
    #[error("`snapshot_status` {0} is not an HTTP error status; give 400..=599 (e.g. 429, 418, 500)")]
    SnapshotStatus(u16),
    #[error("cannot create the request log {path}: {source}")]
    RequestLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the simulator's {thread} thread: {source}")]
    Thread {
        thread: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the simulator's network loop failed: {0}")]
    EventLoop(#[source] io::Error),
    #[error("the simulator's {thread} thread panicked")]
    Panicked { thread: &'static str },
    #[error("cannot install the SIGINT/SIGTERM handler: {0}")]
    Signals(#[source] io::Error),
    #[error("cannot write the `listening` line to stdout: {0}")]
    Stdout(#[source] io::Error),
}
