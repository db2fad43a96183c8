//! Files over time in the upload component: the record of stored files (an
//! [`Inventory`]), the slots waiting for their upload, retention with the library's
//! [`plan`], and deletion of objects on the local store or on S3.
//!
//! * Local store: an upload is recorded when the HTTP store reports a completed, verified PUT
//!   (its owner comes from the slot the component issued, kept until the PUT URL expires, and
//!   is written next to the file as `{slot id}.owner`, so the record is rebuilt from the
//!   store at start-up).
//! * S3: the bucket does not tell when an upload completes; once a PUT URL has expired the
//!   component asks the bucket (a presigned ranged GET) and records the object if it is there.
//! * External servers: they keep their own files; nothing is recorded or deleted here.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jid::BareJid;
use time::OffsetDateTime;
use xmpp_upload::service::{
    plan, plan_account_removal, Charge, ChargeError, Deletion, Inventory, MemoryInventory,
    RetentionPolicy, StoredFile,
};
use xmpp_upload::storage::s3::S3Store;

use super::metrics::Metrics;
use super::pg_state::PgState;

/// A quota store the host charges asynchronously (a database), on the library's two-phase
/// path (`SlotService::begin`, then `PendingCharge::complete` with this result). It checks
/// and records `charge` atomically: the windowed limits and, when `charge.limits.stored` is
/// set, the stored bytes of its own record of files.
pub trait AsyncCharge: Send + Sync + std::fmt::Debug {
    fn charge<'a>(
        &'a self,
        charge: &'a Charge,
    ) -> Pin<Box<dyn Future<Output = Result<(), ChargeError>> + Send + 'a>>;
}

/// The record of stored files and the quota state, chosen by `[database]`.
#[derive(Debug, Clone)]
pub enum Records {
    /// One process, in memory: the service's own `MemoryLedger` (simple path,
    /// `SlotService::process`) and a `MemoryInventory`; the local store's record is rebuilt
    /// from disk at start-up.
    Memory(Arc<MemoryInventory>),
    /// PostgreSQL, shared by every instance: quotas are charged there on the two-phase path
    /// (`pg_state::answer`), files are recorded when their slot is charged and confirmed
    /// when the upload is seen, and deletions are claimed so each happens once.
    Postgres(Arc<PgState>),
}

impl Records {
    pub fn memory() -> Self {
        Self::Memory(Arc::new(MemoryInventory::new()))
    }

    /// The in-process inventory, for `ServiceConfig::inventory` and for the planner (`None`
    /// for a database: see [`Records::pg`]).
    pub fn inventory(&self) -> Option<Arc<dyn Inventory>> {
        match self {
            Self::Memory(m) => Some(m.clone()),
            Self::Postgres(_) => None,
        }
    }

    /// The shared database state, when `[database] kind = "postgres"`.
    pub fn pg(&self) -> Option<&Arc<PgState>> {
        match self {
            Self::Postgres(pg) => Some(pg),
            Self::Memory(_) => None,
        }
    }

    /// The asynchronous quota store, if quotas are charged outside the service (then the
    /// component answers through `begin`/`complete`); `None`: `SlotService::process`.
    pub fn async_charge(&self) -> Option<Arc<dyn AsyncCharge>> {
        match self {
            // PostgreSQL charges on the two-phase path too, with the file record in the same
            // statement, so it needs the pending slot, not only the charge: `pg_state::answer`.
            Self::Memory(_) | Self::Postgres(_) => None,
        }
    }
}

/// A slot issued and not yet uploaded.
#[derive(Debug, Clone)]
pub struct PendingUpload {
    pub owner: BareJid,
    pub size: Option<u64>,
    pub content_type: Option<String>,
    /// When the slot was issued (an S3 upload's record dates from then).
    pub issued: OffsetDateTime,
    /// When the PUT URL expires (plus a grace): after this the upload cannot complete.
    pub until: Instant,
}

/// Slots waiting for their upload, by object key. Bounded: past [`Pending::CAP`] entries,
/// expired ones are dropped first, then new ones are not remembered (their uploads are then
/// recorded with the service's own JID as owner).
#[derive(Debug, Default)]
pub struct Pending {
    map: Mutex<HashMap<String, PendingUpload>>,
}

impl Pending {
    pub const CAP: usize = 200_000;

    pub fn insert(&self, key: String, p: PendingUpload) {
        let mut m = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if m.len() >= Self::CAP {
            let now = Instant::now();
            m.retain(|_, v| v.until > now);
        }
        if m.len() < Self::CAP {
            m.insert(key, p);
        }
    }

    pub fn take(&self, key: &str) -> Option<PendingUpload> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
    }

    /// Removes and returns the entries whose PUT URL has expired.
    pub fn take_expired(&self, now: Instant) -> Vec<(String, PendingUpload)> {
        let mut m = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let keys: Vec<String> = m
            .iter()
            .filter(|(_, v)| v.until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| m.remove(&k).map(|v| (k, v)))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where objects are deleted.
#[derive(Debug, Clone)]
pub enum Objects {
    /// The built-in HTTP store's directory.
    Local(PathBuf),
    /// An S3 bucket, through presigned requests.
    S3(Arc<S3Store>),
    /// An external upload server: nothing to delete from here.
    External,
}

/// Everything retention needs, shared by the planner task, the HTTP store hook and the
/// admin endpoint.
#[derive(Debug)]
pub struct Retention {
    pub records: Records,
    pub pending: Pending,
    pub objects: Objects,
    pub policy: RetentionPolicy,
    pub metrics: Arc<Metrics>,
    /// Owner of files whose uploader is unknown (recorded before a restart without sidecar).
    pub fallback_owner: BareJid,
}

fn is_slot_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `{dir}/{slot id}/{name}`, `{dir}/{slot id}.meta`, `{dir}/{slot id}.owner` for a key of the
/// local store's shape, or `None` for anything else (nothing outside the store is touched).
fn local_paths(dir: &Path, key: &str) -> Option<(PathBuf, PathBuf, PathBuf, PathBuf)> {
    let (id, name) = key.split_once('/')?;
    if !is_slot_id(id) || name.contains(['/', '\\', '\0']) {
        return None;
    }
    let mut parts = Path::new(name).components();
    if !matches!(
        (parts.next(), parts.next()),
        (Some(Component::Normal(_)), None)
    ) {
        return None;
    }
    Some((
        dir.join(id),
        dir.join(id).join(name),
        dir.join(format!("{id}.meta")),
        dir.join(format!("{id}.owner")),
    ))
}

impl Retention {
    /// Records a completed upload of the local store (called by the HTTP store's hook).
    pub fn stored_local(&self, key: &str, size: u64, content_type: Option<&str>) {
        self.metrics.stored(size);
        let pending = self.pending.take(key);
        let owner = pending
            .as_ref()
            .map_or_else(|| self.fallback_owner.clone(), |p| p.owner.clone());
        if let Objects::Local(dir) = &self.objects {
            if let Some((_, _, _, owner_file)) = local_paths(dir, key) {
                // Never through a symlink planted in the store: temporary file + rename.
                let written = super::http_store::write_sidecar_blocking(
                    dir,
                    &owner_file,
                    owner.as_str().as_bytes(),
                );
                if let Err(e) = written {
                    tracing::warn!("retention: cannot write the owner of {key}: {}", e.kind());
                }
            }
        }
        let mut file = StoredFile::new(owner, key, size, OffsetDateTime::now_utc());
        if let Some(t) = content_type {
            file = file.with_content_type(t);
        }
        self.record(file);
    }

    /// Records a file seen in the store: in memory at once, in the database from a task.
    fn record(&self, file: StoredFile) {
        match &self.records {
            Records::Memory(m) => {
                if let Err(e) = m.record(file) {
                    tracing::error!("retention: cannot record a file: {e}");
                }
            }
            Records::Postgres(pg) => {
                let pg = pg.clone();
                tokio::spawn(async move {
                    if let Err(e) = pg.confirm(&file).await {
                        tracing::error!("retention: cannot record {}: {e}", file.key);
                    }
                });
            }
        }
    }

    /// Rebuilds the record of the local store from disk (at start-up, for the in-memory
    /// inventory). Returns how many files were found.
    pub fn scan_local(&self) -> std::io::Result<usize> {
        let Objects::Local(dir) = &self.objects else {
            return Ok(0);
        };
        // A database keeps its record across restarts.
        let Some(inventory) = self.records.inventory() else {
            return Ok(0);
        };
        let mut n = 0;
        for entry in std::fs::read_dir(dir)?.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str() else { continue };
            if !is_slot_id(id) || !entry.metadata().is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let owner = std::fs::read_to_string(dir.join(format!("{id}.owner")))
                .ok()
                .and_then(|s| s.trim().parse::<BareJid>().ok())
                .unwrap_or_else(|| self.fallback_owner.clone());
            let content_type = std::fs::read_to_string(dir.join(format!("{id}.meta")))
                .ok()
                .map(|s| s.trim().to_owned());
            for f in std::fs::read_dir(entry.path())?.flatten() {
                let Ok(m) = f.metadata() else { continue };
                let Some(fname) = f.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if !m.is_file() {
                    continue;
                }
                let created = m
                    .modified()
                    .map(OffsetDateTime::from)
                    .unwrap_or_else(|_| OffsetDateTime::now_utc());
                let mut file =
                    StoredFile::new(owner.clone(), format!("{id}/{fname}"), m.len(), created);
                if let Some(t) = &content_type {
                    file = file.with_content_type(t.clone());
                }
                if inventory.record(file).is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Deletes one object from its store. `Ok(())` also when it was already gone.
    pub async fn delete_object(&self, key: &str) -> Result<(), String> {
        match &self.objects {
            Objects::Local(dir) => {
                let (slot_dir, file, meta, owner) =
                    local_paths(dir, key).ok_or_else(|| "not a key of this store".to_owned())?;
                match tokio::fs::remove_file(&file).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("remove: {}", e.kind())),
                }
                // The slot directory holds one file: once empty, it and its sidecars go.
                if tokio::fs::remove_dir(&slot_dir).await.is_ok() {
                    let _ = tokio::fs::remove_file(&meta).await;
                    let _ = tokio::fs::remove_file(&owner).await;
                }
                Ok(())
            }
            Objects::S3(store) => s3_delete(store.clone(), key.to_owned()).await,
            Objects::External => Err("external upload servers delete their own files".into()),
        }
    }

    /// Deletes what `plan` chose: the object, then its record. Returns how many went.
    pub async fn apply(&self, deletions: Vec<Deletion>) -> usize {
        let inventory = match &self.records {
            Records::Memory(m) => m.clone(),
            Records::Postgres(pg) => {
                let now = OffsetDateTime::now_utc();
                let del = |f: StoredFile| async move { self.delete_object(&f.key).await };
                return match pg.apply(deletions, now, del).await {
                    Ok(r) => {
                        self.metrics.deleted(r.deleted_bytes);
                        r.deleted
                    }
                    Err(e) => {
                        tracing::error!("retention: {e}");
                        0
                    }
                };
            }
        };
        let mut done = 0;
        for d in deletions {
            match self.delete_object(&d.file.key).await {
                Ok(()) => {
                    if let Err(e) = inventory.remove(&d.file.key) {
                        tracing::error!("retention: cannot forget {}: {e}", d.file.key);
                        continue;
                    }
                    self.metrics.deleted(d.file.size);
                    done += 1;
                    tracing::info!(
                        "retention: deleted {} of {} ({} bytes, {})",
                        d.file.key,
                        d.file.owner,
                        d.file.size,
                        d.reason
                    );
                }
                Err(e) => tracing::warn!("retention: cannot delete {}: {e}", d.file.key),
            }
        }
        done
    }

    /// One planner run over the whole record.
    pub async fn run_once(&self) -> usize {
        if let Records::Postgres(pg) = &self.records {
            let now = OffsetDateTime::now_utc();
            let del = |f: StoredFile| async move { self.delete_object(&f.key).await };
            // The quota window is the library's daily one.
            return match pg
                .run_retention(&self.policy, time::Duration::DAY, now, del)
                .await
            {
                Ok(r) => {
                    self.metrics.deleted(r.deleted_bytes);
                    r.deleted
                }
                Err(e) => {
                    tracing::error!("retention: {e}");
                    0
                }
            };
        }
        let Some(inventory) = self.records.inventory() else {
            return 0;
        };
        let files = match inventory.oldest(usize::MAX) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!("retention: {e}");
                return 0;
            }
        };
        let deletions = plan(&files, &self.policy, OffsetDateTime::now_utc());
        if deletions.is_empty() {
            return 0;
        }
        self.apply(deletions).await
    }

    /// Deletes every file of `owner` (account removal).
    pub async fn remove_account(&self, owner: &BareJid) -> Result<(usize, usize), String> {
        let files = match &self.records {
            Records::Memory(m) => m.files_of(owner).map_err(|e| e.to_string())?,
            Records::Postgres(pg) => pg.files_of(owner).await.map_err(|e| e.to_string())?,
        };
        let planned = plan_account_removal(&files, owner);
        let n = planned.len();
        Ok((self.apply(planned).await, n))
    }

    /// S3: checks the uploads whose PUT URL has expired, and records those that arrived.
    pub async fn confirm_s3_uploads(&self) {
        let Objects::S3(store) = &self.objects else {
            return;
        };
        for (key, p) in self.pending.take_expired(Instant::now()) {
            match s3_object_size(store.clone(), key.clone()).await {
                Ok(Some(size)) => {
                    self.metrics.stored(size);
                    let mut file = StoredFile::new(p.owner.clone(), key.clone(), size, p.issued);
                    if let Some(t) = &p.content_type {
                        file = file.with_content_type(t.clone());
                    }
                    self.record(file);
                }
                Ok(None) => {
                    tracing::debug!("retention: {key} was never uploaded");
                    // The record made when its slot was charged goes.
                    if let Some(pg) = self.records.pg() {
                        if let Err(e) = pg.forget(&key).await {
                            tracing::warn!("retention: cannot forget {key}: {e}");
                        }
                    }
                }
                Err(e) => tracing::warn!("retention: cannot check {key}: {e}"),
            }
        }
    }
}

/// Runs the planner (and, for S3, the upload check) every `every`, until the task is aborted.
pub fn spawn(retention: Arc<Retention>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // S3 uploads are checked more often than the planner runs (once a PUT URL expired).
        let mut confirm = tokio::time::interval(Duration::from_secs(30).min(every));
        confirm.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let n = retention.run_once().await;
                    if n > 0 {
                        tracing::info!("retention: {n} files deleted this run");
                    }
                }
                _ = confirm.tick() => retention.confirm_s3_uploads().await,
            }
        }
    })
}

/// How long a presigned housekeeping URL lives (it is used at once).
const HOUSEKEEPING_TTL: time::Duration = time::Duration::seconds(60);

/// Deletes an S3 object through a presigned DELETE (S3 answers 204 whether or not it existed).
pub async fn s3_delete(store: Arc<S3Store>, key: String) -> Result<(), String> {
    let url = store
        .presign_delete(&key, OffsetDateTime::now_utc(), HOUSEKEEPING_TTL)
        .map_err(|e| e.to_string())?;
    let status = tokio::task::spawn_blocking(move || http_call("DELETE", &url, None))
        .await
        .map_err(|e| format!("task: {e}"))??;
    match status.0 {
        200 | 204 | 404 => Ok(()),
        s => Err(format!("S3 answered {s} to DELETE")),
    }
}

/// The size of an S3 object (`None`: absent), through a presigned GET of its first byte.
pub async fn s3_object_size(store: Arc<S3Store>, key: String) -> Result<Option<u64>, String> {
    let url = store
        .presign_get(&key, OffsetDateTime::now_utc(), HOUSEKEEPING_TTL)
        .map_err(|e| e.to_string())?;
    let (status, total) =
        tokio::task::spawn_blocking(move || http_call("GET", &url, Some("bytes=0-0")))
            .await
            .map_err(|e| format!("task: {e}"))??;
    match status {
        200 | 206 => Ok(total),
        // An empty object has no first byte.
        416 => Ok(Some(0)),
        403 | 404 => Ok(None),
        s => Err(format!("S3 answered {s}")),
    }
}

/// One blocking request; the status and the object's total size (from `Content-Range` or
/// `Content-Length`). The URL (a bearer capability) never appears in an error.
fn http_call(
    method: &str,
    url: &url::Url,
    range: Option<&str>,
) -> Result<(u16, Option<u64>), String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    let mut req = agent.request_url(method, url);
    if let Some(r) = range {
        req = req.set("Range", r);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => return Ok((code, None)),
        Err(ureq::Error::Transport(t)) => {
            return Err(format!("transport: {}", t.kind()));
        }
    };
    let total = resp
        .header("Content-Range")
        .and_then(|v| v.rsplit('/').next())
        .and_then(|t| t.trim().parse().ok())
        .or_else(|| resp.header("Content-Length").and_then(|v| v.parse().ok()));
    Ok((resp.status(), total))
}
