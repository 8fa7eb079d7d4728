//! What each path answers. A new endpoint is one arm in [`route`] and one
//! function beside the others; the server knows nothing of paths.

use std::sync::Arc;

use super::State;
use super::http::{Request, Response};
use super::prometheus;
use crate::units::UnixNanos;

/// The content type Prometheus asks for and prometheus-client writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The answer to one request.
pub(super) fn route(state: &Arc<State>, request: &Request<'_>) -> Response {
    if request.method != "GET" {
        return Response::text(405, "only GET is served\n");
    }
    match request.path {
        "/metrics" => metrics(state),
        "/healthz" => healthz(state),
        "/state" => dashboard(state),
        _ => Response::text(404, "not found; try /metrics or /healthz\n"),
    }
}

fn metrics(state: &Arc<State>) -> Response {
    match prometheus::encode(state) {
        Ok(body) => Response { status: 200, content_type: OPENMETRICS, body },
        Err(_) => Response::text(500, "encoding failed\n"),
    }
}

/// The live dashboard's state (`watch`), as JSON.
fn dashboard(state: &State) -> Response {
    match state.dashboard.get() {
        Some(hub) => Response { status: 200, content_type: "application/json", body: hub.snapshot().to_json() },
        None => Response::text(404, "no dashboard state in this process\n"),
    }
}

fn healthz(state: &State) -> Response {
    let (healthy, body) = health(state);
    Response::text(if healthy { 200 } else { 503 }, body)
}

/// Whether every pair has had a frame within the stale window, and why not.
fn health(state: &State) -> (bool, String) {
    let now = UnixNanos::now().0;
    let limit = u64::try_from(state.stale_after.as_nanos()).unwrap_or(u64::MAX);
    let mut stale = Vec::new();
    for (i, pair) in state.pairs.iter().enumerate() {
        if let Some(why) = state.gauges.unsynced(i) {
            stale.push(format!("{pair} ({why})"));
            continue;
        }
        match state.gauges.last_frame(i) {
            None => stale.push(format!("{pair} (no frame yet)")),
            Some(t) if now.saturating_sub(t) > limit => {
                stale.push(format!("{pair} (last frame {:.1} s ago)", now.saturating_sub(t) as f64 / 1e9))
            }
            Some(_) => {}
        }
    }
    if stale.is_empty() {
        (true, format!("ok: {} pair(s) fresh within {} ms\n", state.pairs.len(), state.stale_after.as_millis()))
    } else {
        let mut body = format!("stale: {}\n", stale.join(", "));
        for (i, pair) in state.pairs.iter().enumerate() {
            if let Some(why) = state.gauges.feed_down(i) {
                body.push_str(&format!("feed down for {pair}: {why}\n"));
            }
        }
        (false, body)
    }
}
