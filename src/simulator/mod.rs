//! A Binance Spot stream server on loopback (`imbalance-monitor simulate`).
//!
//! Binance is unreachable from development and CI machines, so every
//! end-to-end test, demo and latency benchmark runs against this simulator. It
//! speaks what `wss://stream.binance.com:9443` speaks, closely enough that a
//! client cannot tell the difference in the behaviours it must handle:
//!
//! * **Endpoints**: `/stream?streams=a/b` (combined: `{"stream":…,"data":…}`),
//!   `/ws/<stream>` and `/ws` (the payload alone); unknown paths are refused
//!   with HTTP 404 during the upgrade, malformed stream lists with 400.
//! * **Requests**: `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`,
//!   `SET_PROPERTY`/`GET_PROPERTY combined`, answered in Binance's shapes,
//!   error objects included.
//! * **Market**: one clock broadcasts to everyone, like the exchange: a client
//!   gets a stream's frames from the moment it subscribes, and two
//!   connections get the same frames at the same time. Recorded frames are
//!   forwarded byte-for-byte; the synthetic walk serves any partial-depth
//!   stream. A client that falls too far behind is dropped, never waited for
//!   (except at [`Rate::Max`], which is paced by the sockets by definition).
//! * **Keepalive**: pings every 20 s, drops a client whose pong has not come
//!   back within 60 s (both configurable), answers client pings, closes per
//!   RFC 6455.
//! * **TLS**: a per-run CA and `localhost`/`127.0.0.1` certificate, the CA
//!   written as PEM for the client's `binance.ca_file`.
//! * **Faults**: TCP reset, `serverShutdown`, malformed frames, a stalled
//!   feed, each after a number of data frames per connection.
//!
//! # Threads
//!
//! Two. The *market* thread owns the source and the pacing schedule and hands
//! frames, serialised once and shared by reference count, to the *network*
//! thread in small batches over a bounded channel, waking its poll. The
//! network thread is one edge-triggered mio loop that owns every socket: it
//! accepts, drives each connection's state machine, fans frames out to
//! per-client bounded queues, writes, and runs the keepalive and fault
//! timers. [`RunningSimulator`] talks to it over a command channel.

mod connection;
mod depth;
mod error;
mod faults;
mod frame;
mod http;
mod keepalive;
mod lifecycle;
mod market;
mod options;
mod recorded;
mod requests;
mod rest;
mod route;
mod server;
mod session;
mod stats;
mod streams;
mod subscriptions;
mod synthetic;
mod tls;
mod transport;

use std::time::{Duration, Instant};

pub use error::SimError;
pub use lifecycle::{RunningSimulator, Simulator, listening_line, run};
pub use options::{Rate, SimOptions};
pub use rest::{RestRequest, SnapshotStatus};
pub use stats::SimStats;

/// How long a client may hold the market back at [`Rate::Max`] (its queue
/// full, taking nothing) before it is dropped as too slow.
pub const MAX_RATE_STALL: Duration = Duration::from_secs(2);

/// `now + wait`, saturating at a year ahead: a huge configured duration
/// means "not in this run", never an `Instant` overflow panic.
fn deadline(now: Instant, wait: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    now.checked_add(wait.min(FAR)).unwrap_or(now)
}
