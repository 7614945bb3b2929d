//! HTTP_GET and SSL_GET: one GET per `url`, each on its own connection as keepalived does,
//! all of which must pass (status in range, body MD5 equal to `digest`, body matching
//! `regex`).
//!
//! The request is keepalived's (`check_http.c` `request_template`): `GET path HTTP/1.x`,
//! `User-Agent: KeepAliveClient`, `Connection: close` for `1.0C` and `1.1`, and `Host` from
//! the url's or the checker's `virtualhost`, else the probed `ip:port`. hyper runs HTTP/1
//! over a stream connected here, so the source address and the timeouts stay ours.
//!
//! One difference in timing: keepalived checks one url per `delay_loop` and walks the list,
//! so with n urls a full pass takes n loops (`fast_recovery` shortens the walk while the
//! server is down). Here every probe checks every url, so a failing url is seen within one
//! loop and `fast_recovery` has nothing left to do.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::{CONNECTION, HOST, HeaderValue, USER_AGENT};
use hyper::{Request, Uri, Version};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsConnector;

use flotilla_config::model::lvs::{HttpCheck, HttpProtocol, StatusRange, UrlRegex};

use super::net::{connect_tcp, host_port};
use super::{Endpoint, Pass, ProbeError, Secs, SpecError};

/// The most body bytes read for a digest. keepalived streams any length into MD5; a bound
/// keeps a misbehaving server from holding a probe for its whole timeout on a huge body.
pub const BODY_LIMIT: u64 = 16 << 20;

const USER_AGENT_VALUE: &str = "KeepAliveClient";

/// One `url` block, resolved.
#[derive(Debug, Clone)]
pub struct UrlCheck {
    /// The request target as written (`/index.html`).
    pub path: String,
    uri: Uri,
    host: HeaderValue,
    /// SNI for this request (SSL_GET with `enable_sni`).
    sni: Option<ServerName<'static>>,
    pub status: Vec<StatusRange>,
    /// MD5 of the body, lowercase hex.
    pub digest: Option<String>,
    regex: Option<BodyRegex>,
}

/// A url's `regex` with its options and offsets (`check_http.c` `check_regex`).
#[derive(Debug, Clone)]
struct BodyRegex {
    pattern: String,
    regex: regex::bytes::Regex,
    /// `regex_no_match`: pass when it does not match.
    no_match: bool,
    /// A match must start at or after this offset of the body…
    min_offset: usize,
    /// …and at or before this one (`regex_max_offset`, inclusive).
    max_offset: Option<usize>,
}

impl BodyRegex {
    fn new(path: &str, r: &UrlRegex) -> Result<Self, SpecError> {
        let mut b = regex::bytes::RegexBuilder::new(&r.pattern);
        // PCRE2's defaults: bytes, ASCII classes, `$` also before a final newline is the
        // one difference left (Rust's `$` is PCRE2's `dollar_endonly`).
        b.unicode(false);
        for o in &r.options {
            match o.as_str() {
                "caseless" => b.case_insensitive(true),
                "dotall" => b.dot_matches_new_line(true),
                "multiline" => b.multi_line(true),
                "extended" => b.ignore_whitespace(true),
                "ungreedy" => b.swap_greed(true),
                // Hints and restrictions that do not change what matches here.
                "no_auto_capture" | "no_auto_possess" | "no_start_optimize"
                | "no_dotstar_anchor" | "never_ucp" | "never_utf" | "never_backslash_c"
                | "dollar_endonly" => &mut b,
                other => {
                    return Err(SpecError::RegexOption {
                        path: path.to_owned(),
                        option: other.to_owned(),
                    });
                }
            };
        }
        let regex = b.build().map_err(|e| SpecError::Regex {
            path: path.to_owned(),
            pattern: r.pattern.clone(),
            reason: e.to_string(),
        })?;
        let offset = |v: Option<u64>| v.map(|v| usize::try_from(v).unwrap_or(usize::MAX));
        Ok(BodyRegex {
            pattern: r.pattern.clone(),
            regex,
            no_match: r.no_match,
            min_offset: offset(r.min_offset).unwrap_or(0),
            max_offset: offset(r.max_offset),
        })
    }

    /// Whether the body passes: a match starting within the offsets (or none, with
    /// `regex_no_match`).
    fn passes(&self, body: &[u8]) -> bool {
        let found = body.len() >= self.min_offset
            && self
                .regex
                .find_at(body, self.min_offset)
                .is_some_and(|m| self.max_offset.is_none_or(|max| m.start() <= max));
        found != self.no_match
    }
}

/// An HTTP_GET or SSL_GET checker.
#[derive(Debug)]
pub struct HttpProbe {
    pub endpoint: Endpoint,
    pub urls: Vec<UrlCheck>,
    version: Version,
    connection_close: bool,
    tls: Option<TlsOptions>,
}

#[derive(Debug, Clone)]
struct TlsOptions {
    config: Arc<ClientConfig>,
    /// keepalived's `tls_compliant`: a close without close_notify is an error.
    compliant: bool,
}

impl HttpProbe {
    pub(super) fn new(endpoint: Endpoint, h: &HttpCheck, ssl: bool) -> Result<Self, SpecError> {
        let mut urls = h
            .urls
            .iter()
            .map(|u| {
                let regex = u
                    .regex
                    .as_ref()
                    .map(|r| BodyRegex::new(&u.path, r))
                    .transpose()?;
                let vhost = u.virtualhost.as_ref().or(h.virtualhost.as_ref());
                let sni = if ssl && h.enable_sni {
                    h.sni_name
                        .as_ref()
                        .or(vhost)
                        .and_then(|n| ServerName::try_from(n.clone()).ok())
                } else {
                    None
                };
                let status = if u.status_codes.is_empty() {
                    vec![StatusRange::DEFAULT]
                } else {
                    u.status_codes.clone()
                };
                url_check(&endpoint, &u.path, vhost.map(String::as_str), sni, status).map(|c| {
                    UrlCheck {
                        digest: u.digest.as_ref().map(|d| d.to_ascii_lowercase()),
                        regex,
                        ..c
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // collect() leaves room for four: 1 KB a checker kept for nothing.
        urls.shrink_to_fit();
        let tls = if ssl {
            Some(TlsOptions {
                config: tls_config(h.enable_sni)?,
                compliant: h.tls_compliant,
            })
        } else {
            None
        };
        let (version, connection_close) = match h.http_protocol {
            HttpProtocol::V1_0 => (Version::HTTP_10, false),
            HttpProtocol::V1_0C => (Version::HTTP_10, true),
            HttpProtocol::V1_1 => (Version::HTTP_11, true),
        };
        Ok(HttpProbe {
            endpoint,
            urls,
            version,
            connection_close,
            tls,
        })
    }

    pub(super) async fn run(&self) -> Result<Pass, ProbeError> {
        let mut passed = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            let read = Read {
                digest: url.digest.is_some(),
                body: url.regex.is_some(),
            };
            let got = self.get(url, read).await?;
            if !url
                .status
                .iter()
                .any(|r| (r.first..=r.last).contains(&got.status))
            {
                return Err(ProbeError::HttpStatus {
                    path: url.path.clone(),
                    status: got.status,
                    expected: ranges_text(&url.status),
                });
            }
            if let Some(expected) = &url.digest
                && got.digest.as_ref() != Some(expected)
            {
                return Err(ProbeError::Digest {
                    path: url.path.clone(),
                    got: got.digest.unwrap_or_default(),
                    expected: expected.clone(),
                });
            }
            if let Some(r) = &url.regex
                && !r.passes(got.body.as_deref().unwrap_or_default())
            {
                return Err(ProbeError::Regex {
                    path: url.path.clone(),
                    pattern: r.pattern.clone(),
                    matched: r.no_match,
                });
            }
            passed.push(format!("{} for {}", got.status, url.path));
        }
        Ok(Pass::new(format!("HTTP status {}", passed.join(", "))))
    }

    /// One GET of `url`; reads the body only as far as `read` asks.
    async fn get(&self, url: &UrlCheck, read: Read) -> Result<Response, ProbeError> {
        let stream = connect_tcp(&self.endpoint).await?;
        let timeout = self.endpoint.timeout;
        match &self.tls {
            None => self.exchange(stream, url, read).await,
            Some(tls) => {
                let name = url
                    .sni
                    .clone()
                    .unwrap_or(ServerName::IpAddress(self.endpoint.addr.ip().into()));
                let connector = TlsConnector::from(tls.config.clone());
                let stream = tokio::time::timeout(timeout, connector.connect(name, stream))
                    .await
                    .map_err(|_| ProbeError::TlsTimeout(Secs(timeout)))?
                    .map_err(ProbeError::Tls)?;
                self.exchange(
                    LenientEof {
                        inner: stream,
                        lenient: !tls.compliant,
                    },
                    url,
                    read,
                )
                .await
            }
        }
    }

    async fn exchange<S>(&self, io: S, url: &UrlCheck, read: Read) -> Result<Response, ProbeError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let timeout = self.endpoint.timeout;
        let http_err = |source| ProbeError::Http {
            path: url.path.clone(),
            source,
        };
        let work = async {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
                .await
                .map_err(http_err)?;
            let mut req = Request::new(Empty::<Bytes>::new());
            *req.uri_mut() = url.uri.clone();
            *req.version_mut() = self.version;
            let headers = req.headers_mut();
            headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
            if self.connection_close {
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            headers.insert(HOST, url.host.clone());
            let response = async {
                let resp = sender.send_request(req).await.map_err(http_err)?;
                let status = resp.status().as_u16();
                let mut got = if read.digest || read.body {
                    read_body(resp.into_body(), &url.path, read.body).await?
                } else {
                    Response::default()
                };
                got.status = status;
                if !read.digest {
                    got.digest = None;
                }
                Ok::<_, ProbeError>(got)
            };
            tokio::pin!(conn, response);
            // The connection task must be polled while the response is read; if it ends
            // first (server closed), the response future still holds what arrived or the
            // error that ended it.
            tokio::select! {
                r = &mut response => r,
                _ = &mut conn => response.await,
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| ProbeError::HttpTimeout {
                path: url.path.clone(),
                after: Secs(timeout),
            })?
    }
}

/// How much of a response to read.
#[derive(Debug, Clone, Copy)]
struct Read {
    /// MD5 of the body.
    digest: bool,
    /// The body itself (for a regex).
    body: bool,
}

/// What one GET returned.
#[derive(Debug, Default)]
struct Response {
    status: u16,
    digest: Option<String>,
    bytes: u64,
    body: Option<Vec<u8>>,
}

/// Reads the body (at most [`BODY_LIMIT`] bytes) into MD5, keeping it when `keep`.
async fn read_body(
    mut body: hyper::body::Incoming,
    path: &str,
    keep: bool,
) -> Result<Response, ProbeError> {
    let mut md5 = Md5::new();
    let mut bytes = 0u64;
    let mut kept = keep.then(Vec::new);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| ProbeError::Http {
            path: path.to_owned(),
            source,
        })?;
        if let Some(data) = frame.data_ref() {
            bytes += data.len() as u64;
            if bytes > BODY_LIMIT {
                return Err(ProbeError::BodyTooLong {
                    path: path.to_owned(),
                    limit: BODY_LIMIT,
                });
            }
            md5.update(data);
            if let Some(k) = kept.as_mut() {
                k.extend_from_slice(data);
            }
        }
    }
    let hex = md5
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Ok(Response {
        status: 0,
        digest: Some(hex),
        bytes,
        body: kept,
    })
}

fn ranges_text(ranges: &[StatusRange]) -> String {
    ranges
        .iter()
        .map(|r| {
            if r.first == r.last {
                r.first.to_string()
            } else {
                format!("{}-{}", r.first, r.last)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn url_check(
    endpoint: &Endpoint,
    path: &str,
    vhost: Option<&str>,
    sni: Option<ServerName<'static>>,
    status: Vec<StatusRange>,
) -> Result<UrlCheck, SpecError> {
    let uri: Uri = path
        .parse()
        .map_err(|_| SpecError::BadPath(path.to_owned()))?;
    let host = match vhost {
        Some(v) => v.to_owned(),
        None => host_port(endpoint.addr),
    };
    let host = HeaderValue::from_str(&host).map_err(|_| SpecError::BadHeader(host.clone()))?;
    Ok(UrlCheck {
        path: path.to_owned(),
        uri,
        host,
        sni,
        status,
        digest: None,
        regex: None,
    })
}

/// What a GET returned: the status and, when asked for, the body's MD5 and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genhash {
    pub status: u16,
    /// MD5 of the body, lowercase hex (keepalived's `digest`).
    pub digest: Option<String>,
    pub bytes: u64,
}

/// A GET to make for `genhash`: what `flotilla genhash URL` will print the digest of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenhashRequest {
    pub addr: SocketAddr,
    pub path: String,
    pub tls: bool,
    /// Host header (and SNI with TLS); `None`: the address.
    pub virtualhost: Option<String>,
    pub bind: Option<SocketAddr>,
    pub timeout: Duration,
}

impl GenhashRequest {
    /// `http://IP[:PORT][/PATH]` or `https://…`; the host must be an address (the command
    /// resolves names before calling). The timeout is keepalived's default, 5 s.
    pub fn from_url(url: &str) -> Result<Self, SpecError> {
        let bad = || SpecError::BadUrl(url.to_owned());
        let uri: Uri = url.parse().map_err(|_| bad())?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad()),
        };
        let host = uri.host().ok_or_else(bad)?;
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| bad())?;
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(GenhashRequest {
            addr: SocketAddr::new(ip, port),
            path,
            tls,
            virtualhost: None,
            bind: None,
            timeout: Duration::from_secs(5),
        })
    }
}

/// Why `genhash` got no digest.
#[derive(Debug, thiserror::Error)]
pub enum GenhashError {
    #[error(transparent)]
    Request(#[from] SpecError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

/// GETs `req` and returns the status and the body's MD5, for writing `digest` lines
/// (keepalived's `genhash` tool).
pub async fn genhash(req: &GenhashRequest) -> Result<Genhash, GenhashError> {
    let endpoint = Endpoint {
        addr: req.addr,
        bind: req.bind,
        bind_if: None,
        fwmark: None,
        timeout: req.timeout,
    };
    let check = HttpCheck {
        urls: Vec::new(),
        virtualhost: req.virtualhost.clone(),
        enable_sni: req.virtualhost.is_some(),
        ..HttpCheck::default()
    };
    let mut probe = HttpProbe::new(endpoint, &check, req.tls)?;
    let sni = if req.tls {
        req.virtualhost
            .as_ref()
            .and_then(|n| ServerName::try_from(n.clone()).ok())
    } else {
        None
    };
    let url = url_check(
        &probe.endpoint,
        &req.path,
        req.virtualhost.as_deref(),
        sni,
        vec![StatusRange::DEFAULT],
    )?;
    probe.version = Version::HTTP_10;
    let read = Read {
        digest: true,
        body: false,
    };
    let got = probe.get(&url, read).await?;
    Ok(Genhash {
        status: got.status,
        digest: got.digest,
        bytes: got.bytes,
    })
}

/// The client configuration of SSL_GET, one per SNI setting, shared by every checker.
fn tls_config(sni: bool) -> Result<Arc<ClientConfig>, SpecError> {
    static WITH_SNI: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    static WITHOUT_SNI: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let cell = if sni { &WITH_SNI } else { &WITHOUT_SNI };
    if let Some(c) = cell.get() {
        return Ok(c.clone());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    config.enable_sni = sni;
    Ok(cell.get_or_init(|| Arc::new(config)).clone())
}

/// Accepts any server certificate. keepalived's SSL_GET does not verify the certificate
/// unless an `SSL { ca }` is configured: a health check asks "does this server answer
/// correctly", real servers often carry self-signed or internal certificates for the
/// service name rather than their own address, and the `digest` is what proves the
/// content. The handshake signature is still checked, so the peer holds the key of the
/// certificate it sent.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
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
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS stream that, unless `tls_compliant` is set, reads a close without close_notify as
/// a clean end of stream, as keepalived does: many servers just close after an HTTP/1.0
/// response, and the body is complete.
struct LenientEof<S> {
    inner: S,
    lenient: bool,
}

impl<S: AsyncRead + Unpin> AsyncRead for LenientEof<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let lenient = self.lenient;
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if lenient && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LenientEof<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges_read_like_the_config() {
        let r = |first, last| StatusRange { first, last };
        assert_eq!(ranges_text(&[r(200, 299)]), "200-299");
        assert_eq!(ranges_text(&[r(200, 200), r(301, 302)]), "200,301-302");
    }

    fn body_regex(
        pattern: &str,
        options: &[&str],
        min: Option<u64>,
        max: Option<u64>,
    ) -> BodyRegex {
        let r = UrlRegex {
            pattern: pattern.into(),
            no_match: false,
            options: options.iter().map(|o| o.to_string()).collect(),
            min_offset: min,
            max_offset: max,
        };
        BodyRegex::new("/", &r).unwrap()
    }

    #[test]
    fn regexes_match_within_their_offsets() {
        let body = b"status: OK\nversion 1.2\n";
        assert!(body_regex("OK", &[], None, None).passes(body));
        assert!(!body_regex("ok", &[], None, None).passes(body));
        assert!(body_regex("ok", &["caseless"], None, None).passes(body));
        assert!(body_regex("^version", &["multiline"], None, None).passes(body));
        assert!(!body_regex("^version", &[], None, None).passes(body));
        // "OK" starts at 8: inside 0..=8, outside 9.. and ..=7.
        assert!(body_regex("OK", &[], Some(8), Some(8)).passes(body));
        assert!(!body_regex("OK", &[], Some(9), None).passes(body));
        assert!(!body_regex("OK", &[], None, Some(7)).passes(body));
        // An offset past the end matches nothing, without panicking.
        assert!(!body_regex("OK", &[], Some(1000), None).passes(body));
        let mut no = body_regex("ERROR", &[], None, None);
        no.no_match = true;
        assert!(no.passes(body));
    }

    #[test]
    fn pcre_only_features_are_refused() {
        let r = |pattern: &str, option: &str| UrlRegex {
            pattern: pattern.into(),
            no_match: false,
            options: vec![option.to_owned()]
                .into_iter()
                .filter(|o| !o.is_empty())
                .collect(),
            min_offset: None,
            max_offset: None,
        };
        assert!(matches!(
            BodyRegex::new("/", &r("(?=a)b", "")),
            Err(SpecError::Regex { .. })
        ));
        assert!(matches!(
            BodyRegex::new("/", &r("(a)\\1", "")),
            Err(SpecError::Regex { .. })
        ));
        assert!(matches!(
            BodyRegex::new("/", &r("a", "auto_callout")),
            Err(SpecError::RegexOption { .. })
        ));
    }

    #[test]
    fn genhash_urls() {
        let g = GenhashRequest::from_url("http://127.0.0.2:8080/a?b=1").unwrap();
        assert_eq!(g.addr, "127.0.0.2:8080".parse().unwrap());
        assert_eq!((g.path.as_str(), g.tls), ("/a?b=1", false));
        let g = GenhashRequest::from_url("https://[::1]").unwrap();
        assert_eq!(g.addr, "[::1]:443".parse().unwrap());
        assert_eq!((g.path.as_str(), g.tls), ("/", true));
        assert!(GenhashRequest::from_url("ftp://1.2.3.4/").is_err());
        assert!(GenhashRequest::from_url("http://example.com/").is_err());
    }
}
