//! Request handlers. Each one validates its input into a [`SearchRequest`] (or answers 4xx),
//! runs the engine off the async threads, and shapes the JSON.
//!
//! Each handler's `#[utoipa::path]` is its entry in the OpenAPI document and says where the
//! router serves it (see `openapi.rs`): its path, its parameters and every status it answers.

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
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::error::{ErrorBody, ErrorCode};
use super::{ApiError, AppState};
use crate::catalog::Product;
use crate::engine::Engine;
use crate::index::Manifest;
use crate::rank::utility::Weights;
use crate::search::{Filters, RankerKind, SearchRequest, SearchResponse, DEFAULT_K};

// Response descriptions shared by the two search routes.
const SEARCH_OK: &str = "The results, best first.";
const OVERLOADED: &str = "Overloaded: every running slot and queue place is taken; retry after the \
    `Retry-After` seconds (code `overloaded`).";
const TIMEOUT: &str = "The search took longer than the server's time limit, waiting included (code `timeout`).";
const INTERNAL: &str = "A fault in the server (code `internal`).";

/// `POST /search` body: the parameters of `GET /search`, with `filter` as an object.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"q": "office chair", "k": 5, "filter": {"brand": ["Loftline"], "price_max": 400}}))]
struct SearchBody {
    /// The query.
    #[schema(example = "grey velvet sofa")]
    q: String,
    /// How many results to return.
    #[schema(minimum = 1, maximum = 200, default = json!(DEFAULT_K))]
    k: Option<usize>,
    /// Default: the loaded model's best learned ranker (ensemble, else ltr, else neural),
    /// else bm25.
    // Read as text so that an unknown name is answered `unknown_ranker`, as in `GET /search`.
    #[schema(value_type = Option<RankerKind>)]
    ranker: Option<String>,
    /// Explain each result's score (learned rankers).
    #[schema(default = false)]
    explain: Option<bool>,
    /// Count brands and categories over every matching product.
    #[schema(default = true)]
    facets: Option<bool>,
    filter: Option<Filters>,
    /// Utility weights for a learned ranker, overriding the index's `[utility]` for this
    /// request.
    utility: Option<Weights>,
    /// Perturb the order with the index's `[explore]` policy, logging each product's
    /// propensity (default: the policy's `enabled`).
    explore: Option<bool>,
    /// Two rankers to interleave by team draft, e.g. `"ltr,hybrid"`.
    interleave: Option<String>,
    /// Results to skip (pagination): ranks start at `offset + 1`.
    #[schema(minimum = 0, maximum = 1000, default = 0)]
    offset: Option<usize>,
    /// Log this search's impression when the server keeps an event log (`false` for
    /// searches no shopper sees, such as the workbench's).
    #[schema(default = true)]
    log: Option<bool>,
}

pub(super) fn ranker(engine: &Engine, name: Option<&str>) -> Result<RankerKind, ApiError> {
    match name {
        None => Ok(engine.default_ranker()),
        Some(name) => name
            .parse()
            .map_err(|message: String| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::UnknownRanker, message)),
    }
}

/// Reads a query string into `T`, answering 400 with what was wrong.
pub(super) fn params<T: serde::de::DeserializeOwned>(raw: Option<String>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("cannot read the query string: {e}")))
}

/// What a route that needs the event log answers on a server without one.
pub(super) fn events_disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::EventsDisabled,
        "this server keeps no event log: start `shelf serve` with --events FILE",
    )
}

/// A body that could not be read: too large (413), or broken off.
fn body_error(rejection: BytesRejection) -> ApiError {
    let status = rejection.status();
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE { ErrorCode::BodyTooLarge } else { ErrorCode::InvalidBody };
    ApiError::new(status, code, format!("{} (the limit is {} bytes)", rejection.body_text(), super::MAX_BODY_BYTES))
}

fn invalid_utility(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidUtility, message)
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ApiError::bad_request(format!("{name} must be true or false, got '{value}'"))),
    }
}

/// A count parameter (`k`, `offset`); the range is checked with the rest of the request,
/// and named here so a value that does not parse says what would.
fn parse_count(name: &str, value: &str, least: usize, most: usize) -> Result<usize, ApiError> {
    value.trim().parse().map_err(|_| {
        ApiError::bad_request(format!("{name} must be a whole number between {least} and {most}, got '{value}'"))
    })
}

/// Search products
///
/// `filter` repeats: `?q=office+chair&filter=brand:Loftline&filter=price:..400`.
#[utoipa::path(
    get,
    path = "/search",
    tag = "search",
    params(
        ("q" = String, Query, description = "The query.", example = "grey velvet sofa"),
        (
            "k" = Option<usize>, Query, minimum = 1, maximum = 200,
            description = "How many results to return (default 10).", example = 10,
        ),
        (
            "ranker" = Option<RankerKind>, Query,
            description = "Default: the loaded model's best learned ranker (ensemble, else ltr, else neural), \
                else bm25.",
            example = "bm25",
        ),
        (
            "filter" = Option<Vec<String>>, Query, style = Form, explode,
            description = "field:value, repeatable: brand:NAME, category:A > B, price:MIN..MAX (either end may \
                be left out), rating:MIN, in_stock:true|false.",
            example = "price:..400",
        ),
        (
            "facets" = Option<bool>, Query,
            description = "Count brands and categories over every matching product (default true).",
            example = true,
        ),
        (
            "explain" = Option<bool>, Query,
            description = "Explain each result's score under a learned ranker (default false).",
            example = false,
        ),
        (
            "utility" = Option<String>, Query,
            description = "Utility weights for a learned ranker, overriding the index's [utility]: term:weight \
                pairs. Terms: relevance, rating, in_stock, popularity, click, add_to_cart, purchase.",
            example = "relevance:1,rating:0.2",
        ),
        (
            "interleave" = Option<String>, Query,
            description = "Two rankers, e.g. `ltr,hybrid`: one list merged from both by team draft; each \
                impression records which ranker placed each product (`shelf events interleaving`).",
            example = "hybrid,bm25",
        ),
        (
            "offset" = Option<usize>, Query, minimum = 0, maximum = 1000,
            description = "Results to skip, for the next pages: ranks start at offset + 1 (default 0).",
            example = 0,
        ),
        (
            "log" = Option<bool>, Query,
            description = "Log this search's impression when the server keeps an event log (default true; \
                `false` for searches no shopper sees, such as the workbench's).",
            example = true,
        ),
        (
            "explore" = Option<bool>, Query,
            description = "Perturb the order with the index's [explore] policy and log each product's \
                propensity (default: the policy's `enabled`, off unless configured).",
            example = false,
        ),
    ),
    responses(
        (status = OK, description = SEARCH_OK, body = SearchResponse),
        (
            status = BAD_REQUEST, body = ErrorBody,
            description = "Bad input (codes `invalid_request`, `invalid_filter`, `invalid_utility`, \
                `unknown_ranker`, `unknown_parameter`, `ranker_unavailable`).",
        ),
        (
            status = SERVICE_UNAVAILABLE, description = OVERLOADED, body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying.")),
        ),
        (status = GATEWAY_TIMEOUT, description = TIMEOUT, body = ErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn search_get(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<SearchResponse>, ApiError> {
    let pairs: Vec<(String, String)> = params(query)?;
    let engine = state.engine();
    let (mut q, mut k, mut ranker_name, mut explain, mut facets) = (None, DEFAULT_K, None, false, true);
    let mut filters = Filters::default();
    let mut utility = None;
    let mut explore = None;
    let mut interleave = None;
    let (mut offset, mut log) = (0, true);
    for (name, value) in &pairs {
        match name.as_str() {
            "q" => q = Some(value.clone()),
            "k" => k = parse_count("k", value, 1, crate::search::MAX_K)?,
            "ranker" => ranker_name = Some(value.as_str()),
            "explain" => explain = parse_bool("explain", value)?,
            "facets" => facets = parse_bool("facets", value)?,
            "utility" => utility = Some(value.parse::<Weights>().map_err(invalid_utility)?),
            "offset" => offset = parse_count("offset", value, 0, crate::search::MAX_OFFSET)?,
            "log" => log = parse_bool("log", value)?,
            "explore" => explore = Some(parse_bool("explore", value)?),
            "interleave" => interleave = Some(value.as_str()),
            "filter" => filters
                .add_clause(value)
                .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidFilter, m))?,
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::UnknownParameter,
                    format!(
                        "unknown parameter '{other}' (parameters: q, k, offset, ranker, filter, facets, explain, \
                         utility, explore, interleave, log)"
                    ),
                ))
            }
        }
    }
    let q = q.ok_or_else(|| ApiError::bad_request("missing the query: add ?q=your+words"))?;
    let request = SearchRequest {
        query: q,
        k,
        offset,
        ranker: ranker(&engine, ranker_name)?,
        filters,
        facets,
        explain,
        utility,
        scoring: crate::rank::Scoring::Final,
    };
    let mode = Mode::of(&engine, explore, interleave, offset)?;
    run_search(&state, engine, request, mode, log).await
}

/// Search products (JSON body)
#[utoipa::path(
    post,
    path = "/search",
    tag = "search",
    request_body = SearchBody,
    responses(
        (status = OK, description = SEARCH_OK, body = SearchResponse),
        (
            status = BAD_REQUEST, body = ErrorBody,
            description = "Bad input (codes `invalid_request`, `invalid_json`, `invalid_body`, `invalid_utility`, \
                `unknown_ranker`, `ranker_unavailable`).",
        ),
        (status = PAYLOAD_TOO_LARGE, description = "The body is over 64 KiB (code `body_too_large`).", body = ErrorBody),
        (
            status = SERVICE_UNAVAILABLE, description = OVERLOADED, body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying.")),
        ),
        (status = GATEWAY_TIMEOUT, description = TIMEOUT, body = ErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn search_post(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let body = body.map_err(body_error)?;
    let body: SearchBody = serde_json::from_slice(&body).map_err(|error| {
        let code = if error.is_data() { ErrorCode::InvalidRequest } else { ErrorCode::InvalidJson };
        ApiError::new(StatusCode::BAD_REQUEST, code, format!("request body: {error}"))
    })?;
    if let Some(weights) = &body.utility {
        weights.validate().map_err(invalid_utility)?;
    }
    let engine = state.engine();
    let request = SearchRequest {
        query: body.q,
        k: body.k.unwrap_or(DEFAULT_K),
        offset: body.offset.unwrap_or(0),
        ranker: ranker(&engine, body.ranker.as_deref())?,
        filters: body.filter.unwrap_or_default(),
        facets: body.facets.unwrap_or(true),
        explain: body.explain.unwrap_or(false),
        utility: body.utility,
        scoring: crate::rank::Scoring::Final,
    };
    let mode = Mode::of(&engine, body.explore, body.interleave.as_deref(), request.offset)?;
    run_search(&state, engine, request, mode, body.log.unwrap_or(true)).await
}

/// How a search's list is made from the ranker(s).
enum Mode {
    /// The ranker's order, perturbed by the `[explore]` policy when `true`.
    Single { explore: bool },
    /// Two rankers' orders merged by team draft.
    Interleave(RankerKind, RankerKind),
}

impl Mode {
    fn of(engine: &Engine, explore: Option<bool>, interleave: Option<&str>, offset: usize) -> Result<Mode, ApiError> {
        let policy = &engine.index().config.explore;
        if offset > 0 {
            // Both perturb the first page as shoppers see it; later pages keep the ranker's
            // order.
            if explore == Some(true) || interleave.is_some() {
                return Err(ApiError::bad_request(
                    "explore and interleave apply to the first page only: drop them or the offset",
                ));
            }
            return Ok(Mode::Single { explore: false });
        }
        let Some(pair) = interleave else {
            let can_explore = policy.swap > 0.0 || policy.insert > 0.0;
            if explore == Some(true) && !can_explore {
                // Asked for, and impossible: say so rather than log an unexplored list.
                return Err(ApiError::bad_request(
                    "explore=true, but the index's [explore] policy has swap = 0 and insert = 0: set one in its config.toml",
                ));
            }
            return Ok(Mode::Single { explore: explore.unwrap_or(policy.enabled) && can_explore });
        };
        if explore == Some(true) {
            return Err(ApiError::bad_request("interleave and explore=true do not combine: ask for one"));
        }
        let names: Vec<&str> = pair.split(',').map(str::trim).collect();
        let [a, b] = names[..] else {
            return Err(ApiError::bad_request(format!("interleave takes two rankers, e.g. ltr,hybrid; got '{pair}'")));
        };
        let (a, b) = (ranker(engine, Some(a))?, ranker(engine, Some(b))?);
        if a == b {
            return Err(ApiError::bad_request("interleave two different rankers"));
        }
        for kind in [a, b] {
            engine.check_ranker(kind).map_err(ApiError::from)?;
        }
        Ok(Mode::Interleave(a, b))
    }
}

async fn run_search(
    state: &AppState,
    engine: Arc<Engine>,
    mut request: SearchRequest,
    mode: Mode,
    log: bool,
) -> Result<Json<SearchResponse>, ApiError> {
    let policy = engine.index().config.explore.clone();
    let exploring = matches!(mode, Mode::Single { explore: true });
    let pair = match mode {
        Mode::Interleave(a, b) => Some((a, b)),
        Mode::Single { .. } => None,
    };
    let k = request.k;
    // What the impression records of the request, when there is a log to write it to.
    let logged_request = state.event_log().filter(|_| log).map(|_| {
        let model = match pair {
            Some((a, b)) => [engine.model_version(a), engine.model_version(b)]
                .into_iter()
                .flatten()
                .reduce(|a, b| format!("{a},{b}")),
            None => engine.model_version(request.ranker),
        };
        (serde_json::to_value(&request.filters).unwrap_or_default(), model)
    });
    if exploring && policy.insert > 0.0 {
        // Inserts draw from just below the fold: ask for those too.
        request.k = (k + policy.pool).min(crate::search::MAX_K).max(k);
    }
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
            match pair {
                None => engine.search(&request).map(|response| (response, None)),
                Some((a, b)) => {
                    let first = engine.search(&SearchRequest { ranker: a, ..request.clone() })?;
                    let second = engine.search(&SearchRequest { ranker: b, ..request })?;
                    Ok((first, Some(second)))
                }
            }
        })
        .await
        .map_err(|e| ApiError::internal(format!("search task failed: {e}")))?
        .map_err(ApiError::from)
    };
    let too_late = || {
        metrics::counter!("shelf_search_timeouts_total").increment(1);
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Timeout,
            format!("the search took longer than {} ms (waiting included)", limits.timeout.as_millis()),
        )
    };
    let response = tokio::time::timeout(limits.timeout, work).await.map_err(|_| too_late())??;
    // The timer fires on the runtime's next tick, so a search can finish just past the limit
    // before it does: the clock decides, not which of the two was polled first.
    if started.elapsed() > limits.timeout {
        return Err(too_late());
    }
    let (mut response, second) = response;
    let placements = if let Some(second) = second {
        Some(interleaved(&mut response, second, pair, k))
    } else if exploring {
        Some(explored(&mut response, &policy, k))
    } else {
        None
    };
    let impression_id = crate::events::new_id();
    let ranker_name = match pair {
        Some((a, b)) => format!("interleave:{a},{b}"),
        None => response.ranker.to_string(),
    };
    if let (Some(log), Some((filters, model))) = (state.event_log(), logged_request) {
        let (propensities, trace) = match &placements {
            Some((placements, trace)) => {
                (placements.iter().map(|p| (p.base_rank, p.propensity)).collect(), Some(trace.clone()))
            }
            None => ((1..=response.results.len()).map(|rank| (rank, 1.0)).collect::<Vec<_>>(), None),
        };
        log.log_impression(crate::events::Impression {
            impression_id: impression_id.clone(),
            ts_ms: crate::events::now_ms(),
            query: response.query.clone(),
            filters,
            ranker: ranker_name,
            model,
            k,
            explore: trace,
            shown: response
                .results
                .iter()
                .zip(propensities)
                .map(|(hit, (base_rank, propensity))| crate::events::Shown {
                    product_id: hit.id.clone(),
                    position: hit.rank,
                    score: hit.score,
                    base_rank,
                    propensity,
                })
                .collect(),
        });
    }
    response.impression_id = Some(impression_id);
    metrics::histogram!("shelf_search_seconds", "ranker" => ranker).record(started.elapsed().as_secs_f64());
    Ok(Json(response))
}

/// Reorders the production list in `response` (k + pool deep) into the first `k` as one draw
/// of the exploration policy shows them; the placements and the trace to log.
fn explored(
    response: &mut SearchResponse,
    policy: &crate::events::explore::ExploreConfig,
    k: usize,
) -> (Vec<crate::events::explore::Placement>, serde_json::Value) {
    let draw = policy.perturb(k, response.results.len(), &mut rand::rng());
    let mut production: Vec<Option<crate::search::Hit>> = response.results.drain(..).map(Some).collect();
    for placement in &draw.placements {
        // Every base rank is within the production list: the draw was made from its length.
        if let Some(mut hit) = production.get_mut(placement.base_rank - 1).and_then(Option::take) {
            hit.rank = placement.position;
            response.results.push(hit);
        }
    }
    let trace = serde_json::json!({"policy": policy, "draw": draw});
    (draw.placements, trace)
}

/// Merges two rankers' answers by team draft into `response`; the placements (each
/// product's rank in the list of the ranker that placed it) and the trace to log.
fn interleaved(
    response: &mut SearchResponse,
    second: SearchResponse,
    pair: Option<(RankerKind, RankerKind)>,
    k: usize,
) -> (Vec<crate::events::explore::Placement>, serde_json::Value) {
    use crate::events::interleave::{team_draft, Team};
    let ids = |r: &SearchResponse| -> Vec<String> { r.results.iter().map(|h| h.id.clone()).collect() };
    let (a_ids, b_ids) = (ids(response), ids(&second));
    let merged = team_draft(&a_ids, &b_ids, k, &mut rand::rng());
    let mut from_a: std::collections::HashMap<String, crate::search::Hit> =
        response.results.drain(..).map(|h| (h.id.clone(), h)).collect();
    let mut from_b: std::collections::HashMap<String, crate::search::Hit> =
        second.results.into_iter().map(|h| (h.id.clone(), h)).collect();
    let mut placements = Vec::new();
    let mut teams = Vec::new();
    for (at, (id, team)) in merged.into_iter().enumerate() {
        let (hit, list) = match team {
            Team::A => (from_a.remove(&id).or_else(|| from_b.remove(&id)), &a_ids),
            Team::B => (from_b.remove(&id).or_else(|| from_a.remove(&id)), &b_ids),
        };
        let Some(mut hit) = hit else { continue };
        hit.rank = at + 1;
        let base_rank = list.iter().position(|x| *x == id).map_or(at + 1, |p| p + 1);
        // Team draft's placement probabilities are not logged as propensities: the
        // counterfactual estimators leave interleaved impressions out.
        placements.push(crate::events::explore::Placement { position: at + 1, base_rank, propensity: 1.0 });
        teams.push(team);
        response.results.push(hit);
    }
    let (a, b) = pair.map_or((String::new(), String::new()), |(a, b)| (a.to_string(), b.to_string()));
    (placements, serde_json::json!({"interleave": {"a": a, "b": b, "teams": teams}}))
}

/// One product
#[utoipa::path(
    get,
    path = "/products/{id}",
    tag = "search",
    params(("id" = String, Path, description = "The product's id.", example = "D00001")),
    responses(
        (status = OK, description = "The product.", body = Product),
        (status = NOT_FOUND, description = "No product has that id (code `not_found`).", body = ErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = INTERNAL, body = ErrorBody),
    ),
)]
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

/// `GET /healthz` body.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Health {
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

/// Liveness
///
/// The process is up and answering.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = OK, description = "Alive.", body = Health)),
)]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ReadyStatus {
    Ready,
    NotReady,
}

/// `GET /readyz` body: whether the server should get traffic, and facts about its index.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Readiness {
    status: ReadyStatus,
    /// Why the server is not ready; empty when it is.
    problems: Vec<String>,
    /// Products in the index.
    products: u64,
    /// The rankers this server can serve.
    rankers: Vec<RankerKind>,
    /// The ranker a search gets when it names none.
    default_ranker: RankerKind,
    /// Searches running or waiting now.
    in_flight: usize,
    /// The index's manifest: when and how it was built, from which catalogue, its counts
    /// and its encoder.
    // A free-form object here: its shape is the index's own format (`index::Manifest`).
    #[schema(value_type = Object)]
    manifest: Manifest,
}

/// Readiness and index facts
///
/// Ready when not shutting down and every ranker the server was started to serve can
/// serve; `503` otherwise, with the reason.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = OK, description = "Ready: not shutting down, and the default ranker can serve.", body = Readiness),
        (
            status = SERVICE_UNAVAILABLE, body = Readiness,
            description = "Not ready: shutting down, or a ranker the server was started to serve cannot; \
                `problems` says why.",
        ),
    ),
)]
pub(super) async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Readiness>) {
    let engine = state.engine();
    let mut problems = Vec::new();
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        problems.push("shutting down".to_string());
    }
    if let Err(error) = engine.check_ranker(engine.default_ranker()) {
        problems.push(error.to_string());
    }
    let (status, ready) = if problems.is_empty() {
        (StatusCode::OK, ReadyStatus::Ready)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, ReadyStatus::NotReady)
    };
    let body = Readiness {
        status: ready,
        problems,
        products: engine.index().lexical.num_products(),
        rankers: engine.rankers(),
        default_ranker: engine.default_ranker(),
        in_flight: state.in_flight(),
        manifest: engine.manifest().clone(),
    };
    (status, Json(body))
}

/// Prometheus metrics
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = OK, description = "The text exposition format.", body = String, content_type = "text/plain")),
)]
pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// This document
///
/// Generated from the handlers and the types they read and write.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = OK, description = "The OpenAPI document.", body = Object, content_type = "application/json"),
        (status = INTERNAL_SERVER_ERROR, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn openapi() -> Result<Response, ApiError> {
    match super::openapi::json() {
        Ok(json) => Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response()),
        Err(error) => Err(ApiError::internal(format!("cannot write the OpenAPI document: {error}"))),
    }
}

/// The search page
#[utoipa::path(
    get,
    path = "/",
    tag = "search",
    responses((status = OK, description = "A page with a search box.", body = String, content_type = "text/html")),
)]
pub(super) async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// `POST /admin/reload` body.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Reloaded {
    #[schema(value_type = String, example = "reloaded")]
    status: &'static str,
    /// Products in the index now serving.
    products: u64,
    /// When that index was built (RFC 3339, UTC).
    built_at: String,
}

/// Reopen the index directory
///
/// Reopens the index directory (and the model) and swaps it in; searches in flight finish
/// on the index they started with. Reloads run one at a time, the last one asked for wins.
#[utoipa::path(
    post,
    path = "/admin/reload",
    tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = OK, description = "Reloaded.", body = Reloaded),
        (status = UNAUTHORIZED, description = "A missing or wrong token (code `unauthorized`).", body = ErrorBody),
        (
            status = FORBIDDEN, body = ErrorBody,
            description = "Reloading is off: the server was started without an admin token (code `reload_disabled`).",
        ),
        (
            status = CONFLICT, body = ErrorBody,
            description = "The new index could not be opened; the old one keeps serving (code `reload_failed`).",
        ),
        (status = INTERNAL_SERVER_ERROR, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn reload(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Reloaded>, ApiError> {
    let Some(token) = &state.admin_token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::ReloadDisabled,
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
            ErrorCode::Unauthorized,
            "a valid `Authorization: Bearer TOKEN` header is required",
        ));
    }
    // One reload at a time, in the order asked: the last one asked for is the one kept.
    let _reloading = state.reloading.lock().await;
    let (dir, encoder, model) = (state.index_dir.clone(), state.encoder_dir.clone(), state.model_dir.clone());
    let engine = tokio::task::spawn_blocking(move || Engine::open_with(&dir, &encoder, model.as_deref()))
        .await
        .map_err(|e| ApiError::internal(format!("reload task failed: {e}")))?
        .map_err(|e| {
            ApiError::new(StatusCode::CONFLICT, ErrorCode::ReloadFailed, format!("kept the current index: {e}"))
        })?;
    let products = engine.index().lexical.num_products();
    let built_at = engine.manifest().built_at.clone();
    state.engine.store(Arc::new(engine));
    if let Some(judgments) = state.judgments() {
        judgments.forget_comparisons();
    }
    tracing::info!(products, %built_at, "index reloaded");
    Ok(Json(Reloaded { status: "reloaded", products, built_at }))
}

pub(super) async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see GET /openapi.json")
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
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

/// Most events one `POST /events` may carry.
pub const MAX_EVENTS: usize = 1000;

/// What became of one posted event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum EventStatus {
    /// Stored, durably.
    Accepted,
    /// Stored before under this `event_id`: nothing done.
    Duplicate,
    /// Not stored; `error` says why.
    Rejected,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EventResult {
    /// The event's `event_id`, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    event_id: Option<String>,
    status: EventStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    error: Option<super::ErrorDetail>,
}

/// `POST /events` answer: counts, and one result per posted event in order. With a
/// rejection in a batch, `error` says so (status 422) and the other events are stored.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EventsAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    error: Option<super::ErrorDetail>,
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    results: Vec<EventResult>,
}

fn rejection_error(rejection: &crate::events::store::Rejection) -> ApiError {
    use crate::events::store::Rejection;
    let (status, code) = match rejection {
        Rejection::Invalid(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidEvent),
        Rejection::UnknownImpression(_) => (StatusCode::NOT_FOUND, ErrorCode::UnknownImpression),
        Rejection::ProductNotShown { .. } => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ProductNotShown),
        Rejection::IdConflict(_) => (StatusCode::CONFLICT, ErrorCode::EventIdConflict),
    };
    ApiError::new(status, code, rejection.message())
}

/// Record shoppers' events
///
/// One event, or a list of up to 1,000 (the body is at most 64 KiB). Each names the
/// `impression_id` of a search response and a product it showed. Answered only once the
/// events are on disk; posting an event again (same `event_id`) is harmless. A single
/// event that is refused gets its own status; in a list, the good events are stored and a
/// `422` lists what was refused.
#[utoipa::path(
    post,
    path = "/events",
    tag = "engagement",
    request_body(content = Vec<crate::events::EventIn>, description = "One event (an object) or a list of them."),
    responses(
        (status = OK, description = "Every event stored (or stored before).", body = EventsAnswer),
        (status = BAD_REQUEST, description = "Not JSON, an empty or too long list, or a malformed event (codes \
            `invalid_json`, `invalid_request`, `invalid_event`).", body = ErrorBody),
        (status = NOT_FOUND, description = "Unknown impression (`unknown_impression`), or the server keeps no event \
            log (`events_disabled`).", body = ErrorBody),
        (status = CONFLICT, description = "The `event_id` names a different event (`event_id_conflict`).", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "The body is over 64 KiB (code `body_too_large`).", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A single event's product was not shown in its impression \
            (`product_not_shown`), or some events of a list were refused (`events_rejected`, with the results; \
            the others are stored).", body = EventsAnswer),
        (status = SERVICE_UNAVAILABLE, description = "The event log could not store them; nothing was stored \
            (`store_unavailable`).", body = ErrorBody),
    ),
)]
pub(super) async fn events(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let log = state.event_log().ok_or_else(events_disabled)?;
    let body = body.map_err(body_error)?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidJson, format!("request body: {e}")))?;
    let (single, items) = match value {
        serde_json::Value::Array(items) => (false, items),
        object @ serde_json::Value::Object(_) => (true, vec![object]),
        _ => return Err(ApiError::bad_request("the body must be an event object or a list of them")),
    };
    if items.is_empty() || items.len() > MAX_EVENTS {
        return Err(ApiError::bad_request(format!("post 1 to {MAX_EVENTS} events, got {}", items.len())));
    }
    // Each event is read on its own: one malformed event does not spoil the others.
    let mut ids = Vec::with_capacity(items.len());
    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        ids.push(item.get("event_id").and_then(|v| v.as_str()).map(String::from));
        parsed.push(
            serde_json::from_value::<crate::events::EventIn>(item)
                .map_err(|e| e.to_string())
                .and_then(|event| event.check().map(|()| event)),
        );
    }
    let valid: Vec<crate::events::EventIn> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let mut stored = if valid.is_empty() {
        Vec::new()
    } else {
        log.record(valid).await.map_err(|_| crate::events::StoreError::Stopped).and_then(|outcome| outcome).map_err(
            |e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::StoreUnavailable, format!("{e}; retry")),
        )?
    }
    .into_iter();
    use crate::events::store::{Outcome, Rejection};
    let outcomes: Vec<Outcome> = parsed
        .into_iter()
        .map(|p| match p {
            Ok(_) => stored.next().unwrap_or(Outcome::Rejected(Rejection::Invalid("not processed".into()))),
            Err(message) => Outcome::Rejected(Rejection::Invalid(message)),
        })
        .collect();
    if single {
        if let Some(Outcome::Rejected(rejection)) = outcomes.first() {
            return Err(rejection_error(rejection));
        }
    }
    let mut answer = EventsAnswer { error: None, accepted: 0, duplicates: 0, rejected: 0, results: Vec::new() };
    for (event_id, outcome) in ids.into_iter().zip(outcomes) {
        let (status, error) = match outcome {
            Outcome::Accepted => {
                answer.accepted += 1;
                (EventStatus::Accepted, None)
            }
            Outcome::Duplicate => {
                answer.duplicates += 1;
                (EventStatus::Duplicate, None)
            }
            Outcome::Rejected(rejection) => {
                answer.rejected += 1;
                let error = rejection_error(&rejection);
                (EventStatus::Rejected, Some(super::ErrorDetail { code: error.code, message: error.message }))
            }
        };
        answer.results.push(EventResult { event_id, status, error });
    }
    metrics::counter!("shelf_events_accepted_total").increment(answer.accepted as u64);
    metrics::counter!("shelf_events_rejected_total").increment(answer.rejected as u64);
    if answer.rejected > 0 {
        answer.error = Some(super::ErrorDetail {
            code: ErrorCode::EventsRejected,
            message: format!(
                "{} of {} events were refused (see results); the other {} are stored",
                answer.rejected,
                answer.results.len(),
                answer.accepted + answer.duplicates
            ),
        });
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(answer)).into_response());
    }
    Ok(Json(answer).into_response())
}
