//! The edge's https identity: a certificate generated at start for its host names (rcgen,
//! self-signed), or one read from PEM files; a rustls server config offering h2 and HTTP/1.1.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls_pki_types::pem::PemObject;

/// The certificate (PEM, for clients to trust) and the server config built on it.
#[derive(Clone)]
pub struct EdgeTls {
    pub cert_pem: String,
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for EdgeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EdgeTls")
    }
}

impl EdgeTls {
    /// A self-signed certificate for `names` (host names or IP addresses), made now.
    pub fn generate(names: &[String]) -> Result<EdgeTls, String> {
        let ck = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| format!("cannot make a certificate for {names:?}: {e}"))?;
        let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
            .map_err(|e| format!("key: {e}"))?;
        EdgeTls::new(ck.cert.pem(), vec![ck.cert.der().clone()], key)
    }

    /// The certificate chain and key of PEM files (`edge --cert --key`).
    pub fn from_files(cert: &Path, key: &Path) -> Result<EdgeTls, String> {
        let pem =
            std::fs::read_to_string(cert).map_err(|e| format!("--cert {}: {e}", cert.display()))?;
        let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--cert {}: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!(
                "--cert {}: no PEM certificate in it",
                cert.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("--key {}: {e}", key.display()))?;
        EdgeTls::new(pem, chain, key)
    }

    fn new(
        cert_pem: String,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<EdgeTls, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("certificate and key: {e}"))?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(EdgeTls {
            cert_pem,
            config: Arc::new(cfg),
        })
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}
