//! Criterion micro-benchmarks of what authentication costs per MCP request:
//! `Identity::authenticate` for an API key and for an HS256 access token, against an SQLite
//! store in a file in a temp dir (as `switchboard serve --data-dir` opens it), plus the store
//! lookups and the hash it is made of. Each credential is timed twice: with
//! `IdentityConfig::cache_ttl` zero (the store is read on every call: the cost of a cache miss)
//! and with the default (a check is remembered for 1 s: the cost of a hit).
//!
//! Run with `cargo bench -p switchboard-bench --features micro --bench auth`.
//!
//! Setup (not measured): a tenant `bench`, a `user` in it with a grant, an API key from
//! `Identity::issue_key` and an access token from `Identity::login` (argon2 runs once, here).
//! Each measured batch runs inside one `block_on` of a current-thread tokio runtime, so the
//! figures are the awaited calls themselves, without a runtime entry per call.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_control::identity::{hash_password, sha256_hex};
use switchboard_control::{Identity, IdentityConfig};
use switchboard_store::{Role, SecretKey, Store, TenantRecord, UserRecord};

const TENANT: &str = "bench";
const USERNAME: &str = "bench-user";
const PASSWORD: &str = "bench password 0123";

struct Fixture {
    rt: tokio::runtime::Runtime,
    /// `cache_ttl` zero: every call reads the store.
    identity: Arc<Identity>,
    /// The default `IdentityConfig` (checks remembered for 1 s).
    cached: Arc<Identity>,
    store: Arc<dyn Store>,
    user_id: String,
    key_id: String,
    key: String,
    access_token: String,
    dir: PathBuf,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn setup() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!(
        "switchboard-bench-auth-{}-{}",
        std::process::id(),
        now_ms()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("switchboard.db").display());
    let (identity, cached, store, user_id, key_id, key, access_token) = rt.block_on(async {
        let store = switchboard_store::open(&url, SecretKey::generate().expect("key"))
            .await
            .expect("open the SQLite store");
        let now = now_ms();
        store
            .insert_tenant(&TenantRecord {
                name: TENANT.into(),
                created_at: now,
            })
            .await
            .expect("insert tenant");
        let user = UserRecord {
            id: "u-bench".into(),
            tenant: TENANT.into(),
            username: USERNAME.into(),
            password_hash: hash_password(PASSWORD).expect("argon2"),
            role: Role::User,
            grants: vec!["*".into()],
            disabled_at: None,
            created_at: now,
            updated_at: now,
        };
        store.insert_user(&user).await.expect("insert user");
        let identity = Identity::new(
            store.clone(),
            IdentityConfig {
                cache_ttl: Duration::ZERO,
                ..IdentityConfig::default()
            },
            switchboard_upstream::http_client(),
        )
        .await
        .expect("identity");
        // Same store, so the same token signing key.
        let cached = Identity::new(
            store.clone(),
            IdentityConfig::default(),
            switchboard_upstream::http_client(),
        )
        .await
        .expect("identity");
        let (record, key) = identity
            .issue_key(&user, "bench", None, None)
            .await
            .expect("issue key");
        let (_, tokens) = identity
            .login(USERNAME, PASSWORD, None)
            .await
            .expect("login");
        // Both credentials work, and the key's first use (which records `last_used_at` in the
        // background) happens here, not in the measured loop.
        for id in [&identity, &cached] {
            for cred in [&key, &tokens.access_token] {
                let p = id.authenticate(cred).await.expect("authenticate");
                assert_eq!(p.tenant, TENANT);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        (
            identity,
            cached,
            store,
            user.id,
            record.id,
            key,
            tokens.access_token,
        )
    });
    Fixture {
        rt,
        identity,
        cached,
        store,
        user_id,
        key_id,
        key,
        access_token,
        dir,
    }
}

/// Times `iters` sequential awaits of `f` inside one `block_on`.
fn time_async<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, f: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f().await);
        }
        start.elapsed()
    })
}

fn auth(c: &mut Criterion) {
    let fx = setup();
    let rt = &fx.rt;
    let identity = &*fx.identity;
    let cached = &*fx.cached;
    let store = &*fx.store;
    let (key, token, key_id, user_id) = (&fx.key, &fx.access_token, &fx.key_id, &fx.user_id);
    let wrong = format!("sb_{key_id}_{}", "0".repeat(64));
    let wrong = &wrong;

    let mut g = c.benchmark_group("authenticate");
    g.bench_function("api key, no cache (get_key + sha256 + get_user)", |b| {
        b.iter_custom(|iters| {
            time_async(rt, iters, move || async move {
                identity
                    .authenticate(black_box(key))
                    .await
                    .expect("key accepted")
            })
        })
    });
    g.bench_function("access token, no cache (HS256 decode + get_user)", |b| {
        b.iter_custom(|iters| {
            time_async(rt, iters, move || async move {
                identity
                    .authenticate(black_box(token))
                    .await
                    .expect("token accepted")
            })
        })
    });
    g.bench_function("api key, cached (1 s)", |b| {
        b.iter_custom(|iters| {
            time_async(rt, iters, move || async move {
                cached
                    .authenticate(black_box(key))
                    .await
                    .expect("key accepted")
            })
        })
    });
    g.bench_function("access token, cached (1 s)", |b| {
        b.iter_custom(|iters| {
            time_async(rt, iters, move || async move {
                cached
                    .authenticate(black_box(token))
                    .await
                    .expect("token accepted")
            })
        })
    });
    g.bench_function("api key, wrong secret (refused, never cached)", |b| {
        b.iter_custom(|iters| {
            time_async(rt, iters, move || async move {
                identity
                    .authenticate(black_box(wrong))
                    .await
                    .expect_err("wrong secret refused")
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("parts");
    g.bench_function("store.get_key (SQLite)", |b| {
        b.iter_custom(|iters| {
            time_async(rt, iters, move || async move {
                store.get_key(black_box(key_id)).await.expect("get_key")
            })
        })
    });
    g.bench_function("store.get_user (SQLite)", |b| {
        b.iter_custom(|iters| {
            time_async(rt, iters, move || async move {
                store.get_user(black_box(user_id)).await.expect("get_user")
            })
        })
    });
    let secret = key.rsplit('_').next().unwrap_or_default().to_owned();
    g.bench_function("sha256_hex(64-char secret)", |b| {
        b.iter(|| black_box(sha256_hex(black_box(&secret))))
    });
    g.finish();

    let _ = std::fs::remove_dir_all(&fx.dir);
}

criterion_group!(benches, auth);
criterion_main!(benches);
