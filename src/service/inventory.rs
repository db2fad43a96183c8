//! Files over time: the record of stored files the host keeps ([`Inventory`]), and a pure
//! planner ([`plan`]) deciding which files to delete under a [`RetentionPolicy`].
//!
//! The crate stores nothing itself. The host records a file when its upload completes (from
//! the verified PUT: [`StoredFile`] holds what the verifier returns), removes it when it
//! deletes the object, and runs the planner now and then (hourly, say) over what it has:
//!
//! ```
//! use xmpp_upload::service::{plan, DeleteReason, Inventory, MemoryInventory, RetentionPolicy, StoredFile};
//! # let now = time::macros::datetime!(2024-05-01 12:00 UTC);
//! let inventory = MemoryInventory::new();
//! let romeo: jid::BareJid = "romeo@montague.tld".parse()?;
//! inventory.record(StoredFile::new(romeo.clone(), "a1/old.jpg", 5_000, now - time::Duration::days(9)))?;
//! inventory.record(StoredFile::new(romeo.clone(), "b2/new.jpg", 5_000, now))?;
//!
//! let policy = RetentionPolicy::new().max_age(time::Duration::days(7));
//! let deletions = plan(&inventory.all()?, &policy, now);
//! assert_eq!(deletions.len(), 1);
//! assert_eq!((deletions[0].file.key.as_str(), deletions[0].reason), ("a1/old.jpg", DeleteReason::Age));
//! // The host deletes the object from its store, then:
//! inventory.remove(&deletions[0].file.key)?;
//! assert_eq!(inventory.stored_bytes(&romeo)?, 5_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use jid::BareJid;
use time::{Duration, OffsetDateTime};

use crate::storage::HostError;

/// A stored file, as the host records it when an upload completes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredFile {
    /// Who uploaded it (the slot's requester, bare).
    pub owner: BareJid,
    /// The object key in the storage.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its content type, when known.
    pub content_type: Option<String>,
    /// When the upload completed.
    pub created: OffsetDateTime,
}

impl StoredFile {
    /// A record without a content type.
    pub fn new(owner: BareJid, key: impl Into<String>, size: u64, created: OffsetDateTime) -> Self {
        Self {
            owner,
            key: key.into(),
            size,
            content_type: None,
            created,
        }
    }

    /// With a content type.
    #[must_use]
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// The planner's order: oldest first, then by key, so plans are reproducible.
    fn order(&self) -> (OffsetDateTime, &str) {
        (self.created, &self.key)
    }
}

/// Why an inventory operation failed (the host's store is down, say). The cause is the
/// [`source`](std::error::Error::source).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the file inventory is unavailable")]
pub struct InventoryError(#[source] pub HostError);

/// The record of stored files, kept by the host (its database) or in memory
/// ([`MemoryInventory`]). Every node of a service must see the same record.
///
/// # Security
/// Record a file only from a *verified* PUT (the verifier's size and key), never from what a
/// client claims; stored-bytes quotas are only as good as this record.
pub trait Inventory: Send + Sync + fmt::Debug {
    /// Records a completed upload (replacing a record with the same key).
    ///
    /// # Errors
    /// When the record could not be written.
    fn record(&self, file: StoredFile) -> Result<(), InventoryError>;

    /// Forgets a deleted file, returning its record if there was one.
    ///
    /// # Errors
    /// When the record could not be changed.
    fn remove(&self, key: &str) -> Result<Option<StoredFile>, InventoryError>;

    /// Bytes `owner` has stored.
    ///
    /// # Errors
    /// When the record could not be read.
    fn stored_bytes(&self, owner: &BareJid) -> Result<u64, InventoryError>;

    /// `owner`'s files, oldest first.
    ///
    /// # Errors
    /// When the record could not be read.
    fn files_of(&self, owner: &BareJid) -> Result<Vec<StoredFile>, InventoryError>;

    /// Up to `limit` files of all users, oldest first.
    ///
    /// # Errors
    /// When the record could not be read.
    fn oldest(&self, limit: usize) -> Result<Vec<StoredFile>, InventoryError>;

    /// How many files are stored and their total size, for metrics. The default walks
    /// [`Inventory::oldest`]; implementations should keep running totals.
    ///
    /// # Errors
    /// When the record could not be read.
    fn totals(&self) -> Result<(u64, u64), InventoryError> {
        let files = self.oldest(usize::MAX)?;
        let bytes = files.iter().map(|f| f.size).fold(0, u64::saturating_add);
        Ok((files.len() as u64, bytes))
    }
}

/// A thread-safe in-memory [`Inventory`] for single-node services and tests: files by key,
/// by owner and by age, so each operation is O(log n) (listing: O(log n + k)).
#[derive(Debug, Default)]
pub struct MemoryInventory {
    state: Mutex<InventoryState>,
}

#[derive(Debug, Default)]
struct InventoryState {
    by_key: HashMap<String, StoredFile>,
    /// Per owner: their keys in age order, and their total.
    by_owner: HashMap<BareJid, (BTreeSet<(OffsetDateTime, String)>, u64)>,
    by_age: BTreeSet<(OffsetDateTime, String)>,
    total_bytes: u64,
}

impl InventoryState {
    fn remove(&mut self, key: &str) -> Option<StoredFile> {
        let file = self.by_key.remove(key)?;
        self.total_bytes = self.total_bytes.saturating_sub(file.size);
        let order = (file.created, file.key.clone());
        self.by_age.remove(&order);
        if let Some((keys, total)) = self.by_owner.get_mut(&file.owner) {
            keys.remove(&order);
            *total = total.saturating_sub(file.size);
            if keys.is_empty() {
                self.by_owner.remove(&file.owner);
            }
        }
        Some(file)
    }
}

impl MemoryInventory {
    /// An empty inventory.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every file, oldest first (for [`plan`]).
    ///
    /// # Errors
    /// Never for this implementation; the signature matches [`Inventory::oldest`].
    pub fn all(&self) -> Result<Vec<StoredFile>, InventoryError> {
        self.oldest(usize::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InventoryState> {
        // Every update leaves the indexes consistent step by step: keep serving after a
        // panic elsewhere.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inventory for MemoryInventory {
    fn record(&self, file: StoredFile) -> Result<(), InventoryError> {
        let mut s = self.lock();
        s.remove(&file.key);
        let order = (file.created, file.key.clone());
        s.by_age.insert(order.clone());
        let entry = s.by_owner.entry(file.owner.clone()).or_default();
        entry.0.insert(order);
        entry.1 = entry.1.saturating_add(file.size);
        s.total_bytes = s.total_bytes.saturating_add(file.size);
        s.by_key.insert(file.key.clone(), file);
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<Option<StoredFile>, InventoryError> {
        Ok(self.lock().remove(key))
    }

    fn stored_bytes(&self, owner: &BareJid) -> Result<u64, InventoryError> {
        Ok(self
            .lock()
            .by_owner
            .get(owner)
            .map_or(0, |(_, total)| *total))
    }

    fn files_of(&self, owner: &BareJid) -> Result<Vec<StoredFile>, InventoryError> {
        let s = self.lock();
        Ok(s.by_owner.get(owner).map_or_else(Vec::new, |(keys, _)| {
            keys.iter()
                .filter_map(|(_, k)| s.by_key.get(k).cloned())
                .collect()
        }))
    }

    fn oldest(&self, limit: usize) -> Result<Vec<StoredFile>, InventoryError> {
        let s = self.lock();
        Ok(s.by_age
            .iter()
            .take(limit)
            .filter_map(|(_, k)| s.by_key.get(k).cloned())
            .collect())
    }

    fn totals(&self) -> Result<(u64, u64), InventoryError> {
        let s = self.lock();
        Ok((s.by_key.len() as u64, s.total_bytes))
    }
}

impl<T: Inventory + ?Sized> Inventory for std::sync::Arc<T> {
    fn record(&self, file: StoredFile) -> Result<(), InventoryError> {
        (**self).record(file)
    }
    fn remove(&self, key: &str) -> Result<Option<StoredFile>, InventoryError> {
        (**self).remove(key)
    }
    fn stored_bytes(&self, owner: &BareJid) -> Result<u64, InventoryError> {
        (**self).stored_bytes(owner)
    }
    fn files_of(&self, owner: &BareJid) -> Result<Vec<StoredFile>, InventoryError> {
        (**self).files_of(owner)
    }
    fn oldest(&self, limit: usize) -> Result<Vec<StoredFile>, InventoryError> {
        (**self).oldest(limit)
    }
    fn totals(&self) -> Result<(u64, u64), InventoryError> {
        (**self).totals()
    }
}

/// What to keep: any combination of a maximum age, a per-user soft quota and a total cap.
///
/// The defaults of the peers, for comparison: Prosody's `mod_http_file_share` deletes files
/// after a week (`http_file_share_expires_after`); ejabberd's `mod_http_upload_quota` deletes
/// a user's oldest files down to the soft quota once the hard quota is passed (`max_days`
/// for age).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// Files older than this are deleted.
    pub max_age: Option<Duration>,
    /// A user's oldest files are deleted until they store at most this many bytes.
    pub per_user_soft_quota: Option<u64>,
    /// The oldest files of all are deleted until the total is at most this many bytes.
    pub total_cap: Option<u64>,
}

impl RetentionPolicy {
    /// Keeps everything.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Deletes files older than `age`.
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Trims each user to `bytes`, oldest first.
    #[must_use]
    pub fn per_user_soft_quota(mut self, bytes: u64) -> Self {
        self.per_user_soft_quota = Some(bytes);
        self
    }

    /// Trims the whole store to `bytes`, oldest first.
    #[must_use]
    pub fn total_cap(mut self, bytes: u64) -> Self {
        self.total_cap = Some(bytes);
        self
    }
}

/// Why the planner chose a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeleteReason {
    /// Older than [`RetentionPolicy::max_age`].
    Age,
    /// Its owner is over [`RetentionPolicy::per_user_soft_quota`].
    UserQuota,
    /// The store is over [`RetentionPolicy::total_cap`].
    TotalCap,
    /// Its owner's account was removed ([`plan_account_removal`]).
    AccountRemoved,
}

impl fmt::Display for DeleteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeleteReason::Age => "age",
            DeleteReason::UserQuota => "user quota",
            DeleteReason::TotalCap => "total cap",
            DeleteReason::AccountRemoved => "account removed",
        })
    }
}

/// A file to delete and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deletion {
    /// The file.
    pub file: StoredFile,
    /// Why.
    pub reason: DeleteReason,
}

/// Which of `files` to delete at `now` under `policy`, oldest first, each once with the first
/// reason that applies: age, then each user's soft quota, then the total cap. Ties in age are
/// broken by key, so the same input always gives the same plan. Pure: the host deletes the
/// objects, then removes them from its inventory.
#[must_use]
pub fn plan(files: &[StoredFile], policy: &RetentionPolicy, now: OffsetDateTime) -> Vec<Deletion> {
    let mut sorted: Vec<&StoredFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.order().cmp(&b.order()));
    let mut chosen: Vec<Option<DeleteReason>> = vec![None; sorted.len()];

    if let Some(age) = policy.max_age {
        let cutoff = now.checked_sub(age);
        for (c, f) in chosen.iter_mut().zip(&sorted) {
            if cutoff.is_some_and(|cut| f.created <= cut) {
                *c = Some(DeleteReason::Age);
            }
        }
    }
    if let Some(soft) = policy.per_user_soft_quota {
        let mut kept: HashMap<&BareJid, u64> = HashMap::new();
        for (c, f) in chosen.iter().zip(&sorted) {
            if c.is_none() {
                let t = kept.entry(&f.owner).or_default();
                *t = t.saturating_add(f.size);
            }
        }
        for (c, f) in chosen.iter_mut().zip(&sorted) {
            if c.is_some() {
                continue;
            }
            if let Some(t) = kept.get_mut(&f.owner) {
                if *t > soft {
                    *t = t.saturating_sub(f.size);
                    *c = Some(DeleteReason::UserQuota);
                }
            }
        }
    }
    if let Some(cap) = policy.total_cap {
        let mut total: u64 = chosen
            .iter()
            .zip(&sorted)
            .filter(|(c, _)| c.is_none())
            .map(|(_, f)| f.size)
            .fold(0, u64::saturating_add);
        for (c, f) in chosen.iter_mut().zip(&sorted) {
            if total <= cap {
                break;
            }
            if c.is_none() {
                total = total.saturating_sub(f.size);
                *c = Some(DeleteReason::TotalCap);
            }
        }
    }
    chosen
        .into_iter()
        .zip(sorted)
        .filter_map(|(c, f)| {
            c.map(|reason| Deletion {
                file: f.clone(),
                reason,
            })
        })
        .collect()
}

/// Every file of a removed account, oldest first (ejabberd's `rm_on_unregister`).
#[must_use]
pub fn plan_account_removal(files: &[StoredFile], owner: &BareJid) -> Vec<Deletion> {
    let mut mine: Vec<&StoredFile> = files.iter().filter(|f| &f.owner == owner).collect();
    mine.sort_by(|a, b| a.order().cmp(&b.order()));
    mine.into_iter()
        .map(|f| Deletion {
            file: f.clone(),
            reason: DeleteReason::AccountRemoved,
        })
        .collect()
}

/// When `owner`'s stored bytes will have fallen to `target` through age-based deletion
/// alone, given their files oldest first; `None` without a maximum age or when that never
/// happens.
pub(crate) fn freed_by_age_at(
    files_oldest_first: &[StoredFile],
    stored: u64,
    target: u64,
    max_age: Option<Duration>,
) -> Option<OffsetDateTime> {
    let age = max_age?;
    let mut remaining = stored;
    for f in files_oldest_first {
        if remaining <= target {
            break;
        }
        remaining = remaining.saturating_sub(f.size);
        if remaining <= target {
            return f.created.checked_add(age);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap() + Duration::hours(h)
    }

    fn f(owner: &str, key: &str, size: u64, h: i64) -> StoredFile {
        StoredFile::new(owner.parse().unwrap(), key, size, t(h))
    }

    fn keys(plan: &[Deletion]) -> Vec<(&str, DeleteReason)> {
        plan.iter()
            .map(|d| (d.file.key.as_str(), d.reason))
            .collect()
    }

    #[test]
    fn empty_inventory_and_empty_policy_plan_nothing() {
        assert!(plan(&[], &RetentionPolicy::new().max_age(Duration::DAY), t(0)).is_empty());
        let files = [f("a@x", "1", 10, 0)];
        assert!(plan(&files, &RetentionPolicy::new(), t(10_000)).is_empty());
    }

    #[test]
    fn ages_oldest_first_boundary_included() {
        let files = [
            f("a@x", "new", 1, 100),
            f("a@x", "edge", 1, 76),
            f("b@x", "old", 1, 0),
            f("a@x", "young", 1, 77),
        ];
        let p = plan(
            &files,
            &RetentionPolicy::new().max_age(Duration::DAY),
            t(100),
        );
        // 100 - 24 = 76: a file exactly max_age old goes.
        assert_eq!(
            keys(&p),
            [("old", DeleteReason::Age), ("edge", DeleteReason::Age)]
        );
    }

    #[test]
    fn soft_quota_trims_each_user_oldest_first() {
        let files = [
            f("a@x", "a1", 40, 1),
            f("a@x", "a2", 40, 2),
            f("a@x", "a3", 40, 3),
            f("b@x", "b1", 100, 0),
        ];
        let p = plan(
            &files,
            &RetentionPolicy::new().per_user_soft_quota(80),
            t(10),
        );
        // a: 120 > 80, drop a1 → 80. b: 100 > 80, drop b1 → 0.
        assert_eq!(
            keys(&p),
            [
                ("b1", DeleteReason::UserQuota),
                ("a1", DeleteReason::UserQuota)
            ]
        );
    }

    #[test]
    fn age_counts_before_quota_and_cap() {
        let files = [
            f("a@x", "a1", 50, 0),
            f("a@x", "a2", 50, 30),
            f("a@x", "a3", 50, 31),
            f("b@x", "b1", 50, 32),
        ];
        let policy = RetentionPolicy::new()
            .max_age(Duration::DAY)
            .per_user_soft_quota(60)
            .total_cap(60);
        let p = plan(&files, &policy, t(33));
        // a1 by age; a keeps 100 > 60 → a2 by quota; remaining a3 + b1 = 100 > 60 → a3 by cap.
        assert_eq!(
            keys(&p),
            [
                ("a1", DeleteReason::Age),
                ("a2", DeleteReason::UserQuota),
                ("a3", DeleteReason::TotalCap)
            ]
        );
    }

    #[test]
    fn ties_in_age_break_by_key() {
        let files = [
            f("a@x", "k2", 10, 5),
            f("b@x", "k1", 10, 5),
            f("c@x", "k3", 10, 5),
        ];
        let p = plan(&files, &RetentionPolicy::new().total_cap(10), t(6));
        assert_eq!(
            keys(&p),
            [
                ("k1", DeleteReason::TotalCap),
                ("k2", DeleteReason::TotalCap)
            ]
        );
        // The same whatever the input order.
        let mut rev = files.to_vec();
        rev.reverse();
        assert_eq!(plan(&rev, &RetentionPolicy::new().total_cap(10), t(6)), p);
    }

    #[test]
    fn account_removal_takes_every_file_of_the_owner() {
        let files = [
            f("a@x", "a2", 1, 2),
            f("b@x", "b1", 1, 0),
            f("a@x", "a1", 1, 1),
        ];
        let p = plan_account_removal(&files, &"a@x".parse().unwrap());
        assert_eq!(
            keys(&p),
            [
                ("a1", DeleteReason::AccountRemoved),
                ("a2", DeleteReason::AccountRemoved)
            ]
        );
    }

    #[test]
    fn memory_inventory_indexes() {
        let inv = MemoryInventory::new();
        let a: BareJid = "a@x".parse().unwrap();
        inv.record(f("a@x", "k2", 20, 2)).unwrap();
        inv.record(f("a@x", "k1", 10, 1)).unwrap();
        inv.record(f("b@x", "k0", 5, 0)).unwrap();
        assert_eq!(inv.stored_bytes(&a).unwrap(), 30);
        let mine: Vec<String> = inv
            .files_of(&a)
            .unwrap()
            .into_iter()
            .map(|f| f.key)
            .collect();
        assert_eq!(mine, ["k1", "k2"]);
        let oldest: Vec<String> = inv.oldest(2).unwrap().into_iter().map(|f| f.key).collect();
        assert_eq!(oldest, ["k0", "k1"]);
        // Re-recording a key replaces it.
        inv.record(f("a@x", "k2", 25, 3)).unwrap();
        assert_eq!(inv.stored_bytes(&a).unwrap(), 35);
        assert_eq!(inv.remove("k1").unwrap().map(|f| f.size), Some(10));
        assert_eq!(inv.remove("k1").unwrap(), None);
        assert_eq!(inv.stored_bytes(&a).unwrap(), 25);
        assert_eq!(inv.totals().unwrap(), (2, 30));
        inv.remove("k2").unwrap();
        assert_eq!(inv.stored_bytes(&a).unwrap(), 0);
        assert!(inv.files_of(&a).unwrap().is_empty());
    }

    #[test]
    fn freed_by_age() {
        let files = [f("a@x", "1", 40, 0), f("a@x", "2", 40, 10)];
        // 80 stored, 50 wanted free of 100: need ≤ 50 → the first file's expiry.
        assert_eq!(
            freed_by_age_at(&files, 80, 50, Some(Duration::DAY)),
            Some(t(24))
        );
        assert_eq!(
            freed_by_age_at(&files, 80, 0, Some(Duration::DAY)),
            Some(t(34))
        );
        assert_eq!(freed_by_age_at(&files, 80, 50, None), None);
    }
}
