//! A complete upload service: an XEP-0114 component answering every stanza with
//! [`SlotService::process`], the storage of your choice, and the built-in HTTP store.
//!
//! ```text
//! cargo run --example upload_component -- --config examples/upload_component.toml
//! ```
//!
//! Configuration: a TOML file (`examples/upload_component.toml` shows every setting). Secrets
//! (component secret, service secret, store key, S3 secret key, admin token, previous secrets)
//! come from files or environment variables, never from the command line. The flags below
//! override non-secret settings of the file (or stand in for it, with secrets from the
//! default environment variables); `--check` validates everything and exits.
//!
//! * Storage (`[storage] kind`): `local` (signed URLs served by the built-in HTTP store),
//!   `s3` (presigned URLs; the HTTP listener then only answers stable links, when enabled), or
//!   `external` (an external upload server: `v1`, `v2`, `token` or `ejabberd` scheme).
//! * Logs (`tracing`, on stderr): one line per slot from the library's `Outcome` (no URL,
//!   signature or secret), one per HTTP request (method, status, slot-ID prefix, bytes).
//! * `[ops] listen`: `/healthz`, `/metrics` (Prometheus text) and the admin endpoint
//!   `DELETE /admin/users/{jid}/files` (bearer token from a file).
//! * Retention (`[retention]`): the library's planner over the record of stored files, on
//!   the local store and on S3; a stored-bytes quota per user (`service.stored_quota`).
//! * Hostile stanzas: every stanza passes a depth and size guard before tokio-xmpp parses
//!   it (`support/stanza_guard.rs`), and the runtime's threads get large stacks.
//! * SIGTERM/SIGINT: stop accepting, let HTTP requests in flight finish (bounded by
//!   `http.shutdown_grace_secs`), close the XMPP stream.
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    reason = "a test, example or bench binary: pedantic lints and API reachability are for the library"
)]

#[path = "support/config.rs"]
mod config;
#[path = "support/http_store.rs"]
mod http_store;
#[path = "support/metrics.rs"]
mod metrics;
#[path = "support/ops.rs"]
mod ops;
#[path = "support/pg_state.rs"]
mod pg_state;
#[path = "support/retention.rs"]
mod retention;
#[path = "support/stanza_guard.rs"]
mod stanza_guard;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt as _;
use minidom::Element;
use time::OffsetDateTime;
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Component, Stanza};
use url::Url;
use xmpp_upload::service::{Begin, Outcome, RetentionPolicy};
use xmpp_upload::stanza::iq::{Iq, IqType};
use xmpp_upload::storage::external::{ExternalStore, Scheme};
use xmpp_upload::storage::s3::{S3Config, S3Store};
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::{ServiceConfig, SlotService, StorageBackend};

use config::{Config, ExternalScheme, Secret, StorageKind};
use metrics::Metrics;
use retention::{Objects, PendingUpload, Records, Retention};
use stanza_guard::GuardedConnector;

/// Runs an XEP-0363 / p1:http-file-transfer upload service as an XEP-0114 component.
///
/// Secrets are never accepted on the command line: see the config file's `*_file` / `*_env`
/// settings, or the XMPP_UPLOAD_* environment variables.
#[derive(Debug, Parser)]
#[command(name = "upload_component", version)]
struct Cli {
    /// The TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration and the secrets, then exit.
    #[arg(long)]
    check: bool,
    /// The component's JID (xmpp.jid).
    #[arg(long)]
    jid: Option<String>,
    /// The XMPP server's component port, HOST:PORT (xmpp.server).
    #[arg(long, value_name = "HOST:PORT")]
    xmpp_addr: Option<String>,
    /// Where the HTTP store listens (http.listen).
    #[arg(long, value_name = "HOST:PORT")]
    http_addr: Option<SocketAddr>,
    /// Public URL of the HTTP store (http.base_url).
    #[arg(long, value_name = "URL")]
    base_url: Option<Url>,
    /// Where the local store keeps files (storage.local.dir).
    #[arg(long, value_name = "DIR")]
    store_dir: Option<PathBuf>,
    /// Largest upload in bytes (service.max_file_size).
    #[arg(long, value_name = "BYTES")]
    max_file_size: Option<u64>,
    /// Users of DOMAIN may upload; repeatable (service.allow_domains).
    #[arg(long, value_name = "DOMAIN")]
    allow_domain: Vec<String>,
    /// Delete files after this many days (retention.max_age_days).
    #[arg(long, value_name = "DAYS")]
    retention_days: Option<f64>,
    /// GET URLs are stable links below {base-url}stable/ (service.stable_links).
    #[arg(long)]
    stable_links: bool,
    /// Allow an http:// base URL on a non-loopback host (http.insecure_http).
    #[arg(long)]
    insecure_http: bool,
    /// Keep-alive ping target (xmpp.ping_to).
    #[arg(long, value_name = "DOMAIN")]
    ping_to: Option<String>,
    /// Where /healthz, /metrics and /admin listen (ops.listen).
    #[arg(long, value_name = "HOST:PORT")]
    ops_addr: Option<SocketAddr>,
    /// error, warn, info, debug or trace (log.level).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

impl Cli {
    fn apply(&self, c: &mut Config) {
        if let Some(v) = &self.jid {
            c.xmpp.jid = Some(v.clone());
        }
        if let Some(v) = &self.xmpp_addr {
            c.xmpp.server = v.clone();
        }
        if let Some(v) = self.http_addr {
            c.http.listen = v;
        }
        if let Some(v) = &self.base_url {
            c.http.base_url = Some(v.clone());
        }
        if let Some(v) = &self.store_dir {
            c.storage.local.dir = Some(v.clone());
        }
        if let Some(v) = self.max_file_size {
            c.service.max_file_size = v;
        }
        if !self.allow_domain.is_empty() {
            c.service.allow_domains = self.allow_domain.clone();
        }
        if let Some(v) = self.retention_days {
            c.retention.max_age_days = Some(v);
        }
        c.service.stable_links |= self.stable_links;
        c.http.insecure_http |= self.insecure_http;
        if let Some(v) = &self.ping_to {
            c.xmpp.ping_to = Some(v.clone());
        }
        if let Some(v) = self.ops_addr {
            c.ops.listen = Some(v);
        }
        if let Some(v) = &self.log_level {
            c.log.level = v.clone();
        }
    }
}

/// Stack size of the runtime's threads. Only what a thread touches is committed, so this
/// costs address space, not memory; it is a second line behind the stanza guard.
const THREAD_STACK: usize = 32 * 1024 * 1024;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut cfg = match &cli.config {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("upload_component: config: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    cli.apply(&mut cfg);
    let level = match cfg.log.level.parse::<tracing::Level>() {
        Ok(l) => l,
        Err(_) => {
            eprintln!(
                "upload_component: log.level: unknown level {:?}",
                cfg.log.level
            );
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = cfg.check() {
        tracing::error!("config: {e}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let check = cli.check;
    // The whole service runs in a spawned task, on a runtime thread with the large stack
    // (block_on would poll it on the main thread, whose stack is the process default).
    let result = rt.block_on(async move {
        match tokio::spawn(run(cfg, check)).await {
            Ok(r) => r,
            Err(e) => Err(format!("service task: {e}")),
        }
    });
    // In-flight requests had their grace in `run`; whatever is left is cut here.
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// What every storage kind shares.
struct Common {
    cfg: Config,
    jid: jid::Jid,
    component_secret: Secret,
    metrics: Arc<Metrics>,
    online: Arc<AtomicBool>,
}

fn service_config(
    cfg: &Config,
    jid: &jid::Jid,
    records: Option<&Records>,
) -> Result<ServiceConfig, String> {
    let s = &cfg.service;
    let secret = cfg
        .service_secret()
        .require("service.secret", "XMPP_UPLOAD_SERVICE_SECRET")?;
    let mut c = ServiceConfig::new(jid.clone(), secret.bytes().to_vec())
        .max_file_size(s.max_file_size)
        .put_ttl(time::Duration::seconds(
            s.put_ttl_secs.try_into().unwrap_or(i64::MAX),
        ));
    for (i, path) in s.previous_secret_files.iter().enumerate() {
        let src = config::SecretSource {
            file: Some(path.clone()),
            env: None,
        };
        let prev = src.require(&format!("service.previous_secret_files[{i}]"), "")?;
        c = c.previous_secret(prev.bytes().to_vec());
    }
    if !s.allow_domains.is_empty() {
        c = c.allow_domains(s.allow_domains.iter());
    }
    if let Some(types) = &s.allowed_content_types {
        c = c.allowed_content_types(types.iter().cloned());
    }
    if let Some(t) = s.get_ttl_secs {
        c = c.get_ttl(time::Duration::seconds(t.try_into().unwrap_or(i64::MAX)));
    }
    if let Some(d) = s.file_id_ttl_days {
        c = c.file_id_ttl(config::days(d));
    }
    if let Some(q) = s.daily_quota {
        c = c.daily_quota(q);
    }
    if let Some(q) = s.global_daily_quota {
        c = c.global_daily_quota(q);
    }
    c = c.retention(retention_policy(cfg));
    if let Some(records) = records {
        // A database checks the stored-bytes quota itself, on the two-phase path.
        if let Some(inventory) = records.inventory() {
            c = c.inventory(inventory);
        }
        if let Some(q) = s.stored_quota {
            c = c.stored_quota(q);
        }
    } else if s.stored_quota.is_some() {
        return Err("service.stored_quota needs storage.kind \"local\" or \"s3\" (external servers keep their own record)".into());
    }
    if let Some(base) = cfg.stable_base()? {
        c = c.stable_get_base(base);
    }
    Ok(c)
}

fn retention_policy(cfg: &Config) -> RetentionPolicy {
    let r = &cfg.retention;
    let mut p = RetentionPolicy::new();
    if let Some(d) = r.max_age_days {
        p = p.max_age(config::days(d));
    }
    if let Some(q) = r.per_user_soft_quota {
        p = p.per_user_soft_quota(q);
    }
    if let Some(c) = r.total_cap {
        p = p.total_cap(c);
    }
    p
}

async fn records(cfg: &Config) -> Result<Records, String> {
    match cfg.database.kind {
        config::DatabaseKind::Memory => Ok(Records::memory()),
        config::DatabaseKind::Postgres => {
            let db = &cfg.database;
            let url = db
                .url
                .clone()
                .ok_or("database.url is required for kind = \"postgres\"")?;
            let node = db.node.clone().unwrap_or_else(|| {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
                format!("{}-{}", host.trim(), std::process::id())
            });
            let mut settings = pg_state::PgSettings::new(url, node);
            if let Some(schema) = &db.schema {
                settings.schema = schema.clone();
            }
            if let Some(p) = db.password()? {
                settings.password = Some(p.bytes().to_vec());
            }
            let pg = pg_state::PgState::connect(settings)
                .await
                .map_err(|e| format!("database: {e}"))?;
            tracing::info!("database: PostgreSQL ready (node {})", pg.node());
            Ok(Records::Postgres(Arc::new(pg)))
        }
    }
}

async fn run(cfg: Config, check: bool) -> Result<(), String> {
    let jid_text = cfg.xmpp.jid.clone().ok_or("xmpp.jid is required")?;
    let jid: jid::Jid = jid_text.parse().map_err(|e| format!("xmpp.jid: {e}"))?;
    let component_secret = cfg
        .component_secret()
        .require("xmpp.component_secret", "XMPP_UPLOAD_COMPONENT_SECRET")?;
    component_secret
        .text()
        .map_err(|e| format!("xmpp.component_secret {e}"))?;
    let common = Common {
        jid,
        component_secret,
        metrics: Arc::new(Metrics::default()),
        online: Arc::new(AtomicBool::new(false)),
        cfg,
    };
    match common.cfg.storage.kind {
        StorageKind::Local => run_local(common, check).await,
        StorageKind::S3 => run_s3(common, check).await,
        StorageKind::External => run_external(common, check).await,
    }
}

/// Builds the service with `try_new`: a bad configuration stops here, with the library's
/// `ConfigError` text.
fn build<S: StorageBackend>(
    config: ServiceConfig,
    storage: S,
) -> Result<Arc<SlotService<S>>, String> {
    SlotService::try_new(config, storage)
        .map(Arc::new)
        .map_err(|e| format!("config: {e}"))
}

fn fallback_owner(jid: &jid::Jid) -> jid::BareJid {
    jid.to_bare()
}

async fn run_local(common: Common, check: bool) -> Result<(), String> {
    let cfg = &common.cfg;
    let dir = cfg
        .storage
        .local
        .dir
        .clone()
        .ok_or("storage.local.dir is required")?;
    let base_url = cfg
        .http
        .base_url
        .clone()
        .ok_or("http.base_url is required")?;
    let key = cfg
        .store_key()
        .require("storage.local.key", "XMPP_UPLOAD_STORE_KEY")?;
    let store = SignedUrlStore::new(base_url.clone(), key.bytes().to_vec())
        .allow_insecure_http(cfg.http.insecure_http);
    let records = records(cfg).await?;
    let service = build(service_config(cfg, &common.jid, Some(&records))?, store)?;
    if check {
        tracing::info!("config: ok (local storage in {})", dir.display());
        return Ok(());
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("storage.local.dir {}: {e}", dir.display()))?;
    let retention = Arc::new(Retention {
        records,
        pending: retention::Pending::default(),
        objects: Objects::Local(dir.clone()),
        policy: retention_policy(cfg),
        metrics: common.metrics.clone(),
        fallback_owner: fallback_owner(&common.jid),
    });
    let found = {
        let r = retention.clone();
        tokio::task::spawn_blocking(move || r.scan_local())
            .await
            .map_err(|e| format!("scan: {e}"))?
            .map_err(|e| format!("storage.local.dir {}: {e}", dir.display()))?
    };
    tracing::info!("retention: {found} stored files found in {}", dir.display());

    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .map_err(|e| format!("http.listen {}: {e}", cfg.http.listen))?;
    tracing::info!("http: listening on {} for {base_url}", cfg.http.listen);
    {
        let (r, m) = (retention.clone(), common.metrics.clone());
        http_store::set_hooks(http_store::Hooks {
            stored: Arc::new(move |key, bytes, ty| r.stored_local(key, bytes, ty)),
            answered: Arc::new(move |status| m.http(status)),
            log: |line| tracing::info!("{line}"),
        });
    }
    let http_cfg = http_store::HttpStoreConfig {
        store_dir: dir.clone(),
        base_url: base_url.clone(),
        stable_base: cfg.stable_base()?,
        log: true,
    };
    let http = tokio::spawn(http_store::serve(listener, service.clone(), http_cfg));
    // Abandoned temporary files of PUTs (the planner handles stored files).
    let temp_purge = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            let d = dir.clone();
            let _ = tokio::task::spawn_blocking(move || {
                http_store::purge(
                    &d,
                    Duration::from_secs(u64::MAX / 4),
                    std::time::SystemTime::now(),
                )
            })
            .await;
        }
    });
    let grace = Duration::from_secs(cfg.http.shutdown_grace_secs);
    let result = serve(common, service, Some(retention), vec![http, temp_purge]).await;
    drain_http(grace).await;
    result
}

async fn run_s3(common: Common, check: bool) -> Result<(), String> {
    let cfg = &common.cfg;
    let s3 = cfg.storage.s3.as_ref().ok_or("[storage.s3] is required")?;
    let secret = config::SecretSource {
        file: s3.secret_access_key_file.clone(),
        env: s3.secret_access_key_env.clone(),
    }
    .require("storage.s3.secret_access_key", "XMPP_UPLOAD_S3_SECRET_KEY")?
    .text()
    .map_err(|e| format!("storage.s3.secret_access_key {e}"))?;
    let store = S3Store::new(S3Config {
        endpoint: s3.endpoint.clone(),
        bucket: s3.bucket.clone(),
        region: s3.region.clone(),
        access_key_id: s3.access_key_id.clone(),
        secret_access_key: secret,
        session_token: None,
        path_style: s3.path_style,
    })
    .allow_insecure_http(s3.insecure_http)
    .key_prefix(s3.key_prefix.clone());
    let store = match &s3.public_get_base {
        Some(base) => store.public_get_base(base.clone()),
        None => store,
    };
    let records = records(cfg).await?;
    let store = Arc::new(store);
    let service = build(
        service_config(cfg, &common.jid, Some(&records))?,
        store.clone(),
    )?;
    if check {
        tracing::info!("config: ok (S3 bucket {})", s3.bucket);
        return Ok(());
    }
    let retention = Arc::new(Retention {
        records,
        pending: retention::Pending::default(),
        objects: Objects::S3(store),
        policy: retention_policy(cfg),
        metrics: common.metrics.clone(),
        fallback_owner: fallback_owner(&common.jid),
    });
    let mut tasks = Vec::new();
    if let Some(stable) = cfg.stable_base()? {
        let listener = tokio::net::TcpListener::bind(cfg.http.listen)
            .await
            .map_err(|e| format!("http.listen {}: {e}", cfg.http.listen))?;
        tracing::info!("http: stable links on {} for {stable}", cfg.http.listen);
        tasks.push(tokio::spawn(ops::serve_stable_links(
            listener,
            service.clone(),
            stable,
            common.metrics.clone(),
        )));
    }
    serve(common, service, Some(retention), tasks).await
}

async fn run_external(common: Common, check: bool) -> Result<(), String> {
    let cfg = &common.cfg;
    let ext = cfg
        .storage
        .external
        .as_ref()
        .ok_or("[storage.external] is required")?;
    let secret = config::SecretSource {
        file: ext.secret_file.clone(),
        env: ext.secret_env.clone(),
    }
    .require("storage.external.secret", "XMPP_UPLOAD_EXTERNAL_SECRET")?;
    let scheme = match ext.scheme {
        ExternalScheme::V1 => Scheme::V1,
        ExternalScheme::V2 => Scheme::V2,
        ExternalScheme::Token => Scheme::Token,
        ExternalScheme::Ejabberd => Scheme::EjabberdV1,
    };
    let store = ExternalStore::new(ext.base_url.clone(), secret.bytes().to_vec(), scheme)
        .allow_insecure_http(ext.insecure_http);
    let service = build(service_config(cfg, &common.jid, None)?, store)?;
    if check {
        tracing::info!("config: ok (external upload server)");
        return Ok(());
    }
    serve(common, service, None, Vec::new()).await
}

/// Waits (bounded) for the HTTP requests in flight to finish.
async fn drain_http(grace: Duration) {
    let start = Instant::now();
    let mut n = http_store::requests_in_flight();
    if n > 0 {
        tracing::info!("http: waiting for {n} requests in flight");
    }
    while n > 0 && start.elapsed() < grace {
        tokio::time::sleep(Duration::from_millis(100)).await;
        n = http_store::requests_in_flight();
    }
    if n > 0 {
        tracing::warn!(
            "http: {n} requests still in flight after {}s; closing",
            grace.as_secs()
        );
    }
}

/// The part every storage kind shares: the operations endpoint, retention, and the XMPP
/// session until a signal. `tasks` are aborted at the end (listeners stop accepting).
async fn serve<S: StorageBackend + 'static>(
    common: Common,
    service: Arc<SlotService<S>>,
    retention: Option<Arc<Retention>>,
    mut tasks: Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), String> {
    let cfg = &common.cfg;
    if let Some(addr) = cfg.ops.listen {
        let admin_token = cfg
            .admin_token()
            .load("ops.admin_token", "XMPP_UPLOAD_ADMIN_TOKEN")?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("ops.listen {addr}: {e}"))?;
        tracing::info!(
            "ops: /healthz and /metrics on {addr}{}",
            if admin_token.is_some() {
                ", admin endpoint on"
            } else {
                ", admin endpoint off"
            }
        );
        tasks.push(tokio::spawn(ops::serve_ops(
            listener,
            Arc::new(ops::Ops {
                metrics: common.metrics.clone(),
                retention: retention.clone(),
                admin_token,
                xmpp_online: common.online.clone(),
            }),
        )));
    }
    if let Some(r) = &retention {
        let every = Duration::from_secs(cfg.retention.interval_secs);
        tasks.push(retention::spawn(r.clone(), every));
    }
    let result = xmpp_loop(&common, &service, retention.as_deref()).await;
    for t in &tasks {
        t.abort();
    }
    result
}

async fn xmpp_loop<S: StorageBackend>(
    common: &Common,
    service: &SlotService<S>,
    retention: Option<&Retention>,
) -> Result<(), String> {
    let cfg = &common.cfg;
    let jid = &common.jid;
    let secret = common.component_secret.text()?;
    let ping_to = cfg.xmpp.ping_to.clone().unwrap_or_else(|| {
        let domain = jid.domain().as_str();
        domain
            .split_once('.')
            .map_or(domain, |(_, parent)| parent)
            .to_owned()
    });
    let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let connector = GuardedConnector {
        dns: DnsConfig::addr(&cfg.xmpp.server),
        limits: stanza_guard::Limits {
            max_depth: cfg.xmpp.max_stanza_depth,
            max_bytes: cfg.xmpp.max_stanza_bytes,
        },
        dropped: dropped.clone(),
    };
    // An S3 PUT started before its URL expired may still be running: checked 30 s later.
    let put_window = Duration::from_secs(cfg.service.put_ttl_secs.saturating_add(30));
    let mut shutdown = Box::pin(shutdown_signal());
    let mut backoff = Duration::from_secs(1);
    let jid_text = jid.to_string();
    loop {
        let connect =
            Component::new_with_connector(&jid_text, &secret, connector.clone(), timeouts());
        let connected = tokio::select! {
            c = tokio::time::timeout(Duration::from_secs(20), connect) => c,
            () = &mut shutdown => return Ok(()),
        };
        match connected {
            Ok(Ok(component)) => {
                tracing::info!("xmpp: online as {} via {}", component.jid, cfg.xmpp.server);
                common.metrics.xmpp_connects.fetch_add(1, Ordering::Relaxed);
                common.online.store(true, Ordering::Relaxed);
                backoff = Duration::from_secs(1);
                let since = Instant::now();
                let ctx = Session {
                    service,
                    charger: retention.and_then(|r| r.records.async_charge()),
                    retention,
                    metrics: &common.metrics,
                    ping_to: &ping_to,
                    put_window,
                    dropped: &dropped,
                };
                let end = session(component, &ctx, &mut shutdown).await;
                common.online.store(false, Ordering::Relaxed);
                match end {
                    SessionEnd::Shutdown => return Ok(()),
                    SessionEnd::Lost => tracing::warn!("xmpp: connection lost; reconnecting"),
                }
                // tokio-xmpp 6 also ends the stream on a stanza it cannot parse (any user can
                // send one): reconnect at once, with a pause only when sessions die at once.
                if since.elapsed() < Duration::from_secs(1) {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(250)) => {}
                        () = &mut shutdown => return Ok(()),
                    }
                }
                continue;
            }
            Ok(Err(e)) => tracing::warn!(
                "xmpp: cannot connect to {}: {e}; retrying in {}s",
                cfg.xmpp.server,
                backoff.as_secs()
            ),
            Err(_) => tracing::warn!(
                "xmpp: connecting to {} timed out; retrying in {}s",
                cfg.xmpp.server,
                backoff.as_secs()
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut shutdown => return Ok(()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// The read timeout is longer than the keep-alive period, so a live link never trips it.
fn timeouts() -> Timeouts {
    Timeouts {
        read_timeout: Duration::from_secs(90),
        response_timeout: Duration::from_secs(30),
    }
}

const KEEPALIVE: Duration = Duration::from_secs(45);

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
    tracing::info!("upload_component: stopping");
}

enum SessionEnd {
    Shutdown,
    Lost,
}

struct Session<'a, S> {
    service: &'a SlotService<S>,
    charger: Option<Arc<dyn retention::AsyncCharge>>,
    retention: Option<&'a Retention>,
    metrics: &'a Metrics,
    ping_to: &'a str,
    put_window: Duration,
    dropped: &'a std::sync::atomic::AtomicU64,
}

async fn session<S: StorageBackend>(
    mut component: Component<GuardedConnector>,
    ctx: &Session<'_, S>,
    shutdown: &mut std::pin::Pin<Box<impl std::future::Future<Output = ()>>>,
) -> SessionEnd {
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let me = component.jid.to_string();
    let mut pings = 0u64;
    let mut dropped_seen = ctx.dropped.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            stanza = component.next() => {
                // tokio-xmpp ends the stream on I/O errors and on stanzas it cannot parse; the
                // connection is then dropped and made anew.
                let Some(stanza) = stanza else { return SessionEnd::Lost };
                let now_dropped = ctx.dropped.load(Ordering::Relaxed);
                if now_dropped != dropped_seen {
                    ctx.metrics
                        .stanzas_dropped
                        .fetch_add(now_dropped - dropped_seen, Ordering::Relaxed);
                    dropped_seen = now_dropped;
                }
                let request = Element::from(stanza);
                let Some(reply) = answer(&request, ctx, &me).await else { continue };
                match Stanza::try_from(reply) {
                    Ok(reply) => {
                        if let Err(e) = component.send_stanza(reply).await {
                            tracing::warn!("xmpp: send failed: {e}");
                            return SessionEnd::Lost;
                        }
                    }
                    Err(e) => tracing::warn!("xmpp: reply not sendable: {e}"),
                }
            }
            _ = keepalive.tick() => {
                pings += 1;
                let ping = format!(
                    "<iq xmlns='{}' type='get' id='keepalive-{pings}' from='{me}' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
                    xmpp_upload::ns::COMPONENT_ACCEPT,
                    ctx.ping_to
                );
                let stanza = ping.parse::<Element>().ok().and_then(|e| Stanza::try_from(e).ok());
                if let Some(stanza) = stanza {
                    if component.send_stanza(stanza).await.is_err() {
                        return SessionEnd::Lost;
                    }
                }
            }
            () = &mut *shutdown => {
                let _ = tokio::time::timeout(Duration::from_secs(2), component.send_end()).await;
                return SessionEnd::Shutdown;
            }
        }
    }
}

/// The reply to one stanza, with its log line and counters.
async fn answer<S: StorageBackend>(
    request: &Element,
    ctx: &Session<'_, S>,
    me: &str,
) -> Option<Element> {
    if let Some(d) = request.get_child("dropped", stanza_guard::DROPPED_NS) {
        let from = request.attr("from").unwrap_or("-");
        tracing::warn!(
            "xmpp: dropped a {} from {} ({} over the limit)",
            request.name(),
            clean(from),
            d.attr("reason").unwrap_or("-")
        );
        return policy_violation(request);
    }
    let now = OffsetDateTime::now_utc();
    // [database] kind = "postgres": the charge and the file record in one statement of the
    // shared database, on the two-phase path (pg_state::answer).
    let pg = ctx.retention.and_then(|r| r.records.pg());
    let answer = match (pg, ctx.charger.as_deref()) {
        (Some(pg), _) => pg_state::answer(ctx.service, pg, request, now).await,
        // Quotas in the service (its MemoryLedger and inventory): the simple path.
        (None, None) => ctx.service.process(request, now),
        // Quotas in the host's own store: the two-phase path, awaited here.
        (None, Some(charger)) => match ctx.service.begin(request, now) {
            Begin::Done(answer) => answer,
            Begin::Charge(pending) => {
                let result = charger.charge(pending.charge()).await;
                pending.complete(result)
            }
        },
    };
    ctx.metrics.outcome(&answer.outcome);
    match &answer.outcome {
        Outcome::Issued(info) => {
            tracing::info!("xmpp: {}", answer.outcome);
            if let Some(r) = ctx.retention {
                r.pending.insert(
                    info.object_key.clone(),
                    PendingUpload {
                        owner: info.requester.to_bare(),
                        size: info.size,
                        content_type: info.content_type.clone(),
                        issued: OffsetDateTime::now_utc(),
                        until: Instant::now() + ctx.put_window,
                    },
                );
            }
        }
        Outcome::Resolved { .. } | Outcome::Refused { .. } => {
            tracing::info!("xmpp: {}", answer.outcome);
        }
        Outcome::NotForThisService => return other_iq(request, me),
        _ => tracing::debug!("xmpp: {}", answer.outcome),
    }
    answer.reply
}

/// `policy-violation` for an IQ get/set the guard cut out (RFC 6120 §8.3.3.12).
fn policy_violation(request: &Element) -> Option<Element> {
    let iq = Iq::parse(request)?.ok()?;
    if !matches!(iq.type_, IqType::Get | IqType::Set) {
        return None;
    }
    let mut reply = xmpp_upload::stanza::iq::service_unavailable(request)?;
    // Same shape as service-unavailable, with the condition replaced.
    for e in reply.children_mut() {
        if e.name() == "error" {
            let err = format!(
                "<error xmlns='{}' type='modify'><policy-violation xmlns='{}'/></error>",
                e.ns(),
                xmpp_upload::ns::XMPP_STANZAS
            );
            if let Ok(err) = err.parse::<Element>() {
                *e = err;
            }
        }
    }
    Some(reply)
}

/// The answer to an IQ request the service does not handle: a pong for an XEP-0199 ping,
/// `service-unavailable` for anything else (RFC 6120 §8.2.3: a get or set is always answered).
/// Messages, presences, results and errors get nothing.
fn other_iq(request: &Element, me: &str) -> Option<Element> {
    let iq = Iq::parse(request)?.ok()?;
    if !matches!(iq.type_, IqType::Get | IqType::Set) {
        return None;
    }
    if iq.type_ == IqType::Get && iq.payload.is_some_and(|p| p.is("ping", "urn:xmpp:ping")) {
        return Some(iq.result(Some(me), None));
    }
    xmpp_upload::stanza::iq::service_unavailable(request)
}

/// A value from a stanza, made safe for a log line: no control characters, at most 80 chars.
fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(80)
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    if s.chars().nth(80).is_some() {
        out.push('…');
    }
    out
}
