//! A Binance Spot stream and depth-snapshot server on loopback (`imbalance-monitor simulate`).
//!
//! Binance is unreachable from development and CI machines, so every
//! end-to-end test, demo and latency benchmark runs against this simulator. It
//! speaks what `wss://stream.binance.com:9443` speaks, closely enough that a
//! client cannot tell the difference in the behaviours it must handle:
//!
//! * **Endpoints**: `/stream?streams=a/b` (combined: `{"stream":…,"data":…}`),
//!   `/ws/<stream>` and `/ws` (the payload alone); unknown paths are refused
//!   with HTTP 404 during the upgrade, malformed stream lists with 400.
//! * **REST on the same port** (plain HTTP/1.1, or HTTPS with `tls`: the
//!   client's `binance.rest_url` is [`RunningSimulator::rest_url`]): every
//!   connection's request head is read first, and a head with an `Upgrade`
//!   header goes on to the WebSocket handshake while any other request is
//!   answered as REST and closed. `GET /api/v3/depth?symbol=…&limit=…`
//!   answers Binance's `{"lastUpdateId":…,"bids":…,"asks":…}` (best first, 8
//!   decimals, `limit` 1..=5000, default 100, larger gives 5000), with
//!   `X-MBX-USED-WEIGHT-1M` (5/25/50/250 by limit, summed per clock minute)
//!   and Binance's error objects (`-1121 Invalid symbol.`, `-1100`, `-1102`,
//!   `-1130`); other paths are 404.
//! * **Requests**: `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`,
//!   `SET_PROPERTY`/`GET_PROPERTY combined`, answered in Binance's shapes,
//!   error objects included.
//! * **Market**: one clock broadcasts to everyone, like the exchange: a client
//!   gets a stream's frames from the moment it subscribes, and two
//!   connections get the same frames at the same time. Recorded frames
//!   (`@depth@100ms` diffs, `@bookTicker`, `@trade`, partial depth, anything
//!   else recorded) are forwarded byte-for-byte; the synthetic walk serves any
//!   partial-depth stream. A client that falls too far behind is dropped,
//!   never waited for (except at [`Rate::Max`], which is paced by the sockets
//!   by definition).
//! * **Books**: the market keeps its own book per symbol (a `BTreeMap` of
//!   exact units, independent of the client's book code), seeded by the
//!   recording's bare REST snapshot line (`{"lastUpdateId":…}`, which belongs
//!   to its file's one symbol and is never sent as a frame) and moved by every
//!   diff event the clock passes, sent to anyone or not. A depth request is
//!   answered from it at the clock's position, after every frame already
//!   released; before the clock has passed the snapshot line the book is not
//!   known, and the answer is that snapshot as recorded (older than the
//!   client's first event or newer: either way Binance's procedure copes).
//! * **Derived `<sym>@depth`** (1000 ms): the recordings hold only the 100 ms
//!   diffs, so each ten consecutive 100 ms events (counted from the
//!   recording's first) are merged into one: `U` of the first, `u` and `E` of
//!   the last, each price's last change, best first. It is released with the
//!   tenth event. A recording that holds `<sym>@depth` itself is forwarded
//!   instead.
//! * **Keepalive**: pings every 20 s, drops a client whose pong has not come
//!   back within 60 s (both configurable), answers client pings, closes per
//!   RFC 6455.
//! * **TLS**: a per-run CA and `localhost`/`127.0.0.1` certificate, the CA
//!   written as PEM for the client's `binance.ca_file`.
//! * **Faults**: TCP reset, `serverShutdown`, malformed frames, a stalled
//!   feed, each after a number of data frames per connection; every N-th diff
//!   event of a connection skipped (`gap_every`: the client sees a `U`/`u`
//!   gap); the first COUNT depth requests answered with 429/418/5xx and
//!   `Retry-After` (`snapshot_status`); each depth answer held back
//!   (`snapshot_delay`, on the connection's own timer: the streams go on);
//!   the REST side down (`rest_down`: closed unanswered).
//! * **Request log**: every REST request (receive time, path and query,
//!   status) for tests to assert a client's pacing on
//!   ([`RunningSimulator::requests`], and `request_log` as a file).
//!
//! # Threads
//!
//! Two. The *market* thread owns the source, its books and the pacing
//! schedule, and hands frames, serialised once and shared by reference
//! count, to the *network* thread in small batches over a bounded channel,
//! waking its poll; it answers snapshot queries on the same channel, in order
//! with the frames. The network thread is one edge-triggered mio loop that
//! owns every socket: it accepts, drives each connection's state machine
//! (REST exchanges included), fans frames out to per-client bounded queues,
//! writes, and runs the keepalive, fault and delayed-answer timers.
//! [`RunningSimulator`] talks to it over a command channel.

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
