//! Engagement end to end: impressions and events over HTTP, their validation and
//! idempotency, durability under `kill -9`, logged propensities, and the simulated-shopper
//! loop at small scale (position curve, training from events, counterfactual estimates).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use common::server::Server;
use reqwest::StatusCode;
use serde_json::{json, Value};
use shelf::events::store::read_log;
use shelf::server::{AppState, Limits};

/// A server over the demo index that logs impressions and takes events into `log` (none:
/// no log, so `POST /events` is refused).
async fn start(log: Option<&Path>) -> (Server, Arc<AppState>) {
    let limits = Limits { timeout: std::time::Duration::from_secs(120), ..Limits::default() };
    let state = AppState::open_with_limits(common::demo_index(), &common::encoder_dir(), None, None, limits).unwrap();
    if let Some(log) = log {
        state.log_events_to(log).unwrap();
    }
    Server::serve(state).await
}

/// A search's answer, which must be 200.
async fn search(server: &Server, query: &str) -> Value {
    let (status, body) = server.get(&format!("/search?q={query}&k=10&facets=false")).await;
    assert_eq!(status, StatusCode::OK);
    body
}

async fn post_events(server: &Server, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
    server.post_raw("/events", body).await
}

fn first_id(response: &Value) -> (String, String, String) {
    let impression = response["impression_id"].as_str().expect("every response names its impression").to_string();
    let results = response["results"].as_array().unwrap();
    (impression, results[0]["id"].as_str().unwrap().to_string(), results[1]["id"].as_str().unwrap().to_string())
}

fn event(id: &str, impression: &str, product: &str, kind: &str) -> Value {
    json!({"event_id": id, "impression_id": impression, "product_id": product, "type": kind})
}

#[tokio::test]
async fn events_are_checked_stored_once_and_a_bad_one_spoils_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.sqlite");
    let (server, state) = start(Some(&log)).await;
    let (impression, first, second) = first_id(&search(&server, "grey+sofa").await);

    let click = event("e1", &impression, &first, "click");
    let (status, body) = post_events(&server, click.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 1);
    // The same event again is harmless.
    let (status, body) = post_events(&server, click.to_string()).await;
    assert_eq!((status, body["duplicates"].clone()), (StatusCode::OK, json!(1)), "{body}");

    // Each kind of bad single event gets its own status and code.
    let table = [
        (event("e1", &impression, &second, "click"), StatusCode::CONFLICT, "event_id_conflict"),
        (event("e2", "no-such-impression", &first, "click"), StatusCode::NOT_FOUND, "unknown_impression"),
        (event("e3", &impression, "no-such-product", "click"), StatusCode::UNPROCESSABLE_ENTITY, "product_not_shown"),
        (event("e4", &impression, &first, "like"), StatusCode::BAD_REQUEST, "invalid_event"),
        (
            json!({"event_id": "e5", "impression_id": impression, "product_id": 7, "type": "click"}),
            StatusCode::BAD_REQUEST,
            "invalid_event",
        ),
        (
            json!({"event_id": "", "impression_id": impression, "product_id": first, "type": "click"}),
            StatusCode::BAD_REQUEST,
            "invalid_event",
        ),
        (
            json!({"event_id": "e6", "impression_id": impression, "product_id": first, "type": "click", "ts": "yesterday"}),
            StatusCode::BAD_REQUEST,
            "invalid_event",
        ),
    ];
    for (body, expected, code) in table {
        let (status, answer) = post_events(&server, body.to_string()).await;
        assert_eq!(status, expected, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
    let (status, answer) = post_events(&server, "{not json").await;
    assert_eq!((status, answer["error"]["code"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_json")));
    let (status, _) = post_events(&server, "[]").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A batch: the good events are stored, the bad ones listed.
    let batch = json!([
        event("b1", &impression, &first, "add_to_cart"),
        event("b2", &impression, &first, "teleport"),
        event("b3", "nope", &first, "click"),
        {"event_id": "b4", "impression_id": impression, "product_id": second, "type": "purchase", "value": 19.99, "ts": 1_700_000_000_000i64},
    ]);
    let (status, answer) = post_events(&server, batch.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!((answer["accepted"].clone(), answer["rejected"].clone()), (json!(2), json!(2)), "{answer}");
    assert_eq!(answer["error"]["code"], "events_rejected");
    let statuses: Vec<&str> =
        answer["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["accepted", "rejected", "rejected", "accepted"]);
    assert_eq!(answer["results"][2]["error"]["code"], "unknown_impression");

    state.event_log().unwrap().flush().await.unwrap();
    let logged = read_log(&log).unwrap();
    let ours = logged.iter().find(|l| l.impression.impression_id == impression).expect("the impression is logged");
    let stored: BTreeSet<&str> = ours.events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(stored, BTreeSet::from(["e1", "b1", "b4"]));
    let purchase = ours.events.iter().find(|e| e.event_id == "b4").unwrap();
    assert_eq!((purchase.value, purchase.ts_ms), (Some(19.99), 1_700_000_000_000));

    // A server without a log says how to get one.
    let (plain, _) = start(None).await;
    let (status, answer) = post_events(&plain, click.to_string()).await;
    assert_eq!((status, answer["error"]["code"].clone()), (StatusCode::NOT_FOUND, json!("events_disabled")));
}

#[tokio::test]
async fn impressions_record_the_list_shown_and_each_propensity() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.sqlite");
    let (server, state) = start(Some(&log)).await;
    let plain = search(&server, "office+chair").await;
    let mut explored = Vec::new();
    for _ in 0..20 {
        let response = server
            .client
            .get(format!("{}/search?q=office+chair&k=10&facets=false&explore=true", server.base))
            .send()
            .await
            .unwrap();
        explored.push(response.json::<Value>().await.unwrap());
    }
    state.event_log().unwrap().flush().await.unwrap();
    let logged = read_log(&log).unwrap();
    assert_eq!(logged.len(), 21);
    let production: Vec<&str> =
        plain["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    let first =
        logged.iter().find(|l| Some(l.impression.impression_id.as_str()) == plain["impression_id"].as_str()).unwrap();
    assert!(first.impression.explore.is_none());
    for shown in &first.impression.shown {
        assert_eq!((shown.base_rank, shown.propensity), (shown.position, 1.0));
        assert_eq!(shown.product_id, production[shown.position - 1]);
    }
    let mut moved = 0;
    for response in &explored {
        let id = response["impression_id"].as_str().unwrap();
        let impression = &logged.iter().find(|l| l.impression.impression_id == id).unwrap().impression;
        let served: Vec<&str> =
            response["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        let ranks: Vec<u64> =
            response["results"].as_array().unwrap().iter().map(|r| r["rank"].as_u64().unwrap()).collect();
        assert_eq!(ranks, (1..=10).collect::<Vec<u64>>(), "ranks follow the served order");
        assert_eq!(impression.explore.as_ref().unwrap()["policy"]["swap"], 0.5);
        for shown in &impression.shown {
            assert_eq!(shown.product_id, served[shown.position - 1], "the log holds the list as served");
            assert!(shown.propensity > 0.0 && shown.propensity <= 1.0);
            // An insert moves a product at most max_shift (10) places up; a swap then one more.
            assert!(shown.base_rank.abs_diff(shown.position) <= 11);
            if shown.base_rank <= production.len() {
                assert_eq!(shown.product_id, production[shown.base_rank - 1], "base_rank is the production rank");
            }
            moved += usize::from(shown.base_rank != shown.position);
        }
    }
    assert!(moved > 20, "exploration moved products ({moved} moves in 20 searches)");
}

#[tokio::test]
async fn interleaving_merges_two_rankers_and_logs_who_placed_what() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.sqlite");
    let (server, state) = start(Some(&log)).await;
    let get = |query: String| {
        let (client, base) = (server.client.clone(), server.base.clone());
        async move {
            let response = client.get(format!("{base}/search?{query}")).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = get("q=office+chair&k=10&interleave=hybrid,bm25".into()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: BTreeSet<&str> = body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10, "ten different products");
    for bad in [
        "interleave=hybrid",
        "interleave=hybrid,hybrid",
        "interleave=hybrid,magic",
        "interleave=hybrid,bm25&explore=true",
    ] {
        let (status, answer) = get(format!("q=chair&{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
    }
    state.event_log().unwrap().flush().await.unwrap();
    let logged = read_log(&log).unwrap();
    assert_eq!(logged.len(), 1);
    let impression = &logged[0].impression;
    assert_eq!(impression.ranker, "interleave:hybrid,bm25");
    let teams = impression.explore.as_ref().unwrap()["interleave"]["teams"].as_array().unwrap().clone();
    assert_eq!(teams.len(), 10);
    assert_eq!(teams.iter().filter(|t| *t == "A").count(), 5, "each ranker placed half");
}

/// Every event the server acknowledged is in the log after the process is killed with
/// SIGKILL in the middle of a stream of posts.
#[tokio::test]
async fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.sqlite");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shelf"))
        .args(["serve", "--index"])
        .arg(common::demo_index())
        .arg("--encoder")
        .arg(common::encoder_dir())
        .args(["--addr", &format!("127.0.0.1:{port}"), "--events"])
        .arg(&log)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { base: format!("http://127.0.0.1:{port}"), client: reqwest::Client::new() };
    let started = std::time::Instant::now();
    while server.client.get(format!("{}/healthz", server.base)).send().await.is_err() {
        assert!(started.elapsed().as_secs() < 120, "the server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (impression, first, second) = first_id(&search(&server, "bar+stool").await);
    // Four posters, each a stream of small batches, until the process dies under them.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut posters = Vec::new();
    for poster in 0..4 {
        let (client, base, acknowledged) = (server.client.clone(), server.base.clone(), acknowledged.clone());
        let (impression, first, second) = (impression.clone(), first.clone(), second.clone());
        posters.push(tokio::spawn(async move {
            for batch in 0.. {
                let ids: Vec<String> = (0..5).map(|i| format!("p{poster}-b{batch}-{i}")).collect();
                let body: Vec<Value> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| event(id, &impression, if i % 2 == 0 { &first } else { &second }, "click"))
                    .collect();
                match client.post(format!("{base}/events")).json(&body).send().await {
                    Ok(response) if response.status() == StatusCode::OK => acknowledged.lock().unwrap().extend(ids),
                    _ => return,
                }
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < 2000 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for poster in posters {
        poster.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let logged = read_log(&log).unwrap();
    let stored: BTreeSet<String> = logged.iter().flat_map(|l| l.events.iter().map(|e| e.event_id.clone())).collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events lost, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(3)]
    );
    eprintln!("kill -9: {} acknowledged, {} stored, none lost", acknowledged.len(), stored.len());
}

/// The loop at small scale: simulated shoppers on an exploring server, the position curve
/// from their clicks, a ranker trained from the log, and counterfactual estimates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_shoppers_close_the_loop() {
    use shelf::events::{bias::PositionCurve, counterfactual, labels, simulate};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.sqlite");
    let (server, state) = start(Some(&log)).await;
    let (queries, qrels) = common::demo_judgments();
    let queries = shelf::eval::split::Part::Tune.select(&queries);
    let options = simulate::SimOptions {
        server: server.base.clone(),
        sessions: 1500,
        k: 10,
        ranker: Some("hybrid".into()),
        explore: Some(true),
        interleave: None,
        utility: None,
        concurrency: 4,
        seed: 3,
        shopper: simulate::Shopper::default(),
        show_progress: false,
    };
    let report = simulate::run(&queries, &qrels, &options).await.unwrap();
    assert_eq!((report.sessions, report.events_rejected), (1500, 0));
    assert!(report.clicks > 1000 && report.purchases > 0, "{report:?}");
    assert!(report.clicks_by_position[0] > 2 * report.clicks_by_position[3], "{:?}", report.clicks_by_position);
    state.event_log().unwrap().flush().await.unwrap();

    let logged = read_log(&log).unwrap();
    assert_eq!(logged.len(), 1500);
    let events: usize = logged.iter().map(|l| l.events.len()).sum();
    assert_eq!(events as u64, report.clicks + report.add_to_carts + report.purchases);

    // The curve the shoppers followed (1/position) comes back from the swaps, roughly at
    // this scale (the README's table uses 50,000 sessions).
    let curve = PositionCurve::estimate(&logged, 4, 50, 1);
    assert_eq!(curve.impressions, 1500);
    let theta = curve.examination();
    eprintln!("examination at 1..4: {theta:?}");
    assert!((0.35..0.7).contains(&theta[1]), "{theta:?}");
    assert!(theta[3] < theta[1], "{theta:?}");
    let band = &curve.positions[1];
    assert!(band.low <= band.examination && band.examination <= band.high);

    // Labels: products shoppers liked get higher grades than ones they ignored.
    let made = labels::from_log(&logged, Some(&curve), &labels::LabelParams::default()).unwrap();
    assert!(made.summary.positive > 100, "{:?}", made.summary);
    let (mut liked, mut ignored) = (Vec::new(), Vec::new());
    let judged: std::collections::BTreeMap<String, &String> =
        queries.iter().map(|(qid, text)| (labels::query_key(text), qid)).collect();
    for (qid, text) in &made.queries {
        let Some(judged_qid) = judged.get(&labels::query_key(text)) else { continue };
        for (product, grade) in &made.qrels[qid] {
            match qrels[judged_qid.as_str()].get(product).copied().unwrap_or(0) {
                6 => liked.push(f64::from(*grade)),
                0..=2 => ignored.push(f64::from(*grade)),
                _ => {}
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    assert!(mean(&liked) > mean(&ignored) + 1.0, "liked {} vs ignored {}", mean(&liked), mean(&ignored));

    // A ranker trains from the log through the same pipeline as from judgments, as `shelf
    // train --events` does by default (pointwise on each shown product's worth per
    // examination; candidates nobody was shown left out), and serves. (Whether it beats
    // hybrid takes far more sessions: README, "Learning from engagement".)
    let engine = shelf::engine::Engine::open_with_encoder(common::demo_index(), &common::encoder_dir()).unwrap();
    let shown_only = shelf::train::LogOptions { unjudged: shelf::train::Unjudged::Drop, ..Default::default() };
    let mut rows = shelf::train::log_features(&engine, &made.queries, &made.qrels, &shown_only).unwrap();
    shelf::train::with_engagement(&mut rows, &made.engagement);
    let pointwise = shelf::train::TrainOptions {
        lgbm: shelf::train::LgbmParams { objective: Some(shelf::train::Objective::Pointwise), ..Default::default() },
        ..Default::default()
    };
    let out = dir.path().join("model");
    let trained = shelf::train::train(&rows, engine.vectors(), &pointwise, &out).unwrap();
    assert_eq!(trained.report.queries, made.queries.len());
    // It scores the products shoppers liked above the ones they ignored.
    let booster = trained.booster.expect("a LightGBM model");
    let (mut liked, mut ignored) = (Vec::new(), Vec::new());
    for query in &rows {
        let Some(judged_qid) = judged.get(&labels::query_key(&query.query)) else { continue };
        let features: Vec<f32> = query.rows.iter().flat_map(|row| row.features).collect();
        let scores = booster.predict_with_params(&features, shelf::features::COUNT as i32, true, "").unwrap();
        for (row, score) in query.rows.iter().zip(scores) {
            match qrels[judged_qid.as_str()].get(&row.id).copied().unwrap_or(0) {
                6 => liked.push(score),
                0..=2 => ignored.push(score),
                _ => {}
            }
        }
    }
    assert!(liked.len() > 20 && ignored.len() > 20, "{} liked, {} ignored", liked.len(), ignored.len());
    assert!(mean(&liked) > mean(&ignored), "liked {} vs ignored {}", mean(&liked), mean(&ignored));
    let served = shelf::engine::Engine::open_with(common::demo_index(), &common::encoder_dir(), Some(&out)).unwrap();
    let request = shelf::search::SearchRequest {
        ranker: shelf::search::RankerKind::Ltr,
        ..shelf::search::SearchRequest::new("bar stool")
    };
    assert_eq!(served.search(&request).unwrap().results.len(), 10);

    // The neural ranker's engagement heads learn from the same log what shoppers did with
    // each shown product, and join the utility.
    let options = shelf::train::TrainOptions {
        ranker: shelf::train::TrainerKind::Neural,
        neural: shelf::train::NeuralParams { max_epochs: 10, ..Default::default() },
        ..Default::default()
    };
    let neural_out = dir.path().join("neural");
    let trained = shelf::train::train(&rows, engine.vectors(), &options, &neural_out).unwrap();
    for name in ["click", "add_to_cart", "purchase"] {
        let head = trained.report.heads.iter().find(|h| h.name == name).unwrap();
        assert!(head.on && head.rows > 100, "{head:?}");
    }
    let served =
        shelf::engine::Engine::open_with(common::demo_index(), &common::encoder_dir(), Some(&neural_out)).unwrap();
    // Products shoppers like get a higher click probability than ones they ignore.
    let (mut liked, mut ignored) = (Vec::new(), Vec::new());
    for (qid, text) in &queries {
        let request = shelf::search::SearchRequest {
            ranker: shelf::search::RankerKind::Neural,
            explain: true,
            ..shelf::search::SearchRequest::new(text.as_str()).with_k(10)
        };
        for hit in served.search(&request).unwrap().results {
            let click = hit.explain.as_ref().and_then(|e| e["heads"]["click"].as_f64()).unwrap();
            match qrels[qid.as_str()].get(&hit.id).copied().unwrap_or(0) {
                6 => liked.push(click),
                0..=2 => ignored.push(click),
                _ => {}
            }
        }
    }
    eprintln!(
        "click head: liked {:.3} (n {}), ignored {:.3} (n {})",
        mean(&liked),
        liked.len(),
        mean(&ignored),
        ignored.len()
    );
    // The exploring server draws its perturbations at random, so the log and the head differ
    // from run to run. Over every tuning query the ratio measured 1.38 to 1.89 in seven runs
    // (over 60 queries it once fell to 1.21: too few liked products to average).
    assert!(mean(&liked) > 1.2 * mean(&ignored), "liked {} vs ignored {}", mean(&liked), mean(&ignored));
    let request = shelf::search::SearchRequest {
        ranker: shelf::search::RankerKind::Neural,
        explain: true,
        utility: Some("relevance:1,purchase:0.5".parse().unwrap()),
        ..shelf::search::SearchRequest::new("bar stool").with_k(5)
    };
    let results = served.search(&request).unwrap().results;
    let terms = &results[0].explain.as_ref().unwrap()["utility"]["terms"];
    assert!(terms.as_array().unwrap().iter().any(|t| t["term"] == "purchase"), "{terms}");

    // Counterfactual: the logging ranker's own order is (nearly: with ~5 searches a query, a
    // swap can hide a slot) fully supported, and the estimates agree with the log's clicks.
    let estimate = counterfactual::estimate(
        &logged,
        10,
        |query, _| {
            let request = shelf::search::SearchRequest {
                ranker: shelf::search::RankerKind::Hybrid,
                ..shelf::search::SearchRequest::new(query).with_k(10)
            };
            engine.search(&request).unwrap().results.into_iter().map(|h| h.id).collect()
        },
        Some(&curve),
        50,
        1,
    );
    assert!(estimate.support > 0.9, "{}", estimate.support);
    for value in [estimate.ips, estimate.snips, estimate.pbm.unwrap()] {
        assert!((value / estimate.logged_ctr - 1.0).abs() < 0.1, "{value} vs logged {}", estimate.logged_ctr);
    }
}

/// The `shelf events` commands and the errors of training from a log that cannot be
/// debiased, from the command line.
#[test]
fn the_events_commands_read_export_and_compact_a_log_and_say_what_is_missing() {
    use shelf::events::{EventIn, EventLog, EventType, Impression, Shown};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let log = EventLog::open(&path).unwrap();
    for i in 0..3 {
        log.log_impression(Impression {
            impression_id: format!("i{i}"),
            ts_ms: 1_000 * i,
            query: "bar stool".into(),
            filters: json!({}),
            ranker: "hybrid".into(),
            model: None,
            k: 2,
            explore: None,
            shown: (1..=2)
                .map(|p| Shown { product_id: format!("p{p}"), position: p, score: 1.0, base_rank: p, propensity: 1.0 })
                .collect(),
        });
    }
    let click = EventIn {
        event_id: "e".into(),
        impression_id: "i0".into(),
        product_id: "p2".into(),
        kind: EventType::Click,
        value: None,
        ts: None,
    };
    assert_eq!(log.record_blocking(vec![click]).unwrap(), [shelf::events::store::Outcome::Accepted]);
    drop(log);

    let shelf = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_shelf")).args(args).output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };
    let log_arg = path.to_str().unwrap();
    let (ok, out, _) = shelf(&["events", "stats", "--log", log_arg, "--json"]);
    assert!(ok);
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["counts"], json!({"impressions": 3, "shown": 6, "events": 1}));
    assert_eq!(stats["summary"]["by_position"][1], json!({"position": 2, "shown": 3, "clicked": 1, "rate": 1.0 / 3.0}));
    assert_eq!(stats["summary"]["no_clicks"][0]["searches"], 2);

    let export = dir.path().join("log.jsonl");
    let (ok, _, _) = shelf(&["events", "export", "--log", log_arg, "--out", export.to_str().unwrap()]);
    assert!(ok);
    let lines: Vec<Value> =
        std::fs::read_to_string(&export).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["events"][0]["type"], "click");

    // No swaps were explored: no position curve, and ips labels say what to do instead.
    let (ok, _, err) = shelf(&["events", "bias", "--log", log_arg]);
    assert!(!ok && err.contains("explored with swaps"), "{err}");
    let index = common::demo_index().to_str().unwrap().to_string();
    let encoder = common::encoder_dir().to_str().unwrap().to_string();
    let out_dir = dir.path().join("model");
    let train = |log: &str| {
        shelf(&["train", "--index", &index, "--encoder", &encoder, "--events", log, "--out", out_dir.to_str().unwrap()])
    };
    let (ok, _, err) = train(log_arg);
    assert!(!ok && err.contains("--debias naive"), "{err}");
    let (ok, _, err) = train(dir.path().join("missing.sqlite").to_str().unwrap());
    assert!(!ok && err.contains("no such file"), "{err}");
    assert!(!out_dir.exists(), "nothing written when training fails");

    // Compaction removes what is older than the cut (all of it: the timestamps are from 1970).
    let (ok, out, _) = shelf(&["events", "compact", "--log", log_arg, "--older-than", "1day"]);
    assert!(ok, "{out}");
    let counts = shelf::events::store::counts(&path).unwrap();
    assert_eq!((counts.impressions, counts.shown, counts.events), (0, 0, 0));
}

/// Exploration asked for where the index's policy cannot explore is refused, not served
/// unexplored.
#[tokio::test]
async fn explore_without_a_policy_that_explores_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    common::copy_dir(common::demo_index(), &index);
    let config = index.join(shelf::index::CONFIG_FILE);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text[..text.find("[explore]").unwrap_or(text.len())].to_string();
    text.push_str("\n[explore]\nswap = 0.0\ninsert = 0.0\n");
    std::fs::write(&config, text).unwrap();
    let state = AppState::open(&index, &common::encoder_dir(), None, None).unwrap();
    let base = common::serve(state).await;
    let get = |query: &str| reqwest::get(format!("{base}/search?q=chair&{query}"));
    let refused = get("explore=true").await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("[explore]"), "{body}");
    assert_eq!(get("explore=false").await.unwrap().status(), StatusCode::OK);
}
