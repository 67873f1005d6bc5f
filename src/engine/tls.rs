//! TLS for the built-in client: whom to trust (the system's roots, `--cacert` files, or nobody
//! with `--insecure`), session resumption (`--tls-resume`), one rustls config per worker thread
//! (its own session cache, no lock shared between threads).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls_pki_types::pem::PemObject;

/// What a run's TLS trusts and how it connects.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsOptions {
    /// PEM files of CA certificates to trust instead of the system's roots
    pub cacert: Vec<PathBuf>,
    /// accept any certificate (a staging edge with a self-signed one): said loudly
    pub insecure: bool,
    /// resume TLS sessions on new connections (off: every connection a full handshake)
    pub resume: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            cacert: Vec::new(),
            insecure: false,
            resume: true,
        }
    }
}

/// The roots and settings, loaded once; `client_config` makes a thread's config from them.
#[derive(Debug)]
pub(crate) struct Trust {
    roots: Arc<RootCertStore>,
    insecure: bool,
    resume: bool,
}

/// The roots last loaded, and for which options: the engine loads them once before its
/// threads start, and every thread's client shares them.
static SHARED: std::sync::Mutex<Option<(TlsOptions, Arc<Trust>)>> = std::sync::Mutex::new(None);

impl Trust {
    /// The roots for `o`, loaded once (the system's store is a few hundred files).
    pub(crate) fn shared(o: &TlsOptions) -> Result<Arc<Trust>, String> {
        let mut s = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, t)) = s.as_ref()
            && k == o
        {
            return Ok(t.clone());
        }
        let t = Arc::new(Trust::load(o)?);
        *s = Some((o.clone(), t.clone()));
        Ok(t)
    }

    /// Loads the roots: the `--cacert` files when given (an unreadable or empty one is an
    /// error naming it), else the system's trust store.
    pub(crate) fn load(o: &TlsOptions) -> Result<Trust, String> {
        let mut roots = RootCertStore::empty();
        let mut system_errors = Vec::new();
        if o.cacert.is_empty() {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                // a malformed system certificate is skipped, as every TLS client does
                let _ = roots.add(c);
            }
            system_errors = found.errors.iter().take(3).map(|e| e.to_string()).collect();
        }
        for f in &o.cacert {
            let mut n = 0;
            let certs = CertificateDer::pem_file_iter(f)
                .map_err(|e| format!("--cacert {}: {e}", f.display()))?;
            for c in certs {
                let c = c.map_err(|e| format!("--cacert {}: {e}", f.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("--cacert {}: {e}", f.display()))?;
                n += 1;
            }
            if n == 0 {
                return Err(format!(
                    "--cacert {}: no PEM certificate in it",
                    f.display()
                ));
            }
        }
        if roots.is_empty() && !o.insecure {
            let why = if system_errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", system_errors.join("; "))
            };
            return Err(format!(
                "no trusted CA certificate: none found in the system's store{why} (Debian: \
                 ca-certificates; SSL_CERT_FILE and SSL_CERT_DIR are read); give --cacert FILE"
            ));
        }
        Ok(Trust {
            roots: Arc::new(roots),
            insecure: o.insecure,
            resume: o.resume,
        })
    }

    /// A thread's client config: HTTP/1.1 by ALPN (or h2 alone, `h2`), its own session cache.
    pub(crate) fn client_config(&self, h2: bool) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the provider's defaults");
        let mut cfg = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(self.roots.clone())
                .with_no_client_auth()
        };
        cfg.alpn_protocols = vec![if h2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        if !self.resume {
            cfg.resumption = rustls::client::Resumption::disabled();
        }
        Arc::new(cfg)
    }
}

/// The server name a URL's host gives (SNI, and what the certificate must name).
pub(crate) fn server_name(host: &str) -> Option<ServerName<'static>> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(h.to_string()).ok()
}

/// `--insecure`: any certificate is accepted (signatures are still checked, so the handshake
/// is the real one and costs what it costs).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
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
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
