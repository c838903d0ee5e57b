//! The TLS layer: client configurations built once (system roots plus a
//! site's `ca_file`, ring provider, ALPN http/1.1 for HTTPS) and the table
//! from rustls errors to cause codes.

use crate::diagnosis::Cause;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, ClientConfig, RootCertStore};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// TLS client configurations, keyed by (`ca_file`, speaks HTTP).
pub struct TlsClients {
    system_roots: RootCertStore,
    configs: HashMap<(Option<PathBuf>, bool), Arc<ClientConfig>>,
}

/// A TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The `ca_file` could not be read or holds no certificate.
    #[error("cannot use ca_file {}: {message}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("cannot configure TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsClients {
    /// Loads the system's trusted roots (once).
    pub fn new() -> TlsClients {
        let mut system_roots = RootCertStore::empty();
        let loaded = rustls_native_certs::load_native_certs();
        for err in &loaded.errors {
            tracing::warn!(error = %err, "some system CA certificates could not be loaded");
        }
        let (added, ignored) = system_roots.add_parsable_certificates(loaded.certs);
        if ignored > 0 {
            tracing::debug!(added, ignored, "system CA certificates loaded");
        }
        TlsClients {
            system_roots,
            configs: HashMap::new(),
        }
    }

    /// Builds (once) the configuration for a `ca_file` and protocol.
    pub fn prepare(&mut self, ca_file: Option<&Path>, http: bool) -> Result<(), BuildError> {
        let key = (ca_file.map(Path::to_path_buf), http);
        if self.configs.contains_key(&key) {
            return Ok(());
        }
        let mut roots = self.system_roots.clone();
        if let Some(path) = ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| BuildError::CaFile {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(BuildError::CaFile {
                    path: path.to_path_buf(),
                    message: "no PEM certificate in it".to_string(),
                });
            }
            for cert in certs {
                roots.add(cert).map_err(|e| BuildError::CaFile {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        if http {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
        }
        self.configs.insert(key, Arc::new(config));
        Ok(())
    }

    /// The configuration prepared for a `ca_file` and protocol.
    pub fn get(&self, ca_file: Option<&Path>, http: bool) -> Option<&Arc<ClientConfig>> {
        self.configs.get(&(ca_file.map(Path::to_path_buf), http))
    }
}

impl Default for TlsClients {
    fn default() -> Self {
        Self::new()
    }
}

/// Maps a failed handshake to a cause and a short phrase for `detail`.
pub fn classify(err: &io::Error) -> (Cause, String) {
    let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return match err.kind() {
            io::ErrorKind::UnexpectedEof => (
                Cause::TlsHandshake,
                "the server closed the connection during the handshake".to_string(),
            ),
            io::ErrorKind::ConnectionReset => (
                Cause::TlsHandshake,
                "the server reset the connection during the handshake".to_string(),
            ),
            _ => (Cause::TlsHandshake, err.to_string()),
        };
    };
    classify_rustls(tls)
}

/// Maps a rustls error to a cause.
pub fn classify_rustls(err: &rustls::Error) -> (Cause, String) {
    let cause = match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                Cause::TlsExpired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Cause::TlsNotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Cause::TlsHostname
            }
            _ => Cause::TlsUntrusted,
        },
        _ => Cause::TlsHandshake,
    };
    (cause, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::AlertDescription;

    #[test]
    fn rustls_errors_map_to_causes() {
        use CertificateError as C;
        let table = [
            (
                rustls::Error::InvalidCertificate(C::Expired),
                Cause::TlsExpired,
            ),
            (
                rustls::Error::InvalidCertificate(C::NotValidYet),
                Cause::TlsNotYetValid,
            ),
            (
                rustls::Error::InvalidCertificate(C::NotValidForName),
                Cause::TlsHostname,
            ),
            (
                rustls::Error::InvalidCertificate(C::UnknownIssuer),
                Cause::TlsUntrusted,
            ),
            (
                rustls::Error::InvalidCertificate(C::BadSignature),
                Cause::TlsUntrusted,
            ),
            (
                rustls::Error::InvalidCertificate(C::Revoked),
                Cause::TlsUntrusted,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
                Cause::TlsHandshake,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
                Cause::TlsHandshake,
            ),
            (
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
                Cause::TlsHandshake,
            ),
        ];
        for (err, want) in table {
            assert_eq!(classify_rustls(&err).0, want, "{err:?}");
            let wrapped = io::Error::new(io::ErrorKind::InvalidData, err);
            assert_eq!(classify(&wrapped).0, want);
        }
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(classify(&eof).0, Cause::TlsHandshake);
    }
}
