//! The server under abuse: oversized queries, clients that hang up, ten times the load it
//! takes on. Alone in its test binary, because it checks the process's resident memory, which
//! other tests running beside it in one process would grow.

mod common;

use common::server::{ids, settle, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shelf::server::Limits;

/// Resident memory of this process in KiB (the server runs inside the test).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_abuse_the_server_sheds_load_and_recovers_with_no_permit_lost() {
    let limits = Limits { concurrent: 2, queued: 4, timeout: std::time::Duration::from_secs(120) };
    let (server, state) = Server::start_limited(limits).await;
    let (status, before) = server.get("/search?q=grey+velvet+sofa&ranker=hybrid&k=5").await;
    assert_eq!(status, StatusCode::OK, "{before}");
    let baseline = rss_kib();

    // Oversized and malformed queries are refused up front, whatever their size.
    let long_query = "sofa ".repeat(12_000);
    let many_words = "a ".repeat(65);
    let cases = [
        (format!("/search?q={}", long_query.trim().replace(' ', "+")), "60 KB query"),
        (format!("/search?q={}", many_words.trim().replace(' ', "+")), "65 words"),
    ];
    for (path, name) in &cases {
        let (status, body) = server.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("limit"), "{name}: {body}");
    }
    let (status, body) = server.post(json!({"q": "sofa ".repeat(2_000)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Clients that hang up mid-search: their searches finish and give their slots back.
    let impatient = reqwest::Client::builder().timeout(std::time::Duration::from_millis(2)).build().unwrap();
    for at in 0..20 {
        let url = format!("{}/search?q=velvet+sofa+{at}&ranker=hybrid", server.base);
        let _ = impatient.get(url).send().await;
    }

    // Ten times what the server takes on (2 running + 4 waiting), for three seconds.
    let stop = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut clients = Vec::new();
    for client in 0..60 {
        let (base, http) = (server.base.clone(), server.client.clone());
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut at = 0;
            while std::time::Instant::now() < stop {
                at += 1;
                let url = format!("{base}/search?q=lamp+{client}+{at}&ranker=hybrid");
                let response = http.get(url).send().await.unwrap();
                let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                seen.push((status, retry, body["error"]["code"].as_str().map(String::from)));
            }
            seen
        }));
    }
    let mut seen = Vec::new();
    for client in clients {
        seen.extend(client.await.unwrap());
    }
    let ok = seen.iter().filter(|(status, _, _)| *status == StatusCode::OK).count();
    let shed: Vec<_> = seen.iter().filter(|(status, _, _)| *status == StatusCode::SERVICE_UNAVAILABLE).collect();
    assert!(ok > 0 && !shed.is_empty(), "{ok} answered, {} shed of {}", shed.len(), seen.len());
    assert_eq!(ok + shed.len(), seen.len(), "only 200 or 503 under overload");
    for (_, retry, code) in &shed {
        assert_eq!((retry.as_deref(), code.as_deref()), (Some("1"), Some("overloaded")));
    }

    // Afterwards: every permit is back, the same query gets the same answer, memory settles.
    settle(&state).await;
    assert_eq!(state.in_flight(), 0, "a permit leaked");
    let (status, after) = server.get("/search?q=grey+velvet+sofa&ranker=hybrid&k=5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&after), ids(&before));
    let (status, ready) = server.get("/readyz").await;
    assert_eq!((status, ready["in_flight"].as_u64()), (StatusCode::OK, Some(0)));
    let grown = rss_kib().saturating_sub(baseline);
    assert!(grown < 150 * 1024, "RSS grew by {grown} KiB under load and stayed");
}
