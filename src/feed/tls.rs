//! TLS client configuration for `wss://` feeds: rustls with the ring
//! provider chosen explicitly, webpki-roots plus an optional extra CA file.
//! Certificate verification is always on; there is no switch to disable it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("binance.ca_file {path}: cannot read PEM certificates: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("binance.ca_file {path}: contains no certificate; expected PEM `-----BEGIN CERTIFICATE-----` blocks")]
    CaFileEmpty { path: PathBuf },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A client config trusting webpki-roots and every certificate in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let err = |reason: String| TlsConfigError::CaFile { path: path.to_path_buf(), reason };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(TlsConfigError::CaFileEmpty { path: path.to_path_buf() });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| err(e.to_string()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let e = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(e.to_string().starts_with("binance.ca_file /nonexistent/ca.pem: cannot read"), "{e}");
        let empty = std::env::temp_dir().join(format!("im-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_config(Some(&empty)).unwrap_err();
        assert!(matches!(e, TlsConfigError::CaFileEmpty { .. }), "{e}");
        std::fs::remove_file(empty).unwrap();
    }

    #[test]
    fn default_roots_build() {
        assert!(client_config(None).is_ok());
    }
}
