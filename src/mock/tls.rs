//! mock-engine over TLS (`--tls-cert`, `--tls-key`): a server certificate and key in PEM, so
//! replay's https path is tested and benchmarked against a server whose timing is known.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {what} {path}: {source}; give a PEM file")]
    Read {
        what: &'static str,
        path: String,
        source: rustls_pki_types::pem::Error,
    },
    #[error("--tls-cert {0} holds no certificate")]
    NoCert(String),
    #[error("the certificate and key do not make a TLS server: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A TLS 1.2/1.3 server configuration for the certificate chain in `cert` and the key in
/// `key` (PEM), speaking HTTP/1.1 (ALPN `http/1.1`).
#[allow(deprecated)] // ring's provider: see client::tls for why ring, not aws-lc-rs
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsSetupError::Read {
            what: "--tls-cert",
            path: cert.display().to_string(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsSetupError::NoCert(cert.display().to_string()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsSetupError::Read {
        what: "--tls-key",
        path: key.display().to_string(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
