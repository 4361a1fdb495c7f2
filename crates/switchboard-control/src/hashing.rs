//! Password hashing (argon2id) off the async runtime, on a small fixed pool of threads.
//!
//! An argon2id hash with the default cost fills 19 MiB of memory. Run on tokio's blocking pool
//! (up to 512 threads), a burst of logins allocated that much per attempt at once, and glibc
//! kept most of it (per-thread arenas). Here every hash runs on one of at most `2 × cores`
//! worker threads, each of which reuses its own block buffer: the memory hashing can ever hold
//! is `workers × 19 MiB`, allocated once. A caller waits up to [`HashPool::wait`] for a free
//! worker; after that it gets [`HashError::Busy`] (the HTTP layer answers 429).

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use tokio::sync::{Semaphore, oneshot};

/// The largest memory cost (KiB) a stored hash may ask for; a larger one is refused rather
/// than allocated.
const MAX_M_COST: u32 = 64 * 1024;

/// Why a hash did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Every worker stayed busy for the whole wait.
    #[error("every password-hashing worker is busy")]
    Busy,
    /// The hash itself failed (bad parameters, no randomness).
    #[error("{0}")]
    Failed(String),
}

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// A fixed pool of hashing threads.
pub struct HashPool {
    slots: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    size: usize,
    wait: Duration,
}

impl HashPool {
    /// The process-wide pool: `2 × cores` workers, waits of up to 2 s.
    pub fn global() -> &'static HashPool {
        static POOL: OnceLock<HashPool> = OnceLock::new();
        POOL.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            HashPool::new(2 * cores, Duration::from_secs(2))
        })
    }

    /// A pool of `size` worker threads (at least one); callers wait up to `wait` for one.
    pub fn new(size: usize, wait: Duration) -> HashPool {
        let size = size.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..size {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("sb-hash-{i}"))
                .spawn(move || {
                    // Allocated on first use, then kept: the worker's whole memory cost.
                    let mut blocks: Vec<Block> = Vec::new();
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut blocks),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(message = "Cannot start a password-hashing thread.", error = %e);
            }
        }
        HashPool {
            slots: Arc::new(Semaphore::new(size)),
            jobs: tx,
            size,
            wait,
        }
    }

    /// How many hashes may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How long a caller waits for a free worker.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Runs `work` on a worker; `Busy` if none frees up within the wait.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |blocks| {
            let out = work(blocks);
            // The slot is free once the work is done, even if the caller went away.
            drop(permit);
            let _ = tx.send(out);
        });
        self.jobs
            .send(job)
            .map_err(|_| HashError::Failed("the password-hashing threads are gone".into()))?;
        rx.await
            .map_err(|_| HashError::Failed("a password-hashing thread failed".into()))
    }

    /// Hashes `password` with argon2id (random salt, default cost) into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |blocks| hash_with(blocks, &password))
            .await?
            .map_err(HashError::Failed)
    }

    /// Checks `password` against the PHC string `hash`; with no hash (an unknown user),
    /// against a decoy that never matches, so timing does not tell whether the user exists.
    pub async fn verify(&self, hash: Option<String>, password: String) -> Result<bool, HashError> {
        self.run(move |blocks| match &hash {
            Some(hash) => verify_with(blocks, hash, &password),
            None => {
                static DECOY: OnceLock<String> = OnceLock::new();
                let decoy = DECOY.get_or_init(|| {
                    hash_with(blocks, "decoy password, never valid").unwrap_or_default()
                });
                std::hint::black_box(verify_with(blocks, decoy, &password));
                false
            }
        })
        .await
    }
}

/// `blocks` grown to `count` (kept for the next hash), as a slice of exactly `count`.
fn memory(blocks: &mut Vec<Block>, count: usize) -> &mut [Block] {
    if blocks.len() < count {
        blocks.resize(count, Block::default());
    }
    &mut blocks[..count]
}

/// argon2id with the default cost, into `blocks`.
pub(crate) fn hash_with(blocks: &mut Vec<Block>, password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            memory(blocks, params.block_count()),
        )
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        b64(&salt),
        b64(&out)
    ))
}

/// Checks `password` against a PHC string, hashing into `blocks`.
pub(crate) fn verify_with(blocks: &mut Vec<Block>, hash: &str, password: &str) -> bool {
    let Ok(phc) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&phc) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST {
        tracing::warn!(
            message = "A stored password hash asks for too much memory; refused.",
            m_cost = params.m_cost()
        );
        return false;
    }
    let Ok(algorithm) = Algorithm::try_from(phc.algorithm.as_str()) else {
        return false;
    };
    let version = phc
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    let count = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let expected = expected.as_bytes();
    let mut out = vec![0u8; expected.len()];
    if argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory(blocks, count))
        .is_err()
    {
        return false;
    }
    out.iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Unpadded standard base64 (the PHC string alphabet).
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_hashes_verify_with_the_crate_and_the_crate_hashes_verify_here() {
        let mut blocks = Vec::new();
        let ours = hash_with(&mut blocks, "correct horse").unwrap();
        assert!(crate::identity::verify_password(&ours, "correct horse"));
        assert!(!crate::identity::verify_password(&ours, "wrong horse"));
        let theirs = crate::identity::hash_password("battery staple").unwrap();
        assert!(verify_with(&mut blocks, &theirs, "battery staple"));
        assert!(!verify_with(&mut blocks, &theirs, "battery stapler"));
        assert!(!verify_with(&mut blocks, "not a hash", "x"));
        assert_eq!(
            blocks.len(),
            Params::default().block_count(),
            "reused, not regrown"
        );
    }

    #[tokio::test]
    async fn a_full_pool_answers_busy_after_the_wait() {
        let pool = HashPool::new(1, Duration::from_millis(50));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let pool = HashPool {
                slots: pool.slots.clone(),
                jobs: pool.jobs.clone(),
                size: 1,
                wait: pool.wait,
            };
            async move { pool.run(move |_| hold.recv().ok()).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            pool.verify(Some("x".into()), "y".into()).await,
            Err(HashError::Busy)
        );
        release.send(()).unwrap();
        assert!(busy.await.unwrap().is_ok());
        assert_eq!(pool.verify(Some("x".into()), "y".into()).await, Ok(false));
        assert_eq!(pool.verify(None, "y".into()).await, Ok(false));
    }
}
