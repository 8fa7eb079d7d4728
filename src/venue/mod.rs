//! Venues: what differs between data sources, behind one interface.
//!
//! A venue names its streams and builds their URLs, decodes its messages
//! into venue-neutral book events (on the scanner in `crate::scan`), says
//! how its servers want to be connected to, and links a pair to its page.
//! Everything after the decoder (book stage, metrics, triggers, sinks) sees
//! only [`PairId`]s and [`BookEvent`]s. Binance Spot is the first venue; a
//! second (USD-M futures, SBE streams) is a sibling module implementing
//! [`Venue`], not a flag inside the first.

pub mod binance_spot;

use crate::book::event::EventScratch;
use crate::book::{Book, BookEvent};
use crate::feed::ConnectionRules;
use crate::pairs::{PairId, PairTable};
use crate::reject::RejectKind;

/// What a well-formed message turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// A book event for a configured pair; what it carries is in the
    /// decoder's book (the book stage's pending book).
    Book(PairId, BookEvent),
    /// The server announced that this connection will be closed soon.
    ServerShutdown,
    /// A reply to a request on this connection.
    Reply,
}

/// One connection group a venue asks for: the URL to open and the pairs
/// its streams carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamGroup {
    pub url: String,
    pub pairs: Vec<PairId>,
}

/// What differs per venue. Implementations are configured once at start-up
/// (the pairs and stream kind) and then only read; [`Venue::decode`] is the
/// hot path and must not allocate, panic, or read a price through `f64`.
pub trait Venue: std::fmt::Debug {
    /// Decodes one message. On `Ok(Message::Book(_, event))` the event is in
    /// `book` (a [`BookEvent::Snapshot`]) or in `events` (a diff or best
    /// bid/ask update); on any other result their content is unspecified
    /// (they are scratch space).
    fn decode(&self, bytes: &[u8], book: &mut Book, events: &mut EventScratch) -> Result<Message, RejectKind>;

    /// The pairs this venue serves, in config order.
    fn pair_table(&self) -> &PairTable;

    /// The connections to open from `ws_url`, each carrying at most
    /// `max_streams_per_connection` streams.
    fn stream_groups(&self, ws_url: &str, max_streams_per_connection: usize) -> Vec<StreamGroup>;

    /// How the venue's servers want to be connected to.
    fn connection_rules(&self) -> ConnectionRules;

    /// The venue's name as people know it, for "BTC/USDT on Binance".
    fn name(&self) -> &'static str;

    /// A symbol's base and quote asset (`BTCUSDT` → `BTC`, `USDT`), when the
    /// venue's naming tells them apart.
    fn split_symbol<'s>(&self, symbol: &'s str) -> Option<(&'s str, &'s str)>;

    /// A page about `symbol` for people, and its label (`BTC/USDT`).
    fn trade_link(&self, symbol: &str) -> (String, String);
}
