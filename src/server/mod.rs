//! The HTTP API (axum): search for the shop's search box and for developers with curl.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /search?q=&k=&ranker=&filter=&facets=&explain=` | search; `filter` repeats, e.g. `filter=brand:Acme&filter=price:..50` |
//! | `POST /search` | the same as JSON: `{"q", "k", "ranker", "facets", "explain", "filter": {"brand": [..], "category", "price_min", "price_max", "min_rating", "in_stock"}}` |
//! | `GET /products/{id}` | one product |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness with index facts |
//! | `GET /metrics` | Prometheus text |
//! | `GET /openapi.json` | the API description |
//! | `POST /admin/reload` | reopen the index directory and the model (bearer token) |
//! | `GET /` | a search page |
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
mod routes;

pub use error::ApiError;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::engine::Engine;
use crate::engine::OpenError;

/// Largest request body accepted (a search request is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Searches running at once; more wait in line (CPU-bound work on a small machine).
pub const MAX_CONCURRENT_SEARCHES: usize = 64;

/// What every request handler shares.
pub struct AppState {
    engine: ArcSwap<Engine>,
    index_dir: PathBuf,
    encoder_dir: PathBuf,
    model_dir: Option<PathBuf>,
    admin_token: Option<String>,
    metrics: PrometheusHandle,
    searches: tokio::sync::Semaphore,
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
        let engine = Engine::open_with(index_dir, encoder_dir, model_dir)?;
        Ok(Arc::new(AppState {
            engine: ArcSwap::from_pointee(engine),
            index_dir: index_dir.to_path_buf(),
            encoder_dir: encoder_dir.to_path_buf(),
            model_dir: model_dir.map(Path::to_path_buf),
            admin_token: admin_token.filter(|t| !t.is_empty()),
            metrics: metrics_handle(),
            searches: tokio::sync::Semaphore::new(MAX_CONCURRENT_SEARCHES),
        }))
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
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

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(routes::page))
        .route("/search", get(routes::search_get).post(routes::search_post))
        .route("/products/{id}", get(routes::product))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(routes::openapi))
        .route("/admin/reload", post(routes::reload))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn(routes::record_metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(routes::panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until Ctrl-C or SIGTERM, then lets requests in flight finish.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown_signal()).await
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
    tracing::info!("shutting down; finishing requests in flight");
    tokio::time::sleep(Duration::from_millis(10)).await;
}
