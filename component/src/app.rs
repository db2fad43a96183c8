//! Wiring: the configuration turned into a slot service, a store, retention and the
//! listeners, for each storage kind; then the XMPP session until a signal.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xmpp_upload::service::RetentionPolicy;
use xmpp_upload::storage::external::{ExternalStore, Scheme};
use xmpp_upload::storage::s3::{S3Config, S3Store};
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::{ServiceConfig, SlotService, StorageBackend};

use crate::config::{self, Config, ExternalScheme, Secret, StorageKind};
use crate::metrics::Metrics;
use crate::retention::{self, Objects, Records, Retention};
use crate::session::xmpp_loop;
use crate::{http_store, ops, pg_state, stable_links};

/// What every storage kind shares.
pub(crate) struct Common {
    pub(crate) cfg: Config,
    pub(crate) jid: jid::Jid,
    pub(crate) component_secret: Secret,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) online: Arc<AtomicBool>,
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
            settings.pool_size = db.pool_size;
            settings.statement_timeout = Duration::from_millis(db.statement_timeout_ms);
            settings.slot_ttl = put_ttl(cfg) + pg_state::SLOT_GRACE;
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

/// Runs the service with this configuration until SIGTERM/SIGINT (`check`: validate and exit).
pub async fn run(cfg: Config, check: bool) -> Result<(), String> {
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

fn put_ttl(cfg: &Config) -> time::Duration {
    time::Duration::seconds(cfg.service.put_ttl_secs.try_into().unwrap_or(i64::MAX))
}

fn orphan_grace(cfg: &Config) -> time::Duration {
    time::Duration::seconds(
        cfg.retention
            .orphan_grace_secs
            .try_into()
            .unwrap_or(i64::MAX),
    )
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
        pending: records.pending(),
        records,
        objects: Objects::Local(dir.clone()),
        policy: retention_policy(cfg),
        metrics: common.metrics.clone(),
        fallback_owner: fallback_owner(&common.jid),
        put_ttl: put_ttl(cfg),
        orphan_grace: orphan_grace(cfg),
        started: time::OffsetDateTime::now_utc(),
    });
    let found = {
        let r = retention.clone();
        tokio::task::spawn_blocking(move || r.scan_local())
            .await
            .map_err(|e| format!("scan: {e}"))?
            .map_err(|e| format!("storage.local.dir {}: {e}", dir.display()))?
    };
    tracing::info!("retention: {found} stored files found in {}", dir.display());

    let listener = http_store::listen(cfg.http.listen, LISTEN_BACKLOG)
        .map_err(|e| format!("http.listen {}: {e}", cfg.http.listen))?;
    tracing::info!("http: listening on {} for {base_url}", cfg.http.listen);
    {
        let (r, m) = (retention.clone(), common.metrics.clone());
        let r2 = retention.clone();
        http_store::set_hooks(http_store::Hooks {
            stored: Arc::new(move |key, bytes, ty, owner| r.stored_local(key, bytes, ty, owner)),
            answered: Arc::new(move |status| m.http(status)),
            log: |line| tracing::info!("{line}"),
            may_store: Some(Arc::new(move |owner, expires| {
                let r = r2.clone();
                Box::pin(async move { r.may_store(owner.as_ref(), expires).await })
            })),
        });
    }
    let http_cfg = http_store::HttpStoreConfig {
        store_dir: dir.clone(),
        base_url: base_url.clone(),
        stable_base: cfg.stable_base()?,
        log: true,
    };
    let opts = http_store::StoreOptions {
        limits: http_limits(cfg),
        ..http_store::StoreOptions::default()
    };
    let http = tokio::spawn(http_store::serve_with(
        listener,
        service.clone(),
        http_cfg,
        opts,
    ));
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
        pending: records.pending(),
        records,
        objects: Objects::S3(store),
        policy: retention_policy(cfg),
        metrics: common.metrics.clone(),
        fallback_owner: fallback_owner(&common.jid),
        put_ttl: put_ttl(cfg),
        orphan_grace: orphan_grace(cfg),
        started: time::OffsetDateTime::now_utc(),
    });
    let mut tasks = Vec::new();
    if let Some(stable) = cfg.stable_base()? {
        let listener = http_store::listen(cfg.http.listen, LISTEN_BACKLOG)
            .map_err(|e| format!("http.listen {}: {e}", cfg.http.listen))?;
        tracing::info!("http: stable links on {} for {stable}", cfg.http.listen);
        tasks.push(tokio::spawn(stable_links::serve(
            listener,
            service.clone(),
            stable,
            common.metrics.clone(),
            http_limits(cfg),
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

/// The public listener's accept queue (see `http_store::listen`).
const LISTEN_BACKLOG: u32 = 4096;

fn ops_max_connections(cfg: &Config) -> usize {
    cfg.ops.max_connections.unwrap_or(16)
}

/// The public listener's caps and deadlines from `[http]`, with the connection caps cut to
/// fit the open-file limit (raised to its hard limit first), less the ops listener's own
/// reserve: a flood of the public listener never takes the descriptors `/healthz` needs.
fn http_limits(cfg: &Config) -> http_store::Limits {
    static OPEN_FILES: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let h = &cfg.http;
    let secs = Duration::from_secs;
    let mut l = http_store::Limits {
        max_connections: h.max_connections,
        max_connections_per_ip: h.max_connections_per_client.min(h.max_connections),
        // The last quarter is kept for clients not yet connected.
        reserve_from: h.max_connections - h.max_connections / 4,
        header_timeout: secs(h.header_timeout_secs),
        idle_timeout: secs(h.idle_timeout_secs),
        ipv6_prefix: h.ipv6_prefix,
        timeout_floor: secs(h.timeout_floor_secs),
        ..http_store::Limits::default()
    };
    let open_files = *OPEN_FILES.get_or_init(ops::raise_open_files_limit);
    if let Some(n) = open_files {
        let ops_reserve = if cfg.ops.listen.is_some() {
            ops_max_connections(cfg) as u64
        } else {
            0
        };
        if l.fit_to_open_files(n, ops_reserve) {
            tracing::warn!(
                "http: at most {} connections ({} per client): the open-file limit is {n} (raise it, e.g. LimitNOFILE= in the systemd unit, to allow http.max_connections = {})",
                l.max_connections,
                l.max_connections_per_ip,
                h.max_connections
            );
        }
    }
    l
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
            ops::ops_limits(ops_max_connections(cfg)),
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
