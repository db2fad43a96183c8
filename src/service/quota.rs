//! Upload quotas: a rolling window per bare JID and a global cap, kept by a [`QuotaLedger`].

use core::fmt;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Mutex;

use jid::BareJid;
use time::{Duration, OffsetDateTime};

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
}

impl QuotaLimits {
    /// Limits over a rolling 24 hours.
    #[must_use]
    pub fn daily(per_user: Option<u64>, global: Option<u64>) -> Self {
        Self {
            per_user,
            global,
            window: Duration::DAY,
        }
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
}

/// A refused charge.
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

/// Records uploads and refuses those over the limits, atomically.
///
/// The host may back this with its database so that every node shares the quota; an
/// in-memory [`MemoryLedger`] ships for single-node services and tests.
///
/// # Security
/// `charge` must check and record in one step: two concurrent charges must never both fit
/// where only one does.
pub trait QuotaLedger: Send + Sync + fmt::Debug {
    /// Checks `bytes` for `user` against `limits` at `now` and records it if it fits.
    fn charge(
        &self,
        user: &BareJid,
        bytes: u64,
        now: OffsetDateTime,
        limits: &QuotaLimits,
    ) -> Result<(), QuotaExceeded>;

    /// Takes back a charge made at `now` (the slot could not be issued after all).
    fn refund(&self, user: &BareJid, bytes: u64, now: OffsetDateTime);
}

/// A thread-safe in-memory [`QuotaLedger`]: per-user logs of `(time, bytes)` within the
/// window and one service-wide log in time order, behind one mutex so both limits are checked
/// together. Expiry is driven by the service-wide log, so each charge does O(1) amortised work
/// whatever the number of users, and users whose window has passed are forgotten.
///
/// Users are keyed by a 64-bit keyed hash (SipHash with a per-ledger random key) of their bare
/// JID, so a charge allocates nothing and touches one table slot; two JIDs would share a quota
/// only on a hash collision (about n²/2⁶⁵ for n active users).
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
    users: HashMap<u64, Log, BuildHasherDefault<IdentityHasher>>,
    /// Every recorded charge in time order, with its user: drives expiry.
    all: VecDeque<(OffsetDateTime, u64, u64)>,
    all_total: u64,
}

#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<(OffsetDateTime, u64)>,
    total: u64,
}

impl Log {
    fn prune(&mut self, cutoff: OffsetDateTime) {
        while let Some(&(t, b)) = self.entries.front() {
            if t > cutoff {
                break;
            }
            self.entries.pop_front();
            self.total = self.total.saturating_sub(b);
        }
    }

    /// Whether `bytes` more fit under `limit`; if not, when they will, given the entries in
    /// time order.
    fn check<'a>(
        total: u64,
        entries: impl Iterator<Item = (OffsetDateTime, u64)> + 'a,
        bytes: u64,
        limit: u64,
        window: Duration,
    ) -> Result<(), Option<OffsetDateTime>> {
        if total.checked_add(bytes).is_some_and(|t| t <= limit) {
            return Ok(());
        }
        if bytes > limit {
            return Err(None);
        }
        let mut remaining = total;
        for (t, b) in entries {
            remaining = remaining.saturating_sub(b);
            if remaining.checked_add(bytes).is_some_and(|r| r <= limit) {
                return Err(t.checked_add(window));
            }
        }
        Err(None)
    }
}

impl State {
    /// Drops every charge at or before `cutoff`, from the service-wide log and its user's log.
    fn expire(&mut self, cutoff: OffsetDateTime) {
        while let Some((t, b, _)) = self.all.front() {
            if *t > cutoff {
                break;
            }
            let b = *b;
            let Some((_, _, user)) = self.all.pop_front() else {
                break;
            };
            self.all_total = self.all_total.saturating_sub(b);
            if let Some(log) = self.users.get_mut(&user) {
                log.prune(cutoff);
                if log.entries.is_empty() {
                    self.users.remove(&user);
                }
            }
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

    /// Bytes charged to `user` within the window ending at `now`.
    #[must_use]
    pub fn used(&self, user: &BareJid, now: OffsetDateTime, window: Duration) -> u64 {
        let user = self.key(user);
        let Ok(state) = self.state.lock() else {
            return 0;
        };
        state.users.get(&user).map_or(0, |log| {
            log.entries
                .iter()
                .filter(|(t, _)| now.checked_sub(window).is_none_or(|cutoff| *t > cutoff))
                .map(|(_, b)| *b)
                .sum()
        })
    }

    /// The number of users with charges still in the window (memory follows active users).
    #[must_use]
    pub fn active_users(&self) -> usize {
        self.state.lock().map_or(0, |s| s.users.len())
    }
}

impl QuotaLedger for MemoryLedger {
    fn charge(
        &self,
        user: &BareJid,
        bytes: u64,
        now: OffsetDateTime,
        limits: &QuotaLimits,
    ) -> Result<(), QuotaExceeded> {
        if limits.per_user.is_none() && limits.global.is_none() {
            return Ok(());
        }
        let user = &self.key(user);
        // A poisoned lock means a panic elsewhere mid-update; every update keeps the logs
        // consistent step by step, so keep serving.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cutoff = now.checked_sub(limits.window).unwrap_or(now);
        state.expire(cutoff);
        if let Some(log) = state.users.get_mut(user) {
            // Charges made with an earlier `now` than later ones may sit behind them in the
            // service-wide log; the user's own log is pruned by time as well.
            log.prune(cutoff);
        }
        if let Some(limit) = limits.global {
            let entries = state.all.iter().map(|(t, b, _)| (*t, *b));
            if let Err(retry_at) = Log::check(state.all_total, entries, bytes, limit, limits.window)
            {
                return Err(QuotaExceeded {
                    scope: QuotaScope::Global,
                    retry_at,
                });
            }
        }
        if let Some(limit) = limits.per_user {
            if let Some(log) = state.users.get(user) {
                let entries = log.entries.iter().copied();
                if let Err(retry_at) = Log::check(log.total, entries, bytes, limit, limits.window) {
                    return Err(QuotaExceeded {
                        scope: QuotaScope::User,
                        retry_at,
                    });
                }
            } else if bytes > limit {
                return Err(QuotaExceeded {
                    scope: QuotaScope::User,
                    retry_at: None,
                });
            }
        }
        let log = state.users.entry(*user).or_default();
        log.entries.push_back((now, bytes));
        log.total = log.total.saturating_add(bytes);
        state.all.push_back((now, bytes, *user));
        state.all_total = state.all_total.saturating_add(bytes);
        Ok(())
    }

    fn refund(&self, user: &BareJid, bytes: u64, now: OffsetDateTime) {
        let user = &self.key(user);
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(i) = state
            .all
            .iter()
            .rposition(|(t, b, u)| *t == now && *b == bytes && u == user)
        else {
            return;
        };
        state.all.remove(i);
        state.all_total = state.all_total.saturating_sub(bytes);
        if let Some(log) = state.users.get_mut(user) {
            if let Some(j) = log
                .entries
                .iter()
                .rposition(|&(t, b)| t == now && b == bytes)
            {
                log.entries.remove(j);
                log.total = log.total.saturating_sub(bytes);
            }
            if log.entries.is_empty() {
                state.users.remove(user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn rolling_window_and_retry_stamp() {
        let l = MemoryLedger::new();
        let u: BareJid = "a@b.c".parse().unwrap();
        let lim = QuotaLimits::daily(Some(100), None);
        l.charge(&u, 60, t(0), &lim).unwrap();
        l.charge(&u, 40, t(10), &lim).unwrap();
        let e = l.charge(&u, 1, t(20), &lim).unwrap_err();
        assert_eq!(e.scope, QuotaScope::User);
        assert_eq!(e.retry_at, Some(t(86_400)));
        assert_eq!(l.charge(&u, 101, t(20), &lim).unwrap_err().retry_at, None);
        l.charge(&u, 50, t(86_400), &lim).unwrap();
    }

    #[test]
    fn global_cap_and_refund() {
        let l = MemoryLedger::new();
        let lim = QuotaLimits::daily(None, Some(10));
        let a: BareJid = "a@b.c".parse().unwrap();
        let b: BareJid = "b@b.c".parse().unwrap();
        l.charge(&a, 10, t(0), &lim).unwrap();
        assert_eq!(
            l.charge(&b, 1, t(1), &lim).unwrap_err().scope,
            QuotaScope::Global
        );
        l.refund(&a, 10, t(0));
        l.charge(&b, 1, t(1), &lim).unwrap();
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
