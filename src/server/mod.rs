//! The HTTP API (axum): search for the shop's search box and for developers with curl.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /search?q=&k=&ranker=&filter=&facets=&explain=` | search; `filter` repeats, e.g. `filter=brand:Acme&filter=price:..50` |
//! | `POST /search` | the same as JSON: `{"q", "k", "ranker", "facets", "explain", "filter": {"brand": [..], "category", "price_min", "price_max", "min_rating", "in_stock"}}` |
//! | `GET /products/{id}` | one product |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness with index facts |
//! | `GET /metrics` | Prometheus text |
//! | `GET /openapi.json` | the OpenAPI document, generated from the handlers and their types ([`openapi_document`]) |
//! | `POST /events` | shoppers' clicks, add-to-carts and purchases on an impression (one event or a list) |
//! | `POST /admin/reload` | reopen the index directory and the model (bearer token) |
//! | `GET /judgments?q=` | a judged query's grades (`--queries`, `--qrels`) |
//! | `GET /judgments/differences?a=&b=` | the judged queries where two rankers differ most |
//! | `GET /engagement` | click-through by position, the position curve, zero-result and no-click queries |
//! | `GET /` | the relevance workbench: search, explanations, side-by-side rankers, engagement |
//!
//! The engine sits behind an atomic swap: a reload never drops a request in flight.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use shelf::server::{AppState, router};
//! let state = AppState::open("index/demo".as_ref(), "models/all-MiniLM-L6-v2".as_ref(), None, None)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, router(state)).await?;
//! # Ok(()) }
//! ```

mod error;
mod openapi;
mod routes;
mod workbench;

pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};
pub use openapi::document as openapi_document;
pub use workbench::Judgments;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::engine::Engine;
use crate::engine::OpenError;

/// Largest request body accepted (a search request is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How much work the server takes on. Searches are CPU-bound: a few run at once, a bounded
/// number wait, and the rest are told at once to come back (`503` with `Retry-After`)
/// rather than queueing without bound; a search that takes longer than `timeout`, waiting
/// included, is answered `504`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Searches running at once.
    pub concurrent: usize,
    /// Searches waiting for a running slot.
    pub queued: usize,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Limits { concurrent: cores * 2, queued: 64, timeout: Duration::from_secs(2) }
    }
}

/// What every request handler shares.
pub struct AppState {
    engine: ArcSwap<Engine>,
    index_dir: PathBuf,
    encoder_dir: PathBuf,
    model_dir: Option<PathBuf>,
    admin_token: Option<String>,
    metrics: PrometheusHandle,
    limits: Limits,
    /// Places in the server (running or waiting); none left means `503`.
    admitted: Arc<Semaphore>,
    /// Running slots. Both permits move into the blocking task that does the search, so a
    /// client that goes away does not free a slot its search still occupies.
    running: Arc<Semaphore>,
    /// Set when shutdown begins: `/readyz` says so, so a load balancer stops sending.
    draining: AtomicBool,
    /// Reloads run one at a time, in the order they were asked for, so the last one wins.
    reloading: tokio::sync::Mutex<()>,
    /// Where impressions and events go ([`AppState::log_events_to`]); none: not logged.
    events: OnceLock<crate::events::EventLog>,
    /// Judged queries for the workbench ([`AppState::judge_with`]).
    judgments: OnceLock<Judgments>,
}

impl AppState {
    /// Opens the index directory for serving, with the sentence encoder in `encoder_dir` and
    /// the learned ranker in `model_dir`. `admin_token` enables `POST /admin/reload`.
    pub fn open(
        index_dir: &Path,
        encoder_dir: &Path,
        model_dir: Option<&Path>,
        admin_token: Option<String>,
    ) -> Result<Arc<AppState>, OpenError> {
        AppState::open_with_limits(index_dir, encoder_dir, model_dir, admin_token, Limits::default())
    }

    /// As [`AppState::open`], with explicit [`Limits`].
    pub fn open_with_limits(
        index_dir: &Path,
        encoder_dir: &Path,
        model_dir: Option<&Path>,
        admin_token: Option<String>,
        limits: Limits,
    ) -> Result<Arc<AppState>, OpenError> {
        let engine = Engine::open_with(index_dir, encoder_dir, model_dir)?;
        let limits = Limits { concurrent: limits.concurrent.max(1), ..limits };
        Ok(Arc::new(AppState {
            engine: ArcSwap::from_pointee(engine),
            index_dir: index_dir.to_path_buf(),
            encoder_dir: encoder_dir.to_path_buf(),
            model_dir: model_dir.map(Path::to_path_buf),
            admin_token: admin_token.filter(|t| !t.is_empty()),
            metrics: metrics_handle(),
            limits,
            admitted: Arc::new(Semaphore::new(limits.concurrent + limits.queued)),
            running: Arc::new(Semaphore::new(limits.concurrent)),
            draining: AtomicBool::new(false),
            reloading: tokio::sync::Mutex::new(()),
            events: OnceLock::new(),
            judgments: OnceLock::new(),
        }))
    }

    /// Logs every search's impression, and takes `POST /events`, into the SQLite file at
    /// `path` (created if missing). Once per server.
    pub fn log_events_to(&self, path: &Path) -> Result<(), crate::events::StoreError> {
        let log = crate::events::EventLog::open(path)?;
        self.events.set(log).map_err(|log| crate::events::StoreError::Io {
            path: log.path().display().to_string(),
            message: "this server already logs events".into(),
        })
    }

    /// Holds judged queries, so the workbench shows grades and nDCG@10 beside results and
    /// steps through the queries where two rankers differ most. Once per server; returns
    /// how many queries have judgments.
    pub fn judge_with(&self, queries: Vec<(String, String)>, qrels: crate::eval::trec::Qrels) -> Result<usize, String> {
        let judgments = Judgments::new(queries, qrels);
        if judgments.is_empty() {
            return Err("no query of the query file has judgments in the qrels (do the qids match?)".into());
        }
        let held = judgments.len();
        self.judgments.set(judgments).map_err(|_| "this server already holds judgments".to_string())?;
        Ok(held)
    }

    /// The judged queries, when the server holds them.
    pub fn judgments(&self) -> Option<&Judgments> {
        self.judgments.get()
    }

    /// The event log, when the server keeps one.
    pub fn event_log(&self) -> Option<&crate::events::EventLog> {
        self.events.get()
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Searches running or waiting now (0 when idle: no permit is ever lost).
    pub fn in_flight(&self) -> usize {
        self.limits.concurrent + self.limits.queued - self.admitted.available_permits()
    }

    /// Marks the server as shutting down (`/readyz` answers 503 from now on).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
}

/// The process-wide Prometheus recorder (installed once, shared by every server in a process).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0])
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed: keep serving, with an empty /metrics.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// The HTTP API: the routes of [`openapi_document`] (the same list builds both), with
/// JSON answers for unknown routes and methods, metrics, a body limit and panic recovery.
pub fn router(state: Arc<AppState>) -> Router {
    // The document is set aside here: `openapi_document` builds it once from the same list.
    let (served, _document) = openapi::api().split_for_parts();
    served
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn(routes::record_metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(routes::panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until Ctrl-C or SIGTERM, then stops accepting, turns `/readyz` false and lets the
/// requests in flight finish for up to `grace`; whatever is still running then is cut off.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>, grace: Duration) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let draining = state.clone();
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        shutdown_signal().await;
        draining.start_draining();
        tracing::info!(grace_seconds = grace.as_secs_f64(), "shutting down; finishing requests in flight");
        let _ = stop.send(true);
    });
    let deadline = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!("requests still running after the shutdown grace period; stopping anyway");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
