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
//! * **Slots.** A slot's row is written when it is issued, marked pending until its PUT URL
//!   expires plus a grace ([`PgSettings::slot_ttl`]): it counts against the stored-bytes quota
//!   until then, and stays as the record of the slot's owner until an upload confirms it
//!   ([`PgState::confirm`]) or a reconciliation with the bucket drops it
//!   ([`PgState::expire_slots`]).
//! * **Retention.** [`PgState::run_retention`] plans in SQL (window sums giving the library's
//!   `plan` rules exactly, over every confirmed row), a page of [`PgSettings::batch`]
//!   deletions at a time, oldest first, until the plan is exhausted; for each file it *claims* the row (`UPDATE … WHERE claimed_by IS NULL …
//!   RETURNING`: one instance wins), deletes the object through the caller's function, then
//!   moves the row to `xu_deletions` in one statement (`WITH d AS (DELETE … RETURNING) INSERT
//!   …`). The deletion is recorded exactly once however many instances plan at the same time;
//!   a failed object delete releases the claim, and a claim left by a crashed instance is
//!   taken over after [`CLAIM_TIMEOUT`] (object deletes are idempotent).
//!
//! * **Batches.** Requests do not each take a connection: [`PgState::record_slot`] and
//!   [`PgState::charge`] queue their row (a bounded queue of [`BATCH_QUEUE`]; when full, a
//!   request waits for room at most the statement timeout, then fails as an exhausted pool
//!   would) for a few worker tasks (a quarter of the pool, 1 to 4, per kind). A worker takes one
//!   request, drains what else is queued up to [`BATCH_CAP`] ([`CHARGE_BATCH_CAP`] charges: each
//!   user's lock is held to the end), drops requests whose requester
//!   gave up, and runs the rest as one statement on one connection: one round trip for the
//!   whole batch, so throughput does not depend on pool size × round-trip time. Slot records
//!   are one `INSERT … SELECT * FROM unnest(…) ON CONFLICT (key) DO NOTHING`, in key order.
//!   Charges are one call of `xu_charge_batch`, which runs `xu_charge` for each row in arrival
//!   order (each row sees what the previous ones recorded: the same decisions and retry times
//!   as one-by-one) after taking, up front, every advisory lock the batch needs in the one
//!   order all charges follow (the global lock, then the users' locks by ascending key; a
//!   single `xu_charge` takes global then its user). Held locks only ever wait for later locks
//!   in that order, the expired-charge clean-up skips locked rows instead of waiting, and the
//!   unique keys of `xu_files` are inserted in key order: no cycle of waits, so no deadlock
//!   between batches of one node or of several nodes sharing the database. A batch the
//!   database refuses for a value (SQLSTATE classes 22, 23) is retried one request at a time.
//!   Every statement is bounded by `statement_timeout` and every wait by the call's deadline.
//!
//! The schema (tables, indexes, function) is created idempotently at start, under an advisory
//! lock so that instances starting together do not race. Everything lives in one PostgreSQL
//! schema (`xmpp_upload` by default) set as the session's `search_path`.
//!
//! Connections come from a pool (`deadpool-postgres`, [`PgSettings::pool_size`]); each one has
//! `statement_timeout` set ([`PgSettings::statement_timeout`]), and waiting for a connection,
//! connecting and every call are bounded too: a database that does not answer is an error
//! within about that time, never a hang.
//!
//! Connection: a libpq-style string or URL without a password; the password comes from a file
//! (or the caller's environment), never from the command line. No TLS here (`NoTls`): keep the
//! database on loopback or a private network, or add `postgres-native-tls`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use time::{Duration, OffsetDateTime};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_postgres::{Config, NoTls, Row};
use xmpp_upload::jid::BareJid;
use xmpp_upload::minidom::Element;
use xmpp_upload::service::{
    plan_account_removal, Answer, Begin, ChargeError, DeleteReason, Deletion, Outcome,
    PendingCharge, QuotaExceeded, QuotaScope, RetentionPolicy, StoredFile,
};
use xmpp_upload::storage::StorageBackend;
use xmpp_upload::SlotService;

/// A claim on a file being deleted is taken over by another instance after this long.
pub const CLAIM_TIMEOUT: Duration = Duration::minutes(10);

/// Slot records or charges run as one statement, at most (what else is queued when a worker
/// takes a request joins it, up to this many).
pub const BATCH_CAP: usize = 256;

/// Charges run as one statement, at most: each distinct user of a batch holds an advisory lock
/// until its end, and PostgreSQL's shared lock table has room for about
/// `max_locks_per_transaction` (64) per connection; a batch of [`BATCH_CAP`] distinct users on
/// every worker of several nodes could exhaust it.
pub const CHARGE_BATCH_CAP: usize = 64;

/// Requests that may wait for a batch worker, per kind (records, charges): beyond that a
/// request waits for room, within the statement timeout, then fails as "no free connection".
pub const BATCH_QUEUE: usize = 4 * BATCH_CAP;

/// Files claimed (and their deletions recorded) per statement.
pub const CLAIM_CHUNK: usize = 256;

/// Planned deletions (or an account's files) read per page by default; every page is
/// walked ([`PgSettings::batch`]).
pub const RETENTION_BATCH: i64 = 10_000;

/// How long a slot's upload may still arrive after its PUT URL expired (the HTTP store's grace).
pub const SLOT_GRACE: Duration = Duration::seconds(30);

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
    /// The database did not answer in time (no free connection, no connection, no answer).
    Timeout(&'static str),
    /// The pool is closed or misconfigured.
    Pool(&'static str),
    /// The error of a batched statement, shared by every request of the batch.
    Batch(Arc<PgError>),
}

impl PgError {
    fn from_pool(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => PgError::Db(e),
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
                PgError::Timeout("no free connection")
            }
            PoolError::Timeout(deadpool_postgres::TimeoutType::Create) => {
                PgError::Timeout("connecting")
            }
            PoolError::Timeout(deadpool_postgres::TimeoutType::Recycle) => {
                PgError::Timeout("checking a connection")
            }
            PoolError::Closed => PgError::Pool("closed"),
            PoolError::NoRuntimeSpecified => PgError::Pool("no runtime"),
            PoolError::PostCreateHook(_) => PgError::Pool("connection set-up failed"),
        }
    }
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
            PgError::Timeout(what) => write!(f, "database: timed out ({what})"),
            PgError::Pool(what) => write!(f, "database pool: {what}"),
            PgError::Batch(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PgError::PasswordFile(e) => Some(e),
            PgError::Db(e) => Some(e),
            PgError::Batch(e) => e.source(),
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
    /// Connections in the pool (at least 1).
    pub pool_size: usize,
    /// Each statement's limit (`statement_timeout`); waiting for a connection and connecting
    /// are bounded by it too.
    pub statement_timeout: StdDuration,
    /// Rows read per page by retention and account removal (at least 1).
    pub batch: i64,
    /// How long after its issue a slot's upload may still arrive: the PUT lifetime plus
    /// [`SLOT_GRACE`]. Until then the slot counts against the stored-bytes quota.
    pub slot_ttl: Duration,
}

impl fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("schema", &self.schema)
            .field("node", &self.node)
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("batch", &self.batch)
            .field("slot_ttl", &self.slot_ttl)
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
            pool_size: 32,
            statement_timeout: StdDuration::from_secs(5),
            batch: RETENTION_BATCH,
            slot_ttl: Duration::seconds(300) + SLOT_GRACE,
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
        if self.statement_timeout.is_zero() || self.pool_size == 0 || self.batch < 1 {
            return Err(PgError::Config(
                "statement timeout, pool size and batch must be above 0".into(),
            ));
        }
        config.connect_timeout(self.statement_timeout);
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
        // Set on every connection at start-up: the schema (a checked identifier), UTC, and
        // the statement limit (whatever options the connection string had come first).
        let ms = self.statement_timeout.as_millis().max(1);
        let mut options = config.get_options().map(str::to_owned).unwrap_or_default();
        if !options.is_empty() {
            options.push(' ');
        }
        options.push_str(&format!(
            "-c search_path={s} -c TimeZone=UTC -c statement_timeout={ms}"
        ));
        config.options(&options);
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

/// The shared state of every instance: a pool of connections, each call bounded in time.
pub struct PgState {
    settings: PgSettings,
    pool: Pool,
    /// Slot records, batched into one `INSERT … SELECT unnest(…)` ([`RECORD_BATCH_SQL`]).
    records: mpsc::Sender<Job<FileRow, ()>>,
    /// Charges, batched into one `xu_charge_batch(…)` call ([`CHARGE_BATCH_SQL`]).
    charges: mpsc::Sender<Job<ChargeRow, Option<QuotaExceeded>>>,
}

/// A request waiting for its batch: its row and where the answer goes.
struct Job<T, O> {
    row: T,
    reply: oneshot::Sender<Result<O, PgError>>,
}

/// A `xu_files` row to insert.
struct FileRow {
    key: String,
    owner: String,
    size: i64,
    content_type: Option<String>,
    created: OffsetDateTime,
    pending_until: Option<OffsetDateTime>,
}

/// The arguments of one `xu_charge` call.
struct ChargeRow {
    jid: String,
    bytes: i64,
    now: OffsetDateTime,
    window_s: f64,
    per_user: Option<i64>,
    global: Option<i64>,
    stored: Option<i64>,
    max_age_s: Option<f64>,
    key: Option<String>,
    size: i64,
    content_type: Option<String>,
    pending_until: OffsetDateTime,
}

/// Batch workers per kind: enough to keep several batches in flight (a slow round trip is
/// overlapped: with 20 ms added per round trip, 4 workers left 100 clients waiting about 1.7
/// round trips, 8 bring that down), few enough to leave half of the pool to uploads and
/// retention.
fn batch_workers(pool_size: usize) -> usize {
    (pool_size / 4).clamp(1, 8)
}

/// Whether a failed batch should be retried one request at a time: the database refused a
/// value (data exception, integrity violation), which may be one request's fault only.
fn row_fault(e: &PgError) -> bool {
    match e {
        PgError::Db(e) => e
            .as_db_error()
            .is_some_and(|d| matches!(d.code().code().get(..2), Some("22" | "23"))),
        _ => false,
    }
}

/// Starts `n` workers over `rx`: each takes one request, drains what else is queued (up to
/// `cap` in all), drops those whose requester gave up (its answer timed out: nothing is
/// charged or recorded for it), runs the rest as one statement through `run` (bounded by
/// `deadline`) and answers each. A batch the database refused for a value is retried one
/// request at a time, so one bad request fails alone. Workers end when the [`PgState`] goes.
fn spawn_workers<T, O, F, Fut>(
    n: usize,
    cap: usize,
    rx: mpsc::Receiver<Job<T, O>>,
    pool: Pool,
    deadline: StdDuration,
    run: F,
) where
    T: Send + 'static,
    O: Send + 'static,
    F: Fn(Pool, Vec<T>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(Vec<O>, Vec<T>), (PgError, Vec<T>)>> + Send,
{
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..n {
        let (rx, pool, run) = (rx.clone(), pool.clone(), run.clone());
        tokio::spawn(async move {
            loop {
                let mut jobs = Vec::new();
                {
                    let mut rx = rx.lock().await;
                    let Some(first) = rx.recv().await else {
                        return;
                    };
                    jobs.push(first);
                    while jobs.len() < cap {
                        match rx.try_recv() {
                            Ok(job) => jobs.push(job),
                            Err(_) => break,
                        }
                    }
                }
                jobs.retain(|j| !j.reply.is_closed());
                if jobs.is_empty() {
                    continue;
                }
                let several = jobs.len() > 1;
                let (rows, replies): (Vec<T>, Vec<_>) =
                    jobs.into_iter().map(|j| (j.row, j.reply)).unzip();
                match run_bounded(&run, &pool, rows, deadline).await {
                    Ok((outs, _)) => {
                        for (reply, out) in replies.into_iter().zip(outs) {
                            let _ = reply.send(Ok(out));
                        }
                    }
                    Err((e, rows)) if several && row_fault(&e) => {
                        tracing::warn!("db: a batch was refused ({e}); retrying one at a time");
                        for (reply, row) in replies.into_iter().zip(rows) {
                            if reply.is_closed() {
                                continue;
                            }
                            let one = run_bounded(&run, &pool, vec![row], deadline).await;
                            let _ = reply.send(match one {
                                Ok((mut outs, _)) => outs.pop().ok_or(PgError::Pool("no answer")),
                                Err((e, _)) => Err(e),
                            });
                        }
                    }
                    Err((e, _)) => {
                        let e = Arc::new(e);
                        for reply in replies {
                            let _ = reply.send(Err(PgError::Batch(e.clone())));
                        }
                    }
                }
            }
        });
    }
}

/// `run(pool, rows)` within `deadline`; the rows come back with an error (for a retry).
async fn run_bounded<T, O, F, Fut>(
    run: &F,
    pool: &Pool,
    rows: Vec<T>,
    deadline: StdDuration,
) -> Result<(Vec<O>, Vec<T>), (PgError, Vec<T>)>
where
    F: Fn(Pool, Vec<T>) -> Fut,
    Fut: Future<Output = Result<(Vec<O>, Vec<T>), (PgError, Vec<T>)>>,
{
    let n = rows.len();
    // The rows are moved into the statement's future; a timeout loses them, and a timed-out
    // batch is not retried anyway.
    match tokio::time::timeout(deadline, run(pool.clone(), rows)).await {
        Ok(Ok((outs, rows))) if outs.len() == n => Ok((outs, rows)),
        Ok(Ok((_, rows))) => Err((
            PgError::Pool("a batch answered the wrong number of rows"),
            rows,
        )),
        Ok(Err(e)) => Err(e),
        Err(_) => Err((PgError::Timeout("no answer"), Vec::new())),
    }
}

/// Inserts slot records in one statement, in key order. Duplicate keys keep the first row.
async fn run_records(
    pool: Pool,
    rows: Vec<FileRow>,
) -> Result<(Vec<()>, Vec<FileRow>), (PgError, Vec<FileRow>)> {
    let result = async {
        // Every row is answered alike: sort a permutation of them by key.
        let mut order: Vec<&FileRow> = rows.iter().collect();
        order.sort_by(|a, b| a.key.cmp(&b.key));
        let keys: Vec<&str> = order.iter().map(|r| r.key.as_str()).collect();
        let owners: Vec<&str> = order.iter().map(|r| r.owner.as_str()).collect();
        let sizes: Vec<i64> = order.iter().map(|r| r.size).collect();
        let types: Vec<Option<&str>> = order.iter().map(|r| r.content_type.as_deref()).collect();
        let created: Vec<OffsetDateTime> = order.iter().map(|r| r.created).collect();
        let pending: Vec<Option<OffsetDateTime>> = order.iter().map(|r| r.pending_until).collect();
        let client = pool.get().await.map_err(PgError::from_pool)?;
        let stmt = client.prepare_cached(RECORD_BATCH_SQL).await?;
        client
            .execute(&stmt, &[&keys, &owners, &sizes, &types, &created, &pending])
            .await?;
        Ok::<_, PgError>(())
    }
    .await;
    match result {
        Ok(()) => Ok((vec![(); rows.len()], rows)),
        Err(e) => Err((e, rows)),
    }
}

/// Runs charges in one `xu_charge_batch` call, in arrival order.
async fn run_charges(
    pool: Pool,
    rows: Vec<ChargeRow>,
) -> Result<(Vec<Option<QuotaExceeded>>, Vec<ChargeRow>), (PgError, Vec<ChargeRow>)> {
    let result = async {
        let jid: Vec<&str> = rows.iter().map(|r| r.jid.as_str()).collect();
        let bytes: Vec<i64> = rows.iter().map(|r| r.bytes).collect();
        let now: Vec<OffsetDateTime> = rows.iter().map(|r| r.now).collect();
        let window: Vec<f64> = rows.iter().map(|r| r.window_s).collect();
        let per_user: Vec<Option<i64>> = rows.iter().map(|r| r.per_user).collect();
        let global: Vec<Option<i64>> = rows.iter().map(|r| r.global).collect();
        let stored: Vec<Option<i64>> = rows.iter().map(|r| r.stored).collect();
        let max_age: Vec<Option<f64>> = rows.iter().map(|r| r.max_age_s).collect();
        let key: Vec<Option<&str>> = rows.iter().map(|r| r.key.as_deref()).collect();
        let size: Vec<i64> = rows.iter().map(|r| r.size).collect();
        let types: Vec<Option<&str>> = rows.iter().map(|r| r.content_type.as_deref()).collect();
        let pending: Vec<OffsetDateTime> = rows.iter().map(|r| r.pending_until).collect();
        let client = pool.get().await.map_err(PgError::from_pool)?;
        let stmt = client.prepare_cached(CHARGE_BATCH_SQL).await?;
        let answer = client
            .query(
                &stmt,
                &[
                    &jid, &bytes, &now, &window, &per_user, &global, &stored, &max_age, &key,
                    &size, &types, &pending,
                ],
            )
            .await?;
        let mut outs: Vec<Option<Option<QuotaExceeded>>> = (0..rows.len()).map(|_| None).collect();
        for row in &answer {
            let ord: i32 = row.try_get(0)?;
            let scope: Option<String> = row.try_get(1)?;
            let retry_at: Option<OffsetDateTime> = row.try_get(2)?;
            let slot = usize::try_from(ord)
                .ok()
                .and_then(|o| o.checked_sub(1))
                .and_then(|o| outs.get_mut(o))
                .ok_or(PgError::Pool("a batch answered an unknown row"))?;
            *slot = Some(scope.map(|s| {
                let scope = match s.as_str() {
                    "global" => QuotaScope::Global,
                    "stored" => QuotaScope::Stored,
                    _ => QuotaScope::User,
                };
                QuotaExceeded::new(scope, retry_at)
            }));
        }
        outs.into_iter()
            .map(|o| o.ok_or(PgError::Pool("a batch left a row unanswered")))
            .collect::<Result<Vec<_>, _>>()
    }
    .await;
    match result {
        Ok(outs) => Ok((outs, rows)),
        Err(e) => Err((e, rows)),
    }
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
-- A row with pending_until set is an issued slot whose upload has not been seen: it counts
-- against the stored quota until then, and is kept (its owner known) until reconciled.
ALTER TABLE xu_files ADD COLUMN IF NOT EXISTS pending_until TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS xu_files_pending ON xu_files (pending_until)
    WHERE pending_until IS NOT NULL;
-- Accounts removed, and when: slots issued before that may not store anything.
CREATE TABLE IF NOT EXISTS xu_removed (
    owner      TEXT PRIMARY KEY,
    removed_at TIMESTAMPTZ NOT NULL
);
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
    p_key TEXT, p_size BIGINT, p_type TEXT, p_pending_until TIMESTAMPTZ)
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
        SELECT coalesce(sum(f.size), 0) INTO used FROM xu_files f
        WHERE f.owner = p_jid AND (f.pending_until IS NULL OR f.pending_until > p_now);
        IF used + p_bytes > p_stored THEN
            scope := 'stored';
            retry_at := NULL;
            IF p_bytes <= p_stored AND p_max_age_s IS NOT NULL THEN
                need := used + p_bytes - p_stored;
                -- Bytes leave at the retention age, or when a pending slot expires.
                SELECT r.free_at INTO retry_at FROM (
                    SELECT q.free_at, q.key,
                           sum(q.size) OVER (ORDER BY q.free_at, q.key) AS run
                    FROM (SELECT coalesce(least(f.pending_until,
                                                f.created + make_interval(secs => p_max_age_s)),
                                          f.created + make_interval(secs => p_max_age_s))
                                 AS free_at, f.key, f.size
                          FROM xu_files f
                          WHERE f.owner = p_jid
                            AND (f.pending_until IS NULL OR f.pending_until > p_now)) q) r
                WHERE r.run >= need ORDER BY r.free_at, r.key LIMIT 1;
            END IF;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    IF p_per_user IS NOT NULL OR p_global IS NOT NULL THEN
        INSERT INTO xu_charges (jid, at, bytes) VALUES (p_jid, p_now, p_bytes);
        -- Clean-up only (expired rows count nowhere): rows another transaction holds (a
        -- retention pass deleting them too) are skipped, so a charge never waits on a row lock.
        DELETE FROM xu_charges c WHERE c.id IN (
            SELECT e.id FROM xu_charges e WHERE e.jid = p_jid AND e.at <= p_now - win
            FOR UPDATE SKIP LOCKED);
    END IF;
    IF p_key IS NOT NULL THEN
        INSERT INTO xu_files (key, owner, size, content_type, created, pending_until)
        VALUES (p_key, p_jid, p_size, p_type, p_now, p_pending_until)
        ON CONFLICT (key) DO NOTHING;
    END IF;
    scope := NULL;
    retry_at := NULL;
    RETURN NEXT;
END
$fn$;

-- Many charges in one statement (one transaction): row i of the arrays is xu_charge's call i,
-- made in that order, each seeing what the previous ones recorded, exactly as one-by-one.
-- Deadlock freedom: every advisory lock the batch will need is taken first, before any row is
-- touched, in the one order every charge of every node follows: the global lock, then the
-- users' locks by ascending key (xu_charge alone takes global then its user: the same order);
-- xu_charge's own lock calls then find them held. The only other waits are on the unique index
-- of xu_files (a key inserted by an uncommitted transaction: slot keys are unique) and no row
-- locks (the clean-up skips locked rows), so no cycle of waits can form, across any number of
-- batches and nodes. Every wait is bounded by statement_timeout.
CREATE OR REPLACE FUNCTION xu_charge_batch(
    p_jid TEXT[], p_bytes BIGINT[], p_now TIMESTAMPTZ[], p_window_s DOUBLE PRECISION[],
    p_per_user BIGINT[], p_global BIGINT[], p_stored BIGINT[], p_max_age_s DOUBLE PRECISION[],
    p_key TEXT[], p_size BIGINT[], p_type TEXT[], p_pending_until TIMESTAMPTZ[])
RETURNS TABLE (ord INT, scope TEXT, retry_at TIMESTAMPTZ)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    k INT;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'xu_charge_batch needs READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_global) AS g(v) WHERE g.v IS NOT NULL) THEN
        PERFORM pg_advisory_xact_lock(1481985024, 0);
    END IF;
    FOR k IN SELECT DISTINCT hashtext(u.j) | 1 FROM unnest(p_jid) AS u(j) ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(1481985024, k);
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(p_jid, 1), 0) LOOP
        SELECT c.scope, c.retry_at INTO scope, retry_at
        FROM xu_charge(p_jid[i], p_bytes[i], p_now[i], p_window_s[i], p_per_user[i],
                       p_global[i], p_stored[i], p_max_age_s[i], p_key[i], p_size[i],
                       p_type[i], p_pending_until[i]) AS c;
        ord := i;
        RETURN NEXT;
    END LOOP;
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

fn owner_file(row: &Row) -> Result<Option<StoredFile>, PgError> {
    let owner: String = row.try_get(1)?;
    let Ok(owner) = owner.parse::<BareJid>() else {
        return Ok(None);
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
    Ok(Some(file))
}

/// What the record says about an object found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownObject {
    /// Whose it is.
    pub owner: String,
    /// The row is an issued slot whose upload was not seen yet.
    pub pending: bool,
    /// When the slot was issued (or the file recorded).
    pub created: OffsetDateTime,
    /// The owner's account was removed after the slot was issued.
    pub owner_removed: bool,
}

/// The planner's SQL: the library's [`plan`](xmpp_upload::service::plan) rules over every confirmed row (age; then, of
/// the rest, each owner's oldest files while what they keep from that file on exceeds the
/// soft quota; then, of the rest, the oldest files while what is kept from that file on
/// exceeds the total cap), one page of the result after a `(created, key)` cursor. Keys
/// compare in byte order (`COLLATE "C"`), as the library's planner compares them.
const PLAN_SQL: &str = r#"
WITH f AS (
    SELECT key, owner, size, content_type, created,
           ($1::TIMESTAMPTZ IS NOT NULL AND created <= $1) AS aged
    FROM xu_files WHERE pending_until IS NULL),
s AS (
    SELECT f.*, (NOT aged AND $2::BIGINT IS NOT NULL AND
        sum(CASE WHEN aged THEN 0 ELSE size END) OVER (
            PARTITION BY owner ORDER BY created DESC, key COLLATE "C" DESC
            ROWS UNBOUNDED PRECEDING) > $2) AS over_user
    FROM f),
t AS (
    SELECT s.*, (NOT aged AND NOT over_user AND $3::BIGINT IS NOT NULL AND
        sum(CASE WHEN aged OR over_user THEN 0 ELSE size END) OVER (
            ORDER BY created DESC, key COLLATE "C" DESC
            ROWS UNBOUNDED PRECEDING) > $3) AS over_cap
    FROM s)
SELECT key, owner, size, content_type, created,
       CASE WHEN aged THEN 'age' WHEN over_user THEN 'user' ELSE 'cap' END
FROM t
WHERE (aged OR over_user OR over_cap)
  AND ($4::TIMESTAMPTZ IS NULL OR (created, key COLLATE "C") > ($4, $5::TEXT))
ORDER BY created, key COLLATE "C"
LIMIT $6
"#;

/// A batch of charges: one call of `xu_charge_batch`, one row per charge by `ord` (1-based).
const CHARGE_BATCH_SQL: &str = "SELECT ord, scope, retry_at FROM xu_charge_batch(
     $1::TEXT[], $2::BIGINT[], $3::TIMESTAMPTZ[], $4::FLOAT8[], $5::BIGINT[], $6::BIGINT[],
     $7::BIGINT[], $8::FLOAT8[], $9::TEXT[], $10::BIGINT[], $11::TEXT[], $12::TIMESTAMPTZ[])";

/// A batch of slot records, in key order (two batches inserting a common key meet it in the
/// same order: they cannot wait on each other in a cycle).
const RECORD_BATCH_SQL: &str = "INSERT INTO xu_files
         (key, owner, size, content_type, created, pending_until)
     SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[],
                          $5::TIMESTAMPTZ[], $6::TIMESTAMPTZ[])
     ON CONFLICT (key) DO NOTHING";

/// A keyset cursor: the `(created, key)` of the last row of a page.
type Cursor = Option<(OffsetDateTime, String)>;

impl PgState {
    /// Opens the pool and creates the schema if needed.
    ///
    /// # Errors
    /// Unusable settings, an unreachable database or a failed schema creation.
    pub async fn connect(settings: PgSettings) -> Result<Self, PgError> {
        let config = settings.config()?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let t = settings.statement_timeout;
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(t))
            .create_timeout(Some(t))
            .recycle_timeout(Some(t))
            .build()
            .map_err(|_| PgError::Pool("cannot build the pool"))?;
        let (records, records_rx) = mpsc::channel(BATCH_QUEUE);
        let (charges, charges_rx) = mpsc::channel(BATCH_QUEUE);
        let state = Self {
            settings,
            pool,
            records,
            charges,
        };
        let setup = format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock({LOCK_CLASS}, {LOCK_SCHEMA});
             CREATE SCHEMA IF NOT EXISTS {schema};
             SET LOCAL search_path TO {schema};
             {SCHEMA_SQL}
             COMMIT;",
            schema = state.settings.schema
        );
        state
            .timed(async {
                let client = state.client().await?;
                client.batch_execute(&setup).await?;
                Ok(())
            })
            .await?;
        let workers = batch_workers(state.settings.pool_size);
        let deadline = state.deadline();
        spawn_workers(
            workers,
            BATCH_CAP,
            records_rx,
            state.pool.clone(),
            deadline,
            run_records,
        );
        spawn_workers(
            workers,
            CHARGE_BATCH_CAP,
            charges_rx,
            state.pool.clone(),
            deadline,
            run_charges,
        );
        Ok(state)
    }

    /// Queues `row` for a batch worker and waits for its answer. A full queue is waited on
    /// for at most the statement timeout ("no free connection", like an exhausted pool);
    /// the caller bounds the whole ([`PgState::timed`]).
    async fn submit<T, O>(&self, queue: &mpsc::Sender<Job<T, O>>, row: T) -> Result<O, PgError> {
        let (reply, answer) = oneshot::channel();
        match tokio::time::timeout(
            self.settings.statement_timeout,
            queue.send(Job { row, reply }),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(PgError::Pool("closed")),
            Err(_) => return Err(PgError::Timeout("no free connection")),
        }
        answer.await.unwrap_or(Err(PgError::Pool("closed")))
    }

    /// The longest any one call may take: a connection wait, a connect and a statement.
    fn deadline(&self) -> StdDuration {
        self.settings.statement_timeout * 3 + StdDuration::from_secs(1)
    }

    /// `f`, or [`PgError::Timeout`] once [`PgState::deadline`] passed (a database that
    /// stopped answering without closing the connection).
    async fn timed<T>(&self, f: impl Future<Output = Result<T, PgError>>) -> Result<T, PgError> {
        tokio::time::timeout(self.deadline(), f)
            .await
            .unwrap_or(Err(PgError::Timeout("no answer")))
    }

    /// A connection of the pool (a broken one is replaced).
    async fn client(&self) -> Result<deadpool_postgres::Object, PgError> {
        self.pool.get().await.map_err(PgError::from_pool)
    }

    /// This instance's name.
    pub fn node(&self) -> &str {
        &self.settings.node
    }

    /// The settings this state was opened with.
    pub fn settings(&self) -> &PgSettings {
        &self.settings
    }

    /// Charges a pending slot: the windowed quotas, the stored-bytes quota (with `max_age`,
    /// the retention age, for its retry time) and the slot's record, in one statement.
    ///
    /// # Errors
    /// [`ChargeError::Exceeded`] with the scope and retry time, or
    /// [`ChargeError::Unavailable`] carrying the [`PgError`].
    pub async fn charge(
        &self,
        pending: &PendingCharge,
        max_age: Option<Duration>,
    ) -> Result<(), ChargeError> {
        match self.timed(self.try_charge(pending, max_age)).await {
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
        let row = ChargeRow {
            jid: c.user.as_str().to_owned(),
            bytes: to_i64(c.bytes, "charge")?,
            now: c.now,
            window_s: secs(l.window.max(Duration::SECOND)),
            per_user: to_i64_opt(l.per_user, "per-user quota")?,
            global: to_i64_opt(l.global, "global quota")?,
            stored: to_i64_opt(l.stored, "stored quota")?,
            max_age_s: max_age.map(secs),
            key: Some(info.object_key.clone()),
            size: size.unwrap_or(0),
            content_type: info.content_type.clone(),
            pending_until: c.now + self.settings.slot_ttl,
        };
        self.submit(&self.charges, row).await
    }

    /// Records a stored file (confirmed). A record with the same key is kept as it is.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn record(&self, file: &StoredFile) -> Result<(), PgError> {
        self.timed(self.insert_file(file, None, "ON CONFLICT (key) DO NOTHING"))
            .await
    }

    /// Records an issued slot (for slots issued without a charge): pending until
    /// `pending_until`, then kept until an upload or a reconciliation settles it.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn record_slot(
        &self,
        file: &StoredFile,
        pending_until: OffsetDateTime,
    ) -> Result<(), PgError> {
        let row = FileRow {
            key: file.key.clone(),
            owner: file.owner.as_str().to_owned(),
            size: to_i64(file.size, "size")?,
            content_type: file.content_type.clone(),
            created: file.created,
            pending_until: Some(pending_until),
        };
        self.timed(self.submit(&self.records, row)).await
    }

    /// Inserts a file's row; `on_conflict` (a constant of this module) says what an existing
    /// row of the same key gets.
    async fn insert_file(
        &self,
        file: &StoredFile,
        pending_until: Option<OffsetDateTime>,
        on_conflict: &str,
    ) -> Result<(), PgError> {
        let client = self.client().await?;
        let sql = format!(
            "INSERT INTO xu_files (key, owner, size, content_type, created, pending_until)
             VALUES ($1, $2, $3, $4, $5, $6) {on_conflict}"
        );
        let stmt = client.prepare_cached(&sql).await?;
        client
            .execute(
                &stmt,
                &[
                    &file.key,
                    &file.owner.as_str(),
                    &to_i64(file.size, "size")?,
                    &file.content_type,
                    &file.created,
                    &pending_until,
                ],
            )
            .await?;
        Ok(())
    }

    /// Up to `limit` recorded files (issued slots included), oldest first (rows whose owner
    /// no longer parses are skipped).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn oldest(&self, limit: i64) -> Result<Vec<StoredFile>, PgError> {
        self.page(None, None, limit).await
    }

    /// One page of recorded rows (issued slots included), of everyone or of `owner`, in
    /// `(created, key)` order after `after`.
    async fn page(
        &self,
        owner: Option<&BareJid>,
        after: Option<&(OffsetDateTime, String)>,
        limit: i64,
    ) -> Result<Vec<StoredFile>, PgError> {
        self.timed(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    r#"SELECT key, owner, size, content_type, created FROM xu_files
                     WHERE ($1::TEXT IS NULL OR owner = $1)
                       AND ($2::TIMESTAMPTZ IS NULL
                            OR (created, key COLLATE "C") > ($2, $3::TEXT))
                     ORDER BY created, key COLLATE "C" LIMIT $4"#,
                    &[
                        &owner.map(|o| o.as_str()),
                        &after.map(|a| a.0),
                        &after.map(|a| a.1.as_str()),
                        &limit.max(1),
                    ],
                )
                .await?;
            let mut files = Vec::with_capacity(rows.len());
            for row in &rows {
                files.extend(owner_file(row)?);
            }
            Ok(files)
        })
        .await
    }

    /// Bytes `owner` has recorded, issued slots included.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn stored_bytes(&self, owner: &BareJid) -> Result<u64, PgError> {
        self.timed(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT coalesce(sum(size), 0)::BIGINT FROM xu_files WHERE owner = $1",
                    &[&owner.as_str()],
                )
                .await?;
            Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
        })
        .await
    }

    /// Bytes the stored-bytes quota counts for `owner` at `now`: uploads, and slots whose
    /// upload may still arrive.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn quota_bytes(&self, owner: &BareJid, now: OffsetDateTime) -> Result<u64, PgError> {
        self.timed(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT coalesce(sum(size), 0)::BIGINT FROM xu_files WHERE owner = $1
                     AND (pending_until IS NULL OR pending_until > $2)",
                    &[&owner.as_str(), &now],
                )
                .await?;
            Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
        })
        .await
    }

    /// One page of what the library's [`plan`](xmpp_upload::service::plan) would delete under `policy` at `now` (over
    /// every confirmed row, computed in the database), after `after`, oldest first.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn plan_page(
        &self,
        policy: &RetentionPolicy,
        now: OffsetDateTime,
        after: Option<&(OffsetDateTime, String)>,
        limit: i64,
    ) -> Result<Vec<Deletion>, PgError> {
        let cutoff = policy.max_age.and_then(|age| now.checked_sub(age));
        let soft = to_i64_opt(policy.per_user_soft_quota, "soft quota")?;
        let cap = to_i64_opt(policy.total_cap, "total cap")?;
        self.timed(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    PLAN_SQL,
                    &[
                        &cutoff,
                        &soft,
                        &cap,
                        &after.map(|a| a.0),
                        &after.map(|a| a.1.as_str()),
                        &limit.max(1),
                    ],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let Some(file) = owner_file(row)? else {
                    continue;
                };
                let reason = match row.try_get::<_, &str>(5)? {
                    "age" => DeleteReason::Age,
                    "user" => DeleteReason::UserQuota,
                    _ => DeleteReason::TotalCap,
                };
                // `Deletion` is non-exhaustive and has no constructor: make one through the
                // library's account-removal plan, then set the reason.
                let owner = file.owner.clone();
                for mut d in plan_account_removal(std::slice::from_ref(&file), &owner) {
                    d.reason = reason;
                    out.push(d);
                }
            }
            Ok(out)
        })
        .await
    }

    /// One retention pass: walks the whole plan a page ([`PgSettings::batch`]) at a time,
    /// deleting what it chose ([`PgState::apply`]), and drops quota charges older than
    /// `window`.
    ///
    /// # Errors
    /// When the database fails (object-delete failures are counted, not returned).
    pub async fn run_retention<F, Fut, E>(
        &self,
        policy: &RetentionPolicy,
        window: Duration,
        now: OffsetDateTime,
        mut delete_object: F,
    ) -> Result<RetentionReport, PgError>
    where
        F: FnMut(StoredFile) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: fmt::Display,
    {
        let mut report = RetentionReport::default();
        let mut after: Cursor = None;
        loop {
            let page = self
                .plan_page(policy, now, after.as_ref(), self.settings.batch)
                .await?;
            let full = i64::try_from(page.len()).unwrap_or(i64::MAX) >= self.settings.batch;
            if let Some(last) = page.last() {
                after = Some((last.file.created, last.file.key.clone()));
            }
            let r = self.apply(page, now, &mut delete_object).await?;
            report.add(&r);
            if !full {
                break;
            }
        }
        self.timed(async {
            let client = self.client().await?;
            client
                .execute(
                    "DELETE FROM xu_charges WHERE at <= $1",
                    &[&(now - window.max(Duration::SECOND))],
                )
                .await?;
            Ok(())
        })
        .await?;
        Ok(report)
    }

    /// Deletes planned files: claims them (a chunk of [`CLAIM_CHUNK`] per statement), calls
    /// `delete_object` for each file this instance won, then records the deletions of the
    /// chunk (exactly once across instances) and releases the failed ones.
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
        let mut rest = deletions.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<Deletion> = rest.by_ref().take(CLAIM_CHUNK).collect();
            let keys: Vec<String> = chunk.iter().map(|d| d.file.key.clone()).collect();
            let won = self.claim_all(&keys, now).await?;
            let mut done: Vec<(String, String)> = Vec::new();
            let mut failed: Vec<String> = Vec::new();
            let mut sizes = std::collections::HashMap::new();
            for d in chunk {
                if !won.contains(&d.file.key) {
                    report.skipped += 1;
                    continue;
                }
                let key = d.file.key.clone();
                sizes.insert(key.clone(), (d.file.owner.clone(), d.file.size, d.reason));
                match delete_object(d.file).await {
                    Ok(()) => done.push((key, d.reason.to_string())),
                    Err(e) => {
                        report.failed += 1;
                        tracing::warn!("retention: deleting {key} failed ({e}); retried next pass");
                        failed.push(key);
                    }
                }
            }
            let asked = done.len();
            let recorded = self.finish_all(done, now).await?;
            report.skipped += asked - recorded.len();
            for key in recorded {
                if let Some((owner, size, reason)) = sizes.get(&key) {
                    report.deleted += 1;
                    report.deleted_bytes += size;
                    tracing::info!(
                        "retention: deleted {key} of {owner} ({size} bytes, {reason}) [node {}]",
                        self.settings.node
                    );
                }
            }
            self.release_all(&failed).await?;
        }
        Ok(report)
    }

    /// Claims `keys` for deletion by this instance: the keys this instance won.
    async fn claim_all(
        &self,
        keys: &[String],
        now: OffsetDateTime,
    ) -> Result<std::collections::HashSet<String>, PgError> {
        self.timed(async {
            let client = self.client().await?;
            let stale = now - CLAIM_TIMEOUT;
            let rows = client
                .query(
                    "UPDATE xu_files SET claimed_by = $2, claimed_at = $3
                     WHERE key = ANY($1) AND (claimed_by IS NULL OR claimed_at < $4)
                     RETURNING key",
                    &[&keys, &self.settings.node, &now, &stale],
                )
                .await?;
            rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
        })
        .await
    }

    /// Moves claimed rows to `xu_deletions` with their reasons: the keys recorded by this call.
    async fn finish_all(
        &self,
        done: Vec<(String, String)>,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, PgError> {
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let (keys, reasons): (Vec<String>, Vec<String>) = done.into_iter().unzip();
        self.timed(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "WITH d AS (DELETE FROM xu_files WHERE key = ANY($1) AND claimed_by = $2
                                RETURNING key, owner, size, created)
                     INSERT INTO xu_deletions
                         (key, owner, size, created, deleted_at, deleted_by, reason)
                     SELECT d.key, d.owner, d.size, d.created, $3, $2, r.reason
                     FROM d JOIN unnest($1::TEXT[], $4::TEXT[]) AS r(key, reason)
                          ON r.key = d.key
                     ON CONFLICT (key) DO NOTHING
                     RETURNING key",
                    &[&keys, &self.settings.node, &now, &reasons],
                )
                .await?;
            rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
        })
        .await
    }

    async fn release_all(&self, keys: &[String]) -> Result<(), PgError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.timed(async {
            let client = self.client().await?;
            client
                .execute(
                    "UPDATE xu_files SET claimed_by = NULL, claimed_at = NULL
                     WHERE key = ANY($1) AND claimed_by = $2",
                    &[&keys, &self.settings.node],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// `owner`'s rows (issued slots included), oldest first: every page.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn files_of(&self, owner: &BareJid) -> Result<Vec<StoredFile>, PgError> {
        let mut all = Vec::new();
        let mut after: Cursor = None;
        loop {
            let page = self
                .page(Some(owner), after.as_ref(), self.settings.batch)
                .await?;
            let full = i64::try_from(page.len()).unwrap_or(i64::MAX) >= self.settings.batch;
            if let Some(last) = page.last() {
                after = Some((last.created, last.key.clone()));
            }
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// Account removal: records the removal time (slots issued until then may no longer
    /// store anything, [`PgState::may_store`]), then deletes every file and slot of `owner`,
    /// a page at a time.
    ///
    /// # Errors
    /// When the database fails (object-delete failures are counted, not returned).
    pub async fn remove_account<F, Fut, E>(
        &self,
        owner: &BareJid,
        now: OffsetDateTime,
        mut delete_object: F,
    ) -> Result<RetentionReport, PgError>
    where
        F: FnMut(StoredFile) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: fmt::Display,
    {
        self.mark_removed(owner, now).await?;
        let mut report = RetentionReport::default();
        let mut after: Cursor = None;
        loop {
            let page = self
                .page(Some(owner), after.as_ref(), self.settings.batch)
                .await?;
            let full = i64::try_from(page.len()).unwrap_or(i64::MAX) >= self.settings.batch;
            if let Some(last) = page.last() {
                after = Some((last.created, last.key.clone()));
            }
            let planned = plan_account_removal(&page, owner);
            let r = self.apply(planned, now, &mut delete_object).await?;
            report.add(&r);
            if !full {
                return Ok(report);
            }
        }
    }

    /// Records that `owner`'s account was removed at `at` (the latest removal counts).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn mark_removed(&self, owner: &BareJid, at: OffsetDateTime) -> Result<(), PgError> {
        self.timed(async {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO xu_removed (owner, removed_at) VALUES ($1, $2)
                     ON CONFLICT (owner) DO UPDATE
                     SET removed_at = greatest(xu_removed.removed_at, EXCLUDED.removed_at)",
                    &[&owner.as_str(), &at],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// Whether a slot `owner` was issued at `issued_at` may still store its upload: not when
    /// the account was removed since.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn may_store(
        &self,
        owner: &BareJid,
        issued_at: OffsetDateTime,
    ) -> Result<bool, PgError> {
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached("SELECT removed_at FROM xu_removed WHERE owner = $1")
                .await?;
            let row = client.query_opt(&stmt, &[&owner.as_str()]).await?;
            Ok(match row {
                Some(row) => issued_at > row.try_get::<_, OffsetDateTime>(0)?,
                None => true,
            })
        })
        .await
    }

    /// An upload arrived: the slot's row (whose owner it keeps) becomes a stored file with
    /// the real size, or a row is made now when there is none.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn confirm(&self, file: &StoredFile) -> Result<(), PgError> {
        self.timed(self.insert_file(
            file,
            None,
            "ON CONFLICT (key) DO UPDATE SET size = EXCLUDED.size, pending_until = NULL",
        ))
        .await
    }

    /// A slot's upload never arrived: its record goes, unless an instance is deleting it
    /// right now or it is a stored file.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn forget(&self, key: &str) -> Result<bool, PgError> {
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "DELETE FROM xu_files
                     WHERE key = $1 AND claimed_by IS NULL AND pending_until IS NOT NULL",
                )
                .await?;
            let n = client.execute(&stmt, &[&key]).await?;
            Ok(n == 1)
        })
        .await
    }

    /// Drops the rows of slots whose upload window ended before `before` and that no upload
    /// confirmed. Returns how many went.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn expire_slots(&self, before: OffsetDateTime) -> Result<u64, PgError> {
        self.timed(async {
            let client = self.client().await?;
            Ok(client
                .execute(
                    "DELETE FROM xu_files
                     WHERE pending_until IS NOT NULL AND pending_until < $1
                       AND claimed_by IS NULL",
                    &[&before],
                )
                .await?)
        })
        .await
    }

    /// What the record says about these keys (absent keys: nothing recorded).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn known(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, KnownObject>, PgError> {
        self.timed(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT f.key, f.owner, f.pending_until IS NOT NULL, f.created,
                            coalesce(r.removed_at >= f.created, FALSE)
                     FROM xu_files f LEFT JOIN xu_removed r ON r.owner = f.owner
                     WHERE f.key = ANY($1)",
                    &[&keys],
                )
                .await?;
            let mut out = std::collections::HashMap::with_capacity(rows.len());
            for row in rows {
                out.insert(
                    row.try_get(0)?,
                    KnownObject {
                        owner: row.try_get(1)?,
                        pending: row.try_get(2)?,
                        created: row.try_get(3)?,
                        owner_removed: row.try_get(4)?,
                    },
                );
            }
            Ok(out)
        })
        .await
    }

    /// An object of a pending slot was found in the store with `size` bytes: the slot's row
    /// becomes a stored file (its owner and issue time kept). `true` if a row changed.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn confirm_found(&self, key: &str, size: u64) -> Result<bool, PgError> {
        let size = to_i64(size, "size")?;
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "UPDATE xu_files SET size = $2, pending_until = NULL
                     WHERE key = $1 AND pending_until IS NOT NULL",
                )
                .await?;
            let n = client.execute(&stmt, &[&key, &size]).await?;
            Ok(n == 1)
        })
        .await
    }

    /// How many deletions are recorded (for tests and metrics).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn deletions(&self) -> Result<i64, PgError> {
        self.timed(async {
            let client = self.client().await?;
            Ok(client
                .query_one("SELECT count(*) FROM xu_deletions", &[])
                .await?
                .try_get(0)?)
        })
        .await
    }
}

impl RetentionReport {
    fn add(&mut self, other: &RetentionReport) {
        self.planned += other.planned;
        self.deleted += other.deleted;
        self.skipped += other.skipped;
        self.failed += other.failed;
        self.deleted_bytes += other.deleted_bytes;
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
                if let Err(e) = state
                    .record_slot(&file, now + state.settings.slot_ttl)
                    .await
                {
                    tracing::error!("db: recording a slot failed: {e}");
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
