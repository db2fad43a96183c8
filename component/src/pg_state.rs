//! Shared state for several upload-service instances on one PostgreSQL database: the quota
//! ledger and the record of stored files, reached through `tokio-postgres` on the crate's
//! two-phase path ([`SlotService::begin`] → charge here → [`PendingCharge::complete`]), with no
//! `block_on` and no `spawn_blocking`.
//!
//! Shared by the examples through `#[path = "support/pg_state.rs"] mod pg_state;`.
//!
//! * **Quotas.** [`PgState::charge`] is one statement, `SELECT * FROM xu_charge(…)`, a PL/pgSQL
//!   function that takes a transaction-scoped advisory lock (the global one when a global cap
//!   is set, then the user's), sums the rolling window, and records the charge together with
//!   the file it pays for, or refuses with the scope and the time the same charge fits again.
//!   Under `READ COMMITTED` (checked: the function refuses to run under any other isolation)
//!   each statement inside the function sees what the previous lock holder committed, so two
//!   instances charging at once never both fit where only one does.
//! * **Files.** The record of stored files (owner, key, size, type, created) is written in the
//!   same statement as the charge (the slot's declared size: the host never sees an S3 PUT),
//!   or by [`PgState::record`] for slots issued without a charge.
//! * **Retention.** [`PgState::run_retention`] plans over the record with the library's
//!   [`plan`]; for each file it *claims* the row (`UPDATE … WHERE claimed_by IS NULL …
//!   RETURNING`: one instance wins), deletes the object through the caller's function, then
//!   moves the row to `xu_deletions` in one statement (`WITH d AS (DELETE … RETURNING) INSERT
//!   …`). The deletion is recorded exactly once however many instances plan at the same time;
//!   a failed object delete releases the claim, and a claim left by a crashed instance is
//!   taken over after [`CLAIM_TIMEOUT`] (object deletes are idempotent).
//!
//! The schema (tables, indexes, function) is created idempotently at start, under an advisory
//! lock so that instances starting together do not race. Everything lives in one PostgreSQL
//! schema (`xmpp_upload` by default) set as the session's `search_path`.
//!
//! Connection: a libpq-style string or URL without a password; the password comes from a file
//! (or the caller's environment), never from the command line. No TLS here (`NoTls`): keep the
//! database on loopback or a private network, or add `postgres-native-tls`.
#![allow(dead_code)] // each example uses a different part of this module

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime};
use tokio::sync::{Mutex, RwLock};
use tokio_postgres::{Client, Config, NoTls};
use xmpp_upload::jid::BareJid;
use xmpp_upload::minidom::Element;
use xmpp_upload::service::{
    plan, Answer, Begin, ChargeError, DeleteReason, Deletion, Outcome, PendingCharge,
    QuotaExceeded, QuotaScope, RetentionPolicy, StoredFile,
};
use xmpp_upload::storage::StorageBackend;
use xmpp_upload::SlotService;

/// A claim on a file being deleted is taken over by another instance after this long.
pub const CLAIM_TIMEOUT: Duration = Duration::minutes(10);

/// Files read per retention pass at most (the oldest first).
pub const RETENTION_BATCH: i64 = 10_000;

/// Why the database could not be used. Never holds the password.
#[derive(Debug)]
pub enum PgError {
    /// The settings are unusable (a password in the connection string, a bad schema name…).
    Config(String),
    /// The password file could not be read.
    PasswordFile(std::io::Error),
    /// The database refused or failed.
    Db(tokio_postgres::Error),
    /// A value does not fit the database's types (a size above `i64::MAX`).
    OutOfRange(&'static str),
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgError::Config(s) => write!(f, "database settings: {s}"),
            PgError::PasswordFile(e) => write!(f, "database password file: {e}"),
            PgError::Db(e) => match e.as_db_error() {
                Some(db) => write!(f, "database: {} ({})", db.message(), db.code().code()),
                None => write!(f, "database: {e}"),
            },
            PgError::OutOfRange(what) => write!(f, "database: {what} out of range"),
        }
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PgError::PasswordFile(e) => Some(e),
            PgError::Db(e) => Some(e),
            _ => None,
        }
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        PgError::Db(e)
    }
}

/// How to reach the database.
#[derive(Clone)]
pub struct PgSettings {
    /// `host=… port=… user=… dbname=…` or `postgres://user@host:port/db`, without a password.
    pub url: String,
    /// The password, read by the caller from a file or the environment.
    pub password: Option<Vec<u8>>,
    /// The PostgreSQL schema holding the tables (created if missing).
    pub schema: String,
    /// This instance's name, recorded with the deletions it makes.
    pub node: String,
}

impl fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("schema", &self.schema)
            .field("node", &self.node)
            .finish()
    }
}

impl PgSettings {
    /// Settings with the default schema and no password.
    pub fn new(url: impl Into<String>, node: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            password: None,
            schema: "xmpp_upload".to_owned(),
            node: node.into(),
        }
    }

    /// Reads the password from `path` (one line; the trailing newline is dropped).
    pub fn password_file(mut self, path: &std::path::Path) -> Result<Self, PgError> {
        let mut bytes = std::fs::read(path).map_err(PgError::PasswordFile)?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        self.password = Some(bytes);
        Ok(self)
    }

    fn config(&self) -> Result<Config, PgError> {
        let mut config: Config = self
            .url
            .parse()
            .map_err(|_| PgError::Config("the connection string does not parse".into()))?;
        if config.get_password().is_some() {
            return Err(PgError::Config(
                "the connection string holds a password: give it as a password file instead".into(),
            ));
        }
        if let Some(p) = &self.password {
            config.password(p);
        }
        if config.get_application_name().is_none() {
            config.application_name("xmpp-upload");
        }
        config.connect_timeout(StdDuration::from_secs(10));
        let s = &self.schema;
        let valid = !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(PgError::Config(format!(
                "schema {s:?}: lower-case letters, digits and _ only"
            )));
        }
        Ok(config)
    }
}

/// What a retention pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    /// Files the plan chose.
    pub planned: usize,
    /// Files this instance deleted and recorded.
    pub deleted: usize,
    /// Files another instance had claimed or already deleted.
    pub skipped: usize,
    /// Object deletions that failed (claim released; retried next pass).
    pub failed: usize,
    /// Bytes this instance deleted.
    pub deleted_bytes: u64,
}

/// The shared state of every instance: one connection, its queries pipelined; remade when it
/// breaks.
pub struct PgState {
    settings: PgSettings,
    config: Config,
    client: RwLock<Arc<Client>>,
    reconnect: Mutex<()>,
}

impl fmt::Debug for PgState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The advisory-lock class of this crate's locks (`pg_advisory_xact_lock(class, n)`).
const LOCK_CLASS: i32 = 0x5855_4c00; // "XUL\0"
const LOCK_SCHEMA: i32 = 1;

const SCHEMA_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS xu_charges (
    id    BIGSERIAL PRIMARY KEY,
    jid   TEXT        NOT NULL,
    at    TIMESTAMPTZ NOT NULL,
    bytes BIGINT      NOT NULL CHECK (bytes >= 0)
);
CREATE INDEX IF NOT EXISTS xu_charges_jid_at ON xu_charges (jid, at);
CREATE INDEX IF NOT EXISTS xu_charges_at ON xu_charges (at);
CREATE TABLE IF NOT EXISTS xu_files (
    key          TEXT PRIMARY KEY,
    owner        TEXT        NOT NULL,
    size         BIGINT      NOT NULL CHECK (size >= 0),
    content_type TEXT,
    created      TIMESTAMPTZ NOT NULL,
    claimed_by   TEXT,
    claimed_at   TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS xu_files_owner ON xu_files (owner, created, key);
CREATE INDEX IF NOT EXISTS xu_files_created ON xu_files (created, key);
CREATE TABLE IF NOT EXISTS xu_deletions (
    key          TEXT PRIMARY KEY,
    owner        TEXT        NOT NULL,
    size         BIGINT      NOT NULL,
    created      TIMESTAMPTZ NOT NULL,
    deleted_at   TIMESTAMPTZ NOT NULL,
    deleted_by   TEXT        NOT NULL,
    reason       TEXT        NOT NULL
);

-- Checks and records one charge atomically. Returns one row: scope NULL = admitted (the
-- charge and, when p_key is given, the file are recorded); else 'user', 'global' or 'stored'
-- with the time the same charge fits again (NULL: never, or unknown).
CREATE OR REPLACE FUNCTION xu_charge(
    p_jid TEXT, p_bytes BIGINT, p_now TIMESTAMPTZ, p_window_s DOUBLE PRECISION,
    p_per_user BIGINT, p_global BIGINT, p_stored BIGINT, p_max_age_s DOUBLE PRECISION,
    p_key TEXT, p_size BIGINT, p_type TEXT)
RETURNS TABLE (scope TEXT, retry_at TIMESTAMPTZ)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    win  INTERVAL := make_interval(secs => p_window_s);
    used BIGINT;
    need BIGINT;
BEGIN
    -- Each statement below must see what the previous lock holder committed.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'xu_charge needs READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
    -- Lock order: global, then user (never the other way round: no deadlock).
    IF p_global IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(1481985024, 0);
    END IF;
    PERFORM pg_advisory_xact_lock(1481985024, hashtext(p_jid) | 1);

    IF p_global IS NOT NULL THEN
        SELECT coalesce(sum(c.bytes), 0) INTO used FROM xu_charges c WHERE c.at > p_now - win;
        IF used + p_bytes > p_global THEN
            scope := 'global';
            retry_at := NULL;
            IF p_bytes <= p_global THEN
                need := used + p_bytes - p_global;
                SELECT r.at + win INTO retry_at FROM (
                    SELECT c.at, sum(c.bytes) OVER (ORDER BY c.at, c.id) AS run
                    FROM xu_charges c WHERE c.at > p_now - win) r
                WHERE r.run >= need ORDER BY r.at LIMIT 1;
            END IF;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    IF p_per_user IS NOT NULL THEN
        SELECT coalesce(sum(c.bytes), 0) INTO used FROM xu_charges c
        WHERE c.jid = p_jid AND c.at > p_now - win;
        IF used + p_bytes > p_per_user THEN
            scope := 'user';
            retry_at := NULL;
            IF p_bytes <= p_per_user THEN
                need := used + p_bytes - p_per_user;
                SELECT r.at + win INTO retry_at FROM (
                    SELECT c.at, sum(c.bytes) OVER (ORDER BY c.at, c.id) AS run
                    FROM xu_charges c WHERE c.jid = p_jid AND c.at > p_now - win) r
                WHERE r.run >= need ORDER BY r.at LIMIT 1;
            END IF;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    IF p_stored IS NOT NULL THEN
        SELECT coalesce(sum(f.size), 0) INTO used FROM xu_files f WHERE f.owner = p_jid;
        IF used + p_bytes > p_stored THEN
            scope := 'stored';
            retry_at := NULL;
            IF p_bytes <= p_stored AND p_max_age_s IS NOT NULL THEN
                need := used + p_bytes - p_stored;
                SELECT r.created + make_interval(secs => p_max_age_s) INTO retry_at FROM (
                    SELECT f.created, f.key,
                           sum(f.size) OVER (ORDER BY f.created, f.key) AS run
                    FROM xu_files f WHERE f.owner = p_jid) r
                WHERE r.run >= need ORDER BY r.created, r.key LIMIT 1;
            END IF;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    IF p_per_user IS NOT NULL OR p_global IS NOT NULL THEN
        INSERT INTO xu_charges (jid, at, bytes) VALUES (p_jid, p_now, p_bytes);
        DELETE FROM xu_charges c WHERE c.jid = p_jid AND c.at <= p_now - win;
    END IF;
    IF p_key IS NOT NULL THEN
        INSERT INTO xu_files (key, owner, size, content_type, created)
        VALUES (p_key, p_jid, p_size, p_type, p_now)
        ON CONFLICT (key) DO NOTHING;
    END IF;
    scope := NULL;
    retry_at := NULL;
    RETURN NEXT;
END
$fn$;
"#;

fn secs(d: Duration) -> f64 {
    d.as_seconds_f64()
}

fn to_i64(v: u64, what: &'static str) -> Result<i64, PgError> {
    i64::try_from(v).map_err(|_| PgError::OutOfRange(what))
}

fn to_i64_opt(v: Option<u64>, what: &'static str) -> Result<Option<i64>, PgError> {
    v.map(|v| to_i64(v, what)).transpose()
}

impl PgState {
    /// Connects and creates the schema if needed.
    ///
    /// # Errors
    /// Unusable settings, an unreachable database or a failed schema creation.
    pub async fn connect(settings: PgSettings) -> Result<Self, PgError> {
        let config = settings.config()?;
        let client = Self::open(&config, &settings.schema).await?;
        let setup = format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock({LOCK_CLASS}, {LOCK_SCHEMA});
             CREATE SCHEMA IF NOT EXISTS {schema};
             SET LOCAL search_path TO {schema};
             {SCHEMA_SQL}
             COMMIT;",
            schema = settings.schema
        );
        client.batch_execute(&setup).await?;
        Ok(Self {
            settings,
            config,
            client: RwLock::new(Arc::new(client)),
            reconnect: Mutex::new(()),
        })
    }

    async fn open(config: &Config, schema: &str) -> Result<Client, PgError> {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the link breaks; the next query reconnects.
            let _ = connection.await;
        });
        // The schema name was checked to be a plain identifier.
        client
            .batch_execute(&format!("SET search_path TO {schema}; SET TIME ZONE 'UTC'"))
            .await?;
        Ok(client)
    }

    /// The connection, remade if it broke (one reconnect at a time).
    async fn client(&self) -> Result<Arc<Client>, PgError> {
        let current = self.client.read().await.clone();
        if !current.is_closed() {
            return Ok(current);
        }
        let _one = self.reconnect.lock().await;
        let current = self.client.read().await.clone();
        if !current.is_closed() {
            return Ok(current);
        }
        let fresh = Arc::new(Self::open(&self.config, &self.settings.schema).await?);
        *self.client.write().await = fresh.clone();
        Ok(fresh)
    }

    /// This instance's name.
    pub fn node(&self) -> &str {
        &self.settings.node
    }

    /// Charges a pending slot: the windowed quotas, the stored-bytes quota (with `max_age`,
    /// the retention age, for its retry time) and the file record, in one statement.
    ///
    /// # Errors
    /// [`ChargeError::Exceeded`] with the scope and retry time, or
    /// [`ChargeError::Unavailable`] carrying the [`PgError`].
    pub async fn charge(
        &self,
        pending: &PendingCharge,
        max_age: Option<Duration>,
    ) -> Result<(), ChargeError> {
        match self.try_charge(pending, max_age).await {
            Ok(None) => Ok(()),
            Ok(Some(refusal)) => Err(refusal.into()),
            Err(e) => Err(ChargeError::unavailable(e)),
        }
    }

    async fn try_charge(
        &self,
        pending: &PendingCharge,
        max_age: Option<Duration>,
    ) -> Result<Option<QuotaExceeded>, PgError> {
        let c = pending.charge();
        let info = pending.info();
        let l = &c.limits;
        let size = info.size.map(|s| to_i64(s, "size")).transpose()?;
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT scope, retry_at FROM xu_charge($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    &c.user.as_str(),
                    &to_i64(c.bytes, "charge")?,
                    &c.now,
                    &secs(l.window.max(Duration::SECOND)),
                    &to_i64_opt(l.per_user, "per-user quota")?,
                    &to_i64_opt(l.global, "global quota")?,
                    &to_i64_opt(l.stored, "stored quota")?,
                    &max_age.map(secs),
                    &Some(info.object_key.as_str()),
                    &size.unwrap_or(0),
                    &info.content_type.as_deref(),
                ],
            )
            .await?;
        let scope: Option<String> = row.try_get(0)?;
        let retry_at: Option<OffsetDateTime> = row.try_get(1)?;
        Ok(scope.map(|s| {
            let scope = match s.as_str() {
                "global" => QuotaScope::Global,
                "stored" => QuotaScope::Stored,
                _ => QuotaScope::User,
            };
            QuotaExceeded::new(scope, retry_at)
        }))
    }

    /// Records a stored file (for slots issued without a charge). A record with the same key
    /// is kept as it is.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn record(&self, file: &StoredFile) -> Result<(), PgError> {
        self.insert_file(file, "ON CONFLICT (key) DO NOTHING").await
    }

    /// Inserts a file's row; `on_conflict` (a constant of this module) says what an existing
    /// row of the same key gets.
    async fn insert_file(&self, file: &StoredFile, on_conflict: &str) -> Result<(), PgError> {
        let client = self.client().await?;
        let sql = format!(
            "INSERT INTO xu_files (key, owner, size, content_type, created)
             VALUES ($1, $2, $3, $4, $5) {on_conflict}"
        );
        client
            .execute(
                &sql,
                &[
                    &file.key,
                    &file.owner.as_str(),
                    &to_i64(file.size, "size")?,
                    &file.content_type,
                    &file.created,
                ],
            )
            .await?;
        Ok(())
    }

    /// Up to `limit` stored files, oldest first (rows whose owner no longer parses are
    /// skipped).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn oldest(&self, limit: i64) -> Result<Vec<StoredFile>, PgError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT key, owner, size, content_type, created FROM xu_files
                 ORDER BY created, key LIMIT $1",
                &[&limit],
            )
            .await?;
        let mut files = Vec::with_capacity(rows.len());
        for row in rows {
            let owner: String = row.try_get(1)?;
            let Ok(owner) = owner.parse::<BareJid>() else {
                continue;
            };
            let size: i64 = row.try_get(2)?;
            let mut file = StoredFile::new(
                owner,
                row.try_get::<_, String>(0)?,
                u64::try_from(size).unwrap_or(0),
                row.try_get(4)?,
            );
            if let Some(t) = row.try_get::<_, Option<String>>(3)? {
                file = file.with_content_type(t);
            }
            files.push(file);
        }
        Ok(files)
    }

    /// Bytes `owner` has stored.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn stored_bytes(&self, owner: &BareJid) -> Result<u64, PgError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT coalesce(sum(size), 0)::BIGINT FROM xu_files WHERE owner = $1",
                &[&owner.as_str()],
            )
            .await?;
        Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
    }

    /// Claims `key` for deletion by this instance: `true` if this instance won it.
    async fn claim(&self, key: &str, now: OffsetDateTime) -> Result<bool, PgError> {
        let client = self.client().await?;
        let stale = now - CLAIM_TIMEOUT;
        let n = client
            .execute(
                "UPDATE xu_files SET claimed_by = $2, claimed_at = $3
                 WHERE key = $1 AND (claimed_by IS NULL OR claimed_at < $4)",
                &[&key, &self.settings.node, &now, &stale],
            )
            .await?;
        Ok(n == 1)
    }

    async fn release(&self, key: &str) -> Result<(), PgError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE xu_files SET claimed_by = NULL, claimed_at = NULL
                 WHERE key = $1 AND claimed_by = $2",
                &[&key, &self.settings.node],
            )
            .await?;
        Ok(())
    }

    /// Moves a claimed file's row to `xu_deletions`: `true` if this call recorded it.
    async fn finish(
        &self,
        key: &str,
        now: OffsetDateTime,
        reason: DeleteReason,
    ) -> Result<bool, PgError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "WITH d AS (DELETE FROM xu_files WHERE key = $1 AND claimed_by = $2
                            RETURNING key, owner, size, created)
                 INSERT INTO xu_deletions (key, owner, size, created, deleted_at, deleted_by, reason)
                 SELECT key, owner, size, created, $3, $2, $4 FROM d
                 ON CONFLICT (key) DO NOTHING",
                &[&key, &self.settings.node, &now, &reason.to_string()],
            )
            .await?;
        Ok(n == 1)
    }

    /// One retention pass: plans over the oldest [`RETENTION_BATCH`] files with `policy`,
    /// deletes what the plan chose ([`PgState::apply`]), and drops quota charges older than
    /// `window`.
    ///
    /// # Errors
    /// When the database fails (object-delete failures are counted, not returned).
    pub async fn run_retention<F, Fut, E>(
        &self,
        policy: &RetentionPolicy,
        window: Duration,
        now: OffsetDateTime,
        delete_object: F,
    ) -> Result<RetentionReport, PgError>
    where
        F: FnMut(StoredFile) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: fmt::Display,
    {
        let files = self.oldest(RETENTION_BATCH).await?;
        let report = self
            .apply(plan(&files, policy, now), now, delete_object)
            .await?;
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM xu_charges WHERE at <= $1",
                &[&(now - window.max(Duration::SECOND))],
            )
            .await?;
        Ok(report)
    }

    /// Deletes planned files: for each one this instance manages to claim, calls
    /// `delete_object`, then records the deletion (exactly once across instances).
    ///
    /// # Errors
    /// When the database fails (object-delete failures are counted, not returned).
    pub async fn apply<F, Fut, E>(
        &self,
        deletions: Vec<Deletion>,
        now: OffsetDateTime,
        mut delete_object: F,
    ) -> Result<RetentionReport, PgError>
    where
        F: FnMut(StoredFile) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: fmt::Display,
    {
        let mut report = RetentionReport {
            planned: deletions.len(),
            ..RetentionReport::default()
        };
        for d in deletions {
            if !self.claim(&d.file.key, now).await? {
                report.skipped += 1;
                continue;
            }
            let key = d.file.key.clone();
            let (owner, size) = (d.file.owner.clone(), d.file.size);
            match delete_object(d.file).await {
                Ok(()) => {
                    if self.finish(&key, now, d.reason).await? {
                        report.deleted += 1;
                        report.deleted_bytes += size;
                        tracing::info!(
                            "retention: deleted {key} of {owner} ({size} bytes, {}) [node {}]",
                            d.reason,
                            self.settings.node
                        );
                    } else {
                        report.skipped += 1;
                    }
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!("retention: deleting {key} failed ({e}); retried next pass");
                    self.release(&key).await?;
                }
            }
        }
        Ok(report)
    }

    /// `owner`'s files, oldest first.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn files_of(&self, owner: &BareJid) -> Result<Vec<StoredFile>, PgError> {
        Ok(self
            .oldest(RETENTION_BATCH)
            .await?
            .into_iter()
            .filter(|f| &f.owner == owner)
            .collect())
    }

    /// An upload arrived: the record made when its slot was charged gets the real size (or
    /// is made now, for slots issued without a charge).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn confirm(&self, file: &StoredFile) -> Result<(), PgError> {
        self.insert_file(file, "ON CONFLICT (key) DO UPDATE SET size = EXCLUDED.size")
            .await
    }

    /// A slot's upload never arrived (its PUT URL expired): its record goes, unless an
    /// instance is deleting it right now.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn forget(&self, key: &str) -> Result<bool, PgError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM xu_files WHERE key = $1 AND claimed_by IS NULL",
                &[&key],
            )
            .await?;
        Ok(n == 1)
    }

    /// How many deletions are recorded (for tests and metrics).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn deletions(&self) -> Result<i64, PgError> {
        let client = self.client().await?;
        Ok(client
            .query_one("SELECT count(*) FROM xu_deletions", &[])
            .await?
            .try_get(0)?)
    }
}

/// Answers one stanza on the two-phase path with the quota and the file record in `state`:
/// the service checks and issues, the database charges, the service replies. Slots issued
/// without a charge are recorded too (a failed record is logged, the slot still goes out).
pub async fn answer<S: StorageBackend>(
    service: &SlotService<S>,
    state: &PgState,
    stanza: &Element,
    now: OffsetDateTime,
) -> Answer {
    let max_age = service.config().retention_policy().max_age;
    match service.begin(stanza, now) {
        Begin::Done(answer) => {
            if let Outcome::Issued(info) = &answer.outcome {
                let mut file = StoredFile::new(
                    info.requester.to_bare(),
                    &info.object_key,
                    info.size.unwrap_or(0),
                    now,
                );
                if let Some(t) = &info.content_type {
                    file = file.with_content_type(t);
                }
                if let Err(e) = state.record(&file).await {
                    tracing::error!("db: recording a file failed: {e}");
                }
            }
            answer
        }
        Begin::Charge(pending) => {
            let result = state.charge(&pending, max_age).await;
            if let Err(ChargeError::Unavailable(e)) = &result {
                tracing::error!("db: quota charge failed: {}", e.cause());
            }
            pending.complete(result)
        }
    }
}
