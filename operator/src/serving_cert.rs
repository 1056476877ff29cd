//! The certificate `/metrics` is served with over HTTPS.
//!
//! A directory given with `--metrics-cert-dir` holds `tls.crt` (the chain, leaf first) and
//! `tls.key`, the two keys of a `kubernetes.io/tls` Secret: OpenShift's service CA,
//! cert-manager, or a Secret of one's own. Those are rotated in place (the kubelet swaps a mounted
//! Secret's files when it changes), so the files are read again every few seconds and a pair that
//! changed is served from the next handshake on. Until the directory has a pair (an optional
//! Secret volume whose Secret the service CA has not made yet), and when no directory is given, a
//! certificate signed by itself, made at start, is served: the scraper's token is then still
//! encrypted on the wire, as with kubebuilder's default.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use rustls::{
    crypto::CryptoProvider,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// The file of the certificate chain in a certificate directory.
pub const CERT_FILE: &str = "tls.crt";
/// The file of the private key in a certificate directory.
pub const KEY_FILE: &str = "tls.key";

/// The common name of the self-signed certificate, which says what it is to whoever looks.
pub const SELF_SIGNED_NAME: &str = "seccomp-sentinel metrics (self-signed)";

/// How often a certificate directory is read again for a rotated pair.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServingCertError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} has no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} is not a PEM certificate chain: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{path} is not a PEM private key: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("{key} does not go with {cert}: {source}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The crypto of the server side: ring, as for the client (no second crypto library).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// [`provider`] offering every TLS 1.3 suite and, of TLS 1.2, `tls12_suites` alone.
pub fn provider_offering(tls12_suites: &[rustls::CipherSuite]) -> CryptoProvider {
    let mut offering = Arc::unwrap_or_clone(provider());
    offering
        .cipher_suites
        .retain(|suite| suite.tls13().is_some() || tls12_suites.contains(&suite.suite()));
    offering
}

/// The raw files of a certificate directory, compared to tell a rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PairFiles {
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// Reads the pair in `dir`; `None` while either file is missing.
fn read_pair(dir: &Path) -> Result<Option<PairFiles>, ServingCertError> {
    let read = |name: &str| {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ServingCertError::Read { path, source }),
        }
    };
    Ok(match (read(CERT_FILE)?, read(KEY_FILE)?) {
        (Some(cert), Some(key)) => Some(PairFiles { cert, key }),
        _ => None,
    })
}

/// Parses a pair read from `dir` and checks that the key is the certificate's.
fn certified_key(dir: &Path, files: &PairFiles) -> Result<CertifiedKey, ServingCertError> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let chain = CertificateDer::pem_slice_iter(&files.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServingCertError::BadCertificate {
            path: cert_path.clone(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(ServingCertError::NoCertificate { path: cert_path });
    }
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|e| ServingCertError::BadKey {
        path: key_path.clone(),
        reason: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|source| ServingCertError::Mismatch {
        cert: cert_path,
        key: key_path,
        source,
    })
}

/// A certificate for `localhost` signed by its own key, made afresh at each start.
fn self_signed() -> Result<CertifiedKey, ServingCertError> {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, SELF_SIGNED_NAME);
    let signing_key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&signing_key)?;
    let key = PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    Ok(CertifiedKey::from_der(
        vec![cert.der().clone()],
        key,
        &provider(),
    )?)
}

/// The oldest TLS version served, named as Kubernetes components' `--tls-min-version` names it.
/// TLS 1.2 is served with forward-secret AEAD suites only (rustls has no others); TLS 1.3 alone
/// is OpenShift's "Modern" TLS profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMinVersion {
    #[default]
    #[value(name = "VersionTLS12", alias = "1.2")]
    Tls12,
    #[value(name = "VersionTLS13", alias = "1.3")]
    Tls13,
}

/// Which certificate is served now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// The pair of the certificate directory.
    FromDirectory,
    /// One signed by itself: no directory, or none with a pair yet.
    SelfSigned,
}

struct Current {
    key: Arc<CertifiedKey>,
    /// The directory's files the key was made from (`None` while self-signed).
    files: Option<PairFiles>,
}

/// The certificate of the next handshake, and where it comes from.
pub struct ServingCert {
    dir: Option<PathBuf>,
    current: RwLock<Current>,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert")
            .field("dir", &self.dir)
            .field("served", &self.served())
            .finish()
    }
}

impl ServingCert {
    /// The certificate of `dir`, or a self-signed one without a directory or while it has no
    /// pair. A pair that is there but does not parse, or whose key is another's, is an error:
    /// at start it is a mistake to show, not to serve around.
    pub fn load(dir: Option<PathBuf>) -> Result<ServingCert, ServingCertError> {
        let files = match &dir {
            Some(dir) => read_pair(dir)?,
            None => None,
        };
        let current = match (&dir, files) {
            (Some(dir), Some(files)) => Current {
                key: Arc::new(certified_key(dir, &files)?),
                files: Some(files),
            },
            _ => Current {
                key: Arc::new(self_signed()?),
                files: None,
            },
        };
        Ok(ServingCert {
            dir,
            current: RwLock::new(current),
        })
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn served(&self) -> Served {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        if current.files.is_some() {
            Served::FromDirectory
        } else {
            Served::SelfSigned
        }
    }

    /// Reads the directory again and serves its pair from the next handshake on if it changed.
    /// `Ok(true)` when the served certificate changed. A pair that does not parse leaves the
    /// served one as it is (a rotation half done, or a bad Secret, must not stop the scrapes);
    /// files gone do too.
    pub fn reload(&self) -> Result<bool, ServingCertError> {
        let Some(dir) = &self.dir else {
            return Ok(false);
        };
        let Some(files) = read_pair(dir)? else {
            return Ok(false);
        };
        {
            let current = self.current.read().unwrap_or_else(|p| p.into_inner());
            if current.files.as_ref() == Some(&files) {
                return Ok(false);
            }
        }
        let key = Arc::new(certified_key(dir, &files)?);
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Current {
            key,
            files: Some(files),
        };
        Ok(true)
    }

    /// Reloads every `interval` for ever, saying what changed and what could not be read.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let Some(dir) = self.dir.clone() else {
            return;
        };
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The same failure is said once, not every tick.
        let mut last_error: Option<String> = None;
        loop {
            ticks.tick().await;
            match self.reload() {
                Ok(true) => {
                    last_error = None;
                    tracing::info!(dir = %dir.display(), "serving /metrics with the certificate of the directory, changed");
                }
                Ok(false) => last_error = None,
                Err(e) => {
                    let message = e.to_string();
                    if last_error.as_ref() != Some(&message) {
                        tracing::warn!(error = %message, "cannot use the new certificate: still serving the one before");
                        last_error = Some(message);
                    }
                }
            }
        }
    }

    /// The TLS set-up of a server presenting this certificate as `policy` says (its oldest
    /// version, its TLS 1.2 suites), HTTP/1.1 only (the only protocol the server speaks).
    pub fn server_config(
        self: Arc<Self>,
        policy: &crate::tls_profile::TlsPolicy,
    ) -> Result<rustls::ServerConfig, ServingCertError> {
        let versions: &[&rustls::SupportedProtocolVersion] = if policy.serves_tls12() {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let provider = Arc::new(provider_offering(&policy.tls12_suites));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)?
            .with_no_client_auth()
            .with_cert_resolver(self);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        Some(current.key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls_profile::TlsPolicy;

    struct Pair {
        cert: String,
        key: String,
    }

    fn pair(name: &str) -> Pair {
        let made = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("rcgen");
        Pair {
            cert: made.cert.pem(),
            key: made.signing_key.serialize_pem(),
        }
    }

    fn write(dir: &Path, pair: &Pair) {
        std::fs::write(dir.join(CERT_FILE), &pair.cert).expect("write cert");
        std::fs::write(dir.join(KEY_FILE), &pair.key).expect("write key");
    }

    fn served_der(cert: &ServingCert) -> Vec<u8> {
        let current = cert.current.read().expect("lock");
        current.key.cert[0].to_vec()
    }

    fn der_of(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .expect("pem")
            .to_vec()
    }

    /// Completes a handshake in memory between a client of `client_versions` (and of
    /// `client_suites`, or all), which trusts the CA of the served certificate (an ECDSA key), and
    /// the server of `policy`; the version and suite agreed, or the error.
    fn handshake(
        policy: &TlsPolicy,
        client_versions: &[&'static rustls::SupportedProtocolVersion],
        client_suites: Option<&[rustls::CipherSuite]>,
    ) -> Result<(rustls::ProtocolVersion, rustls::CipherSuite), rustls::Error> {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("leaf");
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            &Pair {
                cert: leaf.pem(),
                key: key.serialize_pem(),
            },
        );
        let cert = Arc::new(ServingCert::load(Some(dir.path().to_path_buf())).expect("load"));
        let server_config = Arc::new(cert.server_config(policy).expect("server config"));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).expect("root");
        let client_provider =
            client_suites.map_or_else(provider, |suites| Arc::new(provider_offering(suites)));
        let client_config = rustls::ClientConfig::builder_with_provider(client_provider)
            .with_protocol_versions(client_versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let mut client = rustls::ClientConnection::new(Arc::new(client_config), name).expect("client");
        let mut server = rustls::ServerConnection::new(server_config).expect("server");
        while client.is_handshaking() || server.is_handshaking() {
            let mut bytes = Vec::new();
            client.write_tls(&mut bytes).expect("client writes");
            server.read_tls(&mut bytes.as_slice()).expect("server reads");
            server.process_new_packets()?;
            let mut bytes = Vec::new();
            server.write_tls(&mut bytes).expect("server writes");
            client.read_tls(&mut bytes.as_slice()).expect("client reads");
            client.process_new_packets()?;
        }
        Ok((
            server.protocol_version().expect("a version"),
            server.negotiated_cipher_suite().expect("a suite").suite(),
        ))
    }

    fn intermediate_from(min_version: TlsMinVersion) -> TlsPolicy {
        TlsPolicy {
            min_version,
            ..TlsPolicy::intermediate()
        }
    }

    #[test]
    fn tls_1_2_is_served_unless_the_minimum_is_1_3() {
        use rustls::{
            ProtocolVersion,
            version::{TLS12, TLS13},
        };
        let version = |min, client: &[&'static rustls::SupportedProtocolVersion]| {
            handshake(&intermediate_from(min), client, None).map(|(version, _)| version)
        };
        assert_eq!(
            version(TlsMinVersion::Tls12, &[&TLS12]),
            Ok(ProtocolVersion::TLSv1_2)
        );
        assert_eq!(
            version(TlsMinVersion::Tls12, &[&TLS13, &TLS12]),
            Ok(ProtocolVersion::TLSv1_3)
        );
        assert_eq!(
            version(TlsMinVersion::Tls13, &[&TLS13]),
            Ok(ProtocolVersion::TLSv1_3)
        );
        let refused = version(TlsMinVersion::Tls13, &[&TLS12]).expect_err("TLS 1.2 only");
        assert!(
            matches!(refused, rustls::Error::PeerIncompatible(_)),
            "{refused:?}"
        );
    }

    #[test]
    fn tls_1_2_is_agreed_only_on_the_policys_suites() {
        use rustls::{CipherSuite, ProtocolVersion, version::TLS12};
        let policy = TlsPolicy {
            min_version: TlsMinVersion::Tls12,
            tls12_suites: vec![CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384],
        };
        let refused = handshake(
            &policy,
            &[&TLS12],
            Some(&[CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]),
        )
        .expect_err("no suite in common");
        assert!(
            matches!(refused, rustls::Error::PeerIncompatible(_)),
            "{refused:?}"
        );
        assert_eq!(
            handshake(&policy, &[&TLS12], None),
            Ok((
                ProtocolVersion::TLSv1_2,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            ))
        );
        // No TLS 1.2 suite at all: TLS 1.3 only, whatever the minimum.
        let none = TlsPolicy {
            min_version: TlsMinVersion::Tls12,
            tls12_suites: Vec::new(),
        };
        assert!(handshake(&none, &[&TLS12], None).is_err());
        assert_eq!(
            handshake(&none, &[&rustls::version::TLS13, &TLS12], None).map(|(v, _)| v),
            Ok(ProtocolVersion::TLSv1_3)
        );
    }

    #[test]
    fn without_a_directory_a_self_signed_certificate_is_served() {
        let cert = ServingCert::load(None).expect("load");
        assert_eq!(cert.served(), Served::SelfSigned);
        assert!(!cert.reload().expect("reload"), "nothing to reload");
    }

    #[test]
    fn the_directory_pair_is_served_once_it_appears_and_again_when_rotated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = ServingCert::load(Some(dir.path().to_path_buf())).expect("load");
        assert_eq!(cert.served(), Served::SelfSigned, "no pair yet");
        let self_signed = served_der(&cert);

        // Half a pair is no pair.
        let first = pair("first.example");
        std::fs::write(dir.path().join(CERT_FILE), &first.cert).expect("write");
        assert!(!cert.reload().expect("reload"));
        assert_eq!(served_der(&cert), self_signed);

        write(dir.path(), &first);
        assert!(cert.reload().expect("reload"));
        assert_eq!(cert.served(), Served::FromDirectory);
        assert_eq!(served_der(&cert), der_of(&first.cert));
        assert!(!cert.reload().expect("reload"), "unchanged files");

        let second = pair("second.example");
        write(dir.path(), &second);
        assert!(cert.reload().expect("reload"));
        assert_eq!(served_der(&cert), der_of(&second.cert));
    }

    #[test]
    fn a_bad_pair_is_refused_at_start_and_kept_out_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = pair("first.example");
        let other = pair("other.example");
        // The key of another certificate.
        write(
            dir.path(),
            &Pair {
                cert: first.cert.clone(),
                key: other.key.clone(),
            },
        );
        let error = ServingCert::load(Some(dir.path().to_path_buf())).expect_err("mismatch");
        assert!(matches!(error, ServingCertError::Mismatch { .. }), "{error}");
        assert!(error.to_string().contains("tls.key does not go with"), "{error}");

        write(dir.path(), &first);
        let cert = ServingCert::load(Some(dir.path().to_path_buf())).expect("load");
        assert_eq!(served_der(&cert), der_of(&first.cert));
        for (cert_text, key_text, expected) in [
            ("not pem", first.key.as_str(), "has no PEM certificate"),
            (first.cert.as_str(), "not pem", "is not a PEM private key"),
            (first.cert.as_str(), other.key.as_str(), "does not go with"),
        ] {
            std::fs::write(dir.path().join(CERT_FILE), cert_text).expect("write");
            std::fs::write(dir.path().join(KEY_FILE), key_text).expect("write");
            let error = cert.reload().expect_err("a bad pair");
            assert!(error.to_string().contains(expected), "{error}");
            assert_eq!(served_der(&cert), der_of(&first.cert), "still the good one");
        }
    }
}
