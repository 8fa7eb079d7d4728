//! Message text: what a person reads on their phone when an alert fires.
//!
//! Every message is built once as a list of spans and rendered twice: as
//! Telegram HTML (`&`, `<`, `>` escaped) and as plain text, the fallback when
//! Telegram cannot parse the markup. Lengths are counted in UTF-16 code units
//! of the HTML source, which is never less than what Telegram counts after
//! parsing, so a message within [`MAX_LEN`] is never "too long".

use std::fmt::Write as _;

use crate::sinks::AlertView;
use crate::triggers::Op;
use crate::units::{FRAC_DIGITS, VolumeMode, write_decimal};

/// Telegram's limit on a message's text.
pub(crate) const MAX_LEN: usize = 4096;

/// A message in both renderings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Text {
    pub html: String,
    pub plain: String,
}

/// A piece of a message.
enum Span {
    Text(String),
    Bold(String),
    Link { url: String, label: String },
}

/// Spans rendered to both forms at once.
#[derive(Default)]
struct Builder {
    html: String,
    plain: String,
}

impl Builder {
    fn push(&mut self, span: Span) {
        match span {
            Span::Text(t) => {
                escape_into(&mut self.html, &t);
                self.plain.push_str(&t);
            }
            Span::Bold(t) => {
                self.html.push_str("<b>");
                escape_into(&mut self.html, &t);
                self.html.push_str("</b>");
                self.plain.push_str(&t);
            }
            Span::Link { url, label } => {
                self.html.push_str("<a href=\"");
                escape_into(&mut self.html, &url);
                self.html.push_str("\">");
                escape_into(&mut self.html, &label);
                self.html.push_str("</a>");
                let _ = write!(self.plain, "{label}: {url}");
            }
        }
    }

    fn line(&mut self, spans: impl IntoIterator<Item = Span>) {
        if !self.html.is_empty() {
            self.html.push('\n');
            self.plain.push('\n');
        }
        for s in spans {
            self.push(s);
        }
    }

    fn finish(self) -> Text {
        Text { html: truncate_html(&self.html, MAX_LEN), plain: truncate_plain(&self.plain, MAX_LEN) }
    }
}

fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

fn bold(s: impl Into<String>) -> Span {
    Span::Bold(s.into())
}

/// The full message for one alert.
pub(crate) fn single(view: &AlertView<'_>) -> Text {
    let a = view.alert;
    let (emoji, pressure) = direction(view);
    let split = view.venue.split_symbol(view.pair);
    let mut b = Builder::default();
    b.line([text(format!("{emoji} ")), bold(format!("{pressure} · {}", view.pair))]);
    b.line([bold(view.trigger_name()), text(format!(": {}", condition(view)))]);
    let unit = match (view.volume.mode, split) {
        (VolumeMode::Notional, Some((_, quote))) => format!(" {quote}"),
        (VolumeMode::Qty, Some((base, _))) => format!(" {base}"),
        (_, None) => String::new(),
    };
    b.line([text(format!(
        "Bids {}{unit} vs asks {}{unit} ({}, top {})",
        volume(a.bid_volume.raw, view.volume.mode),
        volume(a.ask_volume.raw, view.volume.mode),
        view.volume.mode,
        view.volume.top_n
    ))]);
    b.line([text(book_line(view))]);
    b.line([text(format!("{} UTC", timestamp(view)))]);
    let (url, label) = view.venue.trade_link(view.pair);
    b.line([Span::Link { url, label: format!("{label} on {}", view.venue.name()) }]);
    b.finish()
}

/// One message for several alerts of one chat, oldest first: a header
/// (`3 alerts:`) and one compact line per alert, as many as fit. `waiting`
/// is how many alerts wait in all (at least `views.len()`); those that do
/// not fit are announced as `… and N more follow`. Returns the text and how
/// many of `views` it carries.
pub(crate) fn coalesced(views: &[AlertView<'_>], waiting: usize) -> (Text, usize) {
    // Room for the header and the footer, whatever their numbers.
    const RESERVE: usize = 64;
    let mut lines: Vec<Builder> = Vec::new();
    let mut used = RESERVE;
    for view in views {
        let mut line = Builder::default();
        line.line(compact(view));
        let len = tg_len(&line.html).max(tg_len(&line.plain)) + 1;
        if used + len > MAX_LEN && !lines.is_empty() {
            break;
        }
        used += len;
        lines.push(line);
    }
    let n = lines.len();
    let mut b = Builder::default();
    b.line([bold(format!("{n} alerts:"))]);
    for line in lines {
        b.html.push('\n');
        b.html.push_str(&line.html);
        b.plain.push('\n');
        b.plain.push_str(&line.plain);
    }
    if waiting > n {
        b.line([text(format!("… and {} more follow", waiting - n))]);
    }
    (b.finish(), n)
}

/// The message `imbalance-monitor telegram-test` sends.
pub(crate) fn test_message(bot: &str) -> Text {
    let mut b = Builder::default();
    b.line([text("✅ "), bold("imbalance-monitor"), text(format!(" test message from {bot}"))]);
    b.line([text("Alerts will arrive in this chat.")]);
    b.finish()
}

/// 🟢 buy / 🔴 sell pressure, from the trigger's op: `>`/`>=` watch for
/// bids outweighing asks, `<`/`<=` for the opposite.
fn direction(view: &AlertView<'_>) -> (&'static str, &'static str) {
    match view.trigger.map(|t| t.op) {
        Some(Op::Gt | Op::Ge) => ("🟢", "Buy pressure"),
        Some(Op::Lt | Op::Le) => ("🔴", "Sell pressure"),
        None => ("⚪", "Imbalance"),
    }
}

/// `imbalance_ratio 0.2859 ≥ 0.25`
fn condition(view: &AlertView<'_>) -> String {
    match view.trigger {
        Some(t) => format!("{} {:.4} {} {}", t.metric.as_str(), view.alert.value_f64(), op_symbol(t.op), t.value),
        None => format!("value {:.4}", view.alert.value_f64()),
    }
}

fn op_symbol(op: Op) -> &'static str {
    match op {
        Op::Gt => ">",
        Op::Ge => "≥",
        Op::Lt => "<",
        Op::Le => "≤",
    }
}

/// `🟢 BTCUSDT imbalance_buy_strong 0.2859 ≥ 0.25 · bid 61837.63 ask 61837.64 · 23:54:14.137 UTC`
fn compact(view: &AlertView<'_>) -> Vec<Span> {
    let (emoji, _) = direction(view);
    let a = view.alert;
    let cond = match view.trigger {
        Some(t) => format!("{:.4} {} {}", a.value_f64(), op_symbol(t.op), t.value),
        None => format!("{:.4}", a.value_f64()),
    };
    let time = timestamp(view);
    vec![
        text(format!("{emoji} ")),
        bold(view.pair),
        text(format!(
            " {} {cond} · bid {} ask {} · {} UTC",
            view.trigger_name(),
            price(a.best_bid),
            price(a.best_ask),
            time.get(11..).unwrap_or(&time)
        )),
    ]
}

/// `Best bid 61837.63 · ask 61837.64 · spread 0.01 (0.0016 bps)`
fn book_line(view: &AlertView<'_>) -> String {
    let a = view.alert;
    let mut s = format!("Best bid {} · ask {}", price(a.best_bid), price(a.best_ask));
    if let (Some(bid), Some(ask)) = (a.best_bid, a.best_ask) {
        let diff = i128::from(ask.0) - i128::from(bid.0);
        let mut abs = String::new();
        let _ = write_decimal(&mut abs, diff.unsigned_abs(), FRAC_DIGITS);
        let sign = if diff < 0 { "-" } else { "" };
        let mid = (bid.0 as f64 + ask.0 as f64) / 2.0;
        let bps = if mid > 0.0 { diff as f64 / mid * 10_000.0 } else { 0.0 };
        let _ = write!(s, " · spread {sign}{abs} ({} bps)", bps_text(bps));
    }
    s
}

/// Basis points with the precision a spread that size needs.
fn bps_text(bps: f64) -> String {
    match bps.abs() {
        x if x >= 10.0 => format!("{bps:.1}"),
        x if x >= 1.0 => format!("{bps:.2}"),
        _ => format!("{bps:.4}"),
    }
}

fn price(p: Option<crate::units::Price>) -> String {
    p.map_or_else(|| "-".into(), |p| p.to_string())
}

/// `2024-08-08 23:54:14.137` (UTC, milliseconds).
fn timestamp(view: &AlertView<'_>) -> String {
    let full = view.alert.recv.to_string();
    full.get(..23).unwrap_or(&full).replacen('T', " ", 1)
}

/// A side volume for people: notional rounded to cents, quantities exact,
/// thousands grouped (`762,596.00`).
fn volume(raw: u128, mode: VolumeMode) -> String {
    let digits = mode.frac_digits();
    let (int, frac) = match mode {
        VolumeMode::Notional => {
            let cents = (raw + 10u128.pow(digits - 2) / 2) / 10u128.pow(digits - 2);
            (cents / 100, format!(".{:02}", cents % 100))
        }
        VolumeMode::Qty => {
            let mut exact = String::new();
            let _ = write_decimal(&mut exact, raw % 10u128.pow(digits), digits);
            (raw / 10u128.pow(digits), exact.trim_start_matches('0').to_string())
        }
    };
    let digits = int.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + frac.len());
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped + &frac
}

/// Escapes the characters Telegram's HTML parser treats specially.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Length as Telegram counts it: UTF-16 code units.
pub(crate) fn tg_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `s` cut to at most `limit` (UTF-16 units) with `…` appended, on a char
/// boundary.
fn truncate_plain(s: &str, limit: usize) -> String {
    if tg_len(s) <= limit {
        return s.to_string();
    }
    let mut used = 1; // the ellipsis
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if used + c.len_utf16() > limit {
            break;
        }
        used += c.len_utf16();
        end = i + c.len_utf8();
    }
    format!("{}…", &s[..end])
}

/// HTML `s` cut to at most `limit` (UTF-16 units of the source): never
/// inside a tag or an entity (`&amp;`), with `…` and the closing tags of
/// every element left open appended, so Telegram still parses it.
fn truncate_html(s: &str, limit: usize) -> String {
    if tg_len(s) <= limit {
        return s.to_string();
    }
    let mut open: Vec<&str> = Vec::new();
    let mut best: (usize, Vec<&str>) = (0, Vec::new());
    let mut used = 0;
    let mut pos = 0;
    while pos < s.len() {
        let closers: usize = open.iter().map(|name| name.len() + 3).sum();
        if used + 1 + closers <= limit {
            best = (pos, open.clone());
        }
        let rest = &s[pos..];
        let token_len = match rest.as_bytes()[0] {
            b'<' => rest.find('>').map_or(rest.len(), |i| i + 1),
            b'&' => rest.find(';').map_or(1, |i| i + 1),
            _ => rest.chars().next().map_or(1, char::len_utf8),
        };
        let token = &rest[..token_len];
        if let Some(tag) = token.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
            if let Some(name) = tag.strip_prefix('/') {
                if open.last() == Some(&name.trim()) {
                    open.pop();
                }
            } else if !tag.ends_with('/') {
                open.push(tag.split_whitespace().next().unwrap_or(tag));
            }
        }
        used += tg_len(token);
        pos += token_len;
        if used > limit {
            break;
        }
    }
    let (cut, open) = best;
    let mut out = String::with_capacity(limit);
    out.push_str(&s[..cut]);
    out.push('…');
    for name in open.iter().rev() {
        let _ = write!(out, "</{name}>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alert;
    use crate::metrics::VolumeSpec;
    use crate::sinks::Catalog;
    use crate::triggers::{Emit, MetricKind, TriggerSpec};
    use crate::units::Volume;
    use crate::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed};

    fn catalog(pairs: &[&str]) -> Catalog {
        let trigger = |name: &str, op, value: f64| {
            TriggerSpec::simple(name, MetricKind::ImbalanceRatio, op, value, 0, Emit::Edge)
        };
        let pairs: Vec<String> = pairs.iter().map(|p| p.to_string()).collect();
        Catalog {
            streams: StreamTable::new(&pairs, StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 }),
            triggers: vec![
                trigger("imbalance_buy_strong", Op::Ge, 0.25),
                trigger("imbalance_sell_strong", Op::Le, -0.25),
            ],
            volume: VolumeSpec { mode: VolumeMode::Notional, top_n: 10 },
        }
    }

    fn alert(trigger: u16, value: f64) -> Alert {
        crate::sinks::sample_alert(trigger, crate::exact::Decimal::from_f64(value).unwrap().into())
    }

    #[test]
    fn a_buy_alert_reads_at_a_glance() {
        let c = catalog(&["BTCUSDT"]);
        let a = alert(0, 0.2859281);
        let t = single(&c.view(&a));
        assert_eq!(
            t.html,
            "🟢 <b>Buy pressure · BTCUSDT</b>\n\
             <b>imbalance_buy_strong</b>: imbalance_ratio 0.2859 ≥ 0.25\n\
             Bids 762,596.00 USDT vs asks 423,467.34 USDT (notional, top 10)\n\
             Best bid 61837.63 · ask 61837.64 · spread 0.01 (0.0016 bps)\n\
             2024-08-08 23:54:14.137 UTC\n\
             <a href=\"https://www.binance.com/en/trade/BTC_USDT?type=spot\">BTC/USDT on Binance</a>"
        );
        assert_eq!(
            t.plain,
            "🟢 Buy pressure · BTCUSDT\n\
             imbalance_buy_strong: imbalance_ratio 0.2859 ≥ 0.25\n\
             Bids 762,596.00 USDT vs asks 423,467.34 USDT (notional, top 10)\n\
             Best bid 61837.63 · ask 61837.64 · spread 0.01 (0.0016 bps)\n\
             2024-08-08 23:54:14.137 UTC\n\
             BTC/USDT on Binance: https://www.binance.com/en/trade/BTC_USDT?type=spot"
        );
    }

    #[test]
    fn a_sell_alert_is_red_and_quantities_are_in_the_base_asset() {
        let mut c = catalog(&["ETHBTC"]);
        c.volume.mode = VolumeMode::Qty;
        let mut a = alert(1, -0.30126);
        a.bid_volume = Volume { raw: 1_234_567_800_000, mode: VolumeMode::Qty };
        a.ask_volume = Volume { raw: 378_826_000, mode: VolumeMode::Qty };
        a.best_ask = None;
        let t = single(&c.view(&a));
        assert!(t.html.starts_with("🔴 <b>Sell pressure · ETHBTC</b>\n"), "{}", t.html);
        assert!(t.html.contains("imbalance_ratio -0.3013 ≤ -0.25"), "{}", t.html);
        assert!(t.html.contains("Bids 12,345.678 ETH vs asks 3.78826 ETH (qty, top 10)"), "{}", t.html);
        assert!(t.html.contains("Best bid 61837.63 · ask -\n"), "{}", t.html);
        assert!(t.html.contains("/trade/ETH_BTC?type=spot\">ETH/BTC on Binance"), "{}", t.html);
    }

    #[test]
    fn html_special_characters_are_escaped() {
        let mut c = catalog(&["BTCUSDT"]);
        c.triggers[0].name = "a<b>&\"c".into();
        let a = alert(0, 0.3);
        let t = single(&c.view(&a));
        assert!(t.html.contains("<b>a&lt;b&gt;&amp;&quot;c</b>"), "{}", t.html);
        assert!(t.plain.contains("a<b>&\"c: "), "{}", t.plain);
    }

    #[test]
    fn a_burst_coalesces_in_order_and_announces_what_did_not_fit() {
        let c = catalog(&["BTCUSDT"]);
        let alerts: Vec<Alert> = (0..200).map(|i| alert((i % 2) as u16, 0.3 + i as f64 / 10_000.0)).collect();
        let views: Vec<AlertView<'_>> = alerts.iter().map(|a| c.view(a)).collect();
        let (t, n) = coalesced(&views[..3], 3);
        assert_eq!(n, 3);
        assert_eq!(
            t.html,
            "<b>3 alerts:</b>\n\
             🟢 <b>BTCUSDT</b> imbalance_buy_strong 0.3000 ≥ 0.25 · bid 61837.63 ask 61837.64 · 23:54:14.137 UTC\n\
             🔴 <b>BTCUSDT</b> imbalance_sell_strong 0.3001 ≤ -0.25 · bid 61837.63 ask 61837.64 · 23:54:14.137 UTC\n\
             🟢 <b>BTCUSDT</b> imbalance_buy_strong 0.3002 ≥ 0.25 · bid 61837.63 ask 61837.64 · 23:54:14.137 UTC"
        );
        let (t, n) = coalesced(&views, 250);
        assert!(n > 10 && n < 200, "{n}");
        assert!(tg_len(&t.html) <= MAX_LEN && tg_len(&t.plain) <= MAX_LEN);
        assert!(t.html.starts_with(&format!("<b>{n} alerts:</b>\n")));
        assert!(t.html.ends_with(&format!("\n… and {} more follow", 250 - n)), "{}", t.html);
        assert!(t.html.contains(&format!("{:.4}", 0.3 + (n - 1) as f64 / 10_000.0)));
    }

    #[test]
    fn truncation_never_cuts_a_tag_or_an_entity_and_closes_what_is_open() {
        let s = format!("<b>{}&amp;tail</b>", "x".repeat(10));
        for limit in 5..tg_len(&s) {
            let t = truncate_html(&s, limit);
            assert!(tg_len(&t) <= limit, "{limit}: {t}");
            assert!(t.ends_with("…</b>") || t == "…", "{limit}: {t}");
            assert!(!t.contains("&am…") && !t.contains("<b…"), "{limit}: {t}");
        }
        assert_eq!(truncate_html(&s, 18), "<b>xxxxxxxxxx…</b>");
        assert_eq!(truncate_html(&s, 23), "<b>xxxxxxxxxx&amp;…</b>");
        assert_eq!(truncate_html("<a href=\"u\">abc</a>", 17), "<a href=\"u\">…</a>");
        assert_eq!(truncate_plain("ab🟢cd", 4), "ab…");
        assert_eq!(truncate_plain("ab🟢cd", 5), "ab🟢…");
    }
}
