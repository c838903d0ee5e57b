//! The TLS layer: client configurations built once (system roots plus a
//! site's `ca_file`, ring provider, ALPN http/1.1 for HTTPS), the facts of
//! the presented certificate (subject, issuer, names, validity), and the
//! table from rustls errors to cause codes.
//!
//! The standard webpki verifier decides; a thin wrapper around it attaches
//! the leaf certificate's facts to a rejection, so "expired" comes with the
//! date and "untrusted" with the issuer.

use super::text::{MAX_SHOWN, cap};
use crate::diagnosis::Cause;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};
use serde::Serialize;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The facts of a certificate that an operator needs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CertFacts {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// DNS names and addresses it is valid for (at most [`MAX_CERT_NAMES`]).
    pub names: Vec<String>,
    /// Names beyond [`MAX_CERT_NAMES`], not listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_names: usize,
    /// Start of validity.
    #[serde(with = "crate::timefmt")]
    pub not_before: SystemTime,
    /// End of validity.
    #[serde(with = "crate::timefmt")]
    pub not_after: SystemTime,
    /// Whole days from the probe to `not_after` (negative once expired).
    pub days_left: i64,
}

/// The most certificate names kept in [`CertFacts`]; a certificate may
/// carry thousands.
pub const MAX_CERT_NAMES: usize = 64;
/// The most certificate names listed in a sentence.
const NAMES_LISTED: usize = 8;

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The certificate's names for a sentence: a few, then how many more.
fn names_text(c: &CertFacts) -> String {
    if c.names.is_empty() {
        return "no names".to_string();
    }
    let listed: Vec<&str> = c
        .names
        .iter()
        .take(NAMES_LISTED)
        .map(String::as_str)
        .collect();
    let more = c.names.len() - listed.len() + c.more_names;
    let mut out = listed.join(", ");
    if more > 0 {
        out.push_str(&format!(" and {more} more"));
    }
    out
}

/// Reads the facts of a DER certificate as of `now`; the texts it holds are
/// capped (see [`super::text`]).
pub fn cert_facts(der: &[u8], now: SystemTime) -> Option<CertFacts> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let at = |ts: i64| {
        if ts >= 0 {
            UNIX_EPOCH + Duration::from_secs(ts.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(ts.unsigned_abs())
        }
    };
    let not_before = at(cert.validity().not_before.timestamp());
    let not_after = at(cert.validity().not_after.timestamp());
    let mut names = Vec::new();
    let mut more_names = 0;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if names.len() == MAX_CERT_NAMES {
                more_names += usize::from(matches!(
                    name,
                    GeneralName::DNSName(_) | GeneralName::IPAddress(_)
                ));
                continue;
            }
            match name {
                GeneralName::DNSName(d) => names.push(cap(d, MAX_SHOWN)),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => names
                        .push(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                    16 => names
                        .push(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let secs_left = match not_after.duration_since(now) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    Some(CertFacts {
        subject: cap(&cert.subject().to_string(), MAX_SHOWN),
        issuer: cap(&cert.issuer().to_string(), MAX_SHOWN),
        names,
        more_names,
        not_before,
        not_after,
        days_left: secs_left.div_euclid(86_400),
    })
}

/// A certificate the verifier rejected, with the facts of the leaf.
#[derive(Debug)]
pub struct Rejected {
    /// rustls' verdict.
    pub error: rustls::Error,
    /// The presented leaf certificate.
    pub leaf: Option<CertFacts>,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Rejected {}

/// The webpki verifier, attaching certificate facts to rejections.
#[derive(Debug)]
struct FactsOnRejection {
    inner: Arc<WebPkiServerVerifier>,
}

fn system_time(t: UnixTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.as_secs())
}

impl ServerCertVerifier for FactsOnRejection {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|error| match error {
                rustls::Error::InvalidCertificate(_) => {
                    rustls::Error::Other(OtherError(Arc::new(Rejected {
                        error,
                        leaf: cert_facts(end_entity, system_time(now)),
                    })))
                }
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

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
    /// The verifier could not be built (no usable root at all).
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
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
        tracing::debug!(added, ignored, "system CA certificates loaded");
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
            let ca_error = |message: String| BuildError::CaFile {
                path: path.to_path_buf(),
                message,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| ca_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_error("no PEM certificate in it".to_string()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()?;
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(FactsOnRejection { inner }))
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

/// A failed handshake, classified.
#[derive(Debug)]
pub struct Failure {
    /// The cause code.
    pub cause: Cause,
    /// What happened, for `detail`.
    pub what: String,
    /// The presented leaf, when the certificate was the problem.
    pub cert: Option<CertFacts>,
}

fn day(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(..10).unwrap_or(&s).to_string()
}

fn days(n: i64) -> String {
    match n.abs() {
        1 => "1 day".to_string(),
        d => format!("{d} days"),
    }
}

/// Maps a failed handshake to a cause, with the certificate's facts.
pub fn classify(err: &io::Error, host: &str) -> Failure {
    let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        let what = match err.kind() {
            io::ErrorKind::UnexpectedEof => {
                "the server closed the connection during the handshake".to_string()
            }
            io::ErrorKind::ConnectionReset => {
                "the server reset the connection during the handshake".to_string()
            }
            _ => err.to_string(),
        };
        return Failure {
            cause: Cause::TlsHandshake,
            what,
            cert: None,
        };
    };
    if let rustls::Error::Other(OtherError(inner)) = tls
        && let Some(rejected) = inner.downcast_ref::<Rejected>()
    {
        let cause = classify_rustls(&rejected.error);
        let what = describe_rejection(cause, &rejected.error, rejected.leaf.as_ref(), host);
        return Failure {
            cause,
            what,
            cert: rejected.leaf.clone(),
        };
    }
    let cause = classify_rustls(tls);
    Failure {
        cause,
        what: tls.to_string(),
        cert: None,
    }
}

fn describe_rejection(
    cause: Cause,
    error: &rustls::Error,
    leaf: Option<&CertFacts>,
    host: &str,
) -> String {
    let Some(c) = leaf else {
        return error.to_string();
    };
    match cause {
        Cause::TlsExpired => format!(
            "the certificate of {host} expired on {} ({} ago); issuer {}",
            day(c.not_after),
            days(c.days_left),
            c.issuer
        ),
        Cause::TlsNotYetValid => format!(
            "the certificate of {host} is valid only from {}; issuer {}",
            day(c.not_before),
            c.issuer
        ),
        Cause::TlsHostname => format!(
            "the certificate is for {}, not {host}; subject {}",
            names_text(c),
            c.subject
        ),
        Cause::TlsUntrusted => {
            let why = if c.subject == c.issuer {
                "it is self-signed".to_string()
            } else {
                format!(
                    "issuer {} is not a trusted root and the server sent no chain to one",
                    c.issuer
                )
            };
            format!("the certificate of {host} is not trusted: {why} ({error})")
        }
        _ => format!("{error}; subject {}, issuer {}", c.subject, c.issuer),
    }
}

/// One sentence of a valid certificate's facts for the TLS layer's detail.
pub fn describe_valid(c: &CertFacts) -> String {
    format!(
        "certificate {} for {}, issuer {}, expires {} (in {})",
        c.subject,
        names_text(c),
        c.issuer,
        day(c.not_after),
        days(c.days_left)
    )
}

/// Maps a rustls error to a cause.
pub fn classify_rustls(err: &rustls::Error) -> Cause {
    match err {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::AlertDescription;

    #[test]
    fn certificate_texts_are_capped() {
        let mut names: Vec<String> = (0..100).map(|i| format!("n{i}.test")).collect();
        names.push(format!("{}.test", "l".repeat(300)));
        names.rotate_right(1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let c = cert_facts(cert.der(), SystemTime::now()).unwrap();
        assert_eq!(
            (c.names.len(), c.more_names),
            (MAX_CERT_NAMES, 101 - MAX_CERT_NAMES)
        );
        assert!(c.names[0].len() <= MAX_SHOWN, "{}", c.names[0]);
        assert!(c.names[0].ends_with("(305 bytes)"), "{}", c.names[0]);
        let said = describe_valid(&c);
        assert!(said.contains(", n6.test and 93 more, issuer"), "{said}");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["more_names"], 37);
        let few = CertFacts {
            names: vec!["a.test".to_string()],
            more_names: 0,
            ..c
        };
        assert!(describe_valid(&few).contains(" for a.test, issuer"));
        assert!(
            serde_json::to_value(&few)
                .unwrap()
                .get("more_names")
                .is_none()
        );
    }

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
            assert_eq!(classify_rustls(&err), want, "{err:?}");
            let wrapped = io::Error::new(io::ErrorKind::InvalidData, err);
            assert_eq!(classify(&wrapped, "x.test").cause, want);
        }
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(classify(&eof, "x.test").cause, Cause::TlsHandshake);
        // A rejection carrying facts is classified by the rustls error inside.
        let rejected = rustls::Error::Other(OtherError(Arc::new(Rejected {
            error: rustls::Error::InvalidCertificate(C::Expired),
            leaf: None,
        })));
        let wrapped = io::Error::new(io::ErrorKind::InvalidData, rejected);
        assert_eq!(classify(&wrapped, "x.test").cause, Cause::TlsExpired);
    }

    #[test]
    fn days_are_whole_and_signed() {
        assert_eq!(days(1), "1 day");
        assert_eq!(days(-3), "3 days");
        assert_eq!(
            day(UNIX_EPOCH + Duration::from_secs(86_400 * 365)),
            "1971-01-01"
        );
    }
}
