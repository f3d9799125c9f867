//! A shelf server over the demo index on a loopback port, and a client for it.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use shelf::server::{AppState, Limits};

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
}

impl Server {
    pub async fn start(token: Option<&str>) -> (Server, Arc<AppState>) {
        Server::start_with(token, None).await
    }

    pub async fn start_with(token: Option<&str>, model: Option<&std::path::Path>) -> (Server, Arc<AppState>) {
        // Deadlines have their own test; here a debug build on a busy machine must not hit one.
        let limits = Limits { timeout: std::time::Duration::from_secs(120), ..Limits::default() };
        Server::open(token, model, limits).await
    }

    pub async fn start_limited(limits: Limits) -> (Server, Arc<AppState>) {
        Server::open(None, None, limits).await
    }

    pub async fn open(token: Option<&str>, model: Option<&std::path::Path>, limits: Limits) -> (Server, Arc<AppState>) {
        let (index, encoder) = (super::demo_index(), super::encoder_dir());
        let state = AppState::open_with_limits(index, &encoder, model, token.map(String::from), limits).unwrap();
        Server::serve(state).await
    }

    pub async fn serve(state: Arc<AppState>) -> (Server, Arc<AppState>) {
        let base = super::serve(state.clone()).await;
        (Server { base, client: reqwest::Client::new() }, state)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, body: Value) -> (StatusCode, Value) {
        self.post_raw("/search", body.to_string()).await
    }
}

pub fn ids(body: &Value) -> Vec<String> {
    body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

/// Waits (up to 30 s) for the searches still running or queued to finish.
pub async fn settle(state: &AppState) {
    let waited = std::time::Instant::now();
    while state.in_flight() > 0 && waited.elapsed() < std::time::Duration::from_secs(30) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
