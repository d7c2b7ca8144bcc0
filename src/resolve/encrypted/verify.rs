//! The certificate check of an encrypted upstream: WebPKI against the system's
//! CA store or the route's `ca_file`, then the `pin_sha256` pins (RFC 7858
//! §4.2). A certificate that does not verify fails the connection with a log
//! line that says why; there is never a fallback to clear text.

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};

use crate::config::trust::Trust;
use crate::observe::failure::HandshakeFailure;
use crate::observe::metrics::HandshakeCounters;

/// The kind of a certificate the WebPKI check refused.
fn failure_of(error: &rustls::Error) -> HandshakeFailure {
    match error {
        rustls::Error::InvalidCertificate(e) => match e {
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => HandshakeFailure::Expired,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                HandshakeFailure::WrongName
            }
            CertificateError::UnknownIssuer => HandshakeFailure::UnknownIssuer,
            _ => HandshakeFailure::Other,
        },
        _ => HandshakeFailure::Other,
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
pub(super) fn client_config(
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
            .inspect_err(|e| self.refuse(failure_of(e), e))?;
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
