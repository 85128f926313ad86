//! Mutual TLS between nodes (rustls).
//!
//! Every node presents a certificate signed by the cluster's CA and accepts only peers that do
//! the same. A node in TLS mode refuses a plaintext peer: its TLS handshake fails on the first
//! bytes and the connection is dropped before ractor_cluster sees it.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::ClusterError;

/// TLS settings of a node: its certificate chain and key, the CA that signs every node, and
/// the name every node's certificate carries (checked by the dialing side).
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) connector: TlsConnector,
    pub(crate) server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Tls(format!("{what}: {e}"))
}

impl TlsConfig {
    /// Builds the configuration from PEM text: this node's certificate chain, its private key,
    /// the cluster CA, and the DNS name in every node's certificate (e.g. `cluster.local`).
    pub fn from_pem(
        cert_chain_pem: &str,
        key_pem: &str,
        ca_pem: &str,
        server_name: &str,
    ) -> Result<Self, ClusterError> {
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| tls_err("certificate chain", e))?;
        if certs.is_empty() {
            return Err(ClusterError::Tls("no certificate in the chain".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| tls_err("private key", e))?;
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let ca = ca.map_err(|e| tls_err("CA certificate", e))?;
            roots.add(ca).map_err(|e| tls_err("CA certificate", e))?;
        }
        if roots.is_empty() {
            return Err(ClusterError::Tls("no CA certificate".into()));
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| tls_err("client verifier", e))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("protocol versions", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| tls_err("server certificate", e))?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("protocol versions", e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| tls_err("client certificate", e))?;
        let server_name =
            ServerName::try_from(server_name.to_owned()).map_err(|e| tls_err("server name", e))?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
        })
    }

    /// Reads the PEM files and builds the configuration (see [`TlsConfig::from_pem`]).
    pub fn from_files(
        cert_chain: &std::path::Path,
        key: &std::path::Path,
        ca: &std::path::Path,
        server_name: &str,
    ) -> Result<Self, ClusterError> {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).map_err(|e| tls_err(&p.display().to_string(), e))
        };
        Self::from_pem(&read(cert_chain)?, &read(key)?, &read(ca)?, server_name)
    }
}
