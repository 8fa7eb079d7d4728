//! The Grafana dashboard and the Prometheus scrape config against a live
//! endpoint: every metric the dashboard queries, and every label it groups
//! by, is served by `/metrics` of a run with alerts and Telegram deliveries.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use imbalance_monitor::config::Config;
use imbalance_monitor::run::{RunOptions, Runner};
use imbalance_monitor::simulator::{Rate, SimOptions, Simulator};
use support::live::{http_get, recording, scratch, wait_until};
use support::mock_bot_api::MockBotApi;

const TOKEN: &str = "123456789:AAEgrafanagrafanagrafanagrafana12";
const DASHBOARD: &str = "scripts/grafana/imbalance-monitor.json";

/// Every PromQL expression of the dashboard's panels.
fn expressions(dashboard: &serde_json::Value) -> Vec<String> {
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6, "a panel per concern");
    let mut out = Vec::new();
    for p in panels {
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "panel {} picks the imported data source", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            out.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    out
}

/// `imbalance_monitor_…` names in an expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("imbalance_monitor_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The labels of `by (…)` clauses.
fn grouped_by(expr: &str) -> Vec<String> {
    expr.split("by (")
        .skip(1)
        .flat_map(|s| s.split(')').next().unwrap_or("").split(',').map(|l| l.trim().to_string()).collect::<Vec<_>>())
        .collect()
}

#[test]
fn every_metric_and_label_the_dashboard_queries_is_served() {
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    let exprs = expressions(&dashboard);
    let variables: BTreeSet<String> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    for e in &exprs {
        for var in e.split('$').skip(1) {
            let name: String = var.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            assert!(variables.contains(&name), "{e} uses ${name}, which the dashboard does not define");
        }
    }

    let dir = scratch("grafana");
    let mock = MockBotApi::builder(TOKEN).private_chat(42).flood_interval(None).start();
    let sim = Simulator::start(SimOptions {
        replay: vec![recording(&dir, 300)],
        rate: Rate::PerSecond(200),
        ..SimOptions::default()
    })
    .unwrap();
    let text = format!(
        "pairs = [\"BTCUSDT\"]\nthreshold = 0.3\n[binance]\nws_url = {:?}\n[alerts]\njournal = {:?}\n[telegram]\nenabled = true\nbot_token = {TOKEN:?}\nchat_ids = [42]\napi_base = {:?}\n",
        sim.url(),
        dir.join("alerts.jsonl"),
        mock.base_url()
    );
    let cfg = Config::from_toml(&dir.join("config.toml"), &text).unwrap();
    let runner =
        Runner::start(&cfg, RunOptions { metrics_listen: Some("127.0.0.1:0".into()), ..RunOptions::default() })
            .unwrap();
    let addr = runner.metrics_addr().unwrap();
    wait_until("the recording", Duration::from_secs(60), || sim.stats().recording_finished);
    wait_until("a Telegram delivery and latency histograms", Duration::from_secs(30), || {
        let (_, m) = http_get(addr, "/metrics");
        m.contains("imbalance_monitor_telegram_sends_total{status=\"sent\"} ")
            && !m.contains("imbalance_monitor_telegram_sends_total{status=\"sent\"} 0")
            && m.contains("imbalance_monitor_latency_seconds_bucket{")
            && m.contains("imbalance_monitor_alerts_total{")
    });
    let (status, metrics) = http_get(addr, "/metrics");
    // The dashboard's alert list shows each alert's Telegram outcome.
    let state = imbalance_monitor::watch::state::DashboardState::from_json(&http_get(addr, "/state").1).unwrap();
    assert!(!state.alerts.is_empty() && state.alerts.iter().any(|a| a.telegram == "sent"), "{:?}", state.alerts);
    assert!(state.alerts.iter().all(|a| a.telegram == "sent" || a.telegram == "queued"), "{:?}", state.alerts);
    runner.stop_handle().stop();
    runner.wait();
    assert_eq!(status, 200);

    let served = |name: &str| -> Vec<&str> {
        let (braced, spaced) = (format!("{name}{{"), format!("{name} "));
        metrics.lines().filter(|l| l.starts_with(&braced) || l.starts_with(&spaced)).collect()
    };
    let mut checked = BTreeSet::new();
    for e in &exprs {
        for name in metric_names(e) {
            assert!(!served(&name).is_empty(), "{name} (queried by {e}) is not served:\n{metrics}");
            for label in grouped_by(e) {
                assert!(
                    served(&name).iter().any(|l| l.contains(&format!("{label}=\""))),
                    "{e} groups by {label}, which {name} does not carry"
                );
            }
            checked.insert(name);
        }
    }
    // What the issue asks the board to show.
    for want in [
        "imbalance_monitor_imbalance_ratio",
        "imbalance_monitor_frames_total",
        "imbalance_monitor_latency_seconds_bucket",
        "imbalance_monitor_alerts_total",
        "imbalance_monitor_telegram_sends_total",
        "imbalance_monitor_reconnects_total",
        "imbalance_monitor_seconds_since_last_frame",
    ] {
        assert!(checked.contains(want), "the dashboard does not show {want}");
    }
}

#[test]
fn the_scrape_config_points_at_the_endpoints_path_and_the_documented_port() {
    let yml = std::fs::read_to_string("scripts/prometheus.yml").unwrap();
    let value = |key: &str| {
        yml.lines().find_map(|l| l.trim().strip_prefix(key)).map(str::trim).unwrap_or_else(|| panic!("no {key}"))
    };
    assert_eq!(value("metrics_path:"), "/metrics");
    assert_eq!(value("- targets:"), "[\"127.0.0.1:9184\"]");
    // The port is the one the README's [metrics_http] example listens on.
    let readme = std::fs::read_to_string("README.md").unwrap();
    assert!(readme.contains("listen = \"127.0.0.1:9184\""));
    assert!(readme.contains("scripts/grafana/imbalance-monitor.json") && readme.contains("scripts/prometheus.yml"));
}
