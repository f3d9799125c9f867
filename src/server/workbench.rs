//! What the workbench page (`GET /`) asks besides searching: the judged grades of a query,
//! the judged queries on which two rankers differ most, and the engagement log at a glance.
//! Judgments come from `shelf serve --queries FILE --qrels FILE`; engagement from
//! `--events FILE`. Without them these routes answer 404 and say which flag turns them on.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ErrorBody, ErrorCode};
use super::routes::{events_disabled, params, ranker};
use super::{ApiError, AppState};
use crate::engine::Engine;
use crate::eval::compare::{self, Comparison, QueryDelta};
use crate::eval::trec::Qrels;
use crate::events::labels::query_key;
use crate::events::summary::Summary;
use crate::search::RankerKind;

/// The first page compared, as the workbench shows it.
const PAGE: usize = 10;
/// Positions and queries the engagement view lists.
const POSITIONS: usize = 10;
const TOP_QUERIES: usize = 15;

/// A comparison and the engine that made it.
type Compared = (Arc<Engine>, Arc<Comparison>);

/// Judged queries the server holds for the workbench.
pub struct Judgments {
    queries: Vec<(String, String)>,
    qrels: Qrels,
    /// The qid of each judged query's text, case- and space-insensitively.
    by_text: HashMap<String, String>,
    /// Comparisons of ranker pairs with the engine they were computed on (a reload makes
    /// them stale, and forgets them).
    compared: Mutex<HashMap<(RankerKind, RankerKind), Compared>>,
    /// Held while a comparison runs: one at a time (each runs every judged query twice, on
    /// the cores live searches use), and a second ask for the same pair finds it cached.
    computing: Mutex<()>,
}

impl Judgments {
    /// Keeps the queries that have judgments.
    pub fn new(queries: Vec<(String, String)>, qrels: Qrels) -> Judgments {
        let queries: Vec<(String, String)> = queries.into_iter().filter(|(qid, _)| qrels.contains_key(qid)).collect();
        let by_text = queries.iter().map(|(qid, text)| (query_key(text), qid.clone())).collect();
        Judgments { queries, qrels, by_text, compared: Mutex::new(HashMap::new()), computing: Mutex::new(()) }
    }

    /// Judged queries held.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Forgets the comparisons made (the engine was reloaded).
    pub(super) fn forget_comparisons(&self) {
        if let Ok(mut cache) = self.compared.lock() {
            cache.clear();
        }
    }

    fn comparison(&self, engine: &Arc<Engine>, a: RankerKind, b: RankerKind) -> Result<Arc<Comparison>, ApiError> {
        let cached = || {
            let cache = self.compared.lock().ok()?;
            let (made_by, comparison) = cache.get(&(a, b))?;
            Arc::ptr_eq(made_by, engine).then(|| comparison.clone())
        };
        if let Some(found) = cached() {
            return Ok(found);
        }
        let _one_at_a_time = self.computing.lock();
        if let Some(found) = cached() {
            return Ok(found);
        }
        let comparison =
            compare::served(engine, &self.queries, &self.qrels, (a, b), PAGE).map_err(|error| match error {
                crate::eval::EvalError::Search(search) => ApiError::from(search),
                other => ApiError::internal(other.to_string()),
            })?;
        let comparison = Arc::new(comparison);
        if let Ok(mut cache) = self.compared.lock() {
            cache.retain(|_, (made_by, _)| Arc::ptr_eq(made_by, engine));
            cache.insert((a, b), (engine.clone(), comparison.clone()));
        }
        Ok(comparison)
    }
}

fn judgments_of(state: &AppState) -> Result<&Judgments, ApiError> {
    state.judgments().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::JudgmentsDisabled,
            "this server holds no judgments: start `shelf serve` with --queries FILE --qrels FILE",
        )
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct JudgedParams {
    /// The query, as typed (matched to a judged query case- and space-insensitively).
    #[param(example = "bar stool")]
    q: String,
}

/// A query's judgments: its grades when a judged query has its text, else none.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct JudgedQuery {
    /// The judged query's id; `null` when no judged query has this text.
    qid: Option<String>,
    /// The judged query's text (as asked, when none).
    query: String,
    /// Product id → grade (0 = not relevant; higher is better).
    grades: BTreeMap<String, i32>,
}

/// Grades of a judged query
#[utoipa::path(
    get,
    path = "/judgments",
    tag = "workbench",
    params(JudgedParams),
    responses(
        (
            status = OK, body = JudgedQuery,
            description = "The judged query with that text and its grades; `qid` null and no grades when no \
                judged query has that text.",
        ),
        (status = BAD_REQUEST, description = "No `q` (code `invalid_request`).", body = ErrorBody),
        (status = NOT_FOUND, description = "The server holds no judgments (`judgments_disabled`).", body = ErrorBody),
    ),
)]
pub(super) async fn judged(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<JudgedQuery>, ApiError> {
    let JudgedParams { q } = params(raw)?;
    let judgments = judgments_of(&state)?;
    // Not judged is an answer, not an error: the workbench asks for every query it shows.
    let Some(qid) = judgments.by_text.get(&query_key(&q)) else {
        return Ok(Json(JudgedQuery { qid: None, query: q.trim().to_string(), grades: BTreeMap::new() }));
    };
    let query = judgments.queries.iter().find(|(id, _)| id == qid).map(|(_, text)| text.clone()).unwrap_or_default();
    Ok(Json(JudgedQuery { qid: Some(qid.clone()), query, grades: judgments.qrels[qid].clone() }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DifferencesParams {
    /// The first ranker.
    #[param(value_type = RankerKind, example = "hybrid")]
    a: String,
    /// The second ranker.
    #[param(value_type = RankerKind, example = "bm25")]
    b: String,
    /// How many queries to list (default 50).
    #[param(minimum = 1, maximum = 1000, example = 20)]
    limit: Option<usize>,
}

/// Two rankers on every judged query.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Differences {
    a: RankerKind,
    b: RankerKind,
    /// Always `ndcg@10`, over each ranker's served first page.
    metric: String,
    /// Judged queries compared.
    queries: usize,
    mean_a: f64,
    mean_b: f64,
    /// Queries where `b` scored higher, lower, the same.
    wins: usize,
    losses: usize,
    ties: usize,
    /// Two-sided paired randomization test on the per-query nDCG@10.
    p: f64,
    /// The queries where the two differ, the biggest difference (either way) first.
    #[schema(value_type = Vec<Object>)]
    differences: Vec<QueryDelta>,
}

/// Judged queries where two rankers differ most
///
/// Runs both rankers over every judged query (the first time for a pair: a few seconds on
/// the demo shop; then cached until the next reload).
#[utoipa::path(
    get,
    path = "/judgments/differences",
    tag = "workbench",
    params(DifferencesParams),
    responses(
        (status = OK, description = "The comparison, biggest differences first.", body = Differences),
        (
            status = BAD_REQUEST, body = ErrorBody,
            description = "A missing or unknown ranker, the same ranker twice, a bad limit (codes `invalid_request`, \
                `unknown_ranker`, `ranker_unavailable`).",
        ),
        (status = NOT_FOUND, description = "The server holds no judgments (`judgments_disabled`).", body = ErrorBody),
    ),
)]
pub(super) async fn differences(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Differences>, ApiError> {
    let DifferencesParams { a, b, limit } = params(raw)?;
    let engine = state.engine();
    let (a, b) = (ranker(&engine, Some(&a))?, ranker(&engine, Some(&b))?);
    if a == b {
        return Err(ApiError::bad_request("compare two different rankers"));
    }
    let limit = limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be between 1 and 1000, got {limit}")));
    }
    judgments_of(&state)?;
    // `served` checks both rankers can serve before any work.
    let worker = state.clone();
    let comparison = tokio::task::spawn_blocking(move || judgments_of(&worker)?.comparison(&engine, a, b))
        .await
        .map_err(|e| ApiError::internal(format!("comparison task failed: {e}")))??;
    let mut differences: Vec<QueryDelta> =
        comparison.deltas.iter().filter(|d| d.delta.abs() > compare::TIE).cloned().collect();
    differences.sort_by(|x, y| y.delta.abs().total_cmp(&x.delta.abs()).then_with(|| x.qid.cmp(&y.qid)));
    differences.truncate(limit);
    let ndcg = |m: &crate::eval::metrics::Metrics| m.get("ndcg@10").unwrap_or(0.0);
    Ok(Json(Differences {
        a,
        b,
        metric: comparison.metric.clone(),
        queries: comparison.queries,
        mean_a: ndcg(&comparison.mean_a),
        mean_b: ndcg(&comparison.mean_b),
        wins: comparison.wins,
        losses: comparison.losses,
        ties: comparison.ties,
        p: comparison.randomization_p,
        differences,
    }))
}

/// The engagement log at a glance
///
/// Click-through by position, the estimated examination curve (once exploration has swapped
/// enough pairs), and the most searched queries that found nothing or drew no click.
#[utoipa::path(
    get,
    path = "/engagement",
    tag = "engagement",
    responses(
        (status = OK, description = "The summary of the whole log.", body = Object),
        (status = NOT_FOUND, description = "The server keeps no event log (`events_disabled`).", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "The log cannot be read (`store_unavailable`).", body = ErrorBody),
    ),
)]
pub(super) async fn engagement(State(state): State<Arc<AppState>>) -> Result<Json<Summary>, ApiError> {
    let path = state.event_log().ok_or_else(events_disabled)?.path().to_path_buf();
    let summary = tokio::task::spawn_blocking(move || {
        crate::events::store::read_log(&path).map(|logged| Summary::of(&logged, POSITIONS, TOP_QUERIES))
    })
    .await
    .map_err(|e| ApiError::internal(format!("summary task failed: {e}")))?
    .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::StoreUnavailable, e.to_string()))?;
    Ok(Json(summary))
}
