//! `check-config` output: the effective configuration as TOML, every key
//! with the value in force (defaults, environment overrides, the shorthand
//! and per-pair overrides all applied), secrets shown as `<redacted>`.

use std::fmt::Write as _;

use super::Config;
use super::telegram::{ChatId, ParseMode};
use crate::exact::Decimal;

/// A TOML string literal.
pub(super) fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    crate::sanitize::json_str(&mut out, s);
    out
}

fn dec(d: Decimal) -> String {
    let mut s = String::new();
    if d.negative() && d.mag() != 0 {
        s.push('-');
    }
    let _ = crate::units::write_decimal(&mut s, u128::from(d.mag()), d.scale());
    s
}

impl Config {
    /// The effective configuration, as TOML a person can read.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let w = &mut s;
        let _ = writeln!(w, "# Effective configuration of {} (defaults, environment,", self.path.display());
        let _ = writeln!(w, "# `threshold` and `pair_overrides` applied; one trigger entry per pair group).");
        let pairs: Vec<String> = self.pairs.iter().map(|p| q(p)).collect();
        let _ = writeln!(w, "pairs = [{}]\n", pairs.join(", "));

        let b = &self.binance;
        let _ = writeln!(w, "[binance]");
        let _ = writeln!(w, "ws_url = {}", q(&b.ws_url));
        let _ = writeln!(w, "depth = {}", b.stream.depth.levels());
        let _ = writeln!(w, "update_ms = {}", b.stream.speed.millis());
        match &b.ca_file {
            Some(p) => writeln!(w, "ca_file = {}", q(&p.display().to_string())),
            None => writeln!(w, "# ca_file: not set (webpki roots only)"),
        }
        .ok();
        let _ = writeln!(w, "max_streams_per_connection = {}", b.max_streams_per_connection);
        let _ = writeln!(w, "stale_after_ms = {}", b.stale_after.as_millis());
        let _ = writeln!(w, "max_connection_age_sec = {}\n", b.max_connection_age.as_secs());

        let _ = writeln!(w, "[metrics]");
        let _ = writeln!(w, "volume_mode = {}", q(self.volume.mode.as_str()));
        let _ = writeln!(w, "top_n = {}", self.volume.top_n);
        let _ = writeln!(w, "log_metrics = {}", self.log_metrics);
        let _ = writeln!(w, "decay = {}", self.decay);
        let _ = writeln!(w, "ofi_window = {}\n", self.ofi_window);

        for (i, t) in self.triggers.iter().enumerate() {
            let _ = writeln!(w, "[[triggers]]");
            let _ = writeln!(w, "name = {}", q(&t.name));
            if t.extra.is_empty() {
                let _ = writeln!(w, "metric = {}", q(t.metric.as_str()));
                let _ = writeln!(w, "op = {}", q(t.op.as_str()));
                let _ = writeln!(w, "value = {}", t.value);
            } else {
                let conds: Vec<String> = t
                    .conditions()
                    .map(|c| {
                        format!(
                            "{{ metric = {}, op = {}, value = {} }}",
                            q(c.metric.as_str()),
                            q(c.op.as_str()),
                            c.value
                        )
                    })
                    .collect();
                let _ = writeln!(w, "all = [{}]", conds.join(", "));
            }
            let _ = writeln!(w, "cooldown_sec = {}", t.cooldown_ns as f64 / 1e9);
            let _ = writeln!(w, "emit = {}", q(t.emit.as_str()));
            match &t.pairs {
                Some(ids) => {
                    let names: Vec<String> =
                        ids.iter().filter_map(|id| self.pairs.get(id.index())).map(|p| q(p)).collect();
                    writeln!(w, "pairs = [{}]", names.join(", "))
                }
                None => writeln!(w, "# pairs: all"),
            }
            .ok();
            if let Some(r) = t.rearm {
                let _ = writeln!(w, "rearm = {}", dec(r));
            }
            if t.sustain_ns > 0 {
                let _ = writeln!(w, "sustain_ms = {}", t.sustain_ns / 1_000_000);
            }
            if let Some(v) = t.min_volume {
                let mut s = String::new();
                let _ = crate::units::write_decimal(&mut s, v, self.volume.mode.frac_digits());
                let _ = writeln!(w, "min_volume = {s}");
            }
            if let Some(m) = t.max_spread_bps {
                let _ = writeln!(w, "max_spread_bps = {}", dec(m));
            }
            match self.directions.get(i).copied().flatten() {
                Some(d) => writeln!(w, "direction = {}", q(d.as_str())),
                None => writeln!(w, "# direction: none (set `direction` to evaluate this trigger)"),
            }
            .ok();
            w.push('\n');
        }

        let _ = writeln!(w, "[alerts]");
        let _ = writeln!(w, "journal = {}\n", q(&self.alerts.journal.display().to_string()));

        let r = &self.runtime;
        let _ = writeln!(w, "[runtime]");
        match r.hot_core {
            Some(c) => writeln!(w, "hot_core = {c}"),
            None => writeln!(w, "# hot_core: not set (hot thread not pinned)"),
        }
        .ok();
        let _ = writeln!(w, "busy_poll = {}", r.busy_poll);
        let _ = writeln!(w, "shutdown_grace_sec = {}", r.shutdown_grace.as_secs_f64());
        let _ = writeln!(w, "channel_capacity = {}", r.channel_capacity);
        let _ = writeln!(w, "stats_interval_sec = {}\n", r.stats_interval.as_secs());

        let _ = writeln!(w, "[metrics_http]");
        match &self.metrics_http {
            Some(addr) => writeln!(w, "listen = {}\n", q(addr)),
            None => writeln!(w, "# listen: not set (endpoint off)\n"),
        }
        .ok();

        let t = &self.telegram;
        let _ = writeln!(w, "[telegram]");
        let _ = writeln!(w, "enabled = {}", t.enabled);
        match &t.bot_token {
            Some(_) => writeln!(w, "bot_token = \"<redacted>\""),
            None => writeln!(w, "# bot_token: not set"),
        }
        .ok();
        let chats: Vec<String> = t
            .chat_ids
            .iter()
            .map(|c| match c {
                ChatId::Id(id) => id.to_string(),
                ChatId::Username(name) => q(name),
            })
            .collect();
        let _ = writeln!(w, "chat_ids = [{}]", chats.join(", "));
        let _ = writeln!(w, "api_base = {}", q(&t.api_base));
        let _ = writeln!(w, "parse_mode = {}", q(if t.parse_mode == ParseMode::Html { "HTML" } else { "none" }));
        let _ = writeln!(w, "disable_notification = {}", t.disable_notification);
        if let Some(id) = t.message_thread_id {
            let _ = writeln!(w, "message_thread_id = {id}");
        }
        let _ = writeln!(w, "timeout_ms = {}", t.timeout.as_millis());
        let _ = writeln!(w, "connect_timeout_ms = {}", t.connect_timeout.as_millis());
        let _ = writeln!(w, "max_attempts = {}", t.max_attempts);
        let _ = writeln!(w, "max_retry_after_sec = {}", t.max_retry_after.as_secs());
        let _ = writeln!(w, "max_pending = {}\n", t.max_pending);

        if let Some(h) = &self.history {
            super::history::render(h, w);
        }

        let _ = writeln!(w, "[log]");
        let _ = writeln!(w, "file = {}", q(&self.log.file.display().to_string()));
        let _ = writeln!(w, "level = {}", q(&self.log.level.to_string().to_ascii_lowercase()));
        let _ = writeln!(w, "max_size_mb = {}", self.log.rotation.max_bytes.map_or(0, |b| b >> 20));
        let _ = writeln!(w, "keep_files = {}", self.log.rotation.keep_files);
        s
    }
}
