//! A complete upload service: an XEP-0114 component answering every stanza with
//! `SlotService::process`, the storage of your choice, and the built-in HTTP store.
//!
//! ```text
//! cargo install --path component
//! xmpp-upload-component --config component/upload-component.toml
//! ```
//!
//! Configuration: a TOML file (`component/upload-component.toml` shows every setting). Secrets
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
//!   it (`stanza_guard`), and the runtime's threads get large stacks.
//! * SIGTERM/SIGINT: stop accepting, let HTTP requests in flight finish (bounded by
//!   `http.shutdown_grace_secs`), close the XMPP stream.
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    reason = "a test, example or bench binary: pedantic lints and API reachability are for the library"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use url::Url;
use xmpp_upload_component::app::run;
use xmpp_upload_component::config::Config;

/// Runs an XEP-0363 / p1:http-file-transfer upload service as an XEP-0114 component.
///
/// Secrets are never accepted on the command line: see the config file's `*_file` / `*_env`
/// settings, or the XMPP_UPLOAD_* environment variables.
#[derive(Debug, Parser)]
#[command(name = "xmpp-upload-component", version)]
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
                eprintln!("xmpp-upload-component: config: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    cli.apply(&mut cfg);
    let level = match cfg.log.level.parse::<tracing::Level>() {
        Ok(l) => l,
        Err(_) => {
            // Not echoed, like every config value.
            eprintln!(
                "xmpp-upload-component: log.level: unknown level (error, warn, info, debug or trace)"
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
