//! Whom an encrypted upstream is trusted as: the system's CA store or a
//! `ca_file`, and optional SPKI pins (RFC 7858 §4.2). A certificate that does
//! not verify fails the connection with a log line that says why; there is
//! never a fallback to clear text.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use prometheus_client::metrics::counter::Counter;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};

/// The CA store and pins of a route's encrypted servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// `ca_file`: when set, only these CAs are trusted, not the system's.
    pub ca_file: Option<PathBuf>,
    pub cas: Vec<CertificateDer<'static>>,
    /// SHA-256 digests of the SubjectPublicKeyInfo one of which the server's
    /// certificate must carry (RFC 7858 §4.2, RFC 7469 §2.4), on top of the chain check.
    pub pins: Vec<[u8; 32]>,
}

/// Why a `ca_file` or a pin is not usable.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read it: {0}; point ca_file at a PEM file of CA certificates")]
    Read(std::io::Error),
    #[error(
        "it holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\"); point ca_file at the CA's certificate in PEM"
    )]
    Empty,
    #[error("certificate {0} in it is not valid: {1}")]
    BadCertificate(usize, String),
    #[error(
        "not a SHA-256 SPKI pin: expected 44 base64 characters, as `openssl x509 -pubkey -noout | \
         openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64` prints"
    )]
    BadPin,
}

impl Trust {
    /// Reads `ca_file` (PEM) and decodes the base64 `pins`.
    pub fn load(ca_file: Option<&Path>, pins: &[String]) -> Result<Self, (usize, TrustError)> {
        let mut trust = Self::default();
        if let Some(path) = ca_file {
            trust.cas = read_cas(path).map_err(|e| (usize::MAX, e))?;
            trust.ca_file = Some(path.to_path_buf());
        }
        for (i, pin) in pins.iter().enumerate() {
            trust
                .pins
                .push(decode_pin(pin).ok_or((i, TrustError::BadPin))?);
        }
        Ok(trust)
    }
}

fn read_cas(path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let pem = std::fs::read(path).map_err(TrustError::Read)?;
    let cas: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .enumerate()
        .map(|(i, c)| c.map_err(|e| TrustError::BadCertificate(i + 1, e.to_string())))
        .collect::<Result<_, _>>()?;
    if cas.is_empty() {
        return Err(TrustError::Empty);
    }
    let mut store = RootCertStore::empty();
    for (i, ca) in cas.iter().enumerate() {
        store
            .add(ca.clone())
            .map_err(|e| TrustError::BadCertificate(i + 1, e.to_string()))?;
    }
    Ok(cas)
}

fn decode_pin(pin: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(pin.trim())
        .ok()?;
    bytes.try_into().ok()
}

/// How a TLS handshake failed, as counted in
/// `splitdns_upstream_tls_handshake_failures_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    Expired,
    WrongName,
    UnknownIssuer,
    PinMismatch,
    /// Any other certificate or protocol failure.
    Other,
}

impl HandshakeFailure {
    pub const ALL: [Self; 5] = [
        Self::Expired,
        Self::WrongName,
        Self::UnknownIssuer,
        Self::PinMismatch,
        Self::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::WrongName => "wrong_name",
            Self::UnknownIssuer => "unknown_issuer",
            Self::PinMismatch => "pin_mismatch",
            Self::Other => "other",
        }
    }

    fn of(error: &rustls::Error) -> Self {
        match error {
            rustls::Error::InvalidCertificate(e) => match e {
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => Self::Expired,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => Self::WrongName,
                CertificateError::UnknownIssuer => Self::UnknownIssuer,
                _ => Self::Other,
            },
            _ => Self::Other,
        }
    }
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Expired => "certificate expired or not yet valid",
            Self::WrongName => "certificate is not valid for the name verified",
            Self::UnknownIssuer => "certificate issuer unknown (not in the CA store or ca_file)",
            Self::PinMismatch => "certificate key matches none of pin_sha256",
            Self::Other => "TLS handshake failed",
        })
    }
}

/// The handshake failure counters of one server, by [`HandshakeFailure`].
#[derive(Clone, Debug, Default)]
pub struct HandshakeCounters(pub [Counter; 5]);

impl HandshakeCounters {
    pub fn count(&self, kind: HandshakeFailure) {
        self.0[kind as usize].inc();
    }
}

/// The system's CA store, read once (`/etc/ssl/certs` and friends).
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "could not read part of the system CA store");
        }
        let mut store = RootCertStore::empty();
        let (added, ignored) = store.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "read the system CA store");
        Arc::new(store)
    }))
}

/// The client config for one server: its trust, a verifier that logs and
/// counts why a certificate failed, and the session cache that lets
/// reconnections resume (rustls keeps it in the config, shared by its clones).
pub fn client_config(
    trust: &Trust,
    server: &str,
    counters: HandshakeCounters,
    alpn: Option<&[u8]>,
) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(hickory_net::tls::default_provider());
    let roots = if trust.cas.is_empty() {
        system_roots()
    } else {
        let mut store = RootCertStore::empty();
        for ca in &trust.cas {
            store.add(ca.clone())?;
        }
        Arc::new(store)
    };
    let inner = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    let verifier = Verifier {
        inner,
        pins: trust.pins.clone(),
        server: server.to_string(),
        counters,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    match alpn {
        Some(alpn) => config.alpn_protocols = vec![alpn.to_vec()],
        // DoT has a port of its own and no virtual hosts: the name is
        // verified without being sent in clear text (as hickory does).
        None => config.enable_sni = false,
    }
    Ok(config)
}

/// WebPKI's verifier, plus pins, plus a log line and a counter on failure.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    pins: Vec<[u8; 32]>,
    server: String,
    counters: HandshakeCounters,
}

impl Verifier {
    fn refuse(&self, kind: HandshakeFailure, detail: &dyn fmt::Display) {
        self.counters.count(kind);
        tracing::warn!(
            server = %self.server,
            reason = %kind,
            kind = kind.label(),
            detail = %detail,
            "refused the upstream's certificate; the server counts as failed"
        );
    }

    fn pinned(&self, end_entity: &CertificateDer<'_>) -> bool {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(end_entity) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(cert.public_key().raw).into();
        self.pins.contains(&digest)
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .inspect_err(|e| self.refuse(HandshakeFailure::of(e), e))?;
        if !self.pins.is_empty() && !self.pinned(end_entity) {
            let detail = "no pin_sha256 matches the certificate's public key";
            self.refuse(HandshakeFailure::PinMismatch, &detail);
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(verified)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_base64_sha256_digests() {
        // RFC 7469 §2.4's example pin.
        let pin = decode_pin("d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM=").unwrap();
        assert_eq!(pin[0], 0x77);
        assert!(decode_pin("d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZ").is_none());
        assert!(decode_pin("not base64!").is_none());
    }
}
