//! The simulation's PKI: one CA per run, a serving certificate for loopback, and client
//! certificates for kubeconfigs that authenticate with a certificate instead of a token.
//! Kubernetes clients send credentials only over TLS, so the API servers speak HTTPS.
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;

pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    /// The CA's private key (PEM), kept so a restarted simulation is trusted by the same clients.
    pub ca_key_pem: String,
    pub ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Pki {
    /// A CA from `ca_key_pem` (the same key and name as before make certificates that clients
    /// trusting the earlier CA accept), or a new one.
    pub fn new(ca_key_pem: Option<&str>) -> Result<Pki, rcgen::Error> {
        let ca_key = match ca_key_pem {
            Some(pem) => KeyPair::from_pem(pem)?,
            None => KeyPair::generate()?,
        };
        let ca_key_pem = ca_key.serialize_pem();
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "hmas-simulated-ca");
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(p, ca_key)?;
        let mut s = CertificateParams::new(vec!["localhost".to_string(), "kubernetes.default.svc".to_string()])?;
        s.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        s.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        s.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = s.signed_by(&key, &ca)?;
        let ca_pem = ca.pem();
        Ok(Pki { ca, ca_key_pem, ca_pem, server_cert: cert.der().clone(), server_key: key.serialize_der() })
    }

    /// A client certificate for `cn` in group `org` (e.g. `system:masters`).
    pub fn client(&self, cn: &str, org: &str) -> Result<ClientCert, rcgen::Error> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name.push(DnType::OrganizationName, org);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.ca)?;
        Ok(ClientCert { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() })
    }

    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).map_err(|e| e.to_string())?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| e.to_string())?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.server_cert.clone(), self.ca.der().clone()], key)
            .map_err(|e| e.to_string())?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}
