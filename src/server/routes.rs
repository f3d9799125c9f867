//! Request handlers. Each one validates its input into a [`SearchRequest`] (or answers 4xx),
//! runs the engine off the async threads, and shapes the JSON.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{MatchedPath, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};
use crate::engine::Engine;
use crate::rank::utility::Weights;
use crate::search::{Filters, RankerKind, SearchRequest, SearchResponse, DEFAULT_K};

/// `POST /search` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    q: String,
    k: Option<usize>,
    ranker: Option<String>,
    explain: Option<bool>,
    facets: Option<bool>,
    filter: Option<Filters>,
    /// `{"relevance": 1, "rating": 0.2}`.
    utility: Option<Weights>,
}

fn ranker(engine: &Engine, name: Option<&str>) -> Result<RankerKind, ApiError> {
    match name {
        None => Ok(engine.default_ranker()),
        Some(name) => {
            name.parse().map_err(|message: String| ApiError::new(StatusCode::BAD_REQUEST, "unknown_ranker", message))
        }
    }
}

fn invalid_utility(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_utility", message)
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ApiError::bad_request(format!("{name} must be true or false, got '{value}'"))),
    }
}

pub(super) async fn search_get(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<SearchResponse>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("cannot read the query string: {e}")))?;
    let engine = state.engine();
    let (mut q, mut k, mut ranker_name, mut explain, mut facets) = (None, DEFAULT_K, None, false, true);
    let mut filters = Filters::default();
    let mut utility = None;
    for (name, value) in &pairs {
        match name.as_str() {
            "q" => q = Some(value.clone()),
            "k" => {
                k = value.trim().parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "k must be a whole number between 1 and {}, got '{value}'",
                        crate::search::MAX_K
                    ))
                })?
            }
            "ranker" => ranker_name = Some(value.as_str()),
            "explain" => explain = parse_bool("explain", value)?,
            "facets" => facets = parse_bool("facets", value)?,
            "utility" => utility = Some(value.parse::<Weights>().map_err(invalid_utility)?),
            "filter" => {
                filters.add_clause(value).map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "invalid_filter", m))?
            }
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unknown_parameter",
                    format!("unknown parameter '{other}' (parameters: q, k, ranker, filter, facets, explain, utility)"),
                ))
            }
        }
    }
    let q = q.ok_or_else(|| ApiError::bad_request("missing the query: add ?q=your+words"))?;
    let request = SearchRequest {
        query: q,
        k,
        ranker: ranker(&engine, ranker_name)?,
        filters,
        facets,
        explain,
        utility,
        scoring: crate::rank::Scoring::Final,
    };
    run_search(&state, engine, request).await
}

pub(super) async fn search_post(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "invalid_body" };
        ApiError::new(status, code, format!("{} (the limit is {} bytes)", rejection.body_text(), super::MAX_BODY_BYTES))
    })?;
    let body: SearchBody = serde_json::from_slice(&body).map_err(|error| {
        let code = if error.is_data() { "invalid_request" } else { "invalid_json" };
        ApiError::new(StatusCode::BAD_REQUEST, code, format!("request body: {error}"))
    })?;
    if let Some(weights) = &body.utility {
        weights.validate().map_err(invalid_utility)?;
    }
    let engine = state.engine();
    let request = SearchRequest {
        query: body.q,
        k: body.k.unwrap_or(DEFAULT_K),
        ranker: ranker(&engine, body.ranker.as_deref())?,
        filters: body.filter.unwrap_or_default(),
        facets: body.facets.unwrap_or(true),
        explain: body.explain.unwrap_or(false),
        utility: body.utility,
        scoring: crate::rank::Scoring::Final,
    };
    run_search(&state, engine, request).await
}

async fn run_search(
    state: &AppState,
    engine: Arc<Engine>,
    request: SearchRequest,
) -> Result<Json<SearchResponse>, ApiError> {
    let limits = state.limits;
    let admitted = state.admitted.clone().try_acquire_owned().map_err(|_| {
        metrics::counter!("shelf_search_shed_total").increment(1);
        ApiError::overloaded(format!(
            "the server is at capacity ({} searches running, {} waiting); retry shortly",
            limits.concurrent, limits.queued
        ))
    })?;
    let started = Instant::now();
    let ranker = request.ranker.to_string();
    let running = state.running.clone();
    let work = async move {
        let running = running.acquire_owned().await.map_err(|_| ApiError::internal("the server is shutting down"))?;
        tokio::task::spawn_blocking(move || {
            // Held until the search is done, whatever happens to the request.
            let _permits = (admitted, running);
            engine.search(&request)
        })
        .await
        .map_err(|e| ApiError::internal(format!("search task failed: {e}")))?
        .map_err(ApiError::from)
    };
    let response = tokio::time::timeout(limits.timeout, work).await.map_err(|_| {
        metrics::counter!("shelf_search_timeouts_total").increment(1);
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("the search took longer than {} ms (waiting included)", limits.timeout.as_millis()),
        )
    })??;
    metrics::histogram!("shelf_search_seconds", "ranker" => ranker).record(started.elapsed().as_secs_f64());
    Ok(Json(response))
}

pub(super) async fn product(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let engine = state.engine();
    let lookup = id.clone();
    let product = tokio::task::spawn_blocking(move || engine.product(&lookup))
        .await
        .map_err(|e| ApiError::internal(format!("lookup task failed: {e}")))??;
    match product {
        Some(product) => Ok(Json(product).into_response()),
        None => Err(ApiError::not_found(format!("no product with id '{id}'"))),
    }
}

pub(super) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when not shutting down and every ranker the server was started to serve can
/// serve; `503` otherwise, with the reason.
pub(super) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let engine = state.engine();
    let mut problems = Vec::new();
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        problems.push("shutting down".to_string());
    }
    if let Err(error) = engine.check_ranker(engine.default_ranker()) {
        problems.push(error.to_string());
    }
    let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if problems.is_empty() { "ready" } else { "not_ready" },
        "problems": problems,
        "products": engine.index().lexical.num_products(),
        "rankers": engine.rankers(),
        "default_ranker": engine.default_ranker(),
        "in_flight": state.in_flight(),
        "manifest": engine.manifest(),
    });
    (status, Json(body)).into_response()
}

pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

pub(super) async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("openapi.json"))
}

pub(super) async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// `POST /admin/reload`: reopens the index directory and swaps it in.
pub(super) async fn reload(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let Some(token) = &state.admin_token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "reload_disabled",
            "reload is disabled: start `shelf serve` with --admin-token or SHELF_ADMIN_TOKEN",
        ));
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    // Constant time: how long the comparison takes says nothing about the token.
    let matches = given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())));
    if !matches {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer TOKEN` header is required",
        ));
    }
    // One reload at a time, in the order asked: the last one asked for is the one kept.
    let _reloading = state.reloading.lock().await;
    let (dir, encoder, model) = (state.index_dir.clone(), state.encoder_dir.clone(), state.model_dir.clone());
    let engine = tokio::task::spawn_blocking(move || Engine::open_with(&dir, &encoder, model.as_deref()))
        .await
        .map_err(|e| ApiError::internal(format!("reload task failed: {e}")))?
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "reload_failed", format!("kept the current index: {e}")))?;
    let products = engine.index().lexical.num_products();
    let built_at = engine.manifest().built_at.clone();
    state.engine.store(Arc::new(engine));
    tracing::info!(products, %built_at, "index reloaded");
    Ok(Json(json!({"status": "reloaded", "products": products, "built_at": built_at})))
}

pub(super) async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see GET /openapi.json")
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see GET /openapi.json",
    )
}

pub(super) fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal("internal error while handling the request").into_response()
}

/// Counts requests by route and status.
pub(super) async fn record_metrics(request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("shelf_http_requests_total", "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("shelf_http_request_seconds", "route" => route).record(started.elapsed().as_secs_f64());
    response
}
