//! Injected faults, counted per connection in data frames sent to it.

/// The faults every connection gets (each on its own count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub drop_after: Option<u64>,
    pub shutdown_after: Option<u64>,
    pub garbage_every: Option<u64>,
    pub stall_after: Option<u64>,
}

/// What a connection must do once it has sent `sent` data frames, in this
/// order: garbage, then the shutdown event, then stop data (stall or reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Send one malformed text frame now.
    pub garbage: bool,
    /// Send the `serverShutdown` event now and start the grace period.
    pub announce_shutdown: bool,
    /// Send no more data frames; keep the connection and its pings.
    pub stall: bool,
    /// Send no more data frames; reset the TCP connection once what was sent
    /// has left the socket.
    pub reset: bool,
}

impl FaultPlan {
    /// The faults due after the `sent`-th data frame; also asked with
    /// `sent = 0` when the connection opens, so a count of 0 acts at once.
    pub fn due(&self, sent: u64) -> Due {
        Due {
            garbage: sent > 0 && self.garbage_every.is_some_and(|n| n > 0 && sent.is_multiple_of(n)),
            announce_shutdown: self.shutdown_after == Some(sent),
            stall: self.stall_after == Some(sent),
            reset: self.drop_after == Some(sent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fault_falls_due_on_its_own_count() {
        let plan =
            FaultPlan { drop_after: Some(7), shutdown_after: Some(2), garbage_every: Some(3), stall_after: Some(5) };
        assert_eq!(plan.due(0), Due::default());
        assert_eq!(plan.due(2), Due { announce_shutdown: true, ..Due::default() });
        assert_eq!(plan.due(3), Due { garbage: true, ..Due::default() });
        assert_eq!(plan.due(5), Due { stall: true, ..Due::default() });
        assert_eq!(plan.due(6), Due { garbage: true, ..Due::default() });
        assert_eq!(plan.due(7), Due { reset: true, ..Due::default() });
        assert!(FaultPlan { stall_after: Some(0), ..FaultPlan::default() }.due(0).stall);
    }
}
