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
//!   A PUT that started in time may end later: the slot (with its owner) stays known until
//!   [`Retention::reconcile`], which walks the bucket (ListObjectsV2) every planner run,
//!   records late uploads under their slot's owner, and deletes objects that no record or
//!   slot explains once they are older than `retention.orphan_grace_secs`.
//! * Removed accounts: the removal time is kept per user (in memory or in PostgreSQL); a PUT
//!   of a slot issued before it is refused ([`Retention::may_store`]), and a late S3 upload
//!   of such a slot is deleted by the reconciliation.
//! * Stored-bytes quota in memory: [`MemoryRecords`] counts the slots whose upload may still
//!   arrive on top of the stored files, so slots issued at once cannot overshoot it.
//! * External servers: they keep their own files; nothing is recorded or deleted here.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jid::BareJid;
use time::OffsetDateTime;
use xmpp_upload::service::{
    plan, plan_account_removal, Charge, ChargeError, Deletion, Inventory, InventoryError,
    MemoryInventory, RetentionPolicy, StoredFile,
};
use xmpp_upload::storage::s3::{ListPage, S3Store, MAX_LIST_BODY};

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
    Memory(Arc<MemoryRecords>),
    /// PostgreSQL, shared by every instance: quotas are charged there on the two-phase path
    /// (`pg_state::answer`), files are recorded when their slot is charged and confirmed
    /// when the upload is seen, and deletions are claimed so each happens once.
    Postgres(Arc<PgState>),
}

impl Records {
    pub fn memory() -> Self {
        Self::Memory(Arc::new(MemoryRecords::default()))
    }

    /// The table of slots waiting for their upload: for memory records, the one their
    /// stored-bytes quota counts (give it to [`Retention::pending`]).
    pub fn pending(&self) -> Pending {
        match self {
            Self::Memory(m) => m.pending.clone(),
            Self::Postgres(_) => Pending::default(),
        }
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
///
/// A handle: clones share the table. Slots whose upload window ended without an upload seen
/// are *parked* (S3) until the next reconciliation with the bucket.
#[derive(Debug, Default, Clone)]
pub struct Pending {
    map: Arc<Mutex<Waiting>>,
    parked: Arc<Mutex<HashMap<String, PendingUpload>>>,
}

/// The slots waiting for their upload, with each owner's keys beside them: the stored-bytes
/// quota reads one owner's open slots on every request, which must not cost a walk over
/// everyone's (up to [`Pending::CAP`]).
#[derive(Debug, Default)]
struct Waiting {
    slots: HashMap<String, PendingUpload>,
    by_owner: HashMap<BareJid, HashSet<String>>,
    /// When a full table was last swept of expired slots: at most once a second, so that a
    /// table full of live slots does not cost a sweep per request.
    swept: Option<Instant>,
}

impl Waiting {
    fn insert(&mut self, key: String, p: PendingUpload) {
        let owner = p.owner.clone();
        if let Some(old) = self.slots.insert(key.clone(), p) {
            self.unindex(&old.owner, &key);
        }
        self.by_owner.entry(owner).or_default().insert(key);
    }

    fn remove(&mut self, key: &str) -> Option<PendingUpload> {
        let p = self.slots.remove(key)?;
        self.unindex(&p.owner, key);
        Some(p)
    }

    fn unindex(&mut self, owner: &BareJid, key: &str) {
        if let Some(keys) = self.by_owner.get_mut(owner) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_owner.remove(owner);
            }
        }
    }

    /// Removes and returns the slots for which `gone` holds.
    fn extract(&mut self, gone: impl Fn(&PendingUpload) -> bool) -> Vec<(String, PendingUpload)> {
        let keys: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, p)| gone(p))
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| self.remove(&k).map(|p| (k, p)))
            .collect()
    }
}

impl Pending {
    pub const CAP: usize = 200_000;

    pub fn insert(&self, key: String, p: PendingUpload) {
        let mut m = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if m.slots.len() >= Self::CAP {
            let now = Instant::now();
            if m.swept
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
            {
                m.swept = Some(now);
                m.extract(|v| v.until <= now);
            }
        }
        if m.slots.len() < Self::CAP {
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
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extract(|v| v.until <= now)
    }

    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .slots
            .len()
            + self
                .parked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
    }

    /// Keeps a slot whose upload was not seen by its window's end, until reconciled.
    pub fn park(&self, key: String, p: PendingUpload) {
        let mut m = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
        if m.len() < Self::CAP {
            m.insert(key, p);
        }
    }

    /// The slot of `key`, waiting or parked, removed from the table.
    pub fn take_any(&self, key: &str) -> Option<PendingUpload> {
        self.take(key).or_else(|| {
            self.parked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(key)
        })
    }

    /// Bytes of `owner`'s slots whose upload may still arrive at `now` (a walk over that
    /// owner's slots only).
    pub fn open_bytes(&self, owner: &BareJid, now: Instant) -> u64 {
        let m = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        m.by_owner.get(owner).map_or(0, |keys| {
            keys.iter()
                .filter_map(|k| m.slots.get(k))
                .filter(|p| p.until > now)
                .map(|p| p.size.unwrap_or(0))
                .fold(0, u64::saturating_add)
        })
    }

    /// Forgets every slot of `owner` (account removal).
    pub fn drop_owner(&self, owner: &BareJid) {
        {
            let mut m = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            for key in m.by_owner.remove(owner).unwrap_or_default() {
                m.slots.remove(&key);
            }
        }
        self.parked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, p| &p.owner != owner);
    }

    /// Forgets the slots whose upload window ended before `before` (reconciled: their
    /// uploads would have been listed). Returns how many went.
    pub fn drop_stale(&self, before: Instant) -> usize {
        let mut n = self
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extract(|p| p.until < before)
            .len();
        let mut parked = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
        let len = parked.len();
        parked.retain(|_, p| p.until >= before);
        n += len - parked.len();
        n
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The in-memory record: stored files (the library's [`MemoryInventory`]), the slots waiting
/// for their upload (counted by the stored-bytes quota until their window ends) and the
/// removal time of removed accounts.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    files: MemoryInventory,
    pending: Pending,
    removed: Mutex<HashMap<BareJid, OffsetDateTime>>,
}

impl MemoryRecords {
    /// Records that `owner`'s account was removed at `at` (the latest removal counts).
    pub fn mark_removed(&self, owner: &BareJid, at: OffsetDateTime) {
        let mut m = self.removed.lock().unwrap_or_else(PoisonError::into_inner);
        let t = m.entry(owner.clone()).or_insert(at);
        *t = (*t).max(at);
    }

    /// Whether a slot of `owner` issued at `issued_at` may still store its upload.
    pub fn may_store(&self, owner: &BareJid, issued_at: OffsetDateTime) -> bool {
        self.removed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(owner)
            .is_none_or(|removed| issued_at > *removed)
    }

    /// The slot table this record counts.
    pub fn pending(&self) -> &Pending {
        &self.pending
    }
}

impl Inventory for MemoryRecords {
    fn record(&self, file: StoredFile) -> Result<(), InventoryError> {
        self.files.record(file)
    }
    fn remove(&self, key: &str) -> Result<Option<StoredFile>, InventoryError> {
        self.files.remove(key)
    }
    /// Stored files plus the slots whose upload may still arrive.
    fn stored_bytes(&self, owner: &BareJid) -> Result<u64, InventoryError> {
        Ok(self
            .files
            .stored_bytes(owner)?
            .saturating_add(self.pending.open_bytes(owner, Instant::now())))
    }
    fn files_of(&self, owner: &BareJid) -> Result<Vec<StoredFile>, InventoryError> {
        self.files.files_of(owner)
    }
    fn oldest(&self, limit: usize) -> Result<Vec<StoredFile>, InventoryError> {
        self.files.oldest(limit)
    }
    fn totals(&self) -> Result<(u64, u64), InventoryError> {
        self.files.totals()
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
    /// The PUT URLs' lifetime (`service.put_ttl_secs`): a slot was issued this long before
    /// its URL expires.
    pub put_ttl: time::Duration,
    /// S3: objects no record explains are deleted once this old (`retention.orphan_grace_secs`).
    pub orphan_grace: time::Duration,
    /// When this process started (memory records adopt the objects of older slots).
    pub started: OffsetDateTime,
}

/// One object found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub last_modified: OffsetDateTime,
}

/// One page of a store listing and the token of the next (`None`: the last page).
pub type ListedPage = (Vec<Listed>, Option<String>);

/// Lists the objects of the store, a page at a time.
pub trait ObjectLister: Send + Sync {
    fn page<'a>(
        &'a self,
        continuation: Option<&'a str>,
    ) -> Pin<Box<dyn Future<Output = Result<ListedPage, String>> + Send + 'a>>;
}

/// The bucket's uploads, through presigned ListObjectsV2 requests.
#[derive(Debug, Clone)]
pub struct S3Lister(pub Arc<S3Store>);

impl ObjectLister for S3Lister {
    fn page<'a>(
        &'a self,
        continuation: Option<&'a str>,
    ) -> Pin<Box<dyn Future<Output = Result<ListedPage, String>> + Send + 'a>> {
        Box::pin(async move {
            let store = &self.0;
            let url = store
                .presign_list(
                    store.issued_key_prefix(),
                    continuation,
                    Some(1000),
                    OffsetDateTime::now_utc(),
                    HOUSEKEEPING_TTL,
                )
                .map_err(|e| e.to_string())?;
            let body = tokio::task::spawn_blocking(move || http_body(&url))
                .await
                .map_err(|e| format!("task: {e}"))??;
            let page = ListPage::parse(&body).map_err(|e| format!("listing: {e}"))?;
            let objects = page
                .objects
                .into_iter()
                .map(|o| Listed {
                    key: o.key,
                    size: o.size,
                    last_modified: o.last_modified,
                })
                .collect();
            let next = if page.is_truncated {
                page.next_continuation_token
            } else {
                None
            };
            Ok((objects, next))
        })
    }
}

/// What a reconciliation found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Objects listed.
    pub listed: usize,
    /// Objects already recorded.
    pub known: usize,
    /// Uploads of slots recorded now, under the slot's owner.
    pub recorded: usize,
    /// Objects of slots from before this process started, recorded under the fallback
    /// owner (memory records only: they do not survive a restart).
    pub adopted: usize,
    /// Objects no record explains, deleted (older than the grace).
    pub orphans_deleted: usize,
    /// Objects of slots issued before their owner's account was removed, deleted.
    pub revoked_deleted: usize,
    /// Objects no record explains yet, younger than the grace.
    pub waiting: usize,
    /// Slots whose upload never came, forgotten.
    pub slots_dropped: u64,
    /// Object deletions or record updates that failed (retried next time).
    pub failed: usize,
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
    /// `owner` is the one bound into the PUT URL; without it, the slot's as this process
    /// issued it, else the fallback.
    pub fn stored_local(
        &self,
        key: &str,
        size: u64,
        content_type: Option<&str>,
        owner: Option<&BareJid>,
    ) {
        self.metrics.stored(size);
        let pending = self.pending.take_any(key);
        let owner = match (owner, &pending) {
            (Some(o), _) => o.clone(),
            (None, Some(p)) => p.owner.clone(),
            (None, None) => self.fallback_owner.clone(),
        };
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

    /// One planner run over the whole record. With the local store, slots whose PUT window
    /// (the URL's lifetime and the HTTP store's grace) is over are forgotten first: no upload
    /// can complete after it. (S3 slots wait for [`Retention::reconcile`].)
    pub async fn run_once(&self) -> usize {
        if let Objects::Local(_) = &self.objects {
            let margin = Duration::from_secs(60);
            if let Some(before) = Instant::now().checked_sub(margin) {
                self.pending.drop_stale(before);
            }
            if let Records::Postgres(pg) = &self.records {
                let before = OffsetDateTime::now_utc() - time::Duration::seconds(60);
                match pg.expire_slots(before).await {
                    Ok(n) if n > 0 => tracing::info!("retention: {n} slots never uploaded"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("retention: cannot expire slots: {e}"),
                }
            }
        }
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

    /// Whether the HTTP store may store a PUT of `owner`'s slot whose URL expires at
    /// `expires` (issued `put_ttl` before): not when the account was removed since. A URL
    /// that binds no owner is not checked. A database error refuses.
    pub async fn may_store(&self, owner: Option<&BareJid>, expires: OffsetDateTime) -> bool {
        let Some(owner) = owner else {
            return true;
        };
        let issued = expires - self.put_ttl;
        match &self.records {
            Records::Memory(m) => m.may_store(owner, issued),
            Records::Postgres(pg) => match pg.may_store(owner, issued).await {
                Ok(ok) => ok,
                Err(e) => {
                    tracing::error!("retention: cannot check a slot's owner: {e}");
                    false
                }
            },
        }
    }

    /// Deletes every file of `owner` (account removal), and refuses the uploads of the
    /// slots issued until now.
    pub async fn remove_account(&self, owner: &BareJid) -> Result<(usize, usize), String> {
        self.pending.drop_owner(owner);
        let files = match &self.records {
            Records::Memory(m) => {
                m.mark_removed(owner, OffsetDateTime::now_utc());
                m.files_of(owner).map_err(|e| e.to_string())?
            }
            Records::Postgres(pg) => {
                // Every page of the owner's rows, slots included, after recording the removal.
                let now = OffsetDateTime::now_utc();
                let del = |f: StoredFile| async move { self.delete_object(&f.key).await };
                let r = pg
                    .remove_account(owner, now, del)
                    .await
                    .map_err(|e| e.to_string())?;
                self.metrics.deleted(r.deleted_bytes);
                return Ok((r.deleted, r.planned));
            }
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
                    // A PUT that started in time may still end: the slot stays known (its
                    // database row stays pending) until the next reconciliation.
                    tracing::debug!("retention: {key} not uploaded yet");
                    self.pending.park(key, p);
                }
                Err(e) => {
                    tracing::warn!("retention: cannot check {key}: {e}");
                    self.pending.park(key, p);
                }
            }
        }
    }

    /// Walks the store's listing and makes the record explain every object: an object of a
    /// slot (waiting, parked, or a pending database row) is recorded under the slot's owner
    /// (or deleted when the owner's account was removed after the slot was issued); with
    /// memory records, an object that may come from a slot of an earlier process is recorded
    /// under the fallback owner; any other object is deleted once older than
    /// [`Retention::orphan_grace`]. Then the slots whose upload window ended more than that
    /// grace before the walk started are forgotten.
    ///
    /// # Errors
    /// When the listing or the database fails (the walk stops; nothing is forgotten).
    pub async fn reconcile(
        &self,
        lister: &dyn ObjectLister,
        now: OffsetDateTime,
    ) -> Result<ReconcileReport, String> {
        let started_walk = Instant::now();
        let mut report = ReconcileReport::default();
        // Memory records: a snapshot of the recorded keys (this task is the only one that
        // records S3 objects).
        let recorded: HashSet<String> = match &self.records {
            Records::Memory(m) => m
                .oldest(usize::MAX)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|f| f.key)
                .collect(),
            Records::Postgres(_) => HashSet::new(),
        };
        let adopt_before = self.started + self.put_ttl + crate::pg_state::SLOT_GRACE;
        let mut token: Option<String> = None;
        loop {
            let (objects, next) = lister.page(token.as_deref()).await?;
            report.listed += objects.len();
            let known = match &self.records {
                Records::Postgres(pg) => {
                    let keys: Vec<String> = objects.iter().map(|o| o.key.clone()).collect();
                    pg.known(&keys).await.map_err(|e| e.to_string())?
                }
                Records::Memory(_) => HashMap::new(),
            };
            for o in objects {
                self.reconcile_one(o, &recorded, &known, adopt_before, now, &mut report)
                    .await;
            }
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let grace: Duration = self.orphan_grace.try_into().unwrap_or(Duration::ZERO);
        if let Some(before) = started_walk.checked_sub(grace) {
            self.pending.drop_stale(before);
        }
        if let Records::Postgres(pg) = &self.records {
            let before = now - self.orphan_grace;
            report.slots_dropped = pg.expire_slots(before).await.map_err(|e| e.to_string())?;
        }
        Ok(report)
    }

    async fn reconcile_one(
        &self,
        o: Listed,
        recorded: &HashSet<String>,
        known: &HashMap<String, crate::pg_state::KnownObject>,
        adopt_before: OffsetDateTime,
        now: OffsetDateTime,
        report: &mut ReconcileReport,
    ) {
        if recorded.contains(&o.key) {
            report.known += 1;
            return;
        }
        if let Some(k) = known.get(&o.key) {
            let Records::Postgres(pg) = &self.records else {
                return;
            };
            if !k.pending {
                report.known += 1;
            } else if k.owner_removed {
                self.pending.take_any(&o.key);
                match self.delete_object(&o.key).await {
                    Ok(()) => {
                        report.revoked_deleted += 1;
                        if let Err(e) = pg.forget(&o.key).await {
                            tracing::warn!("retention: cannot forget {}: {e}", o.key);
                        }
                    }
                    Err(e) => {
                        report.failed += 1;
                        tracing::warn!("retention: cannot delete {}: {e}", o.key);
                    }
                }
            } else {
                self.pending.take_any(&o.key);
                match pg.confirm_found(&o.key, o.size).await {
                    Ok(_) => {
                        self.metrics.stored(o.size);
                        report.recorded += 1;
                        tracing::info!(
                            "retention: late upload {} of {} recorded ({} bytes)",
                            o.key,
                            k.owner,
                            o.size
                        );
                    }
                    Err(e) => {
                        report.failed += 1;
                        tracing::warn!("retention: cannot record {}: {e}", o.key);
                    }
                }
            }
            return;
        }
        if let Some(p) = self.pending.take_any(&o.key) {
            let removed = match &self.records {
                Records::Memory(m) => !m.may_store(&p.owner, p.issued),
                Records::Postgres(pg) => !pg.may_store(&p.owner, p.issued).await.unwrap_or(true),
            };
            if removed {
                match self.delete_object(&o.key).await {
                    Ok(()) => report.revoked_deleted += 1,
                    Err(e) => {
                        report.failed += 1;
                        tracing::warn!("retention: cannot delete {}: {e}", o.key);
                    }
                }
                return;
            }
            self.metrics.stored(o.size);
            let mut file = StoredFile::new(p.owner.clone(), o.key.clone(), o.size, p.issued);
            if let Some(t) = &p.content_type {
                file = file.with_content_type(t.clone());
            }
            if let Records::Postgres(pg) = &self.records {
                if let Err(e) = pg.confirm(&file).await {
                    report.failed += 1;
                    tracing::warn!("retention: cannot record {}: {e}", o.key);
                    self.pending.park(o.key, p);
                    return;
                }
            } else {
                self.record(file);
            }
            report.recorded += 1;
            tracing::info!(
                "retention: late upload {} of {} recorded ({} bytes)",
                o.key,
                p.owner,
                o.size
            );
            return;
        }
        if matches!(self.records, Records::Memory(_)) && o.last_modified < adopt_before {
            // Memory records do not survive a restart: the object may be the upload of a
            // slot an earlier process issued.
            self.metrics.stored(o.size);
            self.record(StoredFile::new(
                self.fallback_owner.clone(),
                o.key,
                o.size,
                o.last_modified,
            ));
            report.adopted += 1;
            return;
        }
        if o.last_modified + self.orphan_grace > now {
            report.waiting += 1;
            return;
        }
        match self.delete_object(&o.key).await {
            Ok(()) => {
                report.orphans_deleted += 1;
                tracing::warn!(
                    "retention: deleted {} ({} bytes): no record or slot explains it",
                    o.key,
                    o.size
                );
            }
            Err(e) => {
                report.failed += 1;
                tracing::warn!("retention: cannot delete {}: {e}", o.key);
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
                    if let Objects::S3(store) = &retention.objects {
                        let lister = S3Lister(store.clone());
                        match retention.reconcile(&lister, OffsetDateTime::now_utc()).await {
                            Ok(r) => tracing::info!("retention: bucket reconciled: {r:?}"),
                            Err(e) => tracing::warn!("retention: reconciling the bucket: {e}"),
                        }
                    }
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

/// One blocking GET of a listing: its body (at most [`MAX_LIST_BODY`] bytes). The URL never
/// appears in an error.
fn http_body(url: &url::Url) -> Result<String, String> {
    use std::io::Read;
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let resp = match agent.request_url("GET", url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => {
            return Err(format!("S3 answered {code} to a listing"))
        }
        Err(ureq::Error::Transport(t)) => return Err(format!("transport: {}", t.kind())),
    };
    let mut body = String::new();
    resp.into_reader()
        .take(MAX_LIST_BODY as u64 + 1)
        .read_to_string(&mut body)
        .map_err(|e| format!("listing body: {}", e.kind()))?;
    Ok(body)
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

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_upload::service::Outcome;
    use xmpp_upload::storage::signed::SignedUrlStore;
    use xmpp_upload::{ServiceConfig, SlotService};

    fn jid(s: &str) -> BareJid {
        s.parse().unwrap()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xu-retention-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn retention(records: Records, dir: &Path, started: OffsetDateTime) -> Retention {
        Retention {
            pending: records.pending(),
            records,
            objects: Objects::Local(dir.to_owned()),
            policy: RetentionPolicy::new(),
            metrics: Arc::new(Metrics::default()),
            fallback_owner: jid("upload.localhost"),
            put_ttl: time::Duration::seconds(300),
            orphan_grace: time::Duration::hours(24),
            started,
        }
    }

    /// A key of the local store's shape, and its file on disk.
    fn object(dir: &Path, n: u8, name: &str) -> String {
        let id = format!("{n:032x}");
        std::fs::create_dir_all(dir.join(&id)).unwrap();
        std::fs::write(dir.join(&id).join(name), b"0123456789").unwrap();
        format!("{id}/{name}")
    }

    fn slot(owner: &str, size: u64, issued: OffsetDateTime, until: Instant) -> PendingUpload {
        PendingUpload {
            owner: jid(owner),
            size: Some(size),
            content_type: Some("image/png".into()),
            issued,
            until,
        }
    }

    /// Lists fixed pages.
    struct Fake(Vec<Vec<Listed>>);

    impl ObjectLister for Fake {
        fn page<'a>(
            &'a self,
            continuation: Option<&'a str>,
        ) -> Pin<Box<dyn Future<Output = Result<ListedPage, String>> + Send + 'a>> {
            Box::pin(async move {
                let i: usize = continuation.map_or(0, |c| c.parse().unwrap());
                let next = (i + 1 < self.0.len()).then(|| (i + 1).to_string());
                Ok((self.0[i].clone(), next))
            })
        }
    }

    fn listed(key: &str, last_modified: OffsetDateTime) -> Listed {
        Listed {
            key: key.to_owned(),
            size: 10,
            last_modified,
        }
    }

    #[tokio::test]
    async fn reconcile_records_a_put_that_ended_after_the_check() {
        let dir = temp_dir("reconcile");
        let now = OffsetDateTime::now_utc();
        let r = retention(Records::memory(), &dir, now - time::Duration::days(2));
        let late = object(&dir, 1, "late.png");
        let open = object(&dir, 2, "open.png");
        let revoked = object(&dir, 3, "revoked.png");
        let orphan = object(&dir, 4, "orphan.bin");
        let young = object(&dir, 5, "young.bin");
        let old = object(&dir, 6, "old.bin");
        let issued = now - time::Duration::minutes(10);
        // The single check at the window's end found nothing: the slot is parked.
        let expired = Instant::now() - Duration::from_secs(1);
        r.pending
            .insert(late.clone(), slot("romeo@localhost", 10, issued, expired));
        let taken = r.pending.take_expired(Instant::now());
        assert_eq!(taken.len(), 1);
        for (k, p) in taken {
            r.pending.park(k, p);
        }
        // A slot still open whose object is there already; a slot of a removed account.
        let later = Instant::now() + Duration::from_secs(300);
        r.pending
            .insert(open.clone(), slot("romeo@localhost", 10, now, later));
        r.pending.insert(
            revoked.clone(),
            slot("juliet@localhost", 10, issued, expired),
        );
        let Records::Memory(m) = &r.records else {
            unreachable!()
        };
        m.mark_removed(&jid("juliet@localhost"), now - time::Duration::minutes(5));
        // The late PUT ended after the check; the listing comes in two pages.
        let lister = Fake(vec![
            vec![
                listed(&late, now - time::Duration::minutes(3)),
                listed(&open, now),
                listed(&revoked, now - time::Duration::minutes(3)),
            ],
            vec![
                listed(&orphan, now - time::Duration::hours(36)),
                listed(&young, now - time::Duration::hours(1)),
                listed(&old, now - time::Duration::days(3)),
            ],
        ]);
        let report = r.reconcile(&lister, now).await.unwrap();
        assert_eq!(
            report,
            ReconcileReport {
                listed: 6,
                recorded: 2,
                adopted: 1,
                orphans_deleted: 1,
                revoked_deleted: 1,
                waiting: 1,
                ..ReconcileReport::default()
            }
        );
        let romeo = m.files_of(&jid("romeo@localhost")).unwrap();
        assert_eq!(romeo.len(), 2);
        let f = romeo.iter().find(|f| f.key == late).unwrap();
        assert_eq!((f.size, f.created), (10, issued));
        assert_eq!(f.content_type.as_deref(), Some("image/png"));
        assert_eq!(m.files_of(&jid("upload.localhost")).unwrap()[0].key, old);
        assert!(m.files_of(&jid("juliet@localhost")).unwrap().is_empty());
        assert!(!dir.join(&orphan).exists());
        assert!(!dir.join(&revoked).exists());
        assert!(dir.join(&young).exists() && dir.join(&late).exists());
        assert!(r.pending.is_empty());
        // A second pass over what is left: everything is explained but the young object.
        let lister = Fake(vec![vec![
            listed(&late, now - time::Duration::minutes(3)),
            listed(&open, now),
            listed(&young, now - time::Duration::hours(1)),
            listed(&old, now - time::Duration::days(3)),
        ]]);
        let report = r.reconcile(&lister, now).await.unwrap();
        assert_eq!((report.known, report.waiting), (3, 1), "{report:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_parked_slot_is_forgotten_only_after_the_grace() {
        let dir = temp_dir("forget");
        let now = OffsetDateTime::now_utc();
        let r = retention(Records::memory(), &dir, now - time::Duration::days(2));
        let recent = Instant::now() - Duration::from_secs(60);
        r.pending
            .park("k1".into(), slot("romeo@localhost", 1, now, recent));
        r.reconcile(&Fake(vec![vec![]]), now).await.unwrap();
        assert_eq!(r.pending.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn uploads_are_recorded_under_the_owner_bound_in_the_url() {
        let dir = temp_dir("owner");
        let r = retention(Records::memory(), &dir, OffsetDateTime::now_utc());
        // No slot known to this process (a restart, another node, a full table).
        let key = object(&dir, 7, "cat.jpg");
        let romeo = jid("romeo@localhost");
        r.stored_local(&key, 10, Some("image/jpeg"), Some(&romeo));
        let Records::Memory(m) = &r.records else {
            unreachable!()
        };
        assert_eq!(m.files_of(&romeo).unwrap()[0].key, key);
        assert!(m.files_of(&jid("upload.localhost")).unwrap().is_empty());
        let sidecar = std::fs::read_to_string(dir.join(format!("{:032x}.owner", 7))).unwrap();
        assert_eq!(sidecar, "romeo@localhost");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn slots_issued_before_an_account_removal_may_not_store() {
        let dir = temp_dir("removal");
        let r = retention(Records::memory(), &dir, OffsetDateTime::now_utc());
        let romeo = jid("romeo@localhost");
        // Issued a minute ago: the URL expires in 4 minutes.
        let expires = OffsetDateTime::now_utc() + time::Duration::minutes(4);
        assert!(r.may_store(Some(&romeo), expires).await);
        r.remove_account(&romeo).await.unwrap();
        assert!(!r.may_store(Some(&romeo), expires).await);
        // A slot issued after the removal, another user, a URL without an owner: allowed.
        let fresh = OffsetDateTime::now_utc() + time::Duration::minutes(5) + time::Duration::SECOND;
        assert!(r.may_store(Some(&romeo), fresh).await);
        assert!(r.may_store(Some(&jid("juliet@localhost")), expires).await);
        assert!(r.may_store(None, expires).await);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_memory_stored_quota_counts_slots_not_yet_uploaded() {
        let records = Records::memory();
        let pending = records.pending();
        let config = ServiceConfig::new(
            "upload.localhost".parse().unwrap(),
            *b"test service secret of 32 bytes!",
        )
        .max_file_size(1_000_000)
        .stored_quota(100_000)
        .inventory(records.inventory().unwrap());
        let store = SignedUrlStore::new(
            "https://files.example.org/".parse().unwrap(),
            *b"test storage key, 32 bytes long.",
        );
        let svc = SlotService::try_new(config, store).unwrap();
        let now = OffsetDateTime::now_utc();
        let mut issued = 0;
        for i in 0..5 {
            let iq: xmpp_upload::minidom::Element = format!(
                "<iq xmlns='jabber:client' type='get' id='q{i}' from='romeo@localhost/r' \
                 to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' \
                 filename='f{i}.bin' size='60000'/></iq>"
            )
            .parse()
            .unwrap();
            let answer = svc.process(&iq, now);
            // What the session does with an issued slot.
            if let Outcome::Issued(info) = &answer.outcome {
                issued += 1;
                pending.insert(
                    info.object_key.clone(),
                    PendingUpload {
                        owner: info.requester.to_bare(),
                        size: info.size,
                        content_type: None,
                        issued: now,
                        until: Instant::now() + Duration::from_secs(330),
                    },
                );
            }
        }
        assert_eq!(issued, 1);
        // Once the slot's window is over without an upload, it no longer counts.
        let Records::Memory(m) = &records else {
            unreachable!()
        };
        let romeo = jid("romeo@localhost");
        assert_eq!(m.stored_bytes(&romeo).unwrap(), 60_000);
        assert_eq!(
            pending
                .take_expired(Instant::now() + Duration::from_secs(331))
                .len(),
            1
        );
        assert_eq!(m.stored_bytes(&romeo).unwrap(), 0);
    }

    #[test]
    fn open_bytes_reads_the_owners_live_slots_through_the_index() {
        let pending = Pending::default();
        let (romeo, juliet): (BareJid, BareJid) = (
            "romeo@example.org".parse().unwrap(),
            "juliet@example.org".parse().unwrap(),
        );
        let now = Instant::now();
        let slot = |owner: &BareJid, size, until| PendingUpload {
            owner: owner.clone(),
            size: Some(size),
            content_type: None,
            issued: OffsetDateTime::UNIX_EPOCH,
            until,
        };
        let later = now + Duration::from_secs(60);
        pending.insert("a/1".into(), slot(&romeo, 10, later));
        pending.insert("a/2".into(), slot(&romeo, 20, later));
        pending.insert("a/3".into(), slot(&romeo, 40, now)); // its window has ended
        pending.insert("b/1".into(), slot(&juliet, 100, later));
        assert_eq!(pending.open_bytes(&romeo, now), 30);
        assert_eq!(pending.open_bytes(&juliet, now), 100);
        // The same key again, now Juliet's: it leaves Romeo's index.
        pending.insert("a/2".into(), slot(&juliet, 5, later));
        assert_eq!(pending.open_bytes(&romeo, now), 10);
        assert_eq!(pending.open_bytes(&juliet, now), 105);
        assert!(pending.take("a/1").is_some());
        assert_eq!(pending.open_bytes(&romeo, now), 0);
        assert_eq!(pending.take_expired(now + Duration::from_secs(1)).len(), 1);
        pending.drop_owner(&juliet);
        assert_eq!(pending.open_bytes(&juliet, now), 0);
        assert!(pending.is_empty());
    }
}
