//! What the simulator has done so far, for tests to assert on and for the CLI
//! to report when it stops.

use std::collections::BTreeMap;

/// A consistent snapshot of the simulator's counters, taken by the network
/// thread between two loop iterations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// Connections currently open (handshaking, streaming or closing).
    pub connections_open: u64,
    /// Upgrades refused with an HTTP error (404 unknown path, 400 bad stream list).
    pub upgrades_refused: u64,
    /// Connections that failed or timed out before the WebSocket handshake completed.
    pub handshake_failures: u64,
    /// Text frames sent: data, request replies, `serverShutdown` events and garbage.
    pub frames_sent: u64,
    /// Data frames sent, by stream name, summed over clients.
    pub data_frames_by_stream: BTreeMap<String, u64>,
    /// Frames the market clock produced (for streams someone wanted).
    pub market_frames: u64,
    pub pings_sent: u64,
    pub pongs_received: u64,
    /// Clients dropped for leaving a ping unanswered past the pong timeout.
    pub dropped_no_pong: u64,
    /// Clients dropped for falling too far behind the market.
    pub dropped_slow: u64,
    /// Clients closed for breaking the WebSocket protocol.
    pub client_errors: u64,
    /// Clients that closed (Close frame) or vanished (EOF, reset).
    pub client_disconnects: u64,
    /// Requests (`SUBSCRIBE`, …) answered, errors included.
    pub requests_answered: u64,
    /// Connections reset by the `drop_after` fault.
    pub fault_resets: u64,
    /// `serverShutdown` events sent by the `shutdown_after` fault.
    pub fault_shutdowns: u64,
    /// Malformed frames sent by the `garbage_every` fault.
    pub fault_garbage: u64,
    /// Connections stalled by the `stall_after` fault.
    pub fault_stalls: u64,
    /// Diff-depth events skipped by the `gap_every` fault, summed over clients.
    pub fault_gaps: u64,
    /// REST connections served to the end: answered, or closed unanswered
    /// by `rest_down`.
    pub rest_requests: u64,
    /// The recording has been played to its end (never true when looping or synthetic).
    pub recording_finished: bool,
    /// Why the market stopped early (an unreadable recording), if it did.
    pub market_error: Option<String>,
}

impl SimStats {
    /// Data frames sent for one stream, summed over clients.
    pub fn data_frames(&self, stream: &str) -> u64 {
        self.data_frames_by_stream.get(stream).copied().unwrap_or(0)
    }

    /// Data frames sent for all streams.
    pub fn data_frames_total(&self) -> u64 {
        self.data_frames_by_stream.values().sum()
    }
}
