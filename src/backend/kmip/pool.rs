//! TLS connections to the KMIP server and a bounded pool of them.
//!
//! A connection is taken from the idle list (or opened while fewer than
//! `pool_size` exist), used for one request and response, and put back.
//! One that failed is dropped, so the next request opens a fresh one: that
//! is the reconnect. A request that fails on a connection that sat idle
//! (the server may have closed it meanwhile) is tried once more on a new
//! connection, but only when nothing of the response had arrived.
//! Waiting for a free connection, connecting, the handshake, writes and
//! reads all have time limits; running out is `Unavailable`.

use std::ffi::c_int;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openssl::ssl::{HandshakeError, SslConnector, SslStream};
use openssl::x509::X509VerifyResult;
use zeroize::Zeroizing;

use super::message::{self, Operation};
use super::ttlv;
use crate::error::{Error, ErrorKind, Result};

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
    /// 0 means a connection per request, closed after it (for benchmarks).
    size: usize,
    max_response_bytes: usize,
    state: Mutex<State>,
    freed: Condvar,
    connects: AtomicU64,
    failures: AtomicU64,
}

struct State {
    idle: Vec<Conn>,
    open: usize,
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
            size,
            max_response_bytes,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            connects: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    pub(super) fn stats(&self) -> PoolStats {
        let s = self.lock();
        PoolStats {
            connects: self.connects.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            open: s.open,
            idle: s.idle.len(),
        }
    }

    /// Sends one encoded request and returns the decoded response message.
    pub(super) fn exchange(&self, operation: Operation, request: &[u8]) -> Result<ttlv::Item> {
        let (conn, reused) = self.checkout(operation)?;
        match self.exchange_on(conn, operation, request) {
            Ok(item) => Ok(item),
            Err(Failure::BeforeResponse(_)) if reused => {
                tracing::debug!(operation = %operation, "idle KMIP connection was gone; retrying on a new one");
                let conn = self.open_counted(operation)?;
                self.exchange_on(conn, operation, request)
                    .map_err(|f| match f {
                        Failure::BeforeResponse(e) | Failure::During(e) => e,
                    })
            }
            Err(Failure::BeforeResponse(e) | Failure::During(e)) => Err(e),
        }
    }

    fn exchange_on(
        &self,
        mut conn: Conn,
        operation: Operation,
        request: &[u8],
    ) -> std::result::Result<ttlv::Item, Failure> {
        match self.round_trip(&mut conn, operation, request) {
            Ok(item) => {
                self.checkin(conn);
                Ok(item)
            }
            Err(f) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.discard();
                Err(f)
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

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection (reused = true) or a new one; waits up to the I/O
    /// timeout while `size` connections are busy.
    fn checkout(&self, operation: Operation) -> Result<(Conn, bool)> {
        if self.size == 0 {
            return Ok((self.open_counted(operation)?, false));
        }
        let deadline = Instant::now() + self.io_timeout;
        let mut s = self.lock();
        loop {
            if let Some(conn) = s.idle.pop() {
                return Ok((conn, true));
            }
            if s.open < self.size {
                s.open += 1;
                drop(s);
                return match self.connect(operation) {
                    Ok(c) => Ok((c, false)),
                    Err(e) => {
                        self.discard();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "KMIP {operation}: all {} pooled connections stayed busy for {:?}",
                        self.size, self.io_timeout
                    ),
                ));
            }
            s = self
                .freed
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// A new connection replacing one that failed (its slot is already freed).
    fn open_counted(&self, operation: Operation) -> Result<Conn> {
        if self.size == 0 {
            return self.connect(operation);
        }
        {
            let mut s = self.lock();
            s.open += 1;
        }
        self.connect(operation).inspect_err(|_| self.discard())
    }

    fn checkin(&self, conn: Conn) {
        if self.size == 0 {
            drop(conn);
            return;
        }
        self.lock().idle.push(conn);
        self.freed.notify_one();
    }

    /// Forgets a connection that is gone (already dropped by the caller).
    fn discard(&self) {
        if self.size == 0 {
            return;
        }
        let mut s = self.lock();
        s.open = s.open.saturating_sub(1);
        drop(s);
        self.freed.notify_one();
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
            .field("size", &self.size)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
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
