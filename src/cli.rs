//! Command-line definitions (clap) only: no behaviour lives here.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "edgeload",
    version,
    about = "Load testing and cache warming for image CDNs",
    long_about = "Load testing and cache warming for image CDNs.\n\nExit codes: 0 ok, 1 thresholds failed, 2 usage/config/run error, 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a URL list against one or more CDN targets and record latencies by cache status
    Run(Box<RunArgs>),
    /// Serve the embedded simulated CDN edge (LRU cache, slow origin, cache headers, faults)
    Edge(EdgeArgs),
    /// Start an edge in-process and replay a bundled URL list cold, then warm
    Demo(DemoArgs),
    /// Merge results directories (runs, regions, targets) exactly; tables, plots, report.html
    Report(ReportArgs),
    /// Follow live traffic and fire the same requests at the new CDN to warm it; cutover gate
    Mirror(MirrorArgs),
    /// Upload a results directory to S3 (MANIFEST.json last; resumable)
    Upload(UploadArgs),
    /// Download a run's results (every complete region) from S3
    Download(DownloadArgs),
    /// Turn access logs (nginx/Apache, CloudFront, ALB, S3, Cloudflare, Fastly, W3C) into a URL list or trace
    Extract(ExtractArgs),
    /// Read a CDN's own access logs: its real hit ratio over time, per host and POP, the URLs
    /// that miss most (a URL list to warm) and the misses no warming saves
    Observe(ObserveArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct ObserveArgs {
    /// The CDN's logs: files, directories, globs, s3://BUCKET/PREFIX/, or - for stdin (.gz
    /// and .zst read transparently); the formats `extract` reads
    #[arg(required = true)]
    pub logs: Vec<String>,
    /// Results directory (summary.json, timeline.csv, latency.hlog, pops.hlog, misses.csv)
    #[arg(short, long)]
    pub out: PathBuf,
    /// The length of a point on the hit-ratio curve
    #[arg(long, default_value = "1h")]
    pub interval: String,
    /// Targets: none (the whole log), host, or pop (one hit-ratio curve each)
    #[arg(long, default_value = "none", value_name = "none|host|pop")]
    pub split: String,
    /// With --split: the hosts or POPs with the most requests kept apart, the rest as _other
    #[arg(long, default_value_t = 20)]
    pub split_top: usize,
    /// The target's name when the log is one target (report's row and line)
    #[arg(long, default_value = "observed")]
    pub name: String,
    /// URLs written to misses.csv, most misses first
    #[arg(long, default_value_t = 10_000)]
    pub top_misses: usize,
    /// auto, combined, cloudfront, w3c, alb, s3, cloudflare, json
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// JSON logs: which keys hold what, e.g. url=req_url,cache=cache_state,pop=pop
    #[arg(long)]
    pub json_fields: Option<String>,
    /// Methods counted, comma-separated; * for every method
    #[arg(long, default_value = "*")]
    pub methods: String,
    /// Statuses counted, comma-separated; all for every status
    #[arg(long, default_value = "all")]
    pub status: String,
    /// Count only these hosts (repeatable)
    #[arg(long)]
    pub host: Vec<String>,
    /// Count requests at or after this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long)]
    pub since: Option<String>,
    /// Count requests before this time
    #[arg(long)]
    pub until: Option<String>,
    /// Drop the query string from the misses' URLs
    #[arg(long)]
    pub drop_query: bool,
    /// Parser threads (default: number of CPUs)
    #[arg(long)]
    pub threads: Option<usize>,
    /// Memory for distinct URLs, e.g. 256M (as `extract`); past it, sorted runs spill to disk
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
    /// Folder for spilled runs (default: the results directory's parent)
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<std::path::PathBuf>,
    #[arg(long)]
    pub run_id: Option<String>,
    /// Region label (default "observed")
    #[arg(long)]
    pub region: Option<String>,
    #[command(flatten)]
    pub s3: S3Args,
    /// No progress bar, no summary
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct MirrorArgs {
    /// Follow an access log like tail -F (survives rotation); repeatable
    #[arg(long)]
    pub follow: Vec<PathBuf>,
    /// With --follow: read what the file already holds first
    #[arg(long)]
    pub from_start: bool,
    /// With --follow: also read its rotated files once (access.log.1, access.log.2.gz, ...)
    #[arg(long)]
    pub rotated: bool,
    /// Receive syslog lines (nginx access_log syslog:server=...), e.g. udp://127.0.0.1:5140
    #[arg(long)]
    pub syslog: Option<String>,
    /// Read log lines from stdin
    #[arg(long)]
    pub stdin: bool,
    /// Target as NAME=BASE_URL (repeatable); the only hosts ever contacted
    #[arg(short, long = "target", value_name = "NAME=URL")]
    pub targets: Vec<String>,
    /// auto, combined, cloudfront, w3c, alb, s3, cloudflare, json
    #[arg(long, default_value = "auto")]
    pub format: String,
    #[arg(long)]
    pub json_fields: Option<String>,
    /// Statuses to replay, comma-separated
    #[arg(long, default_value = "200,304")]
    pub status_codes: String,
    /// Only these extensions, e.g. jpg,png,webp
    #[arg(long)]
    pub ext: Option<String>,
    /// Requests per second per target (governor); excess waits in the queue, then drops
    #[arg(short, long)]
    pub rate: Option<f64>,
    /// Most requests in flight per target
    #[arg(long, default_value_t = 64)]
    pub max_in_flight: usize,
    /// Queue length per target; when full, lines are dropped and counted
    #[arg(long, default_value_t = 10_000)]
    pub queue: usize,
    /// Skip a path seen again within this window
    #[arg(long, value_name = "DURATION")]
    pub dedupe: Option<String>,
    /// Mirror only this share of lines (0..1), seeded
    #[arg(long)]
    pub sample: Option<f64>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sliding window of the hit ratio
    #[arg(long, default_value = "60s")]
    pub window: String,
    /// Cutover gate: exit 0 once the hit ratio has held at or above this...
    #[arg(long)]
    pub until_hit_ratio: Option<f64>,
    /// ...for this long...
    #[arg(long, default_value = "5m")]
    pub hold: String,
    /// ...with at least this many requests in the window...
    #[arg(long, default_value_t = 1000)]
    pub min_samples: u64,
    /// ...at every POP seen, not only overall
    #[arg(long)]
    pub per_pop: bool,
    /// Give up after this long (exit 3)
    #[arg(long, value_name = "DURATION")]
    pub max_duration: Option<String>,
    /// Serve /status (JSON) and /metrics (Prometheus) here, e.g. 127.0.0.1:9898
    #[arg(long)]
    pub status: Option<SocketAddr>,
    /// Write a results directory (timeline, histograms) for `report`
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub run_id: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
    /// Extra request header "Name: value" (Accept and Accept-Encoding are part of cache keys)
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Whole-request timeout (default 10s, as `run`)
    #[arg(long)]
    pub timeout: Option<String>,
    /// Progress line interval
    #[arg(long, default_value = "5s")]
    pub progress: String,
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the final summary.json to stdout
    #[arg(long)]
    pub json: bool,
}

/// Where S3 is: the standard AWS chain by default.
#[derive(Debug, Args, Clone, Default)]
pub struct S3Args {
    /// S3-compatible endpoint (also AWS_ENDPOINT_URL); switches to path-style addressing
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// The bucket's AWS region (default: AWS_REGION / profile / instance metadata)
    #[arg(long)]
    pub s3_region: Option<String>,
    /// Attempts per S3 request (retries back off; throttling and 5xx are retried)
    #[arg(long, default_value_t = 5)]
    pub s3_attempts: u32,
    /// Longest one attempt of an S3 request may take (connect 10 s and a 30 s read stall end
    /// it sooner)
    #[arg(long, default_value = "2m")]
    pub s3_timeout: String,
}

#[derive(Debug, Args, Clone)]
pub struct UploadArgs {
    /// The results directory
    pub dir: PathBuf,
    /// s3://BUCKET/PREFIX/runs/RUN_ID/REGION/
    pub dest: String,
    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, Args, Clone)]
pub struct DownloadArgs {
    /// s3://BUCKET/PREFIX/runs/RUN_ID/ (every region) or one region's folder
    pub src: String,
    #[arg(short, long, default_value = "download")]
    pub out: PathBuf,
    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Results directories, folders holding them (one per region), or s3://BUCKET/PREFIX/runs/RUN_ID/
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// Where s3:// inputs are downloaded (default: OUT/downloaded)
    #[arg(long)]
    pub download_dir: Option<PathBuf>,
    #[command(flatten)]
    pub s3: S3Args,
    /// Where report.md, report.html, plots/, hgrm/ and the merged summary.json go
    #[arg(short, long, default_value = "report")]
    pub out: PathBuf,
    /// Grouping keys, comma-separated: run (a cold and a warm run side by side), region,
    /// runner, target, pop, class
    #[arg(long, default_value = "region,target,class")]
    pub by: String,
    /// Results to compare against (A = baseline, B = the inputs)
    #[arg(long)]
    pub baseline: Vec<String>,
    /// Hit-ratio line on the hit-ratio plot when no threshold names one
    #[arg(long, default_value_t = 0.8)]
    pub cutover: f64,
    /// Time plots: `start` draws each run from its own start (a cold and a warm run side by
    /// side); `utc` puts every run on one UTC clock axis, to line up with a CDN's dashboards
    #[arg(long, default_value = "start", value_name = "start|utc")]
    pub time: String,
    /// A moment drawn across the time plots (with --time utc), e.g. the DNS switch:
    /// 2026-11-20T10:00:00Z=cutover (repeatable; the label defaults to "cutover")
    #[arg(long, value_name = "TIME[=LABEL]")]
    pub mark: Vec<String>,
    /// Tables only
    #[arg(long)]
    pub no_plots: bool,
    /// Print the merged summary.json to stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ExtractArgs {
    /// Log files, directories, globs, s3://BUCKET/PREFIX/ (every object under it), or - for
    /// stdin (.gz and .zst read transparently)
    #[arg(required = true)]
    pub logs: Vec<String>,
    /// Output URL list (CSV: path,count,bytes,first_seen,last_seen); - for stdout
    #[arg(short, long, default_value = "urls.csv")]
    pub output: String,
    /// Also write a time-ordered trace (timestamp,path) for timed replay with `run --trace`
    #[arg(long)]
    pub trace: Option<std::path::PathBuf>,
    /// auto, combined, cloudfront, w3c, alb, s3, cloudflare, json
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// JSON logs: which keys hold what, e.g. url=req_url,status=code,time=ts
    #[arg(long)]
    pub json_fields: Option<String>,
    /// Methods to keep, comma-separated
    #[arg(long, default_value = "GET")]
    pub methods: String,
    /// Statuses to keep, comma-separated (206 is a range request: add it to replay the full object)
    #[arg(long, default_value = "200,304")]
    pub status: String,
    /// Keep only these hosts (repeatable)
    #[arg(long)]
    pub host: Vec<String>,
    /// Keep paths matching this regex
    #[arg(long)]
    pub include: Option<String>,
    /// Drop paths matching this regex
    #[arg(long)]
    pub exclude: Option<String>,
    /// Keep these extensions, e.g. jpg,jpeg,png,webp,avif,gif
    #[arg(long)]
    pub ext: Option<String>,
    /// Keep requests at or after this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long)]
    pub since: Option<String>,
    /// Keep requests before this time
    #[arg(long)]
    pub until: Option<String>,
    /// Drop the query string (by default it is kept: it is part of the cache key)
    #[arg(long)]
    pub drop_query: bool,
    /// Keep only the N most requested URLs
    #[arg(long)]
    pub top: Option<usize>,
    /// Keep this share of requests (0..1), seeded
    #[arg(long)]
    pub sample: Option<f64>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Any malformed line is an error
    #[arg(long)]
    pub strict: bool,
    /// Parser threads (default: number of CPUs)
    #[arg(long)]
    pub threads: Option<usize>,
    /// Memory for distinct URLs and trace rows, e.g. 256M or 2G (default: a quarter of RAM,
    /// at most 1G); past it, sorted runs spill to disk and the output is the same
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
    /// Folder for spilled runs (default: the output's folder; the system's temporary folder
    /// when writing to stdout)
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<std::path::PathBuf>,
    /// For s3://BUCKET/PREFIX/ inputs (CloudFront, ALB and S3 logs where AWS writes them)
    #[command(flatten)]
    pub s3: S3Args,
    /// No progress bar, no summary
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the extraction summary as JSON to stderr
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Default, Clone)]
pub struct RunArgs {
    /// URL list: one path per line, or the CSV `path,count,...` that `extract` writes
    pub urls: Option<PathBuf>,
    /// Replay a trace (`extract --trace`) at its original pacing, sped up by --speed
    #[arg(long, conflicts_with = "urls")]
    pub trace: Option<PathBuf>,
    /// Trace replay speed factor (2.0 = twice as fast; default 1)
    #[arg(long)]
    pub speed: Option<f64>,
    /// Scenario file (TOML); every flag given here overrides it
    #[arg(short, long)]
    pub scenario: Option<PathBuf>,
    /// Target as NAME=BASE_URL (repeatable: the same list against several CDNs), or a bare URL
    #[arg(short, long = "target", value_name = "NAME=URL")]
    pub targets: Vec<String>,
    /// Open model: requests per second per target
    #[arg(short, long)]
    pub rate: Option<f64>,
    /// Open model with ramps: comma-separated stages, e.g. "0->2000/60s,2000/300s" (per target)
    #[arg(long)]
    pub stages: Option<String>,
    /// Closed model: number of concurrent workers (split over the targets' requests)
    #[arg(short, long)]
    pub concurrency: Option<usize>,
    /// Closed model: pause after each response
    #[arg(long, value_name = "DURATION")]
    pub think: Option<String>,
    /// Stop after this long (default 10s unless --requests, --sweep or --stages end the run)
    #[arg(short, long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Stop after N requests per target
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Request every URL exactly once per target (cache warming)
    #[arg(long)]
    pub sweep: bool,
    /// URL order: sequential, shuffled or weighted (by the list's counts)
    #[arg(long)]
    pub order: Option<String>,
    /// Seed for shuffled and weighted orders
    #[arg(long)]
    pub seed: Option<u64>,
    /// Open model: most requests outstanding at once (late sends are still timed from their intended time)
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Worker threads (default: number of CPUs; one fewer when every target is on loopback)
    #[arg(long)]
    pub threads: Option<usize>,
    /// Extra request header "Name: value" (repeatable), e.g. -H 'Accept: image/avif'
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Whole-request timeout (default 10s)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Connect timeout (default 3s)
    #[arg(long, value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// A new connection per request
    #[arg(long)]
    pub no_keepalive: bool,
    /// Serve live Prometheus metrics at /metrics (and JSON at /status) on this address while
    /// the run lasts, e.g. 127.0.0.1:9899: per target requests, classes, errors by kind,
    /// retries, hit ratio, latency quantiles of the last interval
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Trust the CA certificates in this PEM file instead of the system's (repeatable)
    #[arg(long, value_name = "FILE")]
    pub cacert: Vec<std::path::PathBuf>,
    /// Accept any TLS certificate (a staging edge): said loudly in the output
    #[arg(long)]
    pub insecure: bool,
    /// Resume TLS sessions on new connections (on, the default) or make every connection a
    /// full handshake (off)
    #[arg(long, value_name = "on|off")]
    pub tls_resume: Option<String>,
    /// Connect to ADDR:PORT2 for HOST:PORT, keeping the URL's Host and SNI, as curl does,
    /// e.g. cdn.example.com:443:192.0.2.7:443 (repeatable)
    #[arg(long, value_name = "HOST:PORT:ADDR:PORT2")]
    pub connect_to: Vec<String>,
    /// Use these addresses for HOST:PORT, as curl does; several: connections spread over them
    /// (repeatable), e.g. cdn.example.com:443:192.0.2.7,192.0.2.8
    #[arg(long, value_name = "HOST:PORT:ADDR[,ADDR...]")]
    pub resolve: Vec<String>,
    /// Resend a request once when a reused connection was closed before any byte of the
    /// answer (1, the default, as browsers do) or never (0); retries are counted either way
    #[arg(long, value_name = "0|1")]
    pub retries: Option<u8>,
    /// Check everything and print the plan, then exit without sending: the scenario, the URL
    /// list (every path), targets, thresholds, TLS trust files, limits (0: would run; 2: why
    /// not)
    #[arg(long)]
    pub check: bool,
    /// With --check: write a bundle to this folder for regional runners: scenario.toml, the URL
    /// list (urls.csv) or trace (trace.csv) it names, plan.json (the check's output) and
    /// SHA256SUMS; other flags are refused (put them in the scenario)
    #[arg(long, value_name = "DIR", requires = "check", requires = "scenario")]
    pub bundle: Option<PathBuf>,
    /// Send requests through reqwest instead of the built-in client (its own pool; HTTP/2
    /// when the server offers it by ALPN)
    #[arg(long)]
    pub reqwest: bool,
    /// HTTP/2 (ALPN h2 over TLS, prior knowledge over plain http) on a few connections with
    /// many streams each, as h2load; the default is HTTP/1.1, a connection per request in
    /// flight, as wrk and JMeter
    #[arg(long)]
    pub http2: bool,
    /// With --http2: connections a target (default: one a thread); streams per connection are
    /// what the server allows
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// Send HEAD instead of GET
    #[arg(long)]
    pub head: bool,
    /// Treat Age > 0 as a hit when no cache header decides (a guess; off by default)
    #[arg(long)]
    pub age_fallback: bool,
    /// Pass/fail threshold (repeatable), e.g. 'miss.p99<150ms', 'hit_ratio>=0.9', 'fastly:error_rate<0.01'
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Results directory (default reports/<run-id>/)
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Run id label (default: UTC time and a random suffix)
    #[arg(long)]
    pub run_id: Option<String>,
    /// Region label (default "local")
    #[arg(long)]
    pub region: Option<String>,
    /// Also write samples.jtl (one row per request, JMeter's CSV columns)
    #[arg(long)]
    pub samples: bool,
    /// Histogram interval (default 1s)
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// After Ctrl-C, how long in-flight requests may finish (default 2s)
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<String>,
    /// No progress line and no terminal summary
    #[arg(short, long)]
    pub quiet: bool,
    /// Print summary.json to stdout
    #[arg(long)]
    pub json: bool,
    /// After the run (also an interrupted one), upload the results to s3://BUCKET/PREFIX/runs/RUN_ID/REGION/
    #[arg(long)]
    pub upload: Option<String>,
    /// Wait until this UTC time before starting (all regions start together), e.g. 2026-11-26T12:00:00Z
    #[arg(long)]
    pub start_at: Option<String>,
    /// This process is runner K of N (1-based): it sends requests K-1, K-1+N, K-1+2N, ... of
    /// each target's planned sequence, at their planned times and with their URLs, so that N
    /// runners started together send exactly the plan (the closed model splits --concurrency)
    #[arg(long, value_name = "K/N")]
    pub runner: Option<String>,
    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, Args, Clone)]
pub struct EdgeArgs {
    /// Address to listen on
    #[arg(short, long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Serve https with a certificate made now for localhost, 127.0.0.1, ::1 and --tls-name
    #[arg(long)]
    pub tls: bool,
    /// More names for the generated certificate (repeatable)
    #[arg(long, value_name = "NAME")]
    pub tls_name: Vec<String>,
    /// Write the generated certificate (PEM) here, for clients' --cacert
    #[arg(long, value_name = "FILE")]
    pub write_cert: Option<std::path::PathBuf>,
    /// Serve https with this certificate chain (PEM) and --key instead of a generated one
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --cert
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// Cache header dialect: fastly, cloudfront, cloudflare, akamai, varnish, nginx, rfc9211, or
    /// origin (none: a plain origin for a real cache in front)
    #[arg(long, default_value = "fastly")]
    pub dialect: String,
    /// POP name in the headers; a comma list (FRA,AMS) spreads paths over several POPs
    #[arg(long, default_value = "FRA")]
    pub pop: String,
    /// Extra time one POP takes on every response, POP=DURATION (repeatable), e.g. AMS=30ms
    #[arg(long, value_name = "POP=DURATION")]
    pub pop_delay: Vec<String>,
    /// Cache capacity in bytes (suffixes K, M, G)
    #[arg(long, default_value = "1G")]
    pub capacity_bytes: String,
    /// Cache capacity in objects
    #[arg(long)]
    pub capacity_objects: Option<usize>,
    /// Latency of a hit: "1ms" or a range "1ms..3ms"
    #[arg(long, default_value = "1ms")]
    pub hit_latency: String,
    /// Latency of a miss (origin fetch)
    #[arg(long, default_value = "80ms..150ms")]
    pub miss_latency: String,
    /// A shield (parent) tier with an unbounded cache of its own, answering the edge's misses it
    /// holds in this time, e.g. "20ms" (Fastly: X-Cache "HIT, MISS"; Akamai: X-Cache-Remote)
    #[arg(long, value_name = "LATENCY")]
    pub shield: Option<String>,
    /// HTTP/2: streams a connection may have open at once (what the edge's SETTINGS say)
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub h2_streams: u32,
    /// Seed for the latency draws and faults
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fault: extra delay on every response
    #[arg(long)]
    pub extra_delay: Option<String>,
    /// Fault: when request N arrives, hold every response for --stall
    #[arg(long)]
    pub stall_after: Option<u64>,
    /// Fault: length of the stall window
    #[arg(long, default_value = "1s")]
    pub stall: String,
    /// Fault: share of requests answered 503
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fault: share of responses reset halfway through the body
    #[arg(long, default_value_t = 0.0)]
    pub reset_rate: f64,
    /// Fault: share of requests whose connection is closed with no answer (what a client sees
    /// when a server closes a keep-alive connection as its request arrives)
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Fault: pause between 16 KB body chunks
    #[arg(long)]
    pub slow_body: Option<String>,
    /// Server threads
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Write an access log in CloudFront's standard log layout (W3C, tab-separated), which
    /// `observe` (and `extract`) read
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<std::path::PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Where the two runs' results go
    #[arg(short, long, default_value = "reports/demo")]
    pub out: PathBuf,
    /// Rate of the demo runs (requests per second)
    #[arg(long, default_value_t = 400.0)]
    pub rate: f64,
    /// Over https: the edge serves TLS with a certificate made now, which the runs trust
    #[arg(long)]
    pub https: bool,
}
