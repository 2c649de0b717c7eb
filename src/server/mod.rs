//! `keywarden serve`: Barbican's v1 REST API over a [`SecretStore`].
//!
//! Only the wire lives here: Barbican's JSON shapes, status codes, content
//! negotiation and authentication. Every rule (policy, payload rules,
//! not-found for other projects) is the store's. Store calls are blocking
//! and run on tokio's blocking pool, bounded by a semaphore sized in the
//! config for the catalog.
//!
//! Files by resource: `version.rs`, `secrets.rs` (with consumers),
//! `orders.rs`, `containers.rs`, `acl.rs`, `stores.rs`, `quotas.rs`; the wire helpers
//! (extractors, JSON reading, refs) in `wire.rs`; `auth.rs` is the seam
//! a Keystone authenticator plugs into.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::error::{Error, ErrorKind, Result};
use crate::model::{ProjectId, UserId};
use crate::store::SecretStore;

mod acl;
pub mod auth;
pub mod config;
mod containers;
pub mod error;
pub mod keystone;
mod metadata;
mod orders;
mod quotas;
mod secrets;
mod stores;
mod version;
mod wire;

pub use auth::{Authenticator, HttpBasic, NoAuth, UsersFile};
pub use config::{AuthMode, ServerConfig};

use error::ApiError;

/// What every handler shares.
pub struct AppState {
    store: Arc<SecretStore>,
    /// Base of every ref (`<href>/v1/...`), without a trailing slash.
    href: String,
    auth: Arc<dyn Authenticator>,
    max_body_bytes: usize,
    blocking: Arc<Semaphore>,
}

impl AppState {
    /// Runs a store call on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SecretStore) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self
            .blocking
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal())?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&store)
        })
        .await
        .map_err(|_| ApiError::internal())
    }

    fn href(&self, kind: &str, id: impl std::fmt::Display) -> String {
        format!("{}/v1/{kind}/{id}", self.href)
    }

    /// The `Location` of a consumer registration, as Barbican writes it
    /// (`hrefs.convert_consumer_to_href`: under `consumers/`, not under the
    /// secret or container).
    fn consumers_location(&self, id: impl std::fmt::Display) -> String {
        format!("{}/consumers", self.href("consumers", id))
    }
}

/// A bound server, not yet accepting.
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    header_read_timeout: Duration,
}

impl Server {
    /// Binds the listen address and builds the app. Must be called inside
    /// a tokio runtime.
    pub async fn bind(config: &ServerConfig, store: Arc<SecretStore>) -> Result<Self> {
        let auth: Arc<dyn Authenticator> = match config.auth {
            AuthMode::Noauth => Arc::new(NoAuth {
                default_project: ProjectId::new(config.default_project.clone())?,
                default_user: UserId::new(config.default_user.clone())?,
                default_roles: config.default_roles.clone(),
            }),
            AuthMode::HttpBasic => Arc::new(HttpBasic::new(UsersFile::load(&config.users_file)?)?),
            AuthMode::Keystone => {
                let section = config.keystone.clone().ok_or_else(|| {
                    Error::new(
                        ErrorKind::Config,
                        "[server] auth = \"keystone\" needs a [keystone_authtoken] section",
                    )
                })?;
                Arc::new(keystone::Keystone::new(section)?)
            }
        };
        let tls = match &config.tls {
            Some(paths) => Some(tls_acceptor(paths)?),
            None => None,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot listen on {}", config.listen),
            )
            .with_source(e)
        })?;
        let mut href = config.host_href.clone();
        if config.listen.port() == 0 {
            // Tests bind port 0: refs name the port the kernel picked.
            if let Ok(addr) = listener.local_addr() {
                let scheme = if tls.is_some() { "https" } else { "http" };
                href = format!("{scheme}://{addr}");
            }
        }
        let state = Arc::new(AppState {
            store,
            href,
            auth,
            max_body_bytes: config.max_body_bytes,
            blocking: Arc::new(Semaphore::new(config.blocking_threads)),
        });
        Ok(Server {
            listener,
            tls,
            app: router(state),
            header_read_timeout: config.header_read_timeout,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Unavailable, "no local address").with_source(e))
    }

    /// Serves until `shutdown` completes, then stops accepting and waits
    /// for the connections' in-flight requests to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let graceful = GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .keep_alive(true);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (tcp, _peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = tcp.set_nodelay(true);
            let service = TowerToHyperService::new(self.app.clone());
            let http = http.clone();
            let watcher = graceful.watcher();
            let tls = self.tls.clone();
            let handshake_timeout = self.header_read_timeout;
            tokio::spawn(async move {
                match tls {
                    None => {
                        let conn = http.serve_connection(TokioIo::new(tcp), service);
                        let _ = watcher.watch(conn).await;
                    }
                    Some(acceptor) => {
                        let Ok(Ok(stream)) =
                            tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await
                        else {
                            return;
                        };
                        let conn = http.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn).await;
                    }
                }
            });
        }
        drop(self.listener);
        graceful.shutdown().await;
        // The app holds the store, whose PostgreSQL connections each own a
        // runtime and must not be dropped on an async worker (the driver
        // panics there): the last reference goes on the blocking pool.
        let app = self.app;
        let _ = tokio::task::spawn_blocking(move || drop(app)).await;
    }
}

/// Reloads the master KEKs from `path` on every SIGHUP.
async fn reload_on_hangup(store: std::sync::Weak<SecretStore>, path: std::path::PathBuf) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; master KEKs reload only on restart");
            return;
        };
        while hangup.recv().await.is_some() {
            let (store, file) = (store.clone(), path.clone());
            let outcome = tokio::task::spawn_blocking(move || {
                let Some(store) = store.upgrade() else {
                    return Ok(());
                };
                let config = crate::config::Config::from_file(&file)?;
                store.reload_master_keys(&config)
            })
            .await;
            match outcome {
                Ok(Ok(())) => {
                    tracing::info!("SIGHUP: master KEKs reloaded from {}", path.display());
                    eprintln!("keywarden serve: master KEKs reloaded");
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "SIGHUP: master KEKs not reloaded; the running keys stay");
                    eprintln!("keywarden serve: master KEKs not reloaded: {e}");
                }
                Err(_) => tracing::warn!("SIGHUP: the reload did not finish"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (store, path);
    }
}

/// A stop signal: SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn tls_acceptor(paths: &config::TlsPaths) -> Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, p: &std::path::Path| {
        Error::new(
            ErrorKind::Config,
            format!("cannot read TLS {what} {}", p.display()),
        )
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&paths.cert)
        .map_err(|_| bad("certificate", &paths.cert))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("certificate", &paths.cert))?;
    if certs.is_empty() {
        return Err(bad("certificate", &paths.cert));
    }
    let key = PrivateKeyDer::from_pem_file(&paths.key).map_err(|_| bad("key", &paths.key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| {
            Error::new(ErrorKind::Config, "TLS certificate and key do not fit").with_source(e)
        })?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(tls)))
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(version::routes())
        .merge(secrets::routes())
        .merge(acl::routes())
        .merge(metadata::routes())
        .merge(orders::routes())
        .merge(containers::routes())
        .merge(stores::routes())
        .merge(quotas::routes())
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn(request_headers))
        .with_state(state)
}

/// A path no route serves: as in Barbican, whose auth runs before its
/// routing, an unauthenticated caller learns only that it must
/// authenticate (401), whatever the path.
async fn unknown_path(_caller: wire::Caller) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "")
}

async fn wrong_method(_caller: wire::Caller) -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "")
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-openstack-request-id");
static API_VERSION: HeaderName = HeaderName::from_static("openstack-api-version");

/// `x-openstack-request-id` on every answer, and the negotiated
/// `OpenStack-API-Version` with its `Vary`.
async fn request_headers(req: Request, next: Next) -> Response {
    let version = wire::ApiVersion::from_headers(req.headers());
    let (mut resp, version) = match version {
        Ok(v) => (next.run(req).await, Some(v)),
        Err(e) => (e.into_response(), None),
    };
    let id = format!("req-{}", uuid::Uuid::new_v4());
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(REQUEST_ID.clone(), v);
    }
    if let Some(v) = version
        && let Ok(hv) = HeaderValue::from_str(&format!("key-manager 1.{}", v.minor))
    {
        h.insert(API_VERSION.clone(), hv);
        h.insert(
            axum::http::header::VARY,
            HeaderValue::from_static("openstack-api-version"),
        );
    }
    resp
}

/// Runs `keywarden serve` for a loaded config until SIGTERM/SIGINT: builds
/// the runtime, opens the store, binds, logs one line when ready.
pub fn serve_blocking(config: &crate::config::Config) -> Result<()> {
    serve_blocking_reloading(config, None)
}

/// [`serve_blocking`]; with `config_path`, SIGHUP re-reads that file and
/// reloads the store's master KEKs from it
/// ([`SecretStore::reload_master_keys`]), as a master-KEK rollout's stage,
/// rotate and prune steps want. A reload that fails is logged and the
/// running keys stay; nothing else in the config is re-read.
pub fn serve_blocking_reloading(
    config: &crate::config::Config,
    config_path: Option<&std::path::Path>,
) -> Result<()> {
    let server_config = ServerConfig::from_config(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(server_config.blocking_threads)
        .thread_name("keywarden-serve")
        .build()
        .map_err(|e| {
            Error::new(ErrorKind::Unavailable, "cannot start the runtime").with_source(e)
        })?;
    let store = Arc::new(SecretStore::open(config)?);
    // This reference outlives the runtime's tasks, so that the store (and
    // its PostgreSQL connections, which must not be dropped on an async
    // worker) goes last, here, also when binding fails.
    let served = store.clone();
    if let Some(path) = config_path {
        // Weak: the last reference to the store must not go on an async
        // worker (see above); the reload itself runs on the blocking pool.
        runtime.spawn(reload_on_hangup(Arc::downgrade(&store), path.to_owned()));
    }
    runtime.block_on(async move {
        let server = Server::bind(&server_config, served).await?;
        let addr = server.local_addr()?;
        let scheme = if server_config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(
            "keywarden serve: listening on {scheme}://{addr} (auth {:?}, refs under {})",
            server_config.auth,
            server_config.host_href
        );
        eprintln!("keywarden serve: listening on {scheme}://{addr}");
        server.run(shutdown_signal()).await;
        eprintln!("keywarden serve: stopped");
        Ok(())
    })
}
