//! A scraper's view of `/metrics` over HTTPS: one GET, either trusting one CA
//! and checking the server's name (what Prometheus does with a CA file and `serverName`), or
//! trusting anything (`insecureSkipVerify`), and the certificate the server presented.

use std::sync::Arc;

use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Whom the client trusts.
pub enum Trust<'a> {
    /// Any certificate: Prometheus's `insecureSkipVerify: true`.
    Anything,
    /// Certificates this CA (PEM) signed, for `server_name`.
    Ca { pem: &'a str, server_name: &'a str },
}

/// One answer: the status code, the whole response, and the leaf certificate presented.
pub struct Answer {
    pub code: u16,
    pub response: String,
    pub presented: Vec<u8>,
}

#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
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
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// GET `path` from `host:port` over HTTPS, with a bearer token if given. An error says why
/// the connection failed (a certificate the client does not trust, no TLS, ...).
pub async fn get(
    host: &str,
    port: u16,
    path: &str,
    token: Option<&str>,
    trust: &Trust<'_>,
) -> Result<Answer, String> {
    let mut tls = connect(host, port, rustls::DEFAULT_VERSIONS, None, trust).await?;
    let presented = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.to_vec())
        .unwrap_or_default();
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    tls.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n{authorization}\r\n").as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut bytes = Vec::new();
    // A server that closes without TLS's close_notify still sent a whole HTTP/1.0 answer.
    if let Err(e) = tls.read_to_end(&mut bytes).await
        && (e.kind() != std::io::ErrorKind::UnexpectedEof || bytes.is_empty())
    {
        return Err(format!("read: {e}"));
    }
    let response = String::from_utf8_lossy(&bytes).to_string();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {response:?}"))?;
    Ok(Answer {
        code,
        response,
        presented,
    })
}

/// Whether a DER certificate says `text` (its names are stored as they are written).
pub fn certificate_says(der: &[u8], text: &str) -> bool {
    der.windows(text.len()).any(|w| w == text.as_bytes())
}

/// A serving certificate as a CA issues it: the CA's certificate, and the leaf's certificate and
/// key, all PEM.
pub struct Issued {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// A fresh CA, and a certificate it signed for `name`.
pub fn issue(ca_name: &str, name: &str) -> Issued {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, ca_name);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).expect("certificate");
    Issued {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// Writes `files` into `dir` as the kubelet writes a Secret volume: into a new hidden directory,
/// made current at once by renaming the `..data` link over the old one, with each file a link
/// through `..data`.
pub fn write_like_a_secret_volume(dir: &std::path::Path, generation: u32, files: &[(&str, &str)]) {
    use std::os::unix::fs::symlink;
    let data = format!("..generation_{generation}");
    std::fs::create_dir_all(dir.join(&data)).expect("data dir");
    for (name, text) in files {
        std::fs::write(dir.join(&data).join(name), text).expect("write");
    }
    let staged = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&staged);
    symlink(&data, &staged).expect("link");
    std::fs::rename(&staged, dir.join("..data")).expect("swap ..data");
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(format!("..data/{name}"), &link).expect("link");
        }
    }
}

/// The first answer of `127.0.0.1:port` to a GET of /metrics (no token) over a connection that
/// trusts only the CA `ca` for `server_name`: waited for up to `timeout` (a certificate being
/// rotated in), `explain` saying more if none comes.
pub async fn first_answer_trusting(
    what: &str,
    port: u16,
    ca: &str,
    server_name: &str,
    timeout: std::time::Duration,
    explain: impl FnOnce() -> String,
) -> Answer {
    let trust = Trust::Ca { pem: ca, server_name };
    super::wait_for_explained(
        what,
        timeout,
        || async { get("127.0.0.1", port, "/metrics", None, &trust).await.ok() },
        explain,
    )
    .await
}

/// A TLS connection to `host:port` offering `versions` and, for TLS 1.2, only `tls12_suites`
/// (every one rustls has when `None`), trusting as `trust` says; an error says why it failed.
async fn connect(
    host: &str,
    port: u16,
    versions: &[&'static rustls::SupportedProtocolVersion],
    tls12_suites: Option<&[rustls::CipherSuite]>,
    trust: &Trust<'_>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(match tls12_suites {
        Some(offered) => seccomp_sentinel::serving_cert::provider_offering(offered),
        None => rustls::crypto::ring::default_provider(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?;
    let (config, server_name) = match trust {
        Trust::Anything => (
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
                .with_no_client_auth(),
            "localhost".to_string(),
        ),
        Trust::Ca { pem, server_name } => {
            let mut roots = rustls::RootCertStore::empty();
            let ca = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| e.to_string())?;
            roots.add(ca).map_err(|e| e.to_string())?;
            (
                builder.with_root_certificates(roots).with_no_client_auth(),
                server_name.to_string(),
            )
        }
    };
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = ServerName::try_from(server_name).map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}

/// A TLS handshake alone with `host:port`, trusting any certificate, offering `versions` and,
/// for TLS 1.2, only `tls12_suites` (every one rustls has when `None`): the version and suite
/// agreed, or why there were none.
pub async fn handshake(
    host: &str,
    port: u16,
    versions: &[&'static rustls::SupportedProtocolVersion],
    tls12_suites: Option<&[rustls::CipherSuite]>,
) -> Result<(rustls::ProtocolVersion, rustls::CipherSuite), String> {
    let tls = connect(host, port, versions, tls12_suites, &Trust::Anything).await?;
    let connection = tls.get_ref().1;
    match (
        connection.protocol_version(),
        connection.negotiated_cipher_suite(),
    ) {
        (Some(version), Some(suite)) => Ok((version, suite.suite())),
        _ => Err("a handshake without a version or suite".to_string()),
    }
}
