//! TLS connections to the KMIP server, kept in a bounded pool
//! ([`crate::pool::Pool`]).
//!
//! A connection is taken from the idle list (or opened while fewer than
//! `pool_size` exist), used for one request and response, and put back.
//! One that failed is dropped, so the next request opens a fresh one: that
//! is the reconnect. A request that fails on a connection that sat idle
//! (the server may have closed it meanwhile) is tried once more on a new
//! connection in the same slot, but only when nothing of the response had
//! arrived. Waiting for a free connection, connecting, the handshake,
//! writes and reads all have time limits; running out is `Unavailable`.

use std::ffi::c_int;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openssl::ssl::{HandshakeError, SslConnector, SslStream};
use openssl::x509::X509VerifyResult;
use zeroize::Zeroizing;

use super::message::{self, Operation};
use super::ttlv;
use crate::error::{Error, ErrorKind, Result};
use crate::pool::{self, PoolError};

/// Counters for tests, benchmarks and operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// TLS connections opened since start.
    pub connects: u64,
    /// Connections dropped after an I/O failure.
    pub failures: u64,
    /// Connections open now (idle or in use).
    pub open: usize,
    /// Of those, idle.
    pub idle: usize,
}

pub(super) struct Pool {
    connector: SslConnector,
    host: String,
    port: u16,
    connect_timeout: Duration,
    io_timeout: Duration,
    max_response_bytes: usize,
    /// Size 0 means a connection per request, closed after it (for benchmarks).
    conns: pool::Pool<Conn>,
    connects: AtomicU64,
    failures: AtomicU64,
}

struct Conn {
    stream: SslStream<TcpStream>,
}

/// How far a request got before it failed.
enum Failure {
    /// Nothing of the response arrived: the server may not have seen it.
    BeforeResponse(Error),
    /// Part of the response arrived, or it made no sense.
    During(Error),
}

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Failure::BeforeResponse(e) | Failure::During(e) => e,
        }
    }
}

impl Pool {
    pub(super) fn new(
        connector: SslConnector,
        host: String,
        port: u16,
        connect_timeout: Duration,
        io_timeout: Duration,
        size: usize,
        max_response_bytes: usize,
    ) -> Self {
        Pool {
            connector,
            host,
            port,
            connect_timeout,
            io_timeout,
            max_response_bytes,
            conns: pool::Pool::new(size, Some(io_timeout)),
            connects: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    pub(super) fn stats(&self) -> PoolStats {
        let occupancy = self.conns.occupancy();
        PoolStats {
            connects: self.connects.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            open: occupancy.open,
            idle: occupancy.idle,
        }
    }

    /// Sends one encoded request and returns the decoded response message.
    pub(super) fn exchange(&self, operation: Operation, request: &[u8]) -> Result<ttlv::Item> {
        let mut conn = self
            .conns
            .checkout(|| self.connect(operation))
            .map_err(|e| e.or_pool(|p| busy(operation, p)))?;
        let failure = match self.round_trip(&mut conn, operation, request) {
            Ok(item) => return Ok(item),
            Err(f) => f,
        };
        self.failures.fetch_add(1, Ordering::Relaxed);
        match failure {
            Failure::BeforeResponse(_) if conn.reused() => {
                tracing::debug!(operation = %operation, "idle KMIP connection was gone; retrying on a new one");
                let mut conn = conn.reopen(|| self.connect(operation))?;
                self.round_trip(&mut conn, operation, request).map_err(|f| {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    conn.discard();
                    f.into_error()
                })
            }
            failure => {
                conn.discard();
                Err(failure.into_error())
            }
        }
    }

    fn round_trip(
        &self,
        conn: &mut Conn,
        operation: Operation,
        request: &[u8],
    ) -> std::result::Result<ttlv::Item, Failure> {
        conn.stream
            .write_all(request)
            .and_then(|()| conn.stream.flush())
            .map_err(|e| Failure::BeforeResponse(io_error(operation, "sending", e)))?;
        let mut header = [0u8; ttlv::HEADER_LEN];
        let mut got = 0;
        while got < header.len() {
            match conn.stream.read(&mut header[got..]) {
                Ok(0) => {
                    let e = io::Error::from(io::ErrorKind::UnexpectedEof);
                    let e = io_error(operation, "reading the response of", e);
                    return Err(if got == 0 {
                        Failure::BeforeResponse(e)
                    } else {
                        Failure::During(e)
                    });
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let e = io_error(operation, "reading the response of", e);
                    return Err(if got == 0 {
                        Failure::BeforeResponse(e)
                    } else {
                        Failure::During(e)
                    });
                }
            }
        }
        let (tag, kind, len) = ttlv::parse_header(&header);
        if tag != message::RESPONSE_MESSAGE || kind != 0x01 {
            return Err(Failure::During(message::malformed(
                operation,
                "the server did not answer with a Response Message",
            )));
        }
        if len > self.max_response_bytes {
            return Err(Failure::During(Error::new(
                ErrorKind::Storage,
                format!(
                    "the KMIP server's {operation} response is {len} bytes, more than max_response_bytes ({})",
                    self.max_response_bytes
                ),
            )));
        }
        // Sized once from the checked length, so it never reallocates; wiped
        // on drop (a Get response holds key material).
        let mut whole = Zeroizing::new(vec![0u8; ttlv::HEADER_LEN + len]);
        whole[..ttlv::HEADER_LEN].copy_from_slice(&header);
        conn.stream
            .read_exact(&mut whole[ttlv::HEADER_LEN..])
            .map_err(|e| Failure::During(io_error(operation, "reading the response of", e)))?;
        message::decode_response(operation, &whole).map_err(Failure::During)
    }

    fn connect(&self, operation: Operation) -> Result<Conn> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| io_error(operation, "resolving the server for", e))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, self.connect_timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            io_error(
                operation,
                "connecting for",
                last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable)),
            )
        })?;
        for r in [
            tcp.set_read_timeout(Some(self.io_timeout)),
            tcp.set_write_timeout(Some(self.io_timeout)),
            tcp.set_nodelay(true),
        ] {
            r.map_err(|e| io_error(operation, "setting up the socket for", e))?;
        }
        let stream = self
            .connector
            .configure()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    "could not set up TLS for the KMIP server",
                )
                .with_source(e)
            })?
            .connect(&self.host, tcp)
            .map_err(|e| handshake_error(operation, &self.host, self.port, e))?;
        self.connects.fetch_add(1, Ordering::Relaxed);
        Ok(Conn { stream })
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("server", &format_args!("{}:{}", self.host, self.port))
            .field("size", &self.conns.size())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn busy(operation: Operation, refused: PoolError) -> Error {
    let shown = match refused {
        PoolError::Busy { size, waited } => {
            format!("KMIP {operation}: all {size} pooled connections stayed busy for {waited:?}")
        }
        PoolError::Closed => format!("KMIP {operation}: the connection pool is closed"),
    };
    Error::new(ErrorKind::Unavailable, shown).with_source(refused)
}

fn io_error(operation: Operation, doing: &str, e: io::Error) -> Error {
    // Under TLS 1.3 a server checks our certificate after the handshake and
    // its refusal arrives as an alert on the first read.
    if let Some(alert) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
        .and_then(refused_certificate)
    {
        return certificate_refused(operation, alert).with_source(e);
    }
    let what = match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timed out",
        _ => "failed",
    };
    Error::new(
        ErrorKind::Unavailable,
        format!("KMIP {operation}: {doing} the request {what}"),
    )
    .with_source(e)
}

fn handshake_error(
    operation: Operation,
    host: &str,
    port: u16,
    e: HandshakeError<TcpStream>,
) -> Error {
    match e {
        HandshakeError::SetupFailure(stack) => Error::new(
            ErrorKind::Config,
            format!("KMIP {operation}: could not set up TLS to {host}:{port}"),
        )
        .with_source(stack),
        HandshakeError::Failure(mid) | HandshakeError::WouldBlock(mid) => {
            let verify = mid.ssl().verify_result();
            let error = mid.into_error();
            if verify != X509VerifyResult::OK {
                // Not retryable: the server's certificate is not one ca_cert
                // vouches for (wrong CA, wrong host name, expired).
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "KMIP {operation}: the certificate of {host}:{port} is not trusted: {}",
                        verify.error_string()
                    ),
                )
                .with_source(error)
            } else if let Some(alert) = refused_certificate(&error) {
                certificate_refused(operation, alert).with_source(error)
            } else {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("KMIP {operation}: the TLS handshake with {host}:{port} failed"),
                )
                .with_source(error)
            }
        }
    }
}

/// OpenSSL's error library number for TLS (`ERR_LIB_SSL`).
const ERR_LIB_SSL: c_int = 20;
/// OpenSSL reports a TLS alert from the peer as this offset plus the alert
/// number (`SSL_AD_REASON_OFFSET`).
const ALERT_REASON_OFFSET: c_int = 1000;
/// The alerts (RFC 5246 §7.2) a server sends when it will not take our
/// client certificate: bad_certificate, unsupported_certificate,
/// certificate_revoked, certificate_expired, certificate_unknown,
/// unknown_ca, access_denied.
const CERTIFICATE_REFUSALS: [c_int; 7] = [42, 43, 44, 45, 46, 48, 49];

/// The alert's name (`tlsv1 alert unknown ca`), when `e` is the server
/// refusing our client certificate.
fn refused_certificate(e: &openssl::ssl::Error) -> Option<&'static str> {
    e.ssl_error()?
        .errors()
        .iter()
        .find(|x| {
            x.library_code() == ERR_LIB_SSL
                && CERTIFICATE_REFUSALS.contains(&(x.reason_code() - ALERT_REASON_OFFSET))
        })
        .map(|x| x.reason().unwrap_or("certificate refused"))
}

/// Not retryable: the server does not accept client_cert (another CA,
/// expired, revoked), which only a config change fixes.
fn certificate_refused(operation: Operation, alert: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("KMIP {operation}: the server refused our client certificate ({alert})"),
    )
}
