//! TLS on both sides: the API server's own serving certificate towards the
//! operator, and the environment's CA towards the API server.

use std::path::Path;
use std::sync::Arc;

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

use super::serve::Upstream;
use crate::env::EnvInfo;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn certificates(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The environment's PKI directory, next to the administrator's kubeconfig.
fn pki(env: &EnvInfo) -> std::path::PathBuf {
    env.kubeconfig.parent().unwrap().join("pki")
}

/// Serves the API server's certificate: its names include 127.0.0.1.
pub(super) fn acceptor(env: &EnvInfo) -> TlsAcceptor {
    let pki = pki(env);
    let key = PrivateKeyDer::from_pem_file(pki.join("serving.key")).expect("the serving key");
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certificates(&pki.join("serving.crt")), key)
        .expect("the serving certificate");
    // One request at a time per connection: what the operator's client speaks.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// A pooled HTTP/1.1 client trusting the environment's CA.
pub(super) fn upstream(env: &EnvInfo) -> Upstream {
    let mut roots = RootCertStore::empty();
    for cert in certificates(&env.ca_file) {
        roots.add(cert).expect("the environment's CA");
    }
    let tls = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(https)
}
