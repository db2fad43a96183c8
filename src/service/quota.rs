//! Upload quotas: a rolling window per bare JID and a global cap, kept by a [`QuotaLedger`]
//! or by the host itself through the two-phase path ([`SlotService::begin`](crate::SlotService::begin)).

use core::fmt;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Mutex;

use jid::BareJid;
use time::{Duration, OffsetDateTime};

use crate::storage::HostError;

/// The limits a charge is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuotaLimits {
    /// Bytes one bare JID may upload per window.
    pub per_user: Option<u64>,
    /// Bytes all users together may upload per window.
    pub global: Option<u64>,
    /// The rolling window (24 h by default).
    pub window: Duration,
    /// Bytes one bare JID may keep stored at once (a hard quota over the host's
    /// [`Inventory`](super::Inventory), not over the window). A [`QuotaLedger`] does not see
    /// it: [`SlotService::handle`](crate::SlotService::handle) checks it on the configured
    /// inventory, and a host on the two-phase path checks it on its own record.
    pub stored: Option<u64>,
}

impl QuotaLimits {
    /// Limits over a rolling 24 hours.
    #[must_use]
    pub fn daily(per_user: Option<u64>, global: Option<u64>) -> Self {
        Self {
            per_user,
            global,
            window: Duration::DAY,
            stored: None,
        }
    }

    /// Whether any limit is set (without one, nothing needs charging).
    #[must_use]
    pub fn is_limited(&self) -> bool {
        self.per_user.is_some() || self.global.is_some() || self.stored.is_some()
    }

    /// Whether a windowed limit (per user or global) is set: what a [`QuotaLedger`] checks.
    #[must_use]
    pub fn is_windowed(&self) -> bool {
        self.per_user.is_some() || self.global.is_some()
    }
}

/// Which limit refused a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaScope {
    /// The requester's own quota.
    User,
    /// The service-wide cap.
    Global,
    /// The requester's stored-bytes quota ([`QuotaLimits::stored`]).
    Stored,
}

/// A refused charge: the limit that was hit and, when known, when the same charge fits again
/// (sent to the client as XEP-0363's `<retry stamp=/>`).
///
/// A host ledger refusing with a retry time:
/// ```
/// use xmpp_upload::service::{ChargeError, QuotaExceeded, QuotaScope};
/// # let now = time::macros::datetime!(2024-05-01 12:00 UTC);
/// // e.g. the host's database says the oldest upload in the window leaves it in 3 hours.
/// let refusal: ChargeError =
///     QuotaExceeded::new(QuotaScope::User, Some(now + time::Duration::hours(3))).into();
/// assert!(matches!(refusal, ChargeError::Exceeded(e) if e.scope == QuotaScope::User));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("upload quota exceeded")]
#[non_exhaustive]
pub struct QuotaExceeded {
    /// Which limit was hit.
    pub scope: QuotaScope,
    /// When the same charge would fit again; `None` when it never will (larger than the
    /// limit itself) or the ledger cannot tell.
    pub retry_at: Option<OffsetDateTime>,
}

impl QuotaExceeded {
    /// A refusal by `scope`'s limit, retryable at `retry_at` when known.
    #[must_use]
    pub fn new(scope: QuotaScope, retry_at: Option<OffsetDateTime>) -> Self {
        Self { scope, retry_at }
    }
}

/// Why a charge was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChargeError {
    /// A limit refused the charge: `wait`/`resource-constraint` with `<retry/>` when known.
    #[error(transparent)]
    Exceeded(#[from] QuotaExceeded),
    /// The ledger itself failed (its database is down, say): the request gets
    /// `wait`/`internal-server-error` and the cause stays with the host
    /// ([`std::error::Error::source`]).
    #[error("the quota ledger is unavailable")]
    Unavailable(#[source] HostError),
}

impl ChargeError {
    /// A ledger failure with `cause` kept for the host's logs.
    pub fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(HostError::new(cause))
    }
}

/// Records uploads and refuses those over the limits, atomically.
///
/// The service calls [`QuotaLedger::charge`] from [`SlotService::handle`](crate::SlotService::handle)
/// after the URLs are issued (issuing is pure, so a refusal leaves nothing to undo). A host
/// whose quota store is asynchronous (a database behind an async driver) does not implement
/// this trait: it uses [`SlotService::begin`](crate::SlotService::begin), charges its store
/// itself and completes the pending slot.
///
/// # Security
/// `charge` must check and record in one step: two concurrent charges must never both fit
/// where only one does.
pub trait QuotaLedger: Send + Sync + fmt::Debug {
    /// Checks `bytes` for `user` against `limits` at `now` and records it if it fits.
    ///
    /// # Errors
    /// [`ChargeError::Exceeded`] when a limit refuses, [`ChargeError::Unavailable`] when the
    /// ledger cannot answer.
    fn charge(
        &self,
        user: &BareJid,
        bytes: u64,
        now: OffsetDateTime,
        limits: &QuotaLimits,
    ) -> Result<(), ChargeError>;
}

impl<T: QuotaLedger + ?Sized> QuotaLedger for std::sync::Arc<T> {
    fn charge(
        &self,
        user: &BareJid,
        bytes: u64,
        now: OffsetDateTime,
        limits: &QuotaLimits,
    ) -> Result<(), ChargeError> {
        (**self).charge(user, bytes, now, limits)
    }
}

impl<T: QuotaLedger + ?Sized> QuotaLedger for Box<T> {
    fn charge(
        &self,
        user: &BareJid,
        bytes: u64,
        now: OffsetDateTime,
        limits: &QuotaLimits,
    ) -> Result<(), ChargeError> {
        (**self).charge(user, bytes, now, limits)
    }
}

/// How many buckets a window is cut into: charges within one bucket are kept as one entry.
const BUCKETS: i64 = 256;

/// A thread-safe in-memory [`QuotaLedger`] for single-node services and tests.
///
/// Each user's charges, and the service-wide total, are kept in at most 257 time buckets of
/// 1/256 of the window (about 5.6 minutes of a day): charges within a bucket add up into one
/// entry stamped with the latest of them. Memory per user is therefore bounded whatever the
/// number of slots, and a bucket expires one window after its *latest* charge, so the ledger
/// never admits more than a limit within any window; the price is that a `<retry/>` stamp
/// can be up to one bucket later than the exact one.
///
/// Running totals are kept per bucket, so a charge, admitted or refused, costs O(log 257)
/// plus a hash lookup, whatever the number of users or charges. Users whose last charge has
/// left the window are forgotten (a time-ordered index drives this). Users are keyed by a
/// 64-bit keyed hash (SipHash with a per-ledger random key) of their bare JID: no allocation
/// per charge; two JIDs share a quota only on a hash collision (about n²/2⁶⁵ for n users).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    state: Mutex<State>,
    keys: RandomState,
}

/// The user keys are already hashes: the table uses them as they are.
#[derive(Debug, Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<u64, Buckets, BuildHasherDefault<IdentityHasher>>,
    /// `(time of the user's latest charge, user)`: the users to forget, oldest first.
    idle: BTreeSet<(OffsetDateTime, u64)>,
    global: Buckets,
}

/// One bucket: the latest charge time in it and the running total through it.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    index: i64,
    latest: OffsetDateTime,
    /// Bytes charged through this bucket since the log began (monotone).
    through: u128,
}

/// A log of charges in time buckets with running totals.
#[derive(Debug, Default)]
struct Buckets {
    entries: VecDeque<Bucket>,
    /// Bytes charged before the first entry (running total of what expired).
    expired: u128,
}

impl Buckets {
    fn total(&self) -> u128 {
        self.entries
            .back()
            .map_or(0, |b| b.through.saturating_sub(self.expired))
    }

    /// Drops the buckets whose latest charge is at or before `cutoff`.
    fn prune(&mut self, cutoff: OffsetDateTime) {
        while let Some(b) = self.entries.front() {
            if b.latest > cutoff {
                break;
            }
            self.expired = b.through;
            self.entries.pop_front();
        }
    }

    /// Whether `bytes` more fit under `limit`; if not, when they will (`None`: never, or
    /// not within the logged charges). O(log n) by binary search on the running totals.
    fn check(
        &self,
        bytes: u64,
        limit: u64,
        window: Duration,
    ) -> Result<(), Option<OffsetDateTime>> {
        let total = self.total();
        let (bytes, limit) = (u128::from(bytes), u128::from(limit));
        if total + bytes <= limit {
            return Ok(());
        }
        if bytes > limit {
            return Err(None);
        }
        // The first bucket whose expiry brings the total down far enough: the running total
        // through it must reach `expired + total + bytes - limit`.
        let need = self.expired + total + bytes - limit;
        let i = self.entries.partition_point(|b| b.through < need);
        Err(self
            .entries
            .get(i)
            .and_then(|b| b.latest.checked_add(window)))
    }

    fn record(&mut self, index: i64, now: OffsetDateTime, bytes: u64) {
        let through = self.entries.back().map_or(self.expired, |b| b.through) + u128::from(bytes);
        match self.entries.back_mut() {
            // Same bucket, or a charge stamped earlier than the latest one (clocks of several
            // callers): merge into the newest bucket, keeping its later time (conservative).
            Some(b) if b.index >= index => {
                b.through = through;
                b.latest = b.latest.max(now);
            }
            _ => self.entries.push_back(Bucket {
                index,
                latest: now,
                through,
            }),
        }
    }
}

impl MemoryLedger {
    /// An empty ledger.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&self, user: &BareJid) -> u64 {
        self.keys.hash_one(user.as_str())
    }

    /// The number of users with charges still in the window (memory follows active users).
    #[must_use]
    pub fn active_users(&self) -> usize {
        self.state.lock().map_or(0, |s| s.users.len())
    }
}

impl State {
    /// Forgets every user whose latest charge is at or before `cutoff`.
    fn forget_idle(&mut self, cutoff: OffsetDateTime) {
        while let Some(&(t, user)) = self.idle.first() {
            if t > cutoff {
                break;
            }
            self.idle.pop_first();
            self.users.remove(&user);
        }
    }
}

impl QuotaLedger for MemoryLedger {
    fn charge(
        &self,
        user: &BareJid,
        bytes: u64,
        now: OffsetDateTime,
        limits: &QuotaLimits,
    ) -> Result<(), ChargeError> {
        if !limits.is_windowed() {
            return Ok(());
        }
        let user = self.key(user);
        let window = limits.window.max(Duration::SECOND);
        let width = (window.whole_seconds() / BUCKETS).max(1);
        let index = now.unix_timestamp().div_euclid(width);
        let cutoff = now.checked_sub(window).unwrap_or(now);
        // A poisoned lock means a panic elsewhere mid-update; every update keeps the logs
        // consistent step by step, so keep serving.
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let state = &mut *guard;
        state.forget_idle(cutoff);
        state.global.prune(cutoff);
        if let Some(limit) = limits.global {
            if let Err(retry_at) = state.global.check(bytes, limit, window) {
                return Err(QuotaExceeded::new(QuotaScope::Global, retry_at).into());
            }
        }
        if let Some(log) = state.users.get_mut(&user) {
            log.prune(cutoff);
        }
        if let Some(limit) = limits.per_user {
            let log = state.users.get(&user);
            let result = match log {
                Some(log) => log.check(bytes, limit, window),
                None if bytes > limit => Err(None),
                None => Ok(()),
            };
            if let Err(retry_at) = result {
                return Err(QuotaExceeded::new(QuotaScope::User, retry_at).into());
            }
        }
        let log = state.users.entry(user).or_default();
        let previous = log.entries.back().map(|b| b.latest);
        log.record(index, now, bytes);
        let latest = log.entries.back().map_or(now, |b| b.latest);
        if let Some(p) = previous {
            state.idle.remove(&(p, user));
        }
        state.idle.insert((latest, user));
        state.global.record(index, now, bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
    }

    fn exceeded(r: Result<(), ChargeError>) -> QuotaExceeded {
        match r {
            Err(ChargeError::Exceeded(e)) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn rolling_window_and_retry_stamp() {
        let l = MemoryLedger::new();
        let u: BareJid = "a@b.c".parse().unwrap();
        let lim = QuotaLimits::daily(Some(100), None);
        l.charge(&u, 60, t(0), &lim).unwrap();
        // 1000 s later: another bucket (a bucket is 337 s of a day).
        l.charge(&u, 40, t(1000), &lim).unwrap();
        let e = exceeded(l.charge(&u, 1, t(2000), &lim));
        assert_eq!(e.scope, QuotaScope::User);
        // The first charge leaving the window frees enough.
        assert_eq!(e.retry_at, Some(t(86_400)));
        // 61 bytes need both charges gone.
        assert_eq!(
            exceeded(l.charge(&u, 61, t(2000), &lim)).retry_at,
            Some(t(87_400))
        );
        assert_eq!(exceeded(l.charge(&u, 101, t(20), &lim)).retry_at, None);
        // Still refused one second before the retry time, admitted at it.
        assert!(l.charge(&u, 50, t(86_399), &lim).is_err());
        l.charge(&u, 50, t(86_400), &lim).unwrap();
    }

    #[test]
    fn charges_within_a_bucket_expire_with_the_latest() {
        let l = MemoryLedger::new();
        let u: BareJid = "a@b.c".parse().unwrap();
        let lim = QuotaLimits::daily(Some(100), None);
        l.charge(&u, 50, t(0), &lim).unwrap();
        l.charge(&u, 50, t(10), &lim).unwrap();
        // Conservative: the bucket holds both until the later one leaves the window.
        let e = exceeded(l.charge(&u, 1, t(20), &lim));
        assert_eq!(e.retry_at, Some(t(86_410)));
        assert!(l.charge(&u, 1, t(86_401), &lim).is_err());
        l.charge(&u, 100, t(86_410), &lim).unwrap();
    }

    #[test]
    fn global_cap() {
        let l = MemoryLedger::new();
        let lim = QuotaLimits::daily(None, Some(10));
        let a: BareJid = "a@b.c".parse().unwrap();
        let b: BareJid = "b@b.c".parse().unwrap();
        l.charge(&a, 10, t(0), &lim).unwrap();
        let e = exceeded(l.charge(&b, 1, t(1), &lim));
        assert_eq!((e.scope, e.retry_at), (QuotaScope::Global, Some(t(86_400))));
        l.charge(&b, 1, t(86_400), &lim).unwrap();
    }

    #[test]
    fn memory_per_user_is_bounded() {
        let l = MemoryLedger::new();
        let u: BareJid = "a@b.c".parse().unwrap();
        let lim = QuotaLimits::daily(Some(u64::MAX), Some(u64::MAX));
        // 100,000 charges spread over one day: at most one entry per bucket.
        for i in 0..100_000 {
            l.charge(&u, 1, t(i * 86_400 / 100_000), &lim).unwrap();
        }
        let s = l.state.lock().unwrap();
        let entries = s.users.values().map(|b| b.entries.len()).sum::<usize>();
        assert!(entries <= 257, "{entries}");
        assert!(s.global.entries.len() <= 257);
        assert_eq!(s.global.total(), 100_000);
    }

    #[test]
    fn charges_out_of_time_order_never_admit_more() {
        let l = MemoryLedger::new();
        let u: BareJid = "a@b.c".parse().unwrap();
        let lim = QuotaLimits::daily(Some(100), None);
        l.charge(&u, 60, t(5000), &lim).unwrap();
        // Stamped earlier by a slower caller: merged into the newer bucket.
        l.charge(&u, 40, t(0), &lim).unwrap();
        assert!(l.charge(&u, 1, t(86_401), &lim).is_err());
        l.charge(&u, 100, t(91_400), &lim).unwrap();
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn expired_users_are_forgotten() {
        let l = MemoryLedger::new();
        let lim = QuotaLimits::daily(Some(10), None);
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        for i in 0..100 {
            let u: BareJid = format!("u{i}@b.c").parse().unwrap();
            l.charge(&u, 1, t0, &lim).unwrap();
        }
        assert_eq!(l.active_users(), 100);
        let later = t0 + Duration::DAY + Duration::SECOND;
        l.charge(&"z@b.c".parse().unwrap(), 1, later, &lim).unwrap();
        assert_eq!(l.active_users(), 1);
    }
}
