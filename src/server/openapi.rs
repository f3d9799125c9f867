//! The route list, and the OpenAPI document generated from it: the router serves each
//! handler exactly where its `#[utoipa::path]` says, so a route cannot be served without
//! being documented, nor documented somewhere it is not served.

use std::sync::{Arc, OnceLock};

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ErrorBody, ErrorCode};
use super::{routes, workbench, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "shelf",
        version = env!("CARGO_PKG_VERSION"),
        description = "Product search with learned ranking: BM25 and vector candidates, ordered by a \
            LambdaMART or neural ranker. Every error is answered with `{\"error\": {\"code\", \"message\"}}` \
            (`ErrorBody`); `code` is one of `ErrorCode`.",
    ),
    modifiers(&BearerToken),
    // Listed outright so the document always holds every error code, whichever routes refer to them.
    components(schemas(ErrorBody, ErrorCode)),
)]
struct ApiDoc;

/// The `bearer` security scheme that `POST /admin/reload` asks for.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The token given to `shelf serve` with --admin-token or SHELF_ADMIN_TOKEN."))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Every route with its handler, and the document describing them. Add a route here (with
/// `#[utoipa::path]` on its handler) and it is both served and documented.
pub(super) fn api() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::page))
        .routes(routes!(routes::search_get, routes::search_post))
        .routes(routes!(routes::product))
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::readyz))
        .routes(routes!(routes::metrics))
        .routes(routes!(routes::openapi))
        .routes(routes!(routes::events))
        .routes(routes!(routes::reload))
        .routes(routes!(workbench::judged))
        .routes(routes!(workbench::differences))
        .routes(routes!(workbench::engagement))
}

/// The OpenAPI document of the HTTP API, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| api().into_openapi())
}

/// The document as JSON, written once (as served by `GET /openapi.json`).
pub(super) fn json() -> Result<&'static str, &'static str> {
    static JSON: OnceLock<Result<String, String>> = OnceLock::new();
    JSON.get_or_init(|| document().to_json().map_err(|e| e.to_string())).as_deref().map_err(String::as_str)
}
