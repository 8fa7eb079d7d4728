//! The tables, written once for both databases: SQLite maps `BIGINT` and
//! `DOUBLE PRECISION` to its integer and real affinities, PostgreSQL takes
//! them as they are. Prices and volumes are exact decimal text, metrics are
//! doubles, and a metric that was not computed is NULL.

/// The schema this build writes; `schema_version` holds it, so a later
/// build can migrate an older file or database.
pub const VERSION: i64 = 1;

/// Statements that create whatever is missing, in order.
pub const CREATE: [&str; 8] = [
    "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS samples (
        time_ns BIGINT NOT NULL, venue TEXT NOT NULL, pair TEXT NOT NULL, last_update_id BIGINT NOT NULL,
        best_bid TEXT, best_ask TEXT, bid_volume TEXT NOT NULL, ask_volume TEXT NOT NULL,
        imbalance_ratio DOUBLE PRECISION NOT NULL, weighted_imbalance DOUBLE PRECISION,
        microprice_offset_bps DOUBLE PRECISION, spread_bps DOUBLE PRECISION, ofi DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS samples_pair_time ON samples (pair, time_ns)",
    "CREATE TABLE IF NOT EXISTS alerts (
        alert_id TEXT, time_ns BIGINT NOT NULL, venue TEXT NOT NULL, pair TEXT NOT NULL, \"trigger\" TEXT NOT NULL,
        metric TEXT, op TEXT, threshold DOUBLE PRECISION, value DOUBLE PRECISION NOT NULL,
        last_update_id BIGINT NOT NULL, bid_volume TEXT NOT NULL, ask_volume TEXT NOT NULL,
        best_bid TEXT, best_ask TEXT)",
    "CREATE INDEX IF NOT EXISTS alerts_pair_time ON alerts (pair, time_ns)",
    "CREATE TABLE IF NOT EXISTS deliveries (
        alert_id TEXT NOT NULL, time_ns BIGINT NOT NULL, sink TEXT NOT NULL, chat_id TEXT NOT NULL,
        status TEXT NOT NULL, attempts BIGINT NOT NULL, error TEXT)",
    "CREATE INDEX IF NOT EXISTS deliveries_alert ON deliveries (alert_id)",
    "CREATE INDEX IF NOT EXISTS deliveries_time ON deliveries (time_ns)",
];

/// `samples` columns in table order (COPY, INSERT and SELECT use it).
pub const SAMPLE_COLUMNS: &str = "time_ns, venue, pair, last_update_id, best_bid, best_ask, bid_volume, ask_volume, \
     imbalance_ratio, weighted_imbalance, microprice_offset_bps, spread_bps, ofi";

/// `alerts` columns in table order.
pub const ALERT_COLUMNS: &str = "alert_id, time_ns, venue, pair, \"trigger\", metric, op, threshold, value, \
     last_update_id, bid_volume, ask_volume, best_bid, best_ask";

/// `deliveries` columns in table order.
pub const DELIVERY_COLUMNS: &str = "alert_id, time_ns, sink, chat_id, status, attempts, error";

/// Tables whose rows retention deletes by `time_ns`.
pub const TABLES: [&str; 3] = ["samples", "alerts", "deliveries"];
