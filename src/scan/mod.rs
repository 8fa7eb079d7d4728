//! Scanning, apart from any venue's schema: the JSON tokenizer and skipper
//! ([`json`]) and the fixed-point decimal reader ([`decimal`]). A decoder
//! (`venue/…`) combines them with its keys; nothing here allocates, panics,
//! or reads a price through `f64`.

pub(crate) mod decimal;
pub(crate) mod json;
