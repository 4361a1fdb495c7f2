//! Embedders for semantic tool search, and the cache of tool-definition embeddings.
//!
//! An [`Embedder`] turns texts into unit vectors: [`LocalEmbedder`] runs a BERT-family model
//! in-process (`switchboard_search::embed`, on a blocking thread), [`HttpEmbedder`] asks an
//! OpenAI-compatible `/v1/embeddings` URL (batches of 64, 10 s per request, answers of at
//! most 32 MiB). [`Semantic`] pairs one with an [`EmbeddingCache`]: vectors keyed by
//! SHA-256 of the model id and the embedded text, in memory and in an append-only file
//! (`<dir>/<model hash>.vec`), so a restart embeds nothing it embedded before.

use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_search::embed::{MAX_QUERY_TOKENS, MAX_TOOL_TOKENS, Model};

/// A boxed future of an embedding batch.
pub type EmbedFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>, String>> + Send + 'a>>;

/// Turns texts into unit vectors of one fixed length.
pub trait Embedder: Send + Sync + 'static {
    /// Names the model (and its weights), for cache keys.
    fn id(&self) -> &str;
    /// The embeddings of `texts`, in order. `query` marks a search query (shorter limit).
    fn embed(&self, texts: Vec<String>, query: bool) -> EmbedFuture<'_>;
}

/// A local model, run on the blocking thread pool.
pub struct LocalEmbedder {
    model: Arc<Model>,
}

impl LocalEmbedder {
    /// Loads the model directory (`config.json`, `tokenizer.json`, `model.safetensors`).
    pub fn load(dir: &Path) -> Result<LocalEmbedder, String> {
        Ok(LocalEmbedder {
            model: Arc::new(Model::load(dir)?),
        })
    }
}

impl Embedder for LocalEmbedder {
    fn id(&self) -> &str {
        self.model.id()
    }

    fn embed(&self, texts: Vec<String>, query: bool) -> EmbedFuture<'_> {
        let model = self.model.clone();
        let max = if query {
            MAX_QUERY_TOKENS
        } else {
            MAX_TOOL_TOKENS
        };
        Box::pin(async move {
            tokio::task::spawn_blocking(move || texts.iter().map(|t| model.embed(t, max)).collect())
                .await
                .map_err(|e| format!("embedding task failed: {e}"))
        })
    }
}

/// Texts per request to an embeddings URL.
pub const HTTP_BATCH: usize = 64;
/// Time allowed for one embeddings request.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest embeddings answer read.
pub const HTTP_MAX_BYTES: usize = 32 << 20;
/// Longest text sent (characters; longer ones are cut, as the local model truncates).
const HTTP_MAX_CHARS: usize = 2000;

/// An OpenAI-compatible embeddings endpoint: `POST {url}` with `{"input": [...], "model"}`,
/// vectors read from `data[i].embedding` (ordered by `data[i].index` when present).
pub struct HttpEmbedder {
    client: reqwest::Client,
    url: String,
    key: Option<String>,
    model: String,
    id: String,
}

impl HttpEmbedder {
    pub fn new(url: &str, key: Option<String>, model: &str) -> Result<HttpEmbedder, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("embedding URL {url}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("embedding URL {url}: not http(s)"));
        }
        Ok(HttpEmbedder {
            client: switchboard_upstream::http_client(),
            id: format!("http:{}:{model}", parsed.as_str()),
            url: url.to_owned(),
            key,
            model: model.to_owned(),
        })
    }

    async fn batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let input: Vec<String> = texts
            .iter()
            .map(|t| t.chars().take(HTTP_MAX_CHARS).collect())
            .collect();
        let mut req = self
            .client
            .post(&self.url)
            .timeout(HTTP_TIMEOUT)
            .header("content-type", "application/json")
            .body(json!({"input": input, "model": self.model}).to_string());
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        let mut resp = req.send().await.map_err(|e| format!("{}: {e}", self.url))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("{}: {e}", self.url))?
        {
            if body.len() + chunk.len() > HTTP_MAX_BYTES {
                return Err(format!(
                    "{}: answer larger than {HTTP_MAX_BYTES} bytes",
                    self.url
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(format!("{}: HTTP {status}: {text}", self.url));
        }
        let json: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("{}: answer is not JSON: {e}", self.url))?;
        let data = json
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{}: answer has no data list", self.url))?;
        if data.len() != texts.len() {
            return Err(format!(
                "{}: {} embeddings for {} inputs",
                self.url,
                data.len(),
                texts.len()
            ));
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for (i, item) in data.iter().enumerate() {
            let at = item
                .get("index")
                .and_then(Value::as_u64)
                .map_or(i, |n| n as usize);
            let v: Vec<f32> = item
                .get("embedding")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(|x| x.as_f64().map(|x| x as f32)).collect())
                .ok_or_else(|| {
                    format!("{}: data[{i}].embedding is not a list of numbers", self.url)
                })?;
            let slot = out
                .get_mut(at)
                .ok_or_else(|| format!("{}: data[{i}].index {at} out of range", self.url))?;
            *slot = Some(unit(v));
        }
        let vectors: Vec<Vec<f32>> = out
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{}: an input has no embedding", self.url))?;
        let dims = vectors.first().map_or(0, Vec::len);
        if dims == 0 || vectors.iter().any(|v| v.len() != dims) {
            return Err(format!(
                "{}: embeddings of differing or zero length",
                self.url
            ));
        }
        Ok(vectors)
    }
}

impl Embedder for HttpEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn embed(&self, texts: Vec<String>, _query: bool) -> EmbedFuture<'_> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(texts.len());
            for chunk in texts.chunks(HTTP_BATCH) {
                out.extend(self.batch(chunk).await?);
            }
            Ok(out)
        })
    }
}

/// `v` scaled to unit length (zero stays zero).
fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|a| *a /= n);
    }
    v
}

/// A cache key: SHA-256 of the model id and the text.
pub type Key = [u8; 32];

pub fn key(model: &str, text: &str) -> Key {
    let mut h = Sha256::new();
    h.update(model.as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    h.finalize().into()
}

/// Most vectors kept in memory; past it the memory cache starts over (the file keeps them).
const MAX_MEMORY_VECTORS: usize = 200_000;
/// Largest cache file; past it new vectors are kept in memory only.
const MAX_FILE_BYTES: u64 = 512 << 20;

/// Embeddings by key, in memory and (optionally) in an append-only file.
pub struct EmbeddingCache {
    mem: Mutex<HashMap<Key, Arc<[f32]>>>,
    file: Mutex<Option<(std::fs::File, u64)>>,
}

impl EmbeddingCache {
    /// A cache for `model_id`, persisted under `dir` when given. A file that cannot be read
    /// or written is logged once and the cache stays in memory.
    pub fn open(dir: Option<&Path>, model_id: &str) -> EmbeddingCache {
        let mut mem = HashMap::new();
        let file = dir.and_then(|dir| {
            let path = cache_path(dir, model_id);
            match open_file(&path, &mut mem) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "embedding cache unusable; embeddings are kept in memory only");
                    None
                }
            }
        });
        EmbeddingCache {
            mem: Mutex::new(mem),
            file: Mutex::new(file),
        }
    }

    pub fn get(&self, k: &Key) -> Option<Arc<[f32]>> {
        self.mem.lock().expect("embedding cache").get(k).cloned()
    }

    pub fn len(&self) -> usize {
        self.mem.lock().expect("embedding cache").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores vectors, appending them to the file.
    pub fn put(&self, items: &[(Key, Arc<[f32]>)]) {
        {
            let mut mem = self.mem.lock().expect("embedding cache");
            if mem.len() + items.len() > MAX_MEMORY_VECTORS {
                mem.clear();
            }
            for (k, v) in items {
                mem.insert(*k, v.clone());
            }
        }
        let mut file = self.file.lock().expect("embedding cache file");
        if let Some((f, size)) = file.as_mut() {
            let mut buf = Vec::new();
            for (k, v) in items {
                buf.extend_from_slice(k);
                buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                for x in v.iter() {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
            }
            if *size + buf.len() as u64 > MAX_FILE_BYTES {
                return;
            }
            if let Err(e) = f.write_all(&buf) {
                tracing::warn!(error = %e, "cannot append to the embedding cache; embeddings are kept in memory only");
                *file = None;
            } else {
                *size += buf.len() as u64;
            }
        }
    }
}

fn cache_path(dir: &Path, model_id: &str) -> PathBuf {
    let h = Sha256::digest(model_id.as_bytes());
    let hex: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{hex}.vec"))
}

/// Reads every whole record of the file into `mem` and opens it for appending (a torn last
/// record, from a crash mid-write, is cut off).
fn open_file(
    path: &Path,
    mem: &mut HashMap<Key, Arc<[f32]>>,
) -> std::io::Result<(std::fs::File, u64)> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let mut at = 0usize;
    while at + 36 <= bytes.len() {
        let k: Key = bytes[at..at + 32].try_into().expect("32 bytes");
        let dims =
            u32::from_le_bytes(bytes[at + 32..at + 36].try_into().expect("4 bytes")) as usize;
        let end = at + 36 + dims * 4;
        if dims == 0 || dims > 65_536 || end > bytes.len() {
            break;
        }
        let v: Arc<[f32]> = bytes[at + 36..end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        mem.insert(k, v);
        at = end;
    }
    if at < bytes.len() {
        f.set_len(at as u64)?;
    }
    Ok((f, at as u64))
}

/// Semantic search's settings: the embedder and its cache.
pub struct Semantic {
    pub embedder: Arc<dyn Embedder>,
    pub cache: EmbeddingCache,
}

impl std::fmt::Debug for Semantic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semantic")
            .field("model", &self.embedder.id())
            .finish()
    }
}

impl Semantic {
    /// `embedder` with a cache under `cache_dir` (memory only when `None`).
    pub fn new(embedder: Arc<dyn Embedder>, cache_dir: Option<&Path>) -> Semantic {
        let cache = EmbeddingCache::open(cache_dir, embedder.id());
        Semantic { embedder, cache }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_file_survives_a_reopen_and_drops_a_torn_record() {
        let dir = std::env::temp_dir().join(format!("sb-embcache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = key("m", "alpha");
        let b = key("m", "beta");
        {
            let c = EmbeddingCache::open(Some(&dir), "m");
            assert!(c.is_empty());
            c.put(&[
                (a, Arc::from(vec![1.0, 2.0])),
                (b, Arc::from(vec![3.0, 4.0])),
            ]);
        }
        // A crash mid-write leaves half a record.
        let path = cache_path(&dir, "m");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[7; 40]).unwrap();
        drop(f);
        let c = EmbeddingCache::open(Some(&dir), "m");
        assert_eq!(c.len(), 2);
        assert_eq!(&*c.get(&b).unwrap(), &[3.0, 4.0]);
        c.put(&[(key("m", "gamma"), Arc::from(vec![5.0, 6.0]))]);
        assert_eq!(EmbeddingCache::open(Some(&dir), "m").len(), 3);
        // Another model's cache is another file.
        assert!(EmbeddingCache::open(Some(&dir), "other").is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_differ_by_model_and_by_text() {
        assert_ne!(key("m1", "t"), key("m2", "t"));
        assert_ne!(key("m", "t1"), key("m", "t2"));
        assert_eq!(key("m", "t"), key("m", "t"));
    }
}
