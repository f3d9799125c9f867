//! The event log: impressions and events in one SQLite file in WAL mode.
//!
//! SQLite is embedded (compiled in), append-friendly, crash-safe and readable by every
//! standard tool — the `sqlite3` shell, DuckDB (`ATTACH 'events.sqlite'`), pandas — so the
//! log needs no server and no exporter to be analysed. One writer thread owns the
//! connection and **group-commits**: whatever arrived while the previous transaction was
//! being made durable goes into the next one, so one `fsync` (`synchronous = FULL`) serves
//! many requests. An event is acknowledged only after the transaction that holds it
//! committed: a `kill -9` (or a power cut) loses nothing that was acknowledged.
//!
//! Impressions are written by the same thread in arrival order, so an event posted after
//! its search's response always finds its impression. Validation happens there too:
//! unknown impression, product not shown in it, an `event_id` already used (the same event
//! again is a harmless duplicate; a different one is refused).
//!
//! Tables: `impressions(impression_id, ts_ms, query, filters, ranker, model, k, explore)`,
//! `shown(impression_id, position, product_id, score, base_rank, propensity)`,
//! `events(event_id, impression_id, product_id, type, value, ts_ms, received_ms)`.
//!
//! ```
//! use shelf::events::{EventIn, EventLog, EventType, Impression, Shown};
//! use shelf::events::store::Outcome;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = EventLog::open(&dir.path().join("events.sqlite")).unwrap();
//! let shown = vec![Shown { product_id: "p1".into(), position: 1, score: 2.0, base_rank: 1, propensity: 1.0 }];
//! log.log_impression(Impression {
//!     impression_id: "i1".into(), ts_ms: 0, query: "sofa".into(), filters: serde_json::json!({}),
//!     ranker: "bm25".into(), model: None, k: 10, explore: None, shown,
//! });
//! let click = EventIn { event_id: "e1".into(), impression_id: "i1".into(), product_id: "p1".into(),
//!     kind: EventType::Click, value: None, ts: None };
//! let outcomes = log.record_blocking(vec![click.clone(), click]).unwrap();
//! assert_eq!(outcomes, [Outcome::Accepted, Outcome::Duplicate]);
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{now_ms, Event, EventIn, EventType, Impression, Logged, Shown};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("event log {path}: {message}")]
    Sqlite { path: String, message: String },
    #[error("event log {path}: {message}")]
    Io { path: String, message: String },
    #[error("the event log's writer has stopped; restart the server")]
    Stopped,
}

/// What became of one posted event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Stored, durably.
    Accepted,
    /// Stored before under the same `event_id`: nothing to do.
    Duplicate,
    /// Not stored, and why.
    Rejected(Rejection),
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// Fields missing, of the wrong type, or out of range.
    Invalid(String),
    /// No impression has that id.
    UnknownImpression(String),
    /// The impression did not show that product.
    ProductNotShown { impression: String, product: String },
    /// The `event_id` is taken by a different event.
    IdConflict(String),
}

impl Rejection {
    pub fn message(&self) -> String {
        match self {
            Rejection::Invalid(message) => message.clone(),
            Rejection::UnknownImpression(id) => {
                format!("no impression '{id}': use the impression_id of a search response of this server")
            }
            Rejection::ProductNotShown { impression, product } => {
                format!("impression '{impression}' did not show product '{product}'")
            }
            Rejection::IdConflict(id) => format!("event_id '{id}' is already used by a different event"),
        }
    }
}

enum Job {
    Impression(Box<Impression>),
    Events(Vec<EventIn>, tokio::sync::oneshot::Sender<Result<Vec<Outcome>, StoreError>>),
}

/// Jobs one transaction takes at most.
const GROUP: usize = 4096;

/// An open event log. Cloning is not offered: one writer per file.
pub struct EventLog {
    path: PathBuf,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite { path: path.display().to_string(), message: source.to_string() }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS impressions (
    impression_id TEXT PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    query TEXT NOT NULL,
    filters TEXT NOT NULL,
    ranker TEXT NOT NULL,
    model TEXT,
    k INTEGER NOT NULL,
    explore TEXT
);
CREATE INDEX IF NOT EXISTS impressions_ts ON impressions(ts_ms);
CREATE TABLE IF NOT EXISTS shown (
    impression_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    score REAL NOT NULL,
    base_rank INTEGER NOT NULL,
    propensity REAL NOT NULL,
    PRIMARY KEY (impression_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shown_product ON shown(impression_id, product_id);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    impression_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    type TEXT NOT NULL,
    value REAL,
    ts_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_impression ON events(impression_id);
";

fn connect(path: &Path) -> Result<Connection, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Io { path: parent.display().to_string(), message: e.to_string() })?;
    }
    let connection = Connection::open(path).map_err(sqlite(path))?;
    // WAL: readers (exports, training) never block the writer; FULL: a commit is on disk
    // before it is acknowledged.
    connection
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;")
        .map_err(sqlite(path))?;
    connection.execute_batch(SCHEMA).map_err(sqlite(path))?;
    Ok(connection)
}

impl EventLog {
    /// Opens (or creates) the log at `path` and starts its writer.
    pub fn open(path: &Path) -> Result<EventLog, StoreError> {
        let connection = connect(path)?;
        let (jobs, queue) = mpsc::channel();
        let writer_path = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("shelf-event-log".into())
            .spawn(move || write_loop(connection, &writer_path, &queue))
            .map_err(|e| StoreError::Io { path: path.display().to_string(), message: e.to_string() })?;
        Ok(EventLog { path: path.to_path_buf(), jobs: Some(jobs), writer: Some(writer) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues an impression; it is committed with the next group (milliseconds).
    pub fn log_impression(&self, impression: Impression) {
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(Job::Impression(Box::new(impression))));
        if !matches!(sent, Some(Ok(()))) {
            metrics::counter!("shelf_impressions_dropped_total").increment(1);
            tracing::error!("the event log's writer has stopped; an impression was not logged");
        }
    }

    /// Validates and stores `events`; resolves once they are durable, with one outcome per
    /// event in order.
    pub fn record(&self, events: Vec<EventIn>) -> tokio::sync::oneshot::Receiver<Result<Vec<Outcome>, StoreError>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if let Some(jobs) = &self.jobs {
            // A stopped writer drops `reply`: the receiver then reports it.
            let _ = jobs.send(Job::Events(events, reply));
        }
        answer
    }

    /// Waits until everything queued so far (impressions included) is on disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.record(Vec::new()).await.map_err(|_| StoreError::Stopped)?.map(|_| ())
    }

    /// [`EventLog::record`], waiting on this thread.
    pub fn record_blocking(&self, events: Vec<EventIn>) -> Result<Vec<Outcome>, StoreError> {
        self.record(events).blocking_recv().map_err(|_| StoreError::Stopped)?
    }
}

impl Drop for EventLog {
    /// Commits what is queued, then stops the writer.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn write_loop(mut connection: Connection, path: &Path, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut replies = Vec::new();
        let committed = (|| -> Result<(), rusqlite::Error> {
            let transaction = connection.transaction()?;
            for job in jobs {
                match job {
                    Job::Impression(impression) => insert_impression(&transaction, &impression)?,
                    Job::Events(events, reply) => {
                        let received = now_ms();
                        let outcomes = events
                            .iter()
                            .map(|event| insert_event(&transaction, event, received))
                            .collect::<Result<Vec<_>, _>>()?;
                        replies.push((reply, outcomes));
                    }
                }
            }
            transaction.commit()
        })();
        match committed {
            Ok(()) => {
                for (reply, outcomes) in replies {
                    let _ = reply.send(Ok(outcomes));
                }
            }
            Err(source) => {
                tracing::error!(%source, path = %path.display(), "the event log could not commit");
                metrics::counter!("shelf_event_log_failures_total").increment(1);
                for (reply, _) in replies {
                    let _ = reply.send(Err(StoreError::Sqlite {
                        path: path.display().to_string(),
                        message: format!("not stored: {source}"),
                    }));
                }
            }
        }
    }
}

fn insert_impression(db: &Connection, impression: &Impression) -> Result<(), rusqlite::Error> {
    db.prepare_cached(
        "INSERT OR IGNORE INTO impressions (impression_id, ts_ms, query, filters, ranker, model, k, explore)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        impression.impression_id,
        impression.ts_ms,
        impression.query,
        impression.filters.to_string(),
        impression.ranker,
        impression.model,
        impression.k as i64,
        impression.explore.as_ref().map(|e| e.to_string()),
    ])?;
    let mut shown = db.prepare_cached(
        "INSERT OR IGNORE INTO shown (impression_id, position, product_id, score, base_rank, propensity)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for item in &impression.shown {
        shown.execute(params![
            impression.impression_id,
            item.position as i64,
            item.product_id,
            f64::from(item.score),
            item.base_rank as i64,
            item.propensity,
        ])?;
    }
    Ok(())
}

fn insert_event(db: &Connection, event: &EventIn, received: i64) -> Result<Outcome, rusqlite::Error> {
    if let Err(message) = event.check() {
        return Ok(Outcome::Rejected(Rejection::Invalid(message)));
    }
    let known = db
        .prepare_cached("SELECT 1 FROM impressions WHERE impression_id = ?1")?
        .query_row([&event.impression_id], |_| Ok(()))
        .optional()?;
    if known.is_none() {
        return Ok(Outcome::Rejected(Rejection::UnknownImpression(event.impression_id.clone())));
    }
    let shown = db
        .prepare_cached("SELECT 1 FROM shown WHERE impression_id = ?1 AND product_id = ?2 LIMIT 1")?
        .query_row([&event.impression_id, &event.product_id], |_| Ok(()))
        .optional()?;
    if shown.is_none() {
        return Ok(Outcome::Rejected(Rejection::ProductNotShown {
            impression: event.impression_id.clone(),
            product: event.product_id.clone(),
        }));
    }
    let ts = event.ts.as_ref().and_then(|ts| ts.millis().ok()).unwrap_or(received);
    let inserted = db
        .prepare_cached(
            "INSERT INTO events (event_id, impression_id, product_id, type, value, ts_ms, received_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(event_id) DO NOTHING",
        )?
        .execute(params![
            event.event_id,
            event.impression_id,
            event.product_id,
            event.kind.as_str(),
            event.value,
            ts,
            received
        ])?;
    if inserted == 1 {
        return Ok(Outcome::Accepted);
    }
    let same = db
        .prepare_cached("SELECT impression_id = ?2 AND product_id = ?3 AND type = ?4 FROM events WHERE event_id = ?1")?
        .query_row(params![event.event_id, event.impression_id, event.product_id, event.kind.as_str()], |row| {
            row.get::<_, bool>(0)
        })?;
    Ok(if same { Outcome::Duplicate } else { Outcome::Rejected(Rejection::IdConflict(event.event_id.clone())) })
}

/// Opens a log for reading only (a running server may be writing it).
fn read_only(path: &Path) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Io {
            path: path.display().to_string(),
            message: "no such file (start `shelf serve --events FILE` to make one)".into(),
        });
    }
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sqlite(path))?;
    connection.busy_timeout(std::time::Duration::from_secs(10)).map_err(sqlite(path))?;
    Ok(connection)
}

/// Every impression of the log at `path` with its events, oldest first.
pub fn read_log(path: &Path) -> Result<Vec<Logged>, StoreError> {
    let db = read_only(path)?;
    let error = sqlite(path);
    let mut shown: HashMap<String, Vec<Shown>> = HashMap::new();
    let mut statement = db
        .prepare("SELECT impression_id, position, product_id, score, base_rank, propensity FROM shown")
        .map_err(&error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                Shown {
                    position: row.get::<_, i64>(1)? as usize,
                    product_id: row.get(2)?,
                    score: row.get::<_, f64>(3)? as f32,
                    base_rank: row.get::<_, i64>(4)? as usize,
                    propensity: row.get(5)?,
                },
            ))
        })
        .map_err(&error)?;
    for row in rows {
        let (id, item) = row.map_err(&error)?;
        shown.entry(id).or_default().push(item);
    }
    let mut events: HashMap<String, Vec<Event>> = HashMap::new();
    let mut statement = db
        .prepare("SELECT impression_id, event_id, product_id, type, value, ts_ms FROM events ORDER BY ts_ms")
        .map_err(&error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<f64>>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })
        .map_err(&error)?;
    for row in rows {
        let (impression, event_id, product_id, kind, value, ts_ms) = row.map_err(&error)?;
        // Only valid types are ever written; a row edited by hand to something else is skipped.
        let Ok(kind) = kind.parse::<EventType>() else { continue };
        events.entry(impression).or_default().push(Event { event_id, product_id, kind, value, ts_ms });
    }
    let mut statement = db
        .prepare(
            "SELECT impression_id, ts_ms, query, filters, ranker, model, k, explore FROM impressions
             ORDER BY ts_ms, impression_id",
        )
        .map_err(&error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, i64>(6)?,
                row.get::<_, Option<String>>(7)?,
            ))
        })
        .map_err(&error)?;
    let mut log = Vec::new();
    for row in rows {
        let (impression_id, ts_ms, query, filters, ranker, model, k, explore) = row.map_err(&error)?;
        let mut items = shown.remove(&impression_id).unwrap_or_default();
        items.sort_by_key(|s| s.position);
        let events = events.remove(&impression_id).unwrap_or_default();
        log.push(Logged {
            impression: Impression {
                ts_ms,
                query,
                filters: serde_json::from_str(&filters).unwrap_or_default(),
                ranker,
                model,
                k: k.max(0) as usize,
                explore: explore.and_then(|e| serde_json::from_str(&e).ok()),
                shown: items,
                impression_id,
            },
            events,
        });
    }
    Ok(log)
}

/// Counts of what a log holds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Counts {
    pub impressions: u64,
    pub shown: u64,
    pub events: u64,
}

pub fn counts(path: &Path) -> Result<Counts, StoreError> {
    let db = read_only(path)?;
    let count = |table: &str| -> Result<u64, StoreError> {
        db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(sqlite(path))
    };
    Ok(Counts { impressions: count("impressions")?, shown: count("shown")?, events: count("events")? })
}

/// Writes the log as JSON lines, one impression with its shown list and events a line.
pub fn export_jsonl(path: &Path, out: &mut impl std::io::Write) -> Result<usize, StoreError> {
    let log = read_log(path)?;
    let io = |e: std::io::Error| StoreError::Io { path: path.display().to_string(), message: e.to_string() };
    for logged in &log {
        serde_json::to_writer(&mut *out, logged).map_err(|e| io(e.into()))?;
        out.write_all(b"\n").map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(log.len())
}

/// Removes impressions older than `before_ms` (Unix milliseconds) with their shown lists
/// and events, then gives the space back (`VACUUM`) and empties the write-ahead log. Safe
/// while a server writes: SQLite's locks order the two.
pub fn compact(path: &Path, before_ms: i64) -> Result<Counts, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Io { path: path.display().to_string(), message: "no such file".into() });
    }
    let mut db = connect(path)?;
    let error = sqlite(path);
    let transaction = db.transaction().map_err(&error)?;
    let old = "SELECT impression_id FROM impressions WHERE ts_ms < ?1";
    let events = transaction
        .execute(&format!("DELETE FROM events WHERE impression_id IN ({old})"), [before_ms])
        .map_err(&error)?;
    let shown = transaction
        .execute(&format!("DELETE FROM shown WHERE impression_id IN ({old})"), [before_ms])
        .map_err(&error)?;
    let impressions = transaction.execute("DELETE FROM impressions WHERE ts_ms < ?1", [before_ms]).map_err(&error)?;
    transaction.commit().map_err(&error)?;
    db.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);").map_err(&error)?;
    Ok(Counts { impressions: impressions as u64, shown: shown as u64, events: events as u64 })
}
