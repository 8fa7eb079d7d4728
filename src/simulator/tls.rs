//! `wss://` for the simulator: a throw-away CA and a server certificate it
//! signs, generated per run.
//!
//! A self-signed leaf used directly as the trust anchor is rejected by webpki
//! (the client's verifier), so the leaf is issued by a separate CA whose PEM a
//! client trusts through `binance.ca_file`. The leaf names `localhost`,
//! `127.0.0.1` and `::1`, the names a loopback client dials.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::error::SimError;

/// The server side of TLS and where its CA was written.
pub struct TlsIdentity {
    pub config: Arc<ServerConfig>,
    /// The CA certificate (PEM) a client must trust.
    pub ca_path: PathBuf,
    /// The temporary directory holding `ca_path`, when we made one; removed
    /// when the simulator stops.
    pub temp_dir: Option<PathBuf>,
}

impl TlsIdentity {
    /// Generates the CA and the leaf, builds the rustls config (ring provider:
    /// the build has no aws-lc) and writes the CA PEM to `ca_out`, or to
    /// `ca.pem` in a fresh temporary directory.
    pub fn generate(ca_out: Option<&Path>) -> Result<Self, SimError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "imbalance-monitor simulator CA");
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca = Issuer::new(ca_params, ca_key);

        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()])?;
        leaf_params.distinguished_name.push(DnType::CommonName, "localhost");
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate()?;
        let leaf_cert = leaf_params.signed_by(&leaf_key, &ca)?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf_cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )?;

        let (ca_path, temp_dir) = match ca_out {
            Some(path) => (path.to_path_buf(), None),
            None => {
                let dir = fresh_temp_dir()?;
                (dir.join("ca.pem"), Some(dir))
            }
        };
        fs::write(&ca_path, ca_cert.pem()).map_err(|source| SimError::WriteCa { path: ca_path.clone(), source })?;
        Ok(TlsIdentity { config: Arc::new(config), ca_path, temp_dir })
    }
}

/// A new directory under the system temp dir, unique to this process and call.
fn fresh_temp_dir() -> Result<PathBuf, SimError> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut attempt = 0u32;
    loop {
        let dir = std::env::temp_dir().join(format!("imbalance-monitor-sim-{}-{nanos}-{attempt}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(source) => return Err(SimError::WriteCa { path: dir, source }),
        }
    }
}
