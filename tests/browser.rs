//! The workbench page in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver), against a live `shelf serve` on the demo shop with its judgments and an
//! event log. Each step saves a screenshot under `target/tmp/browser/` (the test prints the
//! path); the browser's console must stay free of errors throughout.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`./run.sh test` installs them). Without
//! them the test is skipped with a printed reason, unless `SHELF_REQUIRE_BROWSER=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The first of `names` on PATH.
fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()))
}

/// Chromium and chromedriver, or `None` (with a printed reason) when either is missing.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let found = (which(&["chromium", "chromium-browser", "google-chrome"]), which(&["chromedriver"]));
    if let (Some(chromium), Some(driver)) = found {
        return Some((chromium, driver));
    }
    let reason = "chromium and chromedriver are not both on PATH (Debian: apt install chromium chromium-driver)";
    if std::env::var("SHELF_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("{reason}, and SHELF_REQUIRE_BROWSER=1");
    }
    eprintln!("SKIPPED: {reason}; set SHELF_REQUIRE_BROWSER=1 to make this a failure");
    None
}

async fn wait_for_http(url: &str, what: &str) {
    let started = Instant::now();
    let client = reqwest::Client::new();
    while !client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(started.elapsed() < Duration::from_secs(180), "{what} did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A browser session on a served workbench.
struct Page {
    client: Client,
    base: String,
    driver: String,
    shots: PathBuf,
}

impl Page {
    async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Polls a JavaScript expression until it is truthy; on timeout saves a screenshot and
    /// fails with `what`.
    async fn until(&self, what: &str, expression: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.js(&format!("return ({expression}) || null;")).await;
            if !value.is_null() && value != json!(false) {
                return value;
            }
            if started.elapsed() > Duration::from_secs(120) {
                self.shot("timeout").await;
                panic!("timed out waiting until {what} ({expression})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}")).click().await.unwrap();
    }

    async fn shot(&self, name: &str) -> PathBuf {
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await.unwrap()).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Every message the page wrote to the console at warning level or above since the
    /// last call (chromedriver's log endpoint).
    async fn console_problems(&self) -> Vec<Value> {
        let session = self.client.session_id().await.unwrap().unwrap();
        let url = format!("{}/session/{session}/se/log", self.driver);
        let answer: Value = reqwest::Client::new()
            .post(url)
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no browser log: {answer}"))
            .iter()
            .filter(|entry| entry["level"] == "SEVERE" || entry["level"] == "WARNING")
            .cloned()
            .collect()
    }
}

/// The search engine's own answer, to compare the page against.
async fn api(base: &str, path: &str) -> Value {
    reqwest::get(format!("{base}{path}")).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workbench_searches_filters_explains_pages_compares_and_shows_engagement() {
    let Some((chromium, chromedriver)) = browser() else { return };
    let root = common::repo_root();
    let dir = tempfile::tempdir().unwrap();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();

    // The demo shop as `shelf demo` serves it: index, learned rankers, judgments, event log.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Killed(
        Command::new(env!("CARGO_BIN_EXE_shelf"))
            .args(["serve", "--index"])
            .arg(common::demo_index())
            .arg("--model")
            .arg(common::demo_model())
            .arg("--encoder")
            .arg(common::encoder_dir())
            .arg("--queries")
            .arg(root.join(shelf::demo::QUERIES_PATH))
            .arg("--qrels")
            .arg(root.join(shelf::demo::QRELS_PATH))
            .arg("--events")
            .arg(dir.path().join("events.sqlite"))
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let driver_port = free_port();
    let driver = format!("http://127.0.0.1:{driver_port}");
    let _chromedriver =
        Killed(Command::new(&chromedriver).arg(format!("--port={driver_port}")).stdout(Stdio::null()).spawn().unwrap());
    wait_for_http(&format!("{base}/readyz"), "shelf serve").await;
    wait_for_http(&format!("{driver}/status"), "chromedriver").await;

    // Shoppers first, so the engagement view has something to show: simulated sessions with
    // exploration (the position curve needs swapped pairs), and two searches that find nothing.
    let simulated = Command::new(env!("CARGO_BIN_EXE_shelf"))
        .args(["simulate", "--server", &base, "--sessions", "400", "--ranker", "hybrid", "--explore", "true"])
        .arg("--queries")
        .arg(root.join(shelf::demo::QUERIES_PATH))
        .arg("--qrels")
        .arg(root.join(shelf::demo::QRELS_PATH))
        .output()
        .unwrap();
    assert!(simulated.status.success(), "{}", String::from_utf8_lossy(&simulated.stderr));
    for _ in 0..2 {
        let nothing = api(&base, "/search?q=xylophone+quasar&ranker=bm25").await;
        assert_eq!(nothing["results"], json!([]), "{nothing}");
    }

    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"],
        }),
    );
    capabilities.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver)
        .await
        .expect("a Chromium session starts");
    let page = Page { client, base: base.clone(), driver, shots: shots.clone() };
    let outcome = steps(&page).await;
    let problems = page.console_problems().await;
    page.client.clone().close().await.unwrap();
    outcome.unwrap_or_else(|message| panic!("{message}"));
    assert!(problems.is_empty(), "the console reported problems: {problems:#?}");
    for name in ["results", "explain", "compare", "engagement", "phone"] {
        assert!(Path::new(&shots.join(format!("{name}.png"))).is_file());
    }
}

/// The walk through the workbench; an `Err` carries what went wrong.
async fn steps(page: &Page) -> Result<(), String> {
    let base = &page.base;
    // ---- Type a query: results come as you type, and the URL keeps the state. --------------
    page.goto("/").await;
    page.until("the rankers are listed", "document.querySelectorAll('#ranker option').length >= 4").await;
    let default_ranker = page.js("return document.getElementById('ranker').value;").await;
    assert_eq!(default_ranker, "ensemble", "the best learned ranker is the default");
    page.client.find(Locator::Id("q")).await.unwrap().send_keys("sofa").await.unwrap();
    page.until("results appear", "document.querySelectorAll('#results li.card').length === 10").await;
    page.until("the URL holds the query", "location.search.includes('q=sofa')").await;
    let shown: Vec<String> = serde_json::from_value(
        page.js("return [...document.querySelectorAll('#results li.card')].map(li => li.dataset.id);").await,
    )
    .unwrap();
    let served = api(base, "/search?q=sofa&k=10").await;
    let expected: Vec<&str> = served["results"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(shown, expected, "the page shows what the API serves, in order");
    let timings = page.js("return document.querySelector('[data-testid=timings]').textContent;").await;
    for stage in ["lexical", "dense", "features", "rank"] {
        assert!(timings.as_str().unwrap().contains(stage), "timing of {stage} shown: {timings}");
    }
    let total_before = served["total_candidates"].as_u64().unwrap();
    page.shot("results").await;

    // ---- A facet narrows the results; clearing it brings them back. --------------------------
    let brand =
        page.js("return document.querySelector('#facets button[data-filter^=\"brand:\"]').dataset.filter;").await;
    let brand = brand.as_str().unwrap().to_string();
    page.click(&format!("#facets button[data-filter=\"{brand}\"]")).await;
    page.until("the filter chip shows", "document.querySelectorAll('#chips .chip').length === 1").await;
    let name = brand.trim_start_matches("brand:");
    page.until(
        "every result is of that brand",
        &format!(
            "[...document.querySelectorAll('#results li.card .meta')].length > 0 && \
             [...document.querySelectorAll('#results li.card .meta')].every(m => m.textContent.startsWith({}))",
            json!(name)
        ),
    )
    .await;
    let narrowed = api(base, &format!("/search?q=sofa&filter={}", common::urlencode(&brand))).await;
    assert!(narrowed["total_candidates"].as_u64().unwrap() < total_before);
    page.until("the URL holds the filter", "location.search.includes('filter=brand')").await;
    page.click("#chips .chip button").await;
    page.until("the filter is cleared", "document.querySelectorAll('#chips .chip').length === 0").await;
    page.until(
        "the full result count is back",
        &format!("document.getElementById('status').textContent.includes('of {total_before} matching')"),
    )
    .await;

    // ---- Why is this here: the contributions add up to the score. ----------------------------
    page.click("#results li.card details.why summary").await;
    let sum =
        page.until("the explanation opens", "document.querySelector('[data-testid=explain-sum]')?.dataset.sum").await;
    let (sum, score): (f64, f64) = (
        sum.as_str().unwrap().parse().unwrap(),
        page.js("return document.querySelector('[data-testid=explain-sum]').dataset.score;")
            .await
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    if (sum - score).abs() > 1e-3 * score.abs().max(1.0) {
        return Err(format!("bias + contributions = {sum}, but the score is {score}"));
    }
    let features = page.js("return document.querySelectorAll('.why-body tr[data-feature]').length;").await;
    assert_eq!(
        features.as_u64().unwrap() as usize,
        shelf::features::NAMES.len() + 1,
        "every feature, and the embedding"
    );
    let sources = page.js("return document.querySelector('.why-body table.sources').textContent;").await;
    assert!(sources.as_str().unwrap().contains("fused"), "{sources}");
    page.shot("explain").await;

    // ---- Pages: the second page is the API's offset 10. ---------------------------------------
    page.click("#pager button[aria-label='Next page']").await;
    page.until("page 2 shows", "document.querySelector('#results li.card')?.dataset.rank === '11'").await;
    page.until("the URL holds the page", "location.search.includes('page=2')").await;
    let second: Vec<String> = serde_json::from_value(
        page.js("return [...document.querySelectorAll('#results li.card')].map(li => li.dataset.id);").await,
    )
    .unwrap();
    let served = api(base, "/search?q=sofa&k=10&offset=10").await;
    let expected: Vec<&str> = served["results"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(second, expected);
    // Back restores page 1 from the URL.
    page.client.back().await.unwrap();
    page.until("back to page 1", "document.querySelector('#results li.card')?.dataset.rank === '1'").await;

    // ---- Compare two rankers on judged queries. -------------------------------------------------
    page.goto("/?view=compare&q=sofas&a=ltr&b=hybrid").await;
    page.until("both columns fill", "document.querySelectorAll('#col-a li[data-id]').length === 10 && document.querySelectorAll('#col-b li[data-id]').length === 10").await;
    page.until("grades show", "document.querySelectorAll('#col-a .grade[data-grade]').length === 10").await;
    page.until("the judged differences are listed", "document.querySelectorAll('#diffs tbody tr').length > 0").await;
    // Open the query where they differ most: the columns' nDCG@10 are the list's numbers.
    page.click("#diffs tbody tr button").await;
    let first_query = page.js("return document.querySelector('#diffs tbody tr button').dataset.query;").await;
    page.until("the first differing query loads", &format!("document.getElementById('q').value === {first_query}"))
        .await;
    page.until(
        "its row is selected",
        "document.querySelector('#diffs tbody tr')?.getAttribute('aria-selected') === 'true'",
    )
    .await;
    let expected_a =
        page.js("return document.querySelector('#diffs tbody tr [data-testid=diff-a]').textContent;").await;
    let expected_b =
        page.js("return document.querySelector('#diffs tbody tr [data-testid=diff-b]').textContent;").await;
    page.until(
        "the columns' nDCG@10 match the list",
        &format!(
            "document.querySelector('#col-a [data-testid=ndcg]')?.textContent === {expected_a} && \
             document.querySelector('#col-b [data-testid=ndcg]')?.textContent === {expected_b}"
        ),
    )
    .await;
    let moved = page.js("return document.querySelectorAll('#col-b li.moved, #col-b li.new').length;").await;
    assert!(moved.as_u64().unwrap() > 0, "the two rankers differ on this query, so something moved");
    page.shot("compare").await;
    page.click("#diff-next").await;
    page.until(
        "Next steps to the second query",
        "document.querySelectorAll('#diffs tbody tr')[1]?.getAttribute('aria-selected') === 'true'",
    )
    .await;

    // A query nobody judged: the two orders without grades, and no error.
    page.goto("/?view=compare&q=walnut+bookcase&a=ltr&b=hybrid").await;
    page.until("both columns fill", "document.querySelectorAll('#col-b li[data-id]').length === 10").await;
    page.until(
        "it says the query is not judged",
        "document.getElementById('compare-status').textContent.includes('no judgments')",
    )
    .await;
    let graded = page.js("return document.querySelectorAll('#col-a .grade, #col-b .grade').length;").await;
    assert_eq!(graded, json!(0), "no grades for a query without judgments");

    // ---- Engagement: click-through by position, the curve, the queries to act on. -------------
    page.goto("/?view=engagement").await;
    page.until("the click-through chart draws", "document.querySelectorAll('#ctr-chart svg rect').length === 10").await;
    page.until("the position curve draws", "document.querySelector('#curve-chart svg polyline')").await;
    let zero = page.js("return document.getElementById('zero-results').textContent;").await;
    assert!(zero.as_str().unwrap().contains("xylophone quasar"), "{zero}");
    page.shot("engagement").await;

    // ---- Usable by anyone: every control labelled, keyboard reaches the search box, phone width. --
    let unlabelled = page
        .js("return [...document.querySelectorAll('input, select, button')].filter(e => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim())).map(e => e.outerHTML);")
        .await;
    assert_eq!(unlabelled, json!([]), "controls without a label");
    page.goto("/?q=office+chair").await;
    page.until("results appear", "document.querySelectorAll('#results li.card').length > 0").await;
    page.js("document.activeElement.blur(); document.body.dispatchEvent(new KeyboardEvent('keydown', {key: '/', bubbles: true}));").await;
    page.until("'/' focuses the search box", "document.activeElement?.id === 'q'").await;
    page.client.set_window_size(390, 844).await.unwrap();
    page.goto("/?q=office+chair&filter=rating:4").await;
    page.until("results appear on a phone", "document.querySelectorAll('#results li.card').length > 0").await;
    let overflow = page.js("return document.documentElement.scrollWidth - window.innerWidth;").await;
    assert!(overflow.as_i64().unwrap() <= 0, "the page scrolls sideways on a phone by {overflow} px");
    page.shot("phone").await;
    Ok(())
}
