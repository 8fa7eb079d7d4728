//! Who listens to which stream: the fan-out table of the network thread, and
//! the source of the market's `Want`/`Unwant` messages.

use crossbeam_channel::Sender;
use mio::Token;

use super::market::MarketCtl;
use super::streams::{StreamId, StreamNames};

/// Subscribers per stream, indexed by [`StreamId`], plus per-stream sent
/// counters. Owned by the network thread alone.
pub struct Subscriptions {
    names: StreamNames,
    by_stream: Vec<Vec<Token>>,
    sent: Vec<u64>,
    /// Connections subscribed to at least one stream.
    subscribed_connections: usize,
    market: Sender<MarketCtl>,
}

impl Subscriptions {
    pub fn new(names: StreamNames, market: Sender<MarketCtl>) -> Self {
        Subscriptions { names, by_stream: Vec::new(), sent: Vec::new(), subscribed_connections: 0, market }
    }

    /// The interned id of `name`.
    pub fn id(&mut self, name: &str) -> StreamId {
        let id = self.names.intern(name);
        if self.by_stream.len() <= id.index() {
            self.by_stream.resize_with(id.index() + 1, Vec::new);
            self.sent.resize(id.index() + 1, 0);
        }
        id
    }

    /// The name of an interned stream.
    pub fn name(&self, id: StreamId) -> std::sync::Arc<str> {
        self.names.name(id)
    }

    /// Adds `token` to `id`'s subscribers; the market hears of a stream's
    /// first subscriber.
    pub fn add(&mut self, token: Token, id: StreamId) {
        let Some(list) = self.by_stream.get_mut(id.index()) else { return };
        if !list.contains(&token) {
            list.push(token);
            if list.len() == 1 {
                let _ = self.market.send(MarketCtl::Want(id));
            }
        }
    }

    /// Removes `token` from `id`'s subscribers; the market hears of a
    /// stream's last subscriber leaving.
    pub fn remove(&mut self, token: Token, id: StreamId) {
        let Some(list) = self.by_stream.get_mut(id.index()) else { return };
        if let Some(pos) = list.iter().position(|&t| t == token) {
            list.swap_remove(pos);
            if list.is_empty() {
                let _ = self.market.send(MarketCtl::Unwant(id));
            }
        }
    }

    /// A connection went from no streams to some (`true`) or back.
    pub fn connection_subscribed(&mut self, subscribed: bool) {
        if subscribed {
            self.subscribed_connections += 1;
        } else {
            self.subscribed_connections = self.subscribed_connections.saturating_sub(1);
        }
        let _ = self.market.send(MarketCtl::Subscribers(self.subscribed_connections));
    }

    /// Everyone subscribed to `id`.
    pub fn subscribers(&self, id: StreamId) -> &[Token] {
        self.by_stream.get(id.index()).map_or(&[], Vec::as_slice)
    }

    /// Counts a data frame of `id` sent to one client.
    pub fn count_sent(&mut self, id: StreamId) {
        if let Some(n) = self.sent.get_mut(id.index()) {
            *n += 1;
        }
    }

    /// Data frames sent per stream name, for stats.
    pub fn sent_by_name(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.sent
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(i, &n)| (self.names.name(StreamId(u32::try_from(i).unwrap_or(u32::MAX))).to_string(), n))
    }
}
