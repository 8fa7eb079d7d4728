//! What a person follows from an alert: Binance's spot trade page for the
//! pair, and the base/quote split its label and quantities are shown with.

/// Quote assets Binance lists, longest first so `FDUSD` wins over shorter
/// suffixes; used to split `BTCUSDT` into `BTC` and `USDT`.
const QUOTE_ASSETS: [&str; 29] = [
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "AEUR", "EURI", "BIDR", "BKRW", "IDRT", "BTC", "ETH", "BNB",
    "TRY", "EUR", "GBP", "BRL", "AUD", "RUB", "UAH", "NGN", "ZAR", "PLN", "RON", "ARS", "JPY", "MXN", "DAI",
];

/// `BTCUSDT` → (`BTC`, `USDT`), by Binance's quote assets.
pub fn split_symbol(symbol: &str) -> Option<(&str, &str)> {
    QUOTE_ASSETS.iter().find_map(|quote| {
        let base = symbol.strip_suffix(quote)?;
        (!base.is_empty()).then_some((base, *quote))
    })
}

/// The pair's spot trading page and its label (`BTC/USDT`); the raw
/// symbol's page when its quote asset is not recognised.
pub fn trade_link(symbol: &str) -> (String, String) {
    match split_symbol(symbol) {
        Some((base, quote)) => {
            (format!("https://www.binance.com/en/trade/{base}_{quote}?type=spot"), format!("{base}/{quote}"))
        }
        None => (format!("https://www.binance.com/en/trade/{symbol}"), symbol.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_split_on_known_quote_assets_or_link_the_raw_symbol() {
        assert_eq!(split_symbol("BNBFDUSD"), Some(("BNB", "FDUSD")));
        assert_eq!(split_symbol("FDUSDUSDT"), Some(("FDUSD", "USDT")));
        assert_eq!(split_symbol("USDTTRY"), Some(("USDT", "TRY")));
        assert_eq!(split_symbol("USDT"), None);
        assert_eq!(trade_link("XYZABC").0, "https://www.binance.com/en/trade/XYZABC");
    }
}
