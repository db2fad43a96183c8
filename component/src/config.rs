//! The upload component's configuration: a TOML file (`--config FILE`), a few command-line
//! overrides for what is not secret, and secrets read from files or environment variables,
//! never from the command line (where every local user reads them in `/proc/PID/cmdline`).
//!
//! Every secret setting `NAME` is given as `NAME_file = "/path"` (the file's content, one
//! trailing newline removed; a leading `$CREDENTIALS_DIRECTORY/` is expanded, for systemd's
//! `LoadCredential=`) or `NAME_env = "VARIABLE"`. Without either, a default environment
//! variable is tried (`XMPP_UPLOAD_COMPONENT_SECRET`, `XMPP_UPLOAD_SERVICE_SECRET`,
//! `XMPP_UPLOAD_STORE_KEY`, `XMPP_UPLOAD_S3_SECRET_KEY`, `XMPP_UPLOAD_EXTERNAL_SECRET`,
//! `XMPP_UPLOAD_ADMIN_TOKEN`). `component/upload-component.toml` shows every setting.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

/// A secret read from a file or the environment. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text (component secrets and S3 keys are strings).
    pub fn text(&self) -> Result<String, String> {
        String::from_utf8(self.0.to_vec()).map_err(|_| "is not UTF-8 text".to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Where a secret comes from (the setting pair `NAME_file` / `NAME_env`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretSource {
    pub file: Option<PathBuf>,
    pub env: Option<String>,
}

impl SecretSource {
    fn new(file: Option<PathBuf>, env: Option<String>) -> Self {
        Self { file, env }
    }

    /// Reads the secret: the file, else the named variable, else `default_env`. `None` when
    /// none of them is set. Errors name the setting, the file or the variable, never the value.
    pub fn load(&self, setting: &str, default_env: &str) -> Result<Option<Secret>, String> {
        if let Some(path) = &self.file {
            let path = expand_credentials_dir(path);
            warn_if_readable_by_others(&path, setting);
            // The path is not echoed: a secret put in `*_file` by mistake would be.
            let raw = std::fs::read(&path)
                .map_err(|e| format!("{setting}_file: cannot read the file it names: {e}"))?;
            let mut raw = Zeroizing::new(raw);
            if raw.last() == Some(&b'\n') {
                raw.pop();
                if raw.last() == Some(&b'\r') {
                    raw.pop();
                }
            }
            if raw.is_empty() {
                return Err(format!("{setting}_file: the file it names is empty"));
            }
            return Ok(Some(Secret(raw)));
        }
        let var = self.env.as_deref().unwrap_or(default_env);
        match std::env::var_os(var) {
            Some(v) if !v.is_empty() => {
                use std::os::unix::ffi::OsStringExt as _;
                Ok(Some(Secret(Zeroizing::new(v.into_vec()))))
            }
            // The name is not echoed: a secret put in `*_env` by mistake would be.
            _ if self.env.is_some() => Err(format!(
                "{setting}_env: the environment variable it names is not set"
            )),
            _ => Ok(None),
        }
    }

    /// [`SecretSource::load`], required.
    pub fn require(&self, setting: &str, default_env: &str) -> Result<Secret, String> {
        self.load(setting, default_env)?.ok_or_else(|| {
            format!("{setting} is required: set {setting}_file or {setting}_env in the config file, or the environment variable {default_env}")
        })
    }
}

fn expand_credentials_dir(path: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("$CREDENTIALS_DIRECTORY") {
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            return Path::new(&dir).join(rest);
        }
    }
    path.to_owned()
}

fn warn_if_readable_by_others(path: &Path, setting: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "{setting}_file {} is readable by group or others (chmod 600 it)",
                path.display()
            );
        }
    }
}

/// The whole file. Unknown keys are refused, so a typo fails at start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub xmpp: XmppConfig,
    #[serde(default)]
    pub service: ServiceSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub ops: OpsSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub retention: RetentionSection,
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub log: LogSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmppConfig {
    /// The component's JID (`upload.example.org`).
    pub jid: Option<String>,
    /// The XMPP server's component port.
    #[serde(default = "default_xmpp_server")]
    pub server: String,
    pub component_secret_file: Option<PathBuf>,
    pub component_secret_env: Option<String>,
    /// The keep-alive ping target (default: the parent domain of the JID).
    pub ping_to: Option<String>,
    /// The largest stanza accepted from the server, in bytes (see the hostile-stanza notes in
    /// the component's docs).
    #[serde(default = "default_max_stanza_bytes")]
    pub max_stanza_bytes: usize,
    /// The deepest stanza accepted, in element levels (the stanza itself is level 1).
    #[serde(default = "default_max_stanza_depth")]
    pub max_stanza_depth: usize,
    /// Requests answered at once; when that many are in flight the session stops reading
    /// (the server holds the rest).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Requests of one user (bare JID) in flight; one more is answered at once with
    /// `wait`/`resource-constraint`.
    #[serde(default = "default_max_in_flight_per_user")]
    pub max_in_flight_per_user: usize,
}

impl Default for XmppConfig {
    fn default() -> Self {
        Self {
            jid: None,
            server: default_xmpp_server(),
            component_secret_file: None,
            component_secret_env: None,
            ping_to: None,
            max_stanza_bytes: default_max_stanza_bytes(),
            max_stanza_depth: default_max_stanza_depth(),
            max_in_flight: default_max_in_flight(),
            max_in_flight_per_user: default_max_in_flight_per_user(),
        }
    }
}

fn default_xmpp_server() -> String {
    "127.0.0.1:5347".into()
}

fn default_max_stanza_bytes() -> usize {
    256 * 1024
}

fn default_max_stanza_depth() -> usize {
    64
}

fn default_max_in_flight() -> usize {
    256
}

fn default_max_in_flight_per_user() -> usize {
    16
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// Derives slot IDs and file IDs; keep it stable across restarts.
    pub secret_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    /// Secrets used before the current one (key rotation): file IDs and stable links made
    /// with them still resolve.
    #[serde(default)]
    pub previous_secret_files: Vec<PathBuf>,
    #[serde(default = "default_max_file_size")]
    pub max_file_size: u64,
    /// Users of these domains may upload (default: the JID's domain and its parent).
    #[serde(default)]
    pub allow_domains: Vec<String>,
    /// `type/subtype` or `type/*` patterns (default: every type).
    pub allowed_content_types: Option<Vec<String>>,
    #[serde(default = "default_put_ttl")]
    pub put_ttl_secs: u64,
    /// GET URLs expire after this (default: never).
    pub get_ttl_secs: Option<u64>,
    /// File IDs and stable links stop resolving after this (default: never).
    pub file_id_ttl_days: Option<f64>,
    /// Bytes a user may upload per rolling 24 hours.
    pub daily_quota: Option<u64>,
    /// Bytes all users together may upload per rolling 24 hours.
    pub global_daily_quota: Option<u64>,
    /// Bytes a user may keep stored (hard quota, checked at slot time on the inventory).
    pub stored_quota: Option<u64>,
    /// GET URLs are stable links below `{http.base_url}stable/`, answered with a 302.
    #[serde(default)]
    pub stable_links: bool,
}

impl Default for ServiceSection {
    fn default() -> Self {
        Self {
            secret_file: None,
            secret_env: None,
            previous_secret_files: Vec::new(),
            max_file_size: default_max_file_size(),
            allow_domains: Vec::new(),
            allowed_content_types: None,
            put_ttl_secs: default_put_ttl(),
            get_ttl_secs: None,
            file_id_ttl_days: None,
            daily_quota: None,
            global_daily_quota: None,
            stored_quota: None,
            stable_links: false,
        }
    }
}

fn default_max_file_size() -> u64 {
    xmpp_upload::service::DEFAULT_MAX_FILE_SIZE
}

fn default_put_ttl() -> u64 {
    300
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Where the built-in HTTP store listens.
    #[serde(default = "default_http_listen")]
    pub listen: SocketAddr,
    /// The public URL of the HTTP store (https, behind a TLS proxy).
    #[serde(default, deserialize_with = "de_opt_url")]
    pub base_url: Option<Url>,
    /// Allow a plain `http://` base URL on a non-loopback host (never in production).
    #[serde(default)]
    pub insecure_http: bool,
    /// How long in-flight requests may take to finish at shutdown, in seconds.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// Connections open at once, in all (cut to fit the open-file limit at start).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections open at once from one client (an IPv4 address, an IPv6 prefix).
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// IPv6 clients are counted per prefix of this many bits.
    #[serde(default = "default_ipv6_prefix")]
    pub ipv6_prefix: u8,
    /// A new connection must send its request head within this many seconds.
    #[serde(default = "default_conn_timeout")]
    pub header_timeout_secs: u64,
    /// A keep-alive connection may idle this many seconds between requests.
    #[serde(default = "default_conn_timeout")]
    pub idle_timeout_secs: u64,
    /// Above half of max_connections, the header, keep-alive and body-pause deadlines shrink
    /// towards this many seconds, reached at nine tenths full (and kept for 5 s after a peak).
    #[serde(default = "default_timeout_floor")]
    pub timeout_floor_secs: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: default_http_listen(),
            base_url: None,
            insecure_http: false,
            shutdown_grace_secs: default_shutdown_grace(),
            max_connections: default_max_connections(),
            max_connections_per_client: default_max_connections_per_client(),
            ipv6_prefix: default_ipv6_prefix(),
            header_timeout_secs: default_conn_timeout(),
            idle_timeout_secs: default_conn_timeout(),
            timeout_floor_secs: default_timeout_floor(),
        }
    }
}

fn default_max_connections() -> usize {
    2048
}

fn default_max_connections_per_client() -> usize {
    32
}

fn default_ipv6_prefix() -> u8 {
    64
}

fn default_conn_timeout() -> u64 {
    30
}

fn default_timeout_floor() -> u64 {
    2
}

fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_shutdown_grace() -> u64 {
    10
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsSection {
    /// Where `/healthz`, `/metrics` and `/admin/…` listen (keep it private: loopback or an
    /// internal network). Off when unset.
    pub listen: Option<SocketAddr>,
    /// The bearer token of the admin endpoints (`Authorization: Bearer …`). Without one, the
    /// admin endpoints answer 404.
    pub admin_token_file: Option<PathBuf>,
    pub admin_token_env: Option<String>,
    /// Connections open at once on the ops listener (default 16): a reserve of its own,
    /// which floods of the public listener cannot take.
    pub max_connections: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Signed URLs served by the built-in HTTP store.
    #[default]
    Local,
    /// Presigned URLs to an S3-compatible bucket.
    S3,
    /// An external upload server (`mod_http_upload_external` protocol).
    External,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    #[serde(default)]
    pub kind: StorageKind,
    #[serde(default)]
    pub local: LocalStorage,
    pub s3: Option<S3Storage>,
    pub external: Option<ExternalStorage>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalStorage {
    pub dir: Option<PathBuf>,
    /// Signs the URLs; keep it stable so links survive a restart.
    pub key_file: Option<PathBuf>,
    pub key_env: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Storage {
    #[serde(deserialize_with = "de_url")]
    pub endpoint: Url,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key_file: Option<PathBuf>,
    pub secret_access_key_env: Option<String>,
    #[serde(default)]
    pub path_style: bool,
    /// Keys of uploads start with this (`"uploads/"`), so lifecycle rules and listings find them.
    #[serde(default)]
    pub key_prefix: String,
    /// Slot GET URLs become public, unsigned `{base}/{key}` (a CDN or public bucket website).
    #[serde(default, deserialize_with = "de_opt_url")]
    pub public_get_base: Option<Url>,
    /// Allow a plain `http://` endpoint on a non-loopback host.
    #[serde(default)]
    pub insecure_http: bool,
}

fn de_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    let s = String::deserialize(d)?;
    Url::parse(&s).map_err(serde::de::Error::custom)
}

fn de_opt_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
    de_url(d).map(Some)
}

fn default_region() -> String {
    "us-east-1".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExternalScheme {
    V1,
    V2,
    Token,
    Ejabberd,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalStorage {
    #[serde(deserialize_with = "de_url")]
    pub base_url: Url,
    pub scheme: ExternalScheme,
    pub secret_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    #[serde(default)]
    pub insecure_http: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Files older than this are deleted.
    pub max_age_days: Option<f64>,
    /// A user's oldest files are deleted until they keep at most this many bytes.
    pub per_user_soft_quota: Option<u64>,
    /// The oldest files of all are deleted until the store holds at most this many bytes.
    pub total_cap: Option<u64>,
    /// How often the planner runs, in seconds.
    #[serde(default = "default_retention_interval")]
    pub interval_secs: u64,
    /// S3: an object that no record explains (no stored file, no slot) is deleted once it is
    /// this old, in seconds (default 24 h; at least the PUT lifetime plus 30 s).
    #[serde(default = "default_orphan_grace")]
    pub orphan_grace_secs: u64,
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            max_age_days: Some(30.0),
            per_user_soft_quota: None,
            total_cap: None,
            interval_secs: default_retention_interval(),
            orphan_grace_secs: default_orphan_grace(),
        }
    }
}

fn default_retention_interval() -> u64 {
    3600
}

fn default_orphan_grace() -> u64 {
    86_400
}

/// Where the quota ledger and the inventory live: `memory` (one process) or `postgres`
/// (shared by every instance; `pg_state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    #[default]
    Memory,
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    #[serde(default)]
    pub kind: DatabaseKind,
    /// `postgres`: `host=… port=… user=… dbname=…` or a `postgres://` URL, without a password.
    pub url: Option<String>,
    /// `postgres`: the password (file or variable; default variable `XMPP_UPLOAD_DB_PASSWORD`).
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// `postgres`: the schema holding the tables (default `xmpp_upload`).
    pub schema: Option<String>,
    /// `postgres`: this instance's name in the record of deletions (default: the host name
    /// and process ID).
    pub node: Option<String>,
    /// `postgres`: connections in the pool (default 32).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// `postgres`: each statement's limit, and the longest wait for a connection, in
    /// milliseconds (default 5000).
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
}

fn default_pool_size() -> usize {
    32
}

fn default_statement_timeout_ms() -> u64 {
    5000
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            kind: DatabaseKind::default(),
            url: None,
            password_file: None,
            password_env: None,
            schema: None,
            node: None,
            pool_size: default_pool_size(),
            statement_timeout_ms: default_statement_timeout_ms(),
        }
    }
}

impl DatabaseSection {
    /// The database password, when one is configured.
    pub fn password(&self) -> Result<Option<Secret>, String> {
        SecretSource::new(self.password_file.clone(), self.password_env.clone())
            .load("database.password", "XMPP_UPLOAD_DB_PASSWORD")
    }

    /// `statement_timeout_ms`, with its default.
    pub fn statement_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.statement_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: default_level(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

impl Config {
    /// Reads and parses a config file. Errors name the file and the line, never a value.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a config. The error names the line, the key and what was expected, never a
    /// value: neither the file's line (toml's own `Display` shows it) nor the value serde
    /// quotes in a type error (`invalid type: string "…", expected u64`), which could be a
    /// secret typed in by mistake.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| describe_toml_error(text, &e))
    }

    pub fn component_secret(&self) -> SecretSource {
        SecretSource::new(
            self.xmpp.component_secret_file.clone(),
            self.xmpp.component_secret_env.clone(),
        )
    }

    pub fn service_secret(&self) -> SecretSource {
        SecretSource::new(
            self.service.secret_file.clone(),
            self.service.secret_env.clone(),
        )
    }

    pub fn store_key(&self) -> SecretSource {
        SecretSource::new(
            self.storage.local.key_file.clone(),
            self.storage.local.key_env.clone(),
        )
    }

    /// The stable-link base below the HTTP base URL, when stable links are on.
    pub fn stable_base(&self) -> Result<Option<Url>, String> {
        if !self.service.stable_links {
            return Ok(None);
        }
        let base = self
            .http
            .base_url
            .as_ref()
            .ok_or("http.base_url is required for stable links")?;
        base.join("stable/")
            .map(Some)
            .map_err(|e| format!("http.base_url: {e}"))
    }

    pub fn admin_token(&self) -> SecretSource {
        SecretSource::new(
            self.ops.admin_token_file.clone(),
            self.ops.admin_token_env.clone(),
        )
    }

    /// Checks what serde cannot: the settings each storage kind needs.
    pub fn check(&self) -> Result<(), String> {
        if self.xmpp.jid.is_none() {
            return Err("xmpp.jid is required".into());
        }
        match self.storage.kind {
            StorageKind::Local => {
                if self.storage.local.dir.is_none() {
                    return Err("storage.local.dir is required for storage.kind = \"local\"".into());
                }
                if self.http.base_url.is_none() {
                    return Err("http.base_url is required for storage.kind = \"local\"".into());
                }
            }
            StorageKind::S3 => {
                if self.storage.s3.is_none() {
                    return Err("[storage.s3] is required for storage.kind = \"s3\"".into());
                }
                if self.service.stable_links && self.http.base_url.is_none() {
                    return Err("http.base_url is required for stable links".into());
                }
            }
            StorageKind::External => {
                if self.storage.external.is_none() {
                    return Err(
                        "[storage.external] is required for storage.kind = \"external\"".into(),
                    );
                }
                if self.service.stable_links {
                    return Err("stable links need storage.kind = \"local\" or \"s3\"".into());
                }
            }
        }
        for (name, v) in [
            ("service.file_id_ttl_days", self.service.file_id_ttl_days),
            ("retention.max_age_days", self.retention.max_age_days),
        ] {
            if v.is_some_and(|d| !(d > 0.0 && d < 100_000.0)) {
                return Err(format!("{name} must be a positive number of days"));
            }
        }
        if self.retention.interval_secs == 0 {
            return Err("retention.interval_secs must be positive".into());
        }
        if !(1..=1024).contains(&self.database.pool_size) {
            return Err("database.pool_size must be between 1 and 1024".into());
        }
        if !(10..=600_000).contains(&self.database.statement_timeout_ms) {
            return Err("database.statement_timeout_ms must be between 10 and 600000".into());
        }
        if self.retention.orphan_grace_secs < self.service.put_ttl_secs.saturating_add(30) {
            return Err(
                "retention.orphan_grace_secs must be at least service.put_ttl_secs + 30".into(),
            );
        }
        if !(4..=10_000).contains(&self.xmpp.max_stanza_depth) {
            return Err("xmpp.max_stanza_depth must be between 4 and 10000".into());
        }
        if self.xmpp.max_stanza_bytes < 4096 {
            return Err("xmpp.max_stanza_bytes must be at least 4096".into());
        }
        if !(1..=65_536).contains(&self.xmpp.max_in_flight) {
            return Err("xmpp.max_in_flight must be between 1 and 65536".into());
        }
        if !(1..=self.xmpp.max_in_flight).contains(&self.xmpp.max_in_flight_per_user) {
            return Err(
                "xmpp.max_in_flight_per_user must be between 1 and xmpp.max_in_flight".into(),
            );
        }
        let h = &self.http;
        if h.max_connections == 0 || h.max_connections_per_client == 0 {
            return Err(
                "http.max_connections and http.max_connections_per_client must be positive".into(),
            );
        }
        if self.ops.max_connections == Some(0) {
            return Err("ops.max_connections must be positive".into());
        }
        if h.ipv6_prefix > 128 {
            return Err("http.ipv6_prefix must be between 0 and 128".into());
        }
        if h.header_timeout_secs == 0 || h.idle_timeout_secs == 0 || h.timeout_floor_secs == 0 {
            return Err("http.header_timeout_secs, http.idle_timeout_secs and http.timeout_floor_secs must be positive".into());
        }
        Ok(())
    }
}

/// A parse error as `line N: key.path: what was expected`, without any value of the file.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let span = e.span();
    let line = span.as_ref().map_or(0, |s| {
        text.get(..s.start).map_or(0, |t| t.matches('\n').count()) + 1
    });
    let msg = e.message();
    // serde's "invalid type: string \"…\", expected …", "invalid value: …", "unknown variant
    // `…`, expected …" and "invalid length …" quote the value: keep only what was expected.
    let quotes_value = [
        "invalid type",
        "invalid value",
        "unknown variant",
        "invalid length",
    ]
    .iter()
    .any(|p| msg.starts_with(p));
    let what = match msg.split_once(", expected ") {
        Some((_, expected)) if quotes_value => format!("expected {expected}"),
        _ if quotes_value => "a value of the wrong type".to_owned(),
        _ => msg.to_owned(),
    };
    match span.and_then(|s| key_path_at(text, s.start)) {
        Some(path) => format!("line {line}: {path}: {what}"),
        None => format!("line {line}: {what}"),
    }
}

/// The dotted key path of the key or value at byte `pos` of a TOML document.
fn key_path_at(text: &str, pos: usize) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    fn find(t: &DeTable<'_>, pos: usize, path: &mut Vec<String>) -> bool {
        for (k, v) in t.iter() {
            let here = k.span().contains(&pos) || v.span().contains(&pos);
            path.push(k.get_ref().to_string());
            match v.get_ref() {
                DeValue::Table(inner) if find(inner, pos, path) => return true,
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let DeValue::Table(inner) = item.get_ref() {
                            let depth = path.len();
                            path.push(format!("[{i}]"));
                            if find(inner, pos, path) {
                                return true;
                            }
                            path.truncate(depth);
                        }
                    }
                }
                _ => {}
            }
            if here {
                return true;
            }
            path.pop();
        }
        false
    }
    let doc = DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    find(doc.get_ref(), pos, &mut path).then(|| path.join(".").replace(".[", "["))
}

/// Days as a duration, for settings given in (possibly fractional) days.
pub fn days(d: f64) -> time::Duration {
    time::Duration::seconds_f64(d * 86_400.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_config_parses() {
        let text = include_str!("../upload-component.toml");
        let c = Config::parse(text).unwrap();
        c.check().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Config::parse("[xmpp]\njid = 'a'\nsecret = 'x'\n").is_err());
        // A secret written inline is a typo of `*_file`: refused, and not echoed.
        let e = Config::parse("[xmpp]\ncomponent_secret = 'hunter2hunter2hunter2'\n").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn values_of_the_wrong_type_are_not_echoed() {
        let secret = "hunter2-S3CR3T-hunter2";
        // A string where a number goes: the key and the expected type, not the value.
        let e = Config::parse(&format!("[http]\nmax_connections = '{secret}'\n")).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("http.max_connections"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        // A secret typed into an enum or a nested key.
        let e = Config::parse(&format!("[storage]\nkind = '{secret}'\n")).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("storage.kind"), "{e}");
        let e = Config::parse(&format!(
            "[xmpp]\nmax_stanza_depth = {{ x = '{secret}' }}\n"
        ))
        .unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("xmpp.max_stanza_depth"), "{e}");
        let e = Config::parse(&format!(
            "[service]\nallow_domains = [1, '{secret}', true]\n"
        ))
        .unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let e = Config::parse(&format!("[log]\nlevel = ['{secret}']\n")).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("log.level"), "{e}");
    }

    #[test]
    fn a_secret_put_in_env_or_file_by_mistake_is_not_echoed() {
        let secret = "hunter2-S3CR3T-hunter2";
        let c = Config::parse(&format!("[xmpp]\ncomponent_secret_env = '{secret}'\n")).unwrap();
        let e = c
            .component_secret()
            .require("xmpp.component_secret", "NOPE")
            .unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("xmpp.component_secret_env"), "{e}");
        let c = Config::parse(&format!("[ops]\nadmin_token_file = '{secret}'\n")).unwrap();
        let e = c.admin_token().load("ops.admin_token", "NOPE").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn secrets_from_files_and_env_never_debug_printed() {
        let dir =
            std::env::temp_dir().join(format!("upload-component-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s");
        std::fs::write(&f, "sekrit-value-123456\n").unwrap();
        let s = SecretSource::new(Some(f), None)
            .require("x", "NOPE_UNSET_VAR")
            .unwrap();
        assert_eq!(s.bytes(), b"sekrit-value-123456");
        assert!(!format!("{s:?}").contains("sekrit"));
        let missing = SecretSource::new(None, Some("UPLOAD_COMPONENT_TEST_UNSET".into()));
        let e = missing.require("x", "NOPE").unwrap_err();
        assert!(e.contains("x_env"), "{e}");
        assert!(SecretSource::default()
            .load("x", "UPLOAD_COMPONENT_TEST_UNSET2")
            .unwrap()
            .is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
