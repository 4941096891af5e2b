//! Sign-in under attack. Password checks are bounded (argon2 takes ~19 MiB and tens of
//! milliseconds each; unbounded, a flood of wrong passwords took gigabytes and every other page's
//! latency with it), and repeated failures back off per account and per client address.
use app::models::user::{Lockout, LockoutKind};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When failures start to cost time, and how much.
#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    /// Wrong passwords for one account before it is locked.
    pub account_failures: u32,
    /// Wrong passwords from one address (any accounts) before it is locked.
    pub address_failures: u32,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// The first lock's length; each further failure doubles it, up to `max_lock`.
    pub first_lock: Duration,
    pub max_lock: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            account_failures: 5,
            address_failures: 20,
            window: Duration::from_secs(15 * 60),
            first_lock: Duration::from_secs(30),
            max_lock: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

/// Sign-in refused: wait this many seconds.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: u64,
    pub why: &'static str,
}

/// Password checks waiting beyond this many are refused at once rather than queued.
const MAX_WAITING: usize = 64;
/// Entries kept per table; beyond it the expired ones are dropped, then the oldest.
const MAX_ENTRIES: usize = 10_000;

pub struct SignInGuard {
    policy: ThrottlePolicy,
    accounts: Mutex<HashMap<String, Failures>>,
    addresses: Mutex<HashMap<IpAddr, Failures>>,
}

impl SignInGuard {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self { policy, accounts: Mutex::default(), addresses: Mutex::default() }
    }

    /// Refuses while the account or the address is locked.
    pub fn check(&self, username: &str, addr: Option<IpAddr>) -> Result<(), Refused> {
        let now = Instant::now();
        let left = |f: Option<&Failures>| f.and_then(|f| f.locked_until).filter(|u| *u > now).map(|u| u - now);
        if let Some(d) = left(lock(&self.accounts).get(&account_key(username))) {
            return Err(Refused { retry_after: secs(d), why: "this account" });
        }
        if let Some(a) = addr {
            if let Some(d) = left(lock(&self.addresses).get(&a)) {
                return Err(Refused { retry_after: secs(d), why: "this address" });
            }
        }
        Ok(())
    }

    /// Refuses at once when too much password work is already waiting, instead of queueing more.
    pub fn hash_turn(&self) -> Result<(), Refused> {
        if super::password::queued() >= MAX_WAITING {
            return Err(Refused { retry_after: 1, why: "the server (too many sign-ins at once)" });
        }
        Ok(())
    }

    pub fn failed(&self, username: &str, addr: Option<IpAddr>) {
        let now = Instant::now();
        let p = self.policy;
        note_failure(&mut lock(&self.accounts), account_key(username), p.account_failures, &p, now);
        if let Some(a) = addr {
            note_failure(&mut lock(&self.addresses), a, p.address_failures, &p, now);
        }
    }

    /// The right password ends the account's failures; the address's stay (it may be guessing
    /// at other accounts).
    pub fn succeeded(&self, username: &str) {
        lock(&self.accounts).remove(&account_key(username));
    }

    pub fn lockouts(&self, now_ms: i64) -> Vec<Lockout> {
        let now = Instant::now();
        let until = |f: &Failures| f.locked_until.filter(|u| *u > now).map(|u| now_ms + (u - now).as_millis() as i64);
        let mut v: Vec<Lockout> = lock(&self.accounts)
            .iter()
            .filter_map(|(k, f)| {
                Some(Lockout { kind: LockoutKind::Account, subject: k.clone(), failures: f.count, until: until(f)? })
            })
            .collect();
        v.extend(lock(&self.addresses).iter().filter_map(|(a, f)| {
            Some(Lockout { kind: LockoutKind::Address, subject: a.to_string(), failures: f.count, until: until(f)? })
        }));
        v.sort_by(|a, b| b.until.cmp(&a.until).then_with(|| a.subject.cmp(&b.subject)));
        v
    }

    /// Whether there was such a lockout.
    pub fn clear(&self, kind: LockoutKind, subject: &str) -> bool {
        match kind {
            LockoutKind::Account => lock(&self.accounts).remove(&account_key(subject)).is_some(),
            LockoutKind::Address => {
                subject.trim().parse::<IpAddr>().is_ok_and(|a| lock(&self.addresses).remove(&a).is_some())
            }
        }
    }
}

fn note_failure<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, Failures>,
    key: K,
    free: u32,
    p: &ThrottlePolicy,
    now: Instant,
) {
    if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
        map.retain(|_, f| now.duration_since(f.first) < p.window || f.locked_until.is_some_and(|u| u > now));
        if map.len() >= MAX_ENTRIES {
            if let Some(oldest) = map.iter().min_by_key(|(_, f)| f.first).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
    }
    let f = map.entry(key).or_insert(Failures { count: 0, first: now, locked_until: None });
    let locked = f.locked_until.is_some_and(|u| u > now);
    if !locked && now.duration_since(f.first) >= p.window {
        *f = Failures { count: 0, first: now, locked_until: None };
    }
    f.count = f.count.saturating_add(1);
    if f.count >= free {
        let doublings = (f.count - free).min(16);
        let d = p.first_lock.saturating_mul(1 << doublings).min(p.max_lock);
        f.locked_until = Some(now + d);
    }
}

fn account_key(username: &str) -> String {
    app::models::validate::clip(username.trim(), 64).to_lowercase()
}

fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> ThrottlePolicy {
        ThrottlePolicy { account_failures: 3, address_failures: 5, ..Default::default() }
    }

    #[test]
    fn an_account_locks_after_its_failures_and_backs_off() {
        let g = SignInGuard::new(quick());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..2 {
            g.failed("Admin", Some(a));
            assert!(g.check("admin", Some(a)).is_ok());
        }
        g.failed("admin ", Some(a));
        let r = g.check("ADMIN", None).unwrap_err();
        assert_eq!((r.why, r.retry_after), ("this account", 30));
        g.failed("admin", Some(a));
        assert_eq!(g.check("admin", None).unwrap_err().retry_after, 60, "doubles");
        assert!(g.check("bob", None).is_ok(), "other accounts are not locked");
        let l = g.lockouts(1_000);
        assert_eq!((l.len(), l[0].kind, l[0].subject.as_str(), l[0].failures), (1, LockoutKind::Account, "admin", 4));
        assert!(g.clear(LockoutKind::Account, "Admin"));
        assert!(g.check("admin", None).is_ok());
        assert!(!g.clear(LockoutKind::Account, "admin"));
    }

    #[test]
    fn an_address_locks_whatever_accounts_it_tries() {
        let g = SignInGuard::new(quick());
        let a: IpAddr = "10.0.0.2".parse().unwrap();
        for i in 0..5 {
            g.failed(&format!("user{i}"), Some(a));
        }
        assert_eq!(g.check("someone", Some(a)).unwrap_err().why, "this address");
        assert!(g.check("someone", Some("10.0.0.3".parse().unwrap())).is_ok());
        g.succeeded("user1");
        assert!(g.check("user1", Some(a)).is_err(), "a success does not forgive the address");
        assert!(g.clear(LockoutKind::Address, "10.0.0.2"));
        assert!(!g.clear(LockoutKind::Address, "not an address"));
    }

    #[test]
    fn failures_expire_with_the_window_and_memory_is_bounded() {
        let p = ThrottlePolicy { window: Duration::ZERO, ..quick() };
        let g = SignInGuard::new(p);
        for _ in 0..10 {
            g.failed("x", None);
        }
        assert!(g.check("x", None).is_ok(), "each failure starts a new window");
        let g = SignInGuard::new(quick());
        for i in 0..(MAX_ENTRIES + 50) {
            g.failed(&format!("u{i}"), None);
        }
        assert!(lock(&g.accounts).len() <= MAX_ENTRIES);
    }
}
