//! Mutual TLS for the mesh: the cluster CA is the only root on both sides, a client
//! certificate is required, the server is checked against the director name it is dialled
//! as. rustls runs on ring, passed per configuration (no process-wide provider).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};

/// ALPN of the mesh. Not versioned: adjacent protocol versions must connect; the version is
/// in every message.
pub const ALPN: &[u8] = b"flotilla-mesh";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{}: no certificate in the file", path.display())]
    NoCertificate { path: PathBuf },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("QUIC needs TLS 1.3 with an AES-128-GCM suite: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

/// One director's TLS material: the cluster CA, its certificate chain and key.
#[derive(Debug)]
pub struct MeshTls {
    pub ca: CertificateDer<'static>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for MeshTls {
    fn clone(&self) -> Self {
        MeshTls {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl MeshTls {
    /// Reads the files named by the configuration's `tls` block for director `me`.
    pub fn load(tls: &flotilla_config::model::cluster::Tls, me: &str) -> Result<Self, TlsError> {
        Self::from_files(&tls.ca, &tls.certificate(me), &tls.key(me))
    }

    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let pem = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TlsError::Pem { path, source }
        };
        let ca_der = CertificateDer::from_pem_file(ca).map_err(pem(ca))?;
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(pem(cert))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem(cert))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: cert.to_path_buf(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(pem(key))?;
        Ok(MeshTls {
            ca: ca_der,
            chain,
            key,
        })
    }

    fn roots(&self) -> Result<Arc<rustls::RootCertStore>, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone())?;
        Ok(Arc::new(roots))
    }

    pub(crate) fn server_config(
        &self,
        transport: Arc<quinn::TransportConfig>,
    ) -> Result<quinn::ServerConfig, TlsError> {
        let provider = provider();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots()?, provider.clone()).build()?;
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let mut config =
            quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
        config.transport_config(transport);
        Ok(config)
    }

    pub(crate) fn client_config(
        &self,
        transport: Arc<quinn::TransportConfig>,
    ) -> Result<quinn::ClientConfig, TlsError> {
        let mut tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
        config.transport_config(transport);
        Ok(config)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which director of `directors` (never `me`) an accepted connection's client certificate
/// names. The chain was already verified against the CA during the handshake; this only
/// maps the verified name to a member.
pub(crate) fn identify(
    conn: &quinn::Connection,
    directors: &[String],
    me: &str,
) -> Result<String, String> {
    let chain = conn
        .peer_identity()
        .and_then(|id| id.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or("no client certificate")?;
    let leaf = chain.first().ok_or("empty client certificate chain")?;
    let parsed =
        ParsedCertificate::try_from(leaf).map_err(|e| format!("unreadable certificate: {e}"))?;
    let named_for = |name: &str| {
        ServerName::try_from(name)
            .ok()
            .is_some_and(|sn| rustls::client::verify_server_name(&parsed, &sn).is_ok())
    };
    if named_for(me) {
        return Err(format!(
            "certificate claims this director's own name {me:?}"
        ));
    }
    let mut matches = directors
        .iter()
        .filter(|d| d.as_str() != me && named_for(d));
    match (matches.next(), matches.next()) {
        (Some(name), None) => Ok(name.clone()),
        (None, _) => Err("certificate names no director of this cluster".into()),
        (Some(_), Some(_)) => Err("certificate names several directors".into()),
    }
}
