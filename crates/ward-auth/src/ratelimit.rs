//! Failed-login limiting per username and per source address.
//!
//! Both keys apply: a login is refused while either its username or its
//! address is locked out, and the answer carries a `Retry-After` duration.
//! After `failures_max` failures within `window`, a key is locked for
//! `lockout`, doubling with each further lockout up to `lockout_max`; a key
//! that stays quiet for a whole `window` after its lockout starts afresh.
//!
//! A successful login clears the username's state but **not** the address's:
//! otherwise one valid account would let an attacker reset the counter of the
//! address it sprays other accounts from.
//!
//! Usernames are compared ASCII-case-insensitively (so `Admin` and `admin`
//! share a counter). IPv6 addresses are grouped by prefix (a /64 by default),
//! since one client usually controls a whole /64; IPv4-mapped IPv6 addresses
//! count as IPv4.
//!
//! State is in memory and bounded: each table keeps at most `entries_max`
//! keys and evicts the least recently failed one. An attacker who floods the
//! table with fresh keys can therefore push out a username's counter; the
//! per-address limit still holds them back, and the bound keeps memory flat.
//!
//! Time is passed in (`now: Instant`), so tests need no sleeps. Call
//! [`FailureLimiter::check`] *before* verifying a password: a locked-out
//! attempt then costs no argon2 work.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Thresholds for one kind of key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitConfig {
    /// Failures within `window` that trigger a lockout.
    pub failures_max: u32,
    /// How long failures are remembered.
    pub window: Duration,
    /// First lockout; each further one doubles it.
    pub lockout: Duration,
    /// Longest lockout.
    pub lockout_max: Duration,
}

/// Limiter settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Per username.
    pub per_user: LimitConfig,
    /// Per source address (or IPv6 prefix); looser, as many people may share a NAT.
    pub per_ip: LimitConfig,
    /// Most keys remembered per table.
    pub entries_max: usize,
    /// IPv6 addresses sharing this many leading bits count as one.
    pub ipv6_prefix_len: u8,
    /// Usernames are truncated to this many bytes for keying.
    pub username_bytes_max: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_user: LimitConfig {
                failures_max: 5,
                window: Duration::from_secs(15 * 60),
                lockout: Duration::from_secs(60),
                lockout_max: Duration::from_secs(15 * 60),
            },
            per_ip: LimitConfig {
                failures_max: 20,
                window: Duration::from_secs(15 * 60),
                lockout: Duration::from_secs(60),
                lockout_max: Duration::from_secs(15 * 60),
            },
            entries_max: 50_000,
            ipv6_prefix_len: 64,
            username_bytes_max: 256,
        }
    }
}

/// Which key is locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockedKey {
    /// The username.
    User,
    /// The source address.
    SourceIp,
}

/// A refusal: come back after `retry_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Locked {
    /// How long until the lockout ends.
    pub retry_after: Duration,
    /// Which key is locked (when both are, the one locked longer).
    pub by: LockedKey,
}

impl Locked {
    /// Whole seconds for the `Retry-After` header, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }

    fn longer(a: Option<Locked>, b: Option<Locked>) -> Option<Locked> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.retry_after > a.retry_after { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
    lockouts: u32,
    /// Key in the recency order.
    touched: (Instant, u64),
}

/// One bounded table of failure counters, evicting the least recently touched key.
#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Entry>,
    order: BTreeMap<(Instant, u64), K>,
    seq: u64,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
        }
    }

    fn locked<Q>(&self, key: &Q, now: Instant) -> Option<Duration>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let until = self.entries.get(key)?.locked_until?;
        (until > now).then(|| until.saturating_duration_since(now))
    }

    fn fail(
        &mut self,
        key: K,
        now: Instant,
        cfg: &LimitConfig,
        entries_max: usize,
    ) -> Option<Duration> {
        if !self.entries.contains_key(&key)
            && self.entries.len() >= entries_max
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.entries.remove(&oldest);
        }
        self.seq += 1;
        let touched = (now, self.seq);
        let entry = self.entries.entry(key.clone()).or_insert_with(|| Entry {
            failures: 0,
            window_start: now,
            locked_until: None,
            lockouts: 0,
            touched,
        });
        self.order.remove(&entry.touched);
        entry.touched = touched;
        self.order.insert(touched, key);
        fail_entry(entry, now, cfg)
    }

    fn reset<Q>(&mut self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(e) = self.entries.remove(key) {
            self.order.remove(&e.touched);
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Counts one failure; returns the lockout it starts, if any.
fn fail_entry(entry: &mut Entry, now: Instant, cfg: &LimitConfig) -> Option<Duration> {
    if let Some(until) = entry.locked_until.filter(|&u| u > now) {
        // Still locked (the caller skipped `check`): keep the lockout, count nothing.
        return Some(until.saturating_duration_since(now));
    }
    if now.saturating_duration_since(entry.window_start) > cfg.window {
        entry.failures = 0;
        entry.window_start = now;
        let quiet_since_lockout = entry
            .locked_until
            .is_none_or(|u| now.saturating_duration_since(u) > cfg.window);
        if quiet_since_lockout {
            entry.lockouts = 0;
        }
    }
    entry.failures += 1;
    if entry.failures < cfg.failures_max {
        return None;
    }
    let doubling = 1u32.checked_shl(entry.lockouts.min(16)).unwrap_or(u32::MAX);
    let lockout = cfg.lockout.saturating_mul(doubling).min(cfg.lockout_max);
    entry.locked_until = Some(now + lockout);
    entry.lockouts = entry.lockouts.saturating_add(1);
    entry.failures = 0;
    entry.window_start = now;
    Some(lockout)
}

#[derive(Debug)]
struct State {
    users: Table<String>,
    ips: Table<IpAddr>,
}

/// The failed-authentication limiter. Share one per server; methods take `&self`.
#[derive(Debug)]
pub struct FailureLimiter {
    config: RateLimitConfig,
    state: Mutex<State>,
}

impl FailureLimiter {
    /// A limiter with no history.
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State {
                users: Table::new(),
                ips: Table::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Counters stay meaningful even if a holder panicked mid-update.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an attempt may proceed. `Err` carries the `Retry-After`.
    /// Allocation-free for usernames that are already lowercase.
    pub fn check(
        &self,
        username: Option<&str>,
        ip: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Locked> {
        let state = self.state();
        let by_user = username.and_then(|u| {
            let key = self.user_key(u);
            state
                .users
                .locked(key.as_ref(), now)
                .map(|retry_after| Locked {
                    retry_after,
                    by: LockedKey::User,
                })
        });
        let by_ip = ip.and_then(|ip| {
            state
                .ips
                .locked(&self.ip_key(ip), now)
                .map(|retry_after| Locked {
                    retry_after,
                    by: LockedKey::SourceIp,
                })
        });
        Locked::longer(by_user, by_ip).map_or(Ok(()), Err)
    }

    /// Records a failed attempt; returns the lockout now in force, if any.
    pub fn record_failure(
        &self,
        username: Option<&str>,
        ip: Option<IpAddr>,
        now: Instant,
    ) -> Option<Locked> {
        let mut state = self.state();
        let max = self.config.entries_max;
        let by_user = username.and_then(|u| {
            let key = self.user_key(u).into_owned();
            state
                .users
                .fail(key, now, &self.config.per_user, max)
                .map(|retry_after| Locked {
                    retry_after,
                    by: LockedKey::User,
                })
        });
        let by_ip = ip.and_then(|ip| {
            state
                .ips
                .fail(self.ip_key(ip), now, &self.config.per_ip, max)
                .map(|retry_after| Locked {
                    retry_after,
                    by: LockedKey::SourceIp,
                })
        });
        Locked::longer(by_user, by_ip)
    }

    /// Records a successful login: forgets the username's failures.
    pub fn record_success(&self, username: &str) {
        let key = self.user_key(username);
        self.state().users.reset(key.as_ref());
    }

    /// How many usernames and addresses are remembered (for metrics).
    pub fn len(&self) -> (usize, usize) {
        let state = self.state();
        (state.users.len(), state.ips.len())
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    fn user_key<'a>(&self, username: &'a str) -> Cow<'a, str> {
        let mut end = username.len().min(self.config.username_bytes_max);
        while !username.is_char_boundary(end) {
            end -= 1;
        }
        let cut = &username[..end];
        if cut.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(cut.to_ascii_lowercase())
        } else {
            Cow::Borrowed(cut)
        }
    }

    fn ip_key(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u32::from(self.config.ipv6_prefix_len.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            v4 => v4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RateLimitConfig {
        RateLimitConfig {
            per_user: LimitConfig {
                failures_max: 3,
                window: Duration::from_secs(600),
                lockout: Duration::from_secs(60),
                lockout_max: Duration::from_secs(300),
            },
            per_ip: LimitConfig {
                failures_max: 5,
                window: Duration::from_secs(600),
                lockout: Duration::from_secs(30),
                lockout_max: Duration::from_secs(300),
            },
            entries_max: 1000,
            ipv6_prefix_len: 64,
            username_bytes_max: 16,
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn user_lockout_doubles_and_is_capped() {
        let l = FailureLimiter::new(config());
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        assert_eq!(l.record_failure(Some("alice"), None, s(0)), None);
        assert_eq!(l.record_failure(Some("alice"), None, s(1)), None);
        assert!(l.check(Some("alice"), None, s(1)).is_ok());
        let locked = l.record_failure(Some("alice"), None, s(2)).unwrap();
        assert_eq!(
            (locked.retry_after, locked.by),
            (Duration::from_secs(60), LockedKey::User)
        );

        // Locked: refused with a shrinking Retry-After; other users unaffected.
        let refused = l.check(Some("alice"), None, s(32)).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(30));
        assert_eq!(refused.retry_after_secs(), 30);
        assert!(l.check(Some("bob"), None, s(32)).is_ok());
        assert!(l.check(Some("alice"), None, s(62)).is_ok());

        // Each further lockout doubles: 120 s, 240 s, then capped at 300 s.
        let mut now = 62;
        for want in [120, 240, 300, 300] {
            for _ in 0..2 {
                assert_eq!(l.record_failure(Some("alice"), None, s(now)), None);
            }
            let locked = l.record_failure(Some("alice"), None, s(now)).unwrap();
            assert_eq!(locked.retry_after, Duration::from_secs(want));
            now += want;
        }
    }

    #[test]
    fn success_resets_the_user_but_not_the_address() {
        let l = FailureLimiter::new(config());
        let t0 = Instant::now();
        let addr = ip("203.0.113.7");
        for i in 0..2 {
            l.record_failure(Some("alice"), addr, t0 + Duration::from_secs(i));
        }
        l.record_success("alice");
        // Two more failures would have locked alice without the reset.
        for i in 2..4 {
            assert_eq!(
                l.record_failure(Some("alice"), addr, t0 + Duration::from_secs(i)),
                None
            );
        }
        // The address has seen 4 failures; the 5th locks it for everyone.
        let locked = l
            .record_failure(Some("carol"), addr, t0 + Duration::from_secs(5))
            .unwrap();
        assert_eq!(locked.by, LockedKey::SourceIp);
        assert_eq!(
            l.check(Some("dave"), addr, t0 + Duration::from_secs(6))
                .unwrap_err()
                .by,
            LockedKey::SourceIp
        );
        assert!(
            l.check(Some("dave"), ip("203.0.113.8"), t0 + Duration::from_secs(6))
                .is_ok()
        );
    }

    #[test]
    fn both_keys_apply_and_the_longer_lock_is_reported() {
        let mut cfg = config();
        cfg.per_ip.failures_max = 3;
        cfg.per_ip.lockout = Duration::from_secs(500);
        cfg.per_ip.lockout_max = Duration::from_secs(500);
        let l = FailureLimiter::new(cfg);
        let t0 = Instant::now();
        let mut last = None;
        for i in 0..3 {
            last = l.record_failure(Some("alice"), ip("10.0.0.1"), t0 + Duration::from_secs(i));
        }
        assert_eq!(last.unwrap().by, LockedKey::SourceIp);
        let refused = l
            .check(Some("alice"), ip("10.0.0.1"), t0 + Duration::from_secs(3))
            .unwrap_err();
        assert_eq!(refused.by, LockedKey::SourceIp);
        // From another address alice is still locked by her username.
        let refused = l
            .check(Some("alice"), ip("10.0.0.2"), t0 + Duration::from_secs(3))
            .unwrap_err();
        assert_eq!(refused.by, LockedKey::User);
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let l = FailureLimiter::new(config());
        let t0 = Instant::now();
        l.record_failure(Some("alice"), None, t0);
        l.record_failure(Some("alice"), None, t0 + Duration::from_secs(1));
        // 601 s later the window has passed: this is failure 1 of a new window.
        assert_eq!(
            l.record_failure(Some("alice"), None, t0 + Duration::from_secs(602)),
            None
        );
        assert_eq!(
            l.record_failure(Some("alice"), None, t0 + Duration::from_secs(603)),
            None
        );
        assert!(
            l.record_failure(Some("alice"), None, t0 + Duration::from_secs(604))
                .is_some()
        );
        // A long quiet period after the lockout resets the doubling.
        let later = t0 + Duration::from_secs(604 + 60 + 601);
        for i in 0..2 {
            assert_eq!(
                l.record_failure(Some("alice"), None, later + Duration::from_secs(i)),
                None
            );
        }
        let locked = l
            .record_failure(Some("alice"), None, later + Duration::from_secs(2))
            .unwrap();
        assert_eq!(locked.retry_after, Duration::from_secs(60));
    }

    #[test]
    fn keys_are_normalised() {
        let l = FailureLimiter::new(config());
        let t0 = Instant::now();
        for (i, name) in ["Alice", "ALICE", "alice"].into_iter().enumerate() {
            l.record_failure(Some(name), None, t0 + Duration::from_secs(i as u64));
        }
        assert!(
            l.check(Some("aLiCe"), None, t0 + Duration::from_secs(3))
                .is_err()
        );
        // Long names are keyed by their first 16 bytes (cut at a character boundary).
        let long_a = "ééééééééé-suffix-a";
        let long_b = "ééééééééé-suffix-b";
        for i in 0..3 {
            l.record_failure(Some(long_a), None, t0 + Duration::from_secs(i));
        }
        assert!(
            l.check(Some(long_b), None, t0 + Duration::from_secs(3))
                .is_err()
        );

        // One IPv6 /64 is one key; IPv4-mapped addresses are IPv4.
        let v6 = [
            "2001:db8:1:2::1",
            "2001:db8:1:2::2",
            "2001:db8:1:2:ffff::3",
            "2001:db8:1:2::4",
            "2001:db8:1:2::5",
        ];
        for (i, a) in v6.into_iter().enumerate() {
            l.record_failure(None, ip(a), t0 + Duration::from_secs(i as u64));
        }
        assert!(
            l.check(None, ip("2001:db8:1:2::99"), t0 + Duration::from_secs(6))
                .is_err()
        );
        assert!(
            l.check(None, ip("2001:db8:1:3::1"), t0 + Duration::from_secs(6))
                .is_ok()
        );
        for i in 0..5 {
            l.record_failure(None, ip("::ffff:198.51.100.4"), t0 + Duration::from_secs(i));
        }
        assert!(
            l.check(None, ip("198.51.100.4"), t0 + Duration::from_secs(6))
                .is_err()
        );
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_is_evicted() {
        let mut cfg = config();
        cfg.entries_max = 3;
        let l = FailureLimiter::new(cfg);
        let t0 = Instant::now();
        for i in 0..3 {
            l.record_failure(Some("victim"), None, t0 + Duration::from_secs(i));
        }
        assert!(
            l.check(Some("victim"), None, t0 + Duration::from_secs(3))
                .is_err()
        );
        l.record_failure(Some("u1"), None, t0 + Duration::from_secs(4));
        l.record_failure(Some("u2"), None, t0 + Duration::from_secs(5));
        assert_eq!(l.len(), (3, 0));
        // A fourth key evicts the least recently failed one: the victim.
        l.record_failure(Some("u3"), None, t0 + Duration::from_secs(6));
        assert_eq!(l.len(), (3, 0));
        assert!(
            l.check(Some("victim"), None, t0 + Duration::from_secs(7))
                .is_ok()
        );
        // Touching a key keeps it: u1 fails again, so u2 goes next.
        l.record_failure(Some("u1"), None, t0 + Duration::from_secs(8));
        l.record_failure(Some("u4"), None, t0 + Duration::from_secs(9));
        let state = l.state();
        assert!(state.users.entries.contains_key("u1"));
        assert!(!state.users.entries.contains_key("u2"));
        assert_eq!(state.users.order.len(), state.users.entries.len());
    }

    #[test]
    fn retry_after_rounds_up() {
        let cases = [
            (0, 0, 1),
            (0, 1, 1),
            (1, 0, 1),
            (1, 1, 2),
            (59, 999_999_999, 60),
        ];
        for (secs, nanos, want) in cases {
            let l = Locked {
                retry_after: Duration::new(secs, nanos),
                by: LockedKey::User,
            };
            assert_eq!(l.retry_after_secs(), want, "{secs}.{nanos}");
        }
    }

    #[test]
    fn nothing_known_means_nothing_locked() {
        let l = FailureLimiter::new(RateLimitConfig::default());
        assert!(l.check(None, None, Instant::now()).is_ok());
        assert_eq!(l.record_failure(None, None, Instant::now()), None);
        assert!(l.is_empty());
    }
}
