//! The cluster's certificate authority and the directors' certificates (`flotilla cert init`,
//! `flotilla cert issue`). Only certificates signed by the cluster CA join the mesh; a
//! director's identity is the name in its certificate (DNS SAN and CN).
//!
//! Files: the CA is `DIR/ca.pem` + `DIR/ca-key.pem`, a director is `DIR/NAME.pem` +
//! `DIR/NAME-key.pem` (the layout `flotilla_config::model::cluster::Tls` expects). Keys are
//! written with mode 0600. Nothing here overwrites an existing file: replacing a key is an
//! operator's decision, not a side effect.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// File name of the CA certificate inside the CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA key inside the CA directory.
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// Common name of every CA `init_ca` makes. `issue` rebuilds the issuer from it, so a CA made
/// by another tool is detected (the issued certificate would not chain) and refused.
const CA_COMMON_NAME: &str = "flotilla cluster CA";
const CA_VALIDITY_DAYS: i64 = 20 * 365;
const DIRECTOR_VALIDITY_DAYS: i64 = 10 * 365;
/// Certificates start an hour in the past, so a director whose clock is slightly behind the
/// issuer's does not refuse a freshly issued peer.
const BACKDATE: time::Duration = time::Duration::hours(1);
/// A DNS label's limit; director names are single names, not domains.
const MAX_NAME_LEN: usize = 63;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{}: already exists; refusing to overwrite it", path.display())]
    Exists { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a PEM certificate: {source}", path.display())]
    Certificate {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{}: not a usable private key: {source}", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: rcgen::Error,
    },
    #[error("invalid director name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("{}: the CA certificate does not match its key or was not made by `flotilla cert init`: {reason}", path.display())]
    CaMismatch { path: PathBuf, reason: String },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The two files of a certificate: the PEM certificate and its PEM (PKCS#8) key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes a new cluster CA in `dir` (created if missing): `ca.pem` and `ca-key.pem` (0600).
pub fn init_ca(dir: &Path) -> Result<CertFiles, CertError> {
    let files = CertFiles {
        cert: dir.join(CA_CERT_FILE),
        key: dir.join(CA_KEY_FILE),
    };
    refuse_existing(&files)?;
    let key = KeyPair::generate()?;
    let mut params = ca_params();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
    let ca = CertifiedIssuer::self_signed(params, key)?;
    create_dir(dir)?;
    write_new(&files.key, ca.key().serialize_pem().as_bytes(), 0o600)?;
    write_new(&files.cert, ca.pem().as_bytes(), 0o644)?;
    Ok(files)
}

/// Issues director `name`'s certificate, signed by the CA in `ca_dir`, into `out_dir`
/// (created if missing): `NAME.pem` and `NAME-key.pem` (0600). The name is the DNS SAN and
/// the CN; the certificate serves as client and server (the mesh is mutual TLS).
pub fn issue(ca_dir: &Path, name: &str, out_dir: &Path) -> Result<CertFiles, CertError> {
    validate_name(name)?;
    let files = CertFiles {
        cert: out_dir.join(format!("{name}.pem")),
        key: out_dir.join(format!("{name}-key.pem")),
    };
    refuse_existing(&files)?;

    let ca_cert_path = ca_dir.join(CA_CERT_FILE);
    let ca_key_path = ca_dir.join(CA_KEY_FILE);
    let ca_cert =
        CertificateDer::from_pem_file(&ca_cert_path).map_err(|source| CertError::Certificate {
            path: ca_cert_path.clone(),
            source,
        })?;
    let ca_key_pem = std::fs::read_to_string(&ca_key_path).map_err(|source| CertError::Io {
        path: ca_key_path.clone(),
        source,
    })?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|source| CertError::Key {
        path: ca_key_path.clone(),
        source,
    })?;
    let issuer = Issuer::new(ca_params(), ca_key);

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![name.to_string()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + time::Duration::days(DIRECTOR_VALIDITY_DAYS);
    let cert = params.signed_by(&key, &issuer)?;

    check_chain(cert.der(), &ca_cert, name).map_err(|reason| CertError::CaMismatch {
        path: ca_cert_path,
        reason,
    })?;

    create_dir(out_dir)?;
    write_new(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
    write_new(&files.cert, cert.pem().as_bytes(), 0o644)?;
    Ok(files)
}

/// A director name: 1–63 of letters, digits, `-`, `_`, `.`, usable as a DNS name in a
/// certificate (so not an IP address, and no empty dot-separated label).
pub fn validate_name(name: &str) -> Result<(), CertError> {
    let invalid = |reason| {
        Err(CertError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return invalid("it is longer than 63 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return invalid("only letters, digits, '-', '_' and '.' are allowed");
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return invalid("an IP address cannot be a director name");
    }
    match ServerName::try_from(name) {
        Ok(ServerName::DnsName(_)) => Ok(()),
        _ => invalid(
            "it is not usable as a DNS name (empty label, or a label starts or ends with '-')",
        ),
    }
}

/// The CA's parameters. `issue` rebuilds the issuer from them: the subject of an issued
/// certificate's issuer must equal the CA certificate's subject byte for byte.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Checks that a freshly issued certificate chains to the CA certificate on disk, exactly as
/// a peer will check it.
fn check_chain(
    leaf: &CertificateDer<'_>,
    ca: &CertificateDer<'static>,
    name: &str,
) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).map_err(|e| e.to_string())?;
    let parsed = rustls::server::ParsedCertificate::try_from(leaf).map_err(|e| e.to_string())?;
    let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &roots,
        &[],
        UnixTime::now(),
        algs.all,
    )
    .map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name).map_err(|e| e.to_string())?;
    rustls::client::verify_server_name(&parsed, &server_name).map_err(|e| e.to_string())
}

fn refuse_existing(files: &CertFiles) -> Result<(), CertError> {
    for path in [&files.cert, &files.key] {
        match path.try_exists() {
            Ok(false) => {}
            Ok(true) => return Err(CertError::Exists { path: path.clone() }),
            Err(source) => {
                return Err(CertError::Io {
                    path: path.clone(),
                    source,
                });
            }
        }
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Creates `path` (never replacing a file, even one that appeared since the check) with
/// `mode` from the start, so a key is never readable by others, not even briefly.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                CertError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                io(e)
            }
        })?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn init_writes_ca_with_private_key_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let files = init_ca(dir.path()).unwrap();
        assert_eq!(files.cert, dir.path().join("ca.pem"));
        assert_eq!(mode(&files.key), 0o600);
        let before = std::fs::read(&files.key).unwrap();
        let err = init_ca(dir.path()).unwrap_err();
        assert!(
            matches!(&err, CertError::Exists { path } if path == &files.cert),
            "{err}"
        );
        assert!(err.to_string().contains("ca.pem"), "{err}");
        assert_eq!(std::fs::read(&files.key).unwrap(), before);
    }

    #[test]
    fn issued_certificate_chains_to_the_ca_and_names_the_director() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path()).unwrap();
        let out = dir.path().join("directors");
        let files = issue(dir.path(), "lb-1.dc_2", &out).unwrap();
        assert_eq!(files.cert, out.join("lb-1.dc_2.pem"));
        assert_eq!(files.key, out.join("lb-1.dc_2-key.pem"));
        assert_eq!(mode(&files.key), 0o600);
        let ca = CertificateDer::from_pem_file(dir.path().join("ca.pem")).unwrap();
        let leaf = CertificateDer::from_pem_file(&files.cert).unwrap();
        check_chain(&leaf, &ca, "lb-1.dc_2").unwrap();
        assert!(check_chain(&leaf, &ca, "lb-2").is_err());
        let err = issue(dir.path(), "lb-1.dc_2", &out).unwrap_err();
        assert!(matches!(err, CertError::Exists { .. }), "{err}");
    }

    #[test]
    fn a_ca_key_that_does_not_match_the_ca_certificate_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        init_ca(a.path()).unwrap();
        init_ca(b.path()).unwrap();
        std::fs::remove_file(a.path().join("ca-key.pem")).unwrap();
        std::fs::copy(b.path().join("ca-key.pem"), a.path().join("ca-key.pem")).unwrap();
        let err = issue(a.path(), "lb-1", a.path()).unwrap_err();
        assert!(matches!(err, CertError::CaMismatch { .. }), "{err}");
        assert!(!a.path().join("lb-1.pem").exists());
    }

    #[test]
    fn missing_ca_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = issue(dir.path(), "lb-1", dir.path()).unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }

    #[test]
    fn names() {
        for ok in ["lb1", "lb-1", "lb_1", "dir.example", "A9"] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            "lb 1",
            "lb/1",
            "..",
            "a..b",
            "-lb",
            "10.0.0.1",
            "lb\u{e9}",
            &"x".repeat(64),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
