//! TLS for the one HTTP client (rustls on ring: no OpenSSL).
//!
//! - Roots: the platform's certificates (the system store, as `rustls-native-certs` finds it:
//!   `/etc/ssl/certs` and `SSL_CERT_FILE`/`SSL_CERT_DIR` on Linux), or only the certificates of
//!   `--cacert FILE` when given (as curl's `--cacert` does).
//! - `--insecure` skips verification of the server's certificate chain and name (handshake
//!   signatures are still checked); it is recorded in every output's provenance.
//! - TLS 1.2 and 1.3; SNI from the URL's host (none for an IP address, as RFC 6066 says);
//!   ALPN offers `http/1.1` only, so a gateway never switches to HTTP/2.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// How the client trusts servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the certificate authorities to trust instead of the platform's.
    pub cacert: Option<PathBuf>,
    /// Skip verification of the server's certificate (dangerous).
    pub insecure: bool,
}

impl TlsOptions {
    /// The provenance line: how servers were trusted.
    pub fn describe(&self) -> String {
        match (&self.cacert, self.insecure) {
            (_, true) => "insecure: the server's certificate was NOT verified (--insecure)".to_string(),
            (Some(p), false) => format!("verified against --cacert {}", p.display()),
            (None, false) => "verified against the platform's root certificates".to_string(),
        }
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read --cacert {path}: {source}; give a PEM file of CA certificates")]
    CaFile {
        path: String,
        source: rustls_pki_types::pem::Error,
    },
    #[error("--cacert {0} holds no certificate rustls accepts; give a PEM file with BEGIN CERTIFICATE blocks")]
    NoCa(String),
    #[error(
        "no root certificates found on this machine ({0}); install the ca-certificates package, set SSL_CERT_FILE, or pass --cacert FILE"
    )]
    NoRoots(String),
    #[error("{0}: not a host name TLS can verify")]
    BadName(String),
    #[error("TLS set-up failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// ring's provider. rustls 0.23.48 deprecates it for lacking post-quantum key exchange; a
/// benchmark client needs no post-quantum secrecy, and the alternative (aws-lc-rs) is a C build
/// needing cmake (CRATES.md) on every fresh machine. Switching is this one function.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_cas(path: &Path) -> Result<RootCertStore, TlsError> {
    let shown = path.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::CaFile {
            path: shown.clone(),
            source,
        })?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::NoCa(shown));
    }
    Ok(roots)
}

fn platform_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or("the system store is empty".to_string(), |e| e.to_string());
        return Err(TlsError::NoRoots(why));
    }
    Ok(roots)
}

/// The client configuration for `opts`.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let mut cfg = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    } else {
        let roots = match &opts.cacert {
            Some(p) => load_cas(p)?,
            None => platform_roots()?,
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The name the server's certificate must carry: the URL's host (an IP address is checked
/// against the certificate's IP addresses).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_string()).map_err(|_| TlsError::BadName(host.to_string()))
}

/// `--insecure`: any certificate chain and name, with the handshake's signatures still checked
/// (so the session keys are the server's, whoever it is).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS failure as one line for people: rustls's reason, with what to do about the usual ones.
pub fn explain(e: &std::io::Error) -> String {
    let reason = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map_or_else(|| e.to_string(), |r| r.to_string());
    let hint = if reason.contains("UnknownIssuer") || reason.contains("unknown issuer") {
        "; the certificate is not signed by a CA this client trusts: pass --cacert FILE with the CA that signed it (or --insecure, which verifies nothing)"
    } else if reason.contains("NotValidForName") || reason.contains("not valid for name") {
        "; the certificate does not name this host: use the host name the certificate carries in --url"
    } else if reason.contains("Expired") || reason.contains("expired") {
        "; the server's certificate has expired (or this machine's clock is wrong)"
    } else if reason.contains("InvalidContentType") || reason.contains("corrupt message") {
        "; the server did not answer TLS: is it plain http? then use http:// in --url"
    } else {
        ""
    };
    format!("{reason}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptions() {
        assert!(server_name("example.com").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("::1").is_ok());
        assert!(server_name("bad name").is_err());
        let d = TlsOptions {
            insecure: true,
            ..Default::default()
        }
        .describe();
        assert!(d.contains("NOT verified"), "{d}");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let e = client_config(&TlsOptions {
            cacert: Some("/nonexistent/ca.pem".into()),
            insecure: false,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("/nonexistent/ca.pem") && e.contains("PEM"), "{e}");
        let dir = std::env::temp_dir().join(format!("sb-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_config(&TlsOptions {
            cacert: Some(empty.clone()),
            insecure: false,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("holds no certificate"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
