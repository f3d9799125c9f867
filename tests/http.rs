//! The HTTP API over a real socket: shapes, filters, facets, and the bad-input table.

mod common;

use common::server::{ids, settle, Server};

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};
use shelf::server::{AppState, ErrorCode, Limits};

#[tokio::test]
async fn search_returns_the_documented_shape() {
    let (server, _) = Server::start(None).await;
    let (status, body) = server.get("/search?q=36+in+vanity+grey&k=5").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["query"], "36 in vanity grey");
    assert_eq!(body["ranker"], "bm25");
    assert!(body["took_ms"].as_f64().unwrap() >= 0.0);
    assert!(body["total_candidates"].as_u64().unwrap() >= 5);
    assert!(body["timings_ms"]["lexical"].as_f64().is_some());
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for (at, hit) in results.iter().enumerate() {
        assert_eq!(hit["rank"], at + 1);
        assert_eq!(hit["sources"]["bm25"]["rank"], at + 1);
        assert_eq!(hit["product"]["id"], hit["id"]);
        assert!(hit["product"]["category"].is_string());
    }
    let scores: Vec<f64> = results.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "scores descend: {scores:?}");
    // Vanities (and vanity mirrors) of 36 in lead; the unstemmed title field matches "36in" too.
    let top = &results[0]["product"];
    assert_eq!(top["attributes"]["size"], "36 in", "{top}");
    assert!(results.iter().take(3).all(|h| h["title"].as_str().unwrap().contains("Vanity")));
    // GET and POST give the same answer.
    let (_, posted) = server.post(json!({"q": "36 in vanity grey", "k": 5})).await;
    assert_eq!(ids(&posted), ids(&body));
}

#[tokio::test]
async fn filters_restrict_results_and_facets_count_them() {
    let (server, _) = Server::start(None).await;
    let (status, body) = server
        .get("/search?q=office+chair&k=50&filter=brand:loftline&filter=price:100..400&filter=rating:4&filter=in_stock:true")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for hit in results {
        let p = &hit["product"];
        assert_eq!(p["brand"], "Loftline", "brand filter is case-insensitive");
        let price = p["price"].as_f64().unwrap();
        assert!((100.0..=400.0).contains(&price), "{price}");
        assert!(p["rating"].as_f64().unwrap() >= 4.0);
        assert_eq!(p["in_stock"], true);
    }
    // Facets count the matching products (all of them filtered).
    let total = body["total_candidates"].as_u64().unwrap();
    assert!(total > 0 && total as usize <= results.len(), "{total} of {}", results.len());
    assert_eq!(body["facets"]["brand"], json!([{"value": "Loftline", "count": total}]));

    // Category prefix: everything under Furniture > Office, and facets show its children.
    let (_, body) = server.post(json!({"q": "chair", "k": 100, "filter": {"category": "furniture > office"}})).await;
    let results = body["results"].as_array().unwrap();
    assert!(!results.is_empty());
    assert!(results.iter().all(|h| h["product"]["category"].as_str().unwrap().starts_with("Furniture > Office >")));
    let categories: Vec<&str> =
        body["facets"]["category"].as_array().unwrap().iter().map(|c| c["value"].as_str().unwrap()).collect();
    assert!(categories.contains(&"Furniture"), "{categories:?}");
    assert!(categories.contains(&"Furniture > Office > Office Chairs"), "{categories:?}");
    let total: u64 = body["facets"]["brand"].as_array().unwrap().iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert_eq!(total, body["total_candidates"].as_u64().unwrap(), "every match has one brand");

    // A brand or category that does not exist matches nothing rather than everything.
    let (status, body) = server.get("/search?q=chair&filter=brand:Nobody").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total_candidates"], 0);
}

/// The range facets describe the matching products, and each value filters to its count.
#[tokio::test]
async fn price_rating_and_stock_facets_count_what_their_filters_keep() {
    let (server, _) = Server::start(None).await;
    let (_, body) = server.get("/search?q=lamp&k=200").await;
    let facets = &body["facets"];
    let total = body["total_candidates"].as_u64().unwrap();
    let (min, max) = (facets["price"]["min"].as_f64().unwrap(), facets["price"]["max"].as_f64().unwrap());
    assert!(min < max, "{facets}");
    let (_, all) = server.get(&format!("/search?q=lamp&k=200&filter=price:{min}..{max}")).await;
    assert_eq!(all["total_candidates"].as_u64().unwrap(), total, "the range holds every priced match");
    let stars: Vec<&str> = facets["rating"].as_array().unwrap().iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(stars, ["4", "3", "2", "1"], "best first");
    for facet in facets["rating"].as_array().unwrap() {
        let (_, kept) =
            server.get(&format!("/search?q=lamp&k=1&filter=rating:{}", facet["value"].as_str().unwrap())).await;
        assert_eq!(kept["total_candidates"], facet["count"], "rating:{}", facet["value"]);
    }
    let mut stocked = 0;
    for facet in facets["in_stock"].as_array().unwrap() {
        let (_, kept) =
            server.get(&format!("/search?q=lamp&k=1&filter=in_stock:{}", facet["value"].as_str().unwrap())).await;
        assert_eq!(kept["total_candidates"], facet["count"], "in_stock:{}", facet["value"]);
        stocked += facet["count"].as_u64().unwrap();
    }
    assert_eq!(stocked, total, "every demo product says whether it is in stock");
}

/// Page 2 is the continuation of page 1 for every ranker, explanations included, and the
/// limits are checked.
#[tokio::test]
async fn offset_pages_through_the_same_ranking() {
    let (server, _) = Server::start_with(None, Some(common::demo_model())).await;
    for ranker in ["bm25", "hybrid", "ltr", "ensemble"] {
        let (_, whole) = server.get(&format!("/search?q=desk+lamp&k=20&ranker={ranker}")).await;
        let (status, second) =
            server.get(&format!("/search?q=desk+lamp&k=10&offset=10&ranker={ranker}&explain=true")).await;
        assert_eq!(status, StatusCode::OK, "{second}");
        assert_eq!(ids(&second), ids(&whole)[10..], "{ranker}");
        let ranks: Vec<u64> =
            second["results"].as_array().unwrap().iter().map(|h| h["rank"].as_u64().unwrap()).collect();
        assert_eq!(ranks, (11..=20).collect::<Vec<u64>>());
        if ranker != "bm25" && ranker != "hybrid" {
            assert!(second["results"].as_array().unwrap().iter().all(|h| h["explain"].is_object()), "{ranker}");
        }
    }
    let (status, body) = server.get("/search?q=lamp&offset=1001").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    let (status, _) = server.get("/search?q=lamp&offset=-1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = server.get("/search?q=lamp&offset=10&interleave=ltr,hybrid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "interleaving is for the first page: {body}");
}

/// With judged queries the server tells a query's grades and where two rankers differ;
/// without them it says which flags turn that on.
#[tokio::test]
async fn judgments_give_grades_and_the_queries_two_rankers_disagree_on() {
    let (server, _) = Server::start(None).await;
    let (status, body) = server.get("/judgments?q=sofas").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("judgments_disabled")));
    let (status, body) = server.get("/engagement").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("events_disabled")));

    let state = AppState::open(common::demo_index(), &common::encoder_dir(), None, None).unwrap();
    let (queries, qrels) = common::demo_judgments();
    assert_eq!(state.judge_with(queries.clone(), qrels.clone()).unwrap(), queries.len());
    let (server, _) = Server::serve(state).await;
    let (status, body) = server.get("/judgments?q=++SOFAS+").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["query"], "sofas");
    let qid = body["qid"].as_str().unwrap();
    assert_eq!(
        serde_json::from_value::<std::collections::BTreeMap<String, i32>>(body["grades"].clone()).unwrap(),
        qrels[qid]
    );
    let (status, body) = server.get("/judgments?q=no+such+judged+query").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"qid": null, "query": "no such judged query", "grades": {}})));

    let (status, body) = server.get("/judgments/differences?a=hybrid&b=bm25&limit=5").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = body["differences"].as_array().unwrap();
    assert_eq!(listed.len(), 5);
    let sizes: Vec<f64> = listed.iter().map(|d| d["delta"].as_f64().unwrap().abs()).collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]) && sizes[4] > 0.0, "biggest first: {sizes:?}");
    // Each listed number is the nDCG@10 of the page the server serves for that query.
    let first = &listed[0];
    let (_, page) = server
        .get(&format!("/search?q={}&ranker=bm25&k=10", common::urlencode(first["query"].as_str().unwrap())))
        .await;
    let grades = &qrels[first["qid"].as_str().unwrap()];
    let served = shelf::eval::metrics::Metrics::compute(&ids(&page), grades, shelf::eval::DEFAULT_THRESHOLD);
    assert!((served.get("ndcg@10").unwrap() - first["b"].as_f64().unwrap()).abs() < 1e-9);
    assert_eq!(
        body["wins"].as_u64().unwrap() + body["losses"].as_u64().unwrap() + body["ties"].as_u64().unwrap(),
        body["queries"].as_u64().unwrap()
    );
    for (query, code) in [
        ("a=hybrid&b=hybrid", "invalid_request"),
        ("a=hybrid&b=nope", "unknown_ranker"),
        ("a=ltr&b=bm25", "ranker_unavailable"),
    ] {
        let (status, body) = server.get(&format!("/judgments/differences?{query}")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{query}");
    }
}

#[tokio::test]
async fn odd_queries_just_work() {
    let (server, _) = Server::start(None).await;
    // As long as a query may be: 64 words.
    let long = "grey sofa ".repeat(32);
    let odd = [
        "\"office chair\"",
        "title:sofa",
        "(lamp) AND -rug",
        "*",
        "sofa^10",
        "café lämp ☕",
        "🛋️",
        "36\" vanity",
        "a:b:c:d",
        "\\",
        "'",
        "~2",
        "NOT",
        long.as_str(),
    ];
    for q in odd {
        let (status, body) = server.post(json!({"q": q})).await;
        assert_eq!(status, StatusCode::OK, "query {q:?}: {body}");
        assert!(body["results"].is_array());
    }
    let (_, body) = server.post(json!({"q": "title:sofa"})).await;
    assert!(body["results"][0]["title"].as_str().unwrap().to_lowercase().contains("sofa"));
    // A misspelled word is matched fuzzily.
    let (_, body) = server.get("/search?q=recliiner&k=3").await;
    assert_eq!(body["fuzzy"], true);
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["product"]["category"].as_str().unwrap().ends_with("Recliners")),
        "{body}"
    );
}

#[tokio::test]
async fn bad_input_gets_4xx_with_an_error_object_and_the_server_stays_up() {
    let (server, _) = Server::start(None).await;
    let cases: Vec<(&str, Option<String>, StatusCode, &str)> = vec![
        ("missing q", Some("/search".into()), StatusCode::BAD_REQUEST, "invalid_request"),
        ("empty q", Some("/search?q=".into()), StatusCode::BAD_REQUEST, "invalid_request"),
        (
            "q of NULs and zero-width spaces",
            Some("/search?q=%00%E2%80%8B".into()),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        ("k=0", Some("/search?q=sofa&k=0".into()), StatusCode::BAD_REQUEST, "invalid_request"),
        ("huge k", Some("/search?q=sofa&k=1000000".into()), StatusCode::BAD_REQUEST, "invalid_request"),
        ("k not a number", Some("/search?q=sofa&k=ten".into()), StatusCode::BAD_REQUEST, "invalid_request"),
        ("negative k", Some("/search?q=sofa&k=-1".into()), StatusCode::BAD_REQUEST, "invalid_request"),
        ("unknown ranker", Some("/search?q=sofa&ranker=magic".into()), StatusCode::BAD_REQUEST, "unknown_ranker"),
        ("ranker not built", Some("/search?q=sofa&ranker=ltr".into()), StatusCode::BAD_REQUEST, "ranker_unavailable"),
        (
            "unknown filter field",
            Some("/search?q=sofa&filter=colour:red".into()),
            StatusCode::BAD_REQUEST,
            "invalid_filter",
        ),
        ("bad price", Some("/search?q=sofa&filter=price:cheap".into()), StatusCode::BAD_REQUEST, "invalid_filter"),
        ("bad bool", Some("/search?q=sofa&explain=maybe".into()), StatusCode::BAD_REQUEST, "invalid_request"),
        ("unknown parameter", Some("/search?q=sofa&kk=3".into()), StatusCode::BAD_REQUEST, "unknown_parameter"),
        (
            "unknown utility term",
            Some("/search?q=sofa&utility=stars:1".into()),
            StatusCode::BAD_REQUEST,
            "invalid_utility",
        ),
        (
            "utility not a number",
            Some("/search?q=sofa&utility=rating:lots".into()),
            StatusCode::BAD_REQUEST,
            "invalid_utility",
        ),
        (
            "neural not built",
            Some("/search?q=sofa&ranker=neural".into()),
            StatusCode::BAD_REQUEST,
            "ranker_unavailable",
        ),
        ("unknown product", Some("/products/NOPE".into()), StatusCode::NOT_FOUND, "not_found"),
        ("unknown route", Some("/nowhere".into()), StatusCode::NOT_FOUND, "not_found"),
    ];
    for (name, path, status, code) in cases {
        let (got, body) = server.get(path.as_deref().unwrap()).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty(), "{name}");
    }
    let posts: Vec<(&str, String, StatusCode, &str)> = vec![
        ("invalid json", "{\"q\": ".into(), StatusCode::BAD_REQUEST, "invalid_json"),
        ("not an object", "[1, 2]".into(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("q wrong type", json!({"q": 5}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("k wrong type", json!({"q": "sofa", "k": "many"}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("k too big", json!({"q": "sofa", "k": 1000000}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("missing q", json!({"k": 3}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        (
            "unknown field",
            json!({"q": "sofa", "colour": "red"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown filter field",
            json!({"q": "sofa", "filter": {"colour": "red"}}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "bad rating",
            json!({"q": "sofa", "filter": {"min_rating": 11}}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown ranker",
            json!({"q": "sofa", "ranker": "magic"}).to_string(),
            StatusCode::BAD_REQUEST,
            "unknown_ranker",
        ),
        (
            "huge body",
            format!("{{\"q\": \"{}\"}}", "a".repeat(200_000)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (name, body, status, code) in posts {
        let (got, answer) = server.post_raw("/search", body).await;
        assert_eq!(got, status, "{name}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{name}: {answer}");
    }
    let (status, body) = server.get("/healthz").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = server.get("/search?q=sofa").await;
    assert_eq!(status, StatusCode::OK, "still serving after bad input");
    assert!(!ids(&body).is_empty());
}

#[tokio::test]
async fn products_readiness_metrics_openapi_and_page() {
    let (server, _) = Server::start(None).await;
    let (status, body) = server.get("/products/D00001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], "D00001");
    assert!(body["title"].as_str().unwrap().contains("Sofa"));
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["products"].as_u64().unwrap(), body["manifest"]["counts"]["products"].as_u64().unwrap());
    let (status, body) = server.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["paths"]["/search"]["get"].is_object());
    server.get("/search?q=lamp").await;
    let metrics = server.client.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("shelf_http_requests_total"), "{metrics}");
    let page = server.client.get(format!("{}/", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<form") && page.contains("/search?"));
}

#[tokio::test]
async fn reload_needs_the_token_and_keeps_serving() {
    let (server, _) = Server::start(Some("s3cret")).await;
    let reload = |token: Option<&'static str>| {
        let mut request = server.client.post(format!("{}/admin/reload", server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(reload(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(reload(Some("wrong")).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let response = reload(Some("s3cret")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "reloaded");
    let (status, _) = server.get("/search?q=sofa").await;
    assert_eq!(status, StatusCode::OK);

    let (open, _) = Server::start(None).await;
    let response = open.client.post(format!("{}/admin/reload", open.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "no token configured: reload is off");
}

#[tokio::test]
async fn products_holding_every_word_come_first_and_set_the_facets() {
    let (server, _) = Server::start(None).await;
    // Two words: both are needed to count as a match. Every counted match is a Loftline
    // product or an office chair; the rest follow, ranked below.
    let (_, body) = server.get("/search?q=loftline+chair&k=100").await;
    let total = body["total_candidates"].as_u64().unwrap() as usize;
    let results = body["results"].as_array().unwrap();
    assert!(total >= 10 && total < results.len(), "{total} counted of {} returned", results.len());
    for hit in &results[..total] {
        let p = &hit["product"];
        let text = format!("{} {} {}", p["brand"], p["title"], p["category"]).to_lowercase();
        assert!(text.contains("loftline") && text.contains("chair"), "{text}");
    }
    let brands: u64 = body["facets"]["brand"].as_array().unwrap().iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert_eq!(brands as usize, total);
    assert_eq!(body["relaxed"], false);
    let scores: Vec<f64> = results.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "scores descend across the two tiers");

    // When too few products hold enough words, one word is enough and the response says so.
    let (_, body) = server.get("/search?q=loftline+zzzqx+wobblequark+chair").await;
    assert_eq!(body["relaxed"], true, "{body}");
    assert!(!body["results"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_served_model_ranks_by_default_and_explains_itself() {
    let (server, _) = Server::start_with(None, Some(common::demo_model())).await;
    let (status, body) = server.get("/search?q=grey+velvet+sofa&k=3&explain=true").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ranker"], "ensemble", "an ensemble model serves its blend by default");
    for ranker in ["ltr", "neural", "ensemble"] {
        let (status, body) = server.get(&format!("/search?q=grey+velvet+sofa&k=3&explain=true&ranker={ranker}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        for result in results {
            let explain = &result["explain"];
            let sum: f64 =
                explain["features"].as_object().unwrap().values().map(|f| f["contribution"].as_f64().unwrap()).sum();
            let score = explain["score"].as_f64().unwrap();
            let residual = explain["residual"].as_f64().unwrap_or(0.0);
            assert!((sum + explain["bias"].as_f64().unwrap() + residual - score).abs() < 1e-4, "{ranker}: {explain}");
            assert!(
                (score - result["score"].as_f64().unwrap()).abs() < 1e-3,
                "{ranker}: explain is of the result's score"
            );
            assert!(explain["top"][0]["feature"].is_string());
            if ranker != "ltr" {
                let stars = explain["heads"]["rating"].as_f64().expect("the rating head predicts stars");
                assert!((0.0..=5.0).contains(&stars), "{explain}");
            }
        }
    }
    // A per-request utility reorders by the blend, and explains each term.
    let (status, body) = server.get("/search?q=sofa&k=5&explain=true&utility=relevance:1,rating:0.5").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for result in body["results"].as_array().unwrap() {
        let utility = &result["explain"]["utility"];
        let terms = utility["terms"].as_array().unwrap();
        assert_eq!(terms.len(), 2, "{utility}");
        let sum: f64 = terms.iter().map(|t| t["contribution"].as_f64().unwrap()).sum();
        assert!((sum - result["score"].as_f64().unwrap()).abs() < 1e-4, "{utility}");
    }
    let (status, body) = server.post(json!({"q": "sofa", "utility": {"rating": 0.3}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server.post(json!({"q": "sofa", "utility": {"colour": 1}})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_utility")), "{body}");
    let (status, body) = server.get("/search?q=sofa&ranker=bm25&utility=rating:1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "utility needs a learned ranker: {body}");
    let (status, body) = server.get("/search?q=sofa&utility=click:1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no click head is trained: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("click head"), "{body}");
    for ranker in ["bm25", "hybrid"] {
        let (status, body) = server.get(&format!("/search?q=sofa&ranker={ranker}")).await;
        assert_eq!((status, body["ranker"].as_str()), (StatusCode::OK, Some(ranker)));
    }
    // Without a model, ltr is refused with the reason.
    let (plain, _) = Server::start(None).await;
    let (status, body) = plain.get("/search?q=sofa&ranker=ltr").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "ranker_unavailable");
    assert!(body["error"]["message"].as_str().unwrap().contains("--model"), "{body}");
}

/// Every route the server answers, as (method, path): a route served but not documented, or
/// documented but not served, fails `the_openapi_document_is_the_router`.
const ROUTES: [(&str, &str); 13] = [
    ("get", "/"),
    ("get", "/search"),
    ("post", "/search"),
    ("get", "/products/{id}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/admin/reload"),
    ("post", "/events"),
    ("get", "/judgments"),
    ("get", "/judgments/differences"),
    ("get", "/engagement"),
];

/// Follows `{"$ref": "#/components/schemas/NAME"}` to the schema it names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.strip_prefix("#/components/schemas/").expect("a local schema reference");
            assert!(doc["components"]["schemas"][name].is_object(), "{reference} is not in the document");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// The error codes the document lists, found through the shape of its error body.
fn documented_codes(doc: &Value) -> BTreeSet<String> {
    let body = resolve(doc, &doc["components"]["schemas"]["ErrorBody"]);
    let detail = resolve(doc, &body["properties"]["error"]);
    let code = resolve(doc, &detail["properties"]["code"]);
    let codes = code["enum"].as_array().unwrap_or_else(|| panic!("the error code is an enum: {code}"));
    codes.iter().map(|c| c.as_str().expect("codes are strings").to_string()).collect()
}

/// Checks a JSON value against a documented schema: its type, enum, required and documented
/// properties, array items and map values, all the way down.
fn check_shape(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(variants) = schema["oneOf"].as_array() {
        return match variants.iter().any(|variant| check_shape(doc, variant, value, at).is_ok()) {
            true => Ok(()),
            false => Err(format!("{at}: {value} fits none of {schema}")),
        };
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fits = |t: &&str| match *t {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => false,
    };
    if !types.is_empty() && !types.iter().any(fits) {
        return Err(format!("{at}: {value} is not of type {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let (Some(properties), Some(object)) = (schema["properties"].as_object(), value.as_object()) {
        for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(required) {
                return Err(format!("{at}.{required} is documented as required but absent"));
            }
        }
        for (key, item) in object {
            let documented = properties.get(key).ok_or_else(|| format!("{at}.{key} is not documented"))?;
            check_shape(doc, documented, item, &format!("{at}.{key}"))?;
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (n, item) in array.iter().enumerate() {
            check_shape(doc, items, item, &format!("{at}[{n}]"))?;
        }
    }
    let values = schema.get("additionalProperties").filter(|v| v.is_object());
    if let (Some(values), Some(object)) = (values, value.as_object()) {
        for (key, item) in object {
            check_shape(doc, values, item, &format!("{at}.{key}"))?;
        }
    }
    Ok(())
}

/// One request to the live server: its method, the documented path it falls under
/// (`/products/{id}`), the path and query sent, and an optional JSON body and bearer token.
struct Call<'a> {
    method: &'a str,
    template: &'a str,
    path: String,
    body: Option<String>,
    token: Option<&'a str>,
}

impl<'a> Call<'a> {
    fn get(template: &'a str, path: impl Into<String>) -> Self {
        Call { method: "get", template, path: path.into(), body: None, token: None }
    }

    fn post(template: &'a str, body: Option<String>) -> Self {
        Call { method: "post", template, path: template.to_string(), body, token: None }
    }

    fn token(self, token: &'a str) -> Self {
        Call { token: Some(token), ..self }
    }
}

/// Sends a call and checks the answer against the operation documented for it: the status is
/// one it documents, the content type is the documented one, a JSON body has the documented
/// shape, and an error's code is a documented code. Returns the status and the body (JSON, or
/// `Null`).
async fn probe(server: &Server, doc: &Value, call: Call<'_>) -> (StatusCode, Value) {
    let Call { method, template, path, body, token } = call;
    let operation = &doc["paths"][template][method];
    assert!(operation.is_object(), "{method} {template} is not documented");
    let verb = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let mut request = server.client.request(verb, format!("{}{path}", server.base));
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let text = response.text().await.unwrap();
    let documented = &operation["responses"][status.as_str()];
    assert!(documented.is_object(), "{method} {path} answered {status}, not documented for {template}: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if let Some(content) = documented["content"].as_object() {
        let (media, described) = content
            .iter()
            .find(|(media, _)| content_type.starts_with(media.as_str()))
            .unwrap_or_else(|| panic!("{method} {path}: content type {content_type} is not documented for {status}"));
        if media == "application/json" {
            if let Err(problem) = check_shape(doc, &described["schema"], &body, &format!("{method} {path} {status}")) {
                panic!("the answer does not have the documented shape: {problem}");
            }
        }
    }
    if let Some(code) = body["error"]["code"].as_str() {
        assert!(documented_codes(doc).contains(code), "{method} {path}: code {code} is not documented");
    }
    (status, body)
}

#[tokio::test]
async fn the_openapi_document_is_the_router() {
    let (server, state) = Server::start(Some("s3cret")).await;
    // Judged queries, so the workbench's judgment routes answer; no event log (tests/events.rs
    // covers a server with one).
    let (queries, qrels) = common::demo_judgments();
    state.judge_with(queries, qrels).unwrap();
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (doc["info"]["title"].as_str(), doc["info"]["version"].as_str()),
        (Some("shelf"), Some(env!("CARGO_PKG_VERSION")))
    );

    // (a) The documented routes are exactly the expected ones...
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |method| (method.clone(), path.clone())))
        .filter(|(method, _)| {
            ["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(&method.as_str())
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, expected);
    // ...each is served (its required parameters and body taken from the document's examples)
    // and answers as documented, and no other method is served on its path.
    for (method, template) in ROUTES {
        let operation = &doc["paths"][template][method];
        let mut path = template.to_string();
        let mut query = Vec::new();
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str().unwrap();
            let example = &parameter["example"];
            let example = example.as_str().map_or_else(|| example.to_string(), str::to_string);
            match parameter["in"].as_str() {
                Some("path") => path = path.replace(&format!("{{{name}}}"), &example),
                Some("query") if parameter["required"] == true => query.push((name.to_string(), example)),
                _ => {}
            }
        }
        if !query.is_empty() {
            path = format!("{path}?{}", serde_urlencoded::to_string(&query).unwrap());
        }
        let body = operation["requestBody"]["content"]["application/json"]["schema"]
            .as_object()
            .map(|schema| resolve(&doc, &Value::Object(schema.clone()))["example"].to_string());
        let call = Call { method, template, path: path.clone(), body, token: None };
        let (status, answer) = probe(&server, &doc, call).await;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.starts_with("no such route"), "{method} {path} is documented but not served");
        assert_ne!(answer["error"]["code"], "method_not_allowed", "{method} {path} is documented but not served");
        // Without a token reload is refused; this server keeps no event log.
        let answered = match template {
            "/admin/reload" => StatusCode::UNAUTHORIZED,
            "/events" | "/engagement" => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        };
        assert_eq!(status, answered, "{method} {path}: {answer}");
        for other in ["get", "post", "put", "delete", "patch"] {
            if doc["paths"][template][other].is_null() {
                let verb = reqwest::Method::from_bytes(other.to_ascii_uppercase().as_bytes()).unwrap();
                let response = server.client.request(verb, format!("{}{path}", server.base)).send().await.unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{other} {path} is served but not documented"
                );
            }
        }
    }
    // Every documented query parameter of GET /search is taken, and no other.
    for parameter in doc["paths"]["/search"]["get"]["parameters"].as_array().unwrap() {
        let name = parameter["name"].as_str().unwrap();
        let example = &parameter["example"];
        let example = example.as_str().map_or_else(|| example.to_string(), str::to_string);
        let query = serde_urlencoded::to_string([("q", "sofa"), (name, example.as_str())]).unwrap();
        let (_, answer) = probe(&server, &doc, Call::get("/search", format!("/search?{query}"))).await;
        assert_ne!(answer["error"]["code"], "unknown_parameter", "{name} is documented but not taken: {answer}");
    }
    let (_, answer) = probe(&server, &doc, Call::get("/search", "/search?q=sofa&colour=red")).await;
    assert_eq!(answer["error"]["code"], "unknown_parameter");
    // The documented limits are the server's.
    let k = doc["paths"]["/search"]["get"]["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "k").unwrap();
    assert_eq!(k["schema"]["maximum"].as_u64(), Some(shelf::search::MAX_K as u64));
    let body = resolve(&doc, &doc["paths"]["/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]);
    assert_eq!(body["properties"]["k"]["maximum"].as_u64(), Some(shelf::search::MAX_K as u64));
    assert_eq!(body["properties"]["k"]["default"].as_u64(), Some(shelf::search::DEFAULT_K as u64));

    // (b) The document's error codes are exactly the server's.
    let codes: BTreeSet<String> =
        ErrorCode::ALL.iter().map(|code| serde_json::to_value(code).unwrap().as_str().unwrap().to_string()).collect();
    assert_eq!(documented_codes(&doc), codes);

    // (c) Real errors come with a documented status, shape and code.
    let huge = format!("{{\"q\": \"{}\"}}", "a".repeat(100_000));
    let magic = json!({"q": "sofa", "ranker": "magic"}).to_string();
    let errors = [
        (Call::get("/search", "/search?q=sofa&k=0"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Call::get("/search", "/search?q=sofa&k=ten"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Call::get("/search", "/search?q=sofa&ranker=magic"), StatusCode::BAD_REQUEST, "unknown_ranker"),
        (Call::get("/search", "/search?q=sofa&filter=colour:red"), StatusCode::BAD_REQUEST, "invalid_filter"),
        (Call::post("/search", Some(magic)), StatusCode::BAD_REQUEST, "unknown_ranker"),
        (Call::post("/search", Some("{\"q\": ".into())), StatusCode::BAD_REQUEST, "invalid_json"),
        (Call::post("/search", Some(huge)), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        (Call::get("/products/{id}", "/products/NOPE"), StatusCode::NOT_FOUND, "not_found"),
        (Call::post("/admin/reload", None), StatusCode::UNAUTHORIZED, "unauthorized"),
        (Call::post("/admin/reload", None).token("wrong"), StatusCode::UNAUTHORIZED, "unauthorized"),
    ];
    for (call, status, code) in errors {
        let name = format!("{} {}", call.method, call.path);
        let (got, answer) = probe(&server, &doc, call).await;
        assert_eq!((got, answer["error"]["code"].as_str()), (status, Some(code)), "{name}: {answer}");
    }
    let (open, _) = Server::start(None).await;
    let (got, answer) = probe(&open, &doc, Call::post("/admin/reload", None)).await;
    assert_eq!((got, answer["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("reload_disabled")));
}

#[tokio::test]
async fn a_search_past_its_deadline_is_a_504_and_draining_turns_readiness_off() {
    let limits = Limits { concurrent: 2, queued: 4, timeout: std::time::Duration::ZERO };
    let (server, state) = Server::start_limited(limits).await;
    // Every answer here is a documented one, with the documented shape.
    let (_, doc) = server.get("/openapi.json").await;
    let (status, body) = probe(&server, &doc, Call::get("/search", "/search?q=sofa&ranker=hybrid")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::GATEWAY_TIMEOUT, Some("timeout")), "{body}");
    let (status, body) = probe(&server, &doc, Call::get("/readyz", "/readyz")).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")), "{body}");
    state.start_draining();
    let (status, body) = probe(&server, &doc, Call::get("/readyz", "/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["problems"][0], "shutting down");
    settle(&state).await;
    assert_eq!(state.in_flight(), 0, "the timed-out search gave its permits back when it finished");
}
