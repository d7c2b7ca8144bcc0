//! Whom an encrypted upstream is trusted as (`ca_file`, `pin_sha256`): read and
//! checked with the rest of the config. The verifier that applies it is in
//! `resolve::encrypted::verify`.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, pem::PemObject};

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
