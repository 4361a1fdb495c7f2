//! Request rate limits per credential and per tenant: token buckets, checked on every MCP
//! request and every management request before any work is done.
//!
//! A bucket holds up to `burst` tokens and refills at `per_second`; a request takes one token
//! from its credential's bucket and one from its tenant's. The buckets live in a sharded map
//! behind plain mutexes held for a few arithmetic operations (never across an await). The
//! bootstrap admin token and callers without a credential are not limited here (the latter are
//! bounded per address by the listener).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use switchboard_store::RateLimit;

use crate::identity::{Principal, Via};

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Per credential (API key, or user for access tokens), unless the key has its own.
    pub per_key: Option<RateLimit>,
    /// Per tenant, over all its credentials.
    pub per_tenant: Option<RateLimit>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_key: Some(RateLimit {
                per_second: 50.0,
                burst: 100,
            }),
            per_tenant: Some(RateLimit {
                per_second: 500.0,
                burst: 1000,
            }),
        }
    }
}

/// A refused request: how long until a token is back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Whole seconds to wait (at least 1), for `Retry-After`.
    pub retry_after: u64,
    /// Which bucket was empty: `key` or `tenant`.
    pub scope: &'static str,
}

/// What `GET /api/v1/me` shows of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BucketView {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Largest burst.
    pub burst: u32,
    /// Requests that may be made right now.
    pub remaining: u32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    rate: RateLimit,
}

impl Bucket {
    fn refill(&mut self, rate: RateLimit, now: Instant) {
        if self.rate != rate {
            self.tokens = self.tokens.min(f64::from(rate.burst));
            self.rate = rate;
        }
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * rate.per_second;
        self.tokens = (self.tokens + gained).min(f64::from(rate.burst));
        self.at = now;
    }

    fn wait_for_one(&self) -> Duration {
        if self.rate.per_second <= 0.0 {
            return Duration::from_secs(3600);
        }
        Duration::from_secs_f64(((1.0 - self.tokens) / self.rate.per_second).max(0.0))
    }
}

const SHARDS: usize = 16;

/// Buckets by name, in shards so concurrent callers rarely share a lock.
struct Buckets {
    shards: Vec<Mutex<HashMap<String, Bucket>>>,
    hasher: RandomState,
}

impl Buckets {
    fn new() -> Buckets {
        Buckets {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, name: &str) -> &Mutex<HashMap<String, Bucket>> {
        &self.shards[self.hasher.hash_one(name) as usize % SHARDS]
    }

    /// Applies `f` to the (refilled) bucket `name`.
    fn with<T>(&self, name: &str, rate: RateLimit, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let now = Instant::now();
        let mut map = self.shard(name).lock().expect("rate bucket lock");
        if map.len() >= 10_000 {
            // Forget the full ones: a full bucket is the same as a new one.
            map.retain(|_, b| {
                b.refill(b.rate, now);
                b.tokens < f64::from(b.rate.burst)
            });
        }
        let bucket = map.entry(name.to_string()).or_insert_with(|| Bucket {
            tokens: f64::from(rate.burst),
            at: now,
            rate,
        });
        bucket.refill(rate, now);
        f(bucket)
    }
}

/// The rate limiter.
pub struct Limiter {
    limits: RateLimits,
    keys: Buckets,
    tenants: Buckets,
}

/// The bucket name of a principal's credential, if it is limited.
fn credential(who: &Principal) -> Option<String> {
    match &who.via {
        Via::AdminToken | Via::Anonymous => None,
        Via::ApiKey(id) => Some(format!("key:{id}")),
        Via::Session | Via::External => who.user_id.as_ref().map(|u| format!("user:{u}")),
    }
}

impl Limiter {
    /// A limiter for `limits`.
    pub fn new(limits: RateLimits) -> Limiter {
        Limiter {
            limits,
            keys: Buckets::new(),
            tenants: Buckets::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    fn key_rate(&self, who: &Principal) -> Option<RateLimit> {
        who.rate_limit.or(self.limits.per_key)
    }

    /// Takes a token from the caller's credential bucket and from its tenant's; refuses when
    /// either is empty (a refused request takes nothing).
    pub fn check(&self, who: &Principal) -> Result<(), Limited> {
        let Some(name) = credential(who) else {
            return Ok(());
        };
        let refuse = |b: &Bucket, scope| Limited {
            retry_after: b.wait_for_one().as_secs_f64().ceil().max(1.0) as u64,
            scope,
        };
        if let Some(rate) = self.key_rate(who) {
            let ok = self.keys.with(&name, rate, |b| {
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    Ok(())
                } else {
                    Err(refuse(b, "key"))
                }
            });
            ok?;
        }
        if let Some(rate) = self.limits.per_tenant {
            let ok = self.tenants.with(&who.tenant, rate, |b| {
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    Ok(())
                } else {
                    Err(refuse(b, "tenant"))
                }
            });
            if let Err(e) = ok {
                // Give the key its token back: the request did not happen.
                if let Some(rate) = self.key_rate(who) {
                    self.keys.with(&name, rate, |b| {
                        b.tokens = (b.tokens + 1.0).min(f64::from(rate.burst));
                    });
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// The caller's credential bucket and its tenant's, as they stand (without taking).
    pub fn view(&self, who: &Principal) -> (Option<BucketView>, Option<BucketView>) {
        let Some(name) = credential(who) else {
            return (None, None);
        };
        let show = |b: &mut Bucket| BucketView {
            per_second: b.rate.per_second,
            burst: b.rate.burst,
            remaining: b.tokens.floor().max(0.0) as u32,
        };
        let key = self
            .key_rate(who)
            .map(|rate| self.keys.with(&name, rate, show));
        let tenant = self
            .limits
            .per_tenant
            .map(|rate| self.tenants.with(&who.tenant, rate, show));
        (key, tenant)
    }
}

/// Parses `RATE[/s][:BURST]`, e.g. `50`, `50:100`, `0.5:3`; `off` or `0` means no limit.
pub fn parse_rate(text: &str) -> Result<Option<RateLimit>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") || text == "0" {
        return Ok(None);
    }
    let (rate, burst) = match text.split_once(':') {
        Some((r, b)) => (r, Some(b)),
        None => (text, None),
    };
    let per_second: f64 = rate
        .trim()
        .trim_end_matches("/s")
        .parse()
        .map_err(|_| format!("{text:?}: expected RATE[:BURST], e.g. 50:100"))?;
    if !per_second.is_finite() || per_second <= 0.0 {
        return Err(format!("{text:?}: the rate must be a positive number"));
    }
    let burst = match burst {
        Some(b) => b
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|b| *b >= 1)
            .ok_or_else(|| format!("{text:?}: the burst must be a whole number of at least 1"))?,
        None => (per_second * 2.0).ceil().max(1.0) as u32,
    };
    Ok(Some(RateLimit { per_second, burst }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_principal(id: &str) -> Principal {
        let mut p = Principal::anonymous();
        p.user_id = Some("u".into());
        p.via = Via::ApiKey(id.into());
        p
    }

    #[test]
    fn a_bucket_refuses_after_its_burst_and_spares_other_keys() {
        let limiter = Limiter::new(RateLimits {
            per_key: Some(RateLimit {
                per_second: 0.5,
                burst: 3,
            }),
            per_tenant: None,
        });
        let a = key_principal("a");
        for _ in 0..3 {
            limiter.check(&a).unwrap();
        }
        let refused = limiter.check(&a).unwrap_err();
        assert_eq!(refused.scope, "key");
        assert!((1..=2).contains(&refused.retry_after), "{refused:?}");
        assert_eq!(limiter.view(&a).0.unwrap().remaining, 0);
        limiter.check(&key_principal("b")).unwrap();
        // A key's own limit replaces the default.
        let mut c = key_principal("c");
        c.rate_limit = Some(RateLimit {
            per_second: 1.0,
            burst: 1,
        });
        limiter.check(&c).unwrap();
        assert!(limiter.check(&c).is_err());
        // The admin token is not limited.
        for _ in 0..10 {
            limiter.check(&Principal::admin_token()).unwrap();
        }
    }

    #[test]
    fn the_tenant_bucket_is_shared_and_refunds_the_key() {
        let limiter = Limiter::new(RateLimits {
            per_key: Some(RateLimit {
                per_second: 0.1,
                burst: 5,
            }),
            per_tenant: Some(RateLimit {
                per_second: 0.1,
                burst: 2,
            }),
        });
        limiter.check(&key_principal("a")).unwrap();
        limiter.check(&key_principal("b")).unwrap();
        assert_eq!(
            limiter.check(&key_principal("a")).unwrap_err().scope,
            "tenant"
        );
        assert_eq!(limiter.view(&key_principal("a")).0.unwrap().remaining, 4);
    }

    #[test]
    fn rates_parse() {
        assert_eq!(
            parse_rate("50:100").unwrap(),
            Some(RateLimit {
                per_second: 50.0,
                burst: 100
            })
        );
        assert_eq!(parse_rate("10").unwrap().unwrap().burst, 20);
        assert_eq!(parse_rate("off").unwrap(), None);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("5:0").is_err());
        assert!(parse_rate("-1").is_err());
    }
}
