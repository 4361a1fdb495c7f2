//! The BERT encoder's forward pass on CPU, one sequence at a time (so no padding and the
//! attention mask is all ones), then mean pooling and L2 normalisation, as
//! sentence-transformers computes an embedding.
//!
//! Per layer: Q/K/V projections, scaled dot-product attention per head, output projection,
//! residual and LayerNorm; intermediate dense, GELU (erf form), output dense, residual and
//! LayerNorm. Linear weights are stored `[out, in]` as PyTorch saves them and used transposed
//! through the multiply's strides.
//!
//! Sequences of up to `SHORT_TOKENS` tokens (queries) multiply by row dot products (`dot`),
//! which read the weights in place; longer ones use sgemm (`gemm`), whose packing pays off
//! once there are enough rows. `Kernel::Sgemm` forces sgemm for every length, as the
//! reference the short path is tested against.

use std::collections::HashMap;

use serde_json::Value;

use super::dot;
use super::gemm::{Mat, gemm};
use super::safetensors::Tensor;

/// The longest sequence multiplied by row dot products under `Kernel::Auto`. On this 2-core
/// machine (busy with other work) they beat sgemm by 3-4× at 2-5 tokens, 1.5-2.5× at 8-40
/// and 1.2× at 64; at 96 and 128 the two are level (`search-bench --lengths`). From 40 tokens
/// on they execute more instructions than sgemm (callgrind: 1.17× at 40, 1.25× at 64) and
/// win on memory traffic, so a quieter machine may want a lower bound. These figures are
/// for the release profile (one codegen unit, fat LTO); built with 16 codegen units and no
/// LTO the dot products fall behind sgemm from about 28 tokens.
pub const SHORT_TOKENS: usize = 64;

/// Which multiply the encoder runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernel {
    /// Row dot products up to `SHORT_TOKENS` tokens, sgemm above.
    #[default]
    Auto,
    /// sgemm at every length: the reference path, for tests and benchmarks.
    Sgemm,
}

/// The hyper-parameters read from `config.json`.
#[derive(Debug, Clone)]
pub struct Config {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub vocab: usize,
    pub eps: f32,
}

impl Config {
    pub fn from_json(text: &str) -> Result<Config, String> {
        let json: Value =
            serde_json::from_str(text).map_err(|e| format!("config.json is not JSON: {e}"))?;
        let num = |key: &str| {
            json.get(key)
                .and_then(Value::as_u64)
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| format!("config.json: {key} is missing or not a positive integer"))
        };
        if let Some(act) = json.get("hidden_act").and_then(Value::as_str)
            && act != "gelu"
        {
            return Err(format!(
                "config.json: hidden_act {act} is not supported (gelu only)"
            ));
        }
        let c = Config {
            hidden: num("hidden_size")?,
            layers: num("num_hidden_layers")?,
            heads: num("num_attention_heads")?,
            intermediate: num("intermediate_size")?,
            max_positions: num("max_position_embeddings")?,
            type_vocab: num("type_vocab_size").unwrap_or(2),
            vocab: num("vocab_size")?,
            eps: json
                .get("layer_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-12) as f32,
        };
        if !c.hidden.is_multiple_of(c.heads) {
            return Err("config.json: hidden_size is not a multiple of num_attention_heads".into());
        }
        Ok(c)
    }
}

struct Linear {
    /// `[out, in]`.
    w: Vec<f32>,
    b: Vec<f32>,
    inp: usize,
    out: usize,
}

struct Norm {
    g: Vec<f32>,
    b: Vec<f32>,
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    attn_out: Linear,
    attn_norm: Norm,
    inter: Linear,
    out: Linear,
    out_norm: Norm,
}

pub struct Bert {
    cfg: Config,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    emb_norm: Norm,
    layers: Vec<Layer>,
}

impl Bert {
    /// Takes the weights out of a checkpoint's tensors (names with or without `bert.`).
    pub fn new(cfg: Config, mut t: HashMap<String, Tensor>) -> Result<Bert, String> {
        let h = cfg.hidden;
        let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
            let tensor = t
                .remove(name)
                .or_else(|| t.remove(&format!("bert.{name}")))
                .ok_or_else(|| format!("model.safetensors has no tensor {name}"))?;
            if tensor.shape != shape {
                return Err(format!(
                    "tensor {name} has shape {:?}, expected {shape:?}",
                    tensor.shape
                ));
            }
            Ok(tensor.data)
        };
        let mut linear = |name: &str, out: usize, inp: usize| -> Result<Linear, String> {
            Ok(Linear {
                w: take(&format!("{name}.weight"), &[out, inp])?,
                b: take(&format!("{name}.bias"), &[out])?,
                inp,
                out,
            })
        };
        let mut pieces = Vec::new();
        for l in 0..cfg.layers {
            let p = format!("encoder.layer.{l}");
            pieces.push((
                linear(&format!("{p}.attention.self.query"), h, h)?,
                linear(&format!("{p}.attention.self.key"), h, h)?,
                linear(&format!("{p}.attention.self.value"), h, h)?,
                linear(&format!("{p}.attention.output.dense"), h, h)?,
                linear(&format!("{p}.intermediate.dense"), cfg.intermediate, h)?,
                linear(&format!("{p}.output.dense"), h, cfg.intermediate)?,
            ));
        }
        let mut norm = |name: &str| -> Result<Norm, String> {
            Ok(Norm {
                g: take(&format!("{name}.weight"), &[h])
                    .or_else(|_| take(&format!("{name}.gamma"), &[h]))?,
                b: take(&format!("{name}.bias"), &[h])
                    .or_else(|_| take(&format!("{name}.beta"), &[h]))?,
            })
        };
        let emb_norm = norm("embeddings.LayerNorm")?;
        let mut layers = Vec::new();
        for (l, (q, k, v, attn_out, inter, out)) in pieces.into_iter().enumerate() {
            let p = format!("encoder.layer.{l}");
            layers.push(Layer {
                q,
                k,
                v,
                attn_out,
                attn_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                inter,
                out,
                out_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Bert {
            word: take("embeddings.word_embeddings.weight", &[cfg.vocab, h])?,
            position: take(
                "embeddings.position_embeddings.weight",
                &[cfg.max_positions, h],
            )?,
            token_type: take(
                "embeddings.token_type_embeddings.weight",
                &[cfg.type_vocab, h],
            )?,
            emb_norm,
            layers,
            cfg,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The unit-length mean-pooled embedding of one token sequence (at most
    /// `max_position_embeddings` ids, each below `vocab_size`).
    pub fn embed(&self, ids: &[u32]) -> Vec<f32> {
        self.embed_with(ids, Kernel::Auto)
    }

    /// `embed` on the multiply `kernel` names.
    pub fn embed_with(&self, ids: &[u32], kernel: Kernel) -> Vec<f32> {
        let h = self.cfg.hidden;
        let n = ids.len().min(self.cfg.max_positions);
        if n == 0 {
            return vec![0.0; h];
        }
        let mut x = vec![0f32; n * h];
        for (i, &id) in ids[..n].iter().enumerate() {
            let id = (id as usize).min(self.cfg.vocab - 1);
            let row = &mut x[i * h..(i + 1) * h];
            let w = &self.word[id * h..(id + 1) * h];
            let p = &self.position[i * h..(i + 1) * h];
            let t = &self.token_type[..h];
            for j in 0..h {
                row[j] = w[j] + p[j] + t[j];
            }
        }
        layer_norm(&mut x, &self.emb_norm, h, self.cfg.eps);
        let heads = self.cfg.heads;
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut q = vec![0f32; n * h];
        let mut k = vec![0f32; n * h];
        let mut v = vec![0f32; n * h];
        let mut ctx = vec![0f32; n * h];
        let mut scores = vec![0f32; n * n];
        let mut tmp = vec![0f32; n * h];
        let mut inter = vec![0f32; n * self.cfg.intermediate];
        let short = kernel == Kernel::Auto && n <= SHORT_TOKENS;
        for layer in &self.layers {
            linear(&x, n, &layer.q, &mut q, short);
            linear(&x, n, &layer.k, &mut k, short);
            linear(&x, n, &layer.v, &mut v, short);
            for head in 0..heads {
                let o = head * d;
                // scores = Q_h · K_hᵀ
                if short {
                    scores.fill(0.0);
                    dot::rows(&q[o..], n, h, &k[o..], n, h, d, &mut scores, n);
                } else {
                    gemm(
                        n,
                        d,
                        n,
                        Mat {
                            data: &q[o..],
                            rs: h,
                            cs: 1,
                        },
                        Mat {
                            data: &k[o..],
                            rs: 1,
                            cs: h,
                        },
                        0.0,
                        &mut scores,
                        n,
                    );
                }
                for row in scores.chunks_exact_mut(n) {
                    let max = row.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
                    let mut sum = 0.0;
                    for s in row.iter_mut() {
                        *s = ((*s - max) * scale).exp();
                        sum += *s;
                    }
                    let inv = 1.0 / sum;
                    row.iter_mut().for_each(|s| *s *= inv);
                }
                // ctx_h = P · V_h
                gemm(
                    n,
                    n,
                    d,
                    Mat {
                        data: &scores,
                        rs: n,
                        cs: 1,
                    },
                    Mat {
                        data: &v[o..],
                        rs: h,
                        cs: 1,
                    },
                    0.0,
                    &mut ctx[o..],
                    h,
                );
            }
            linear(&ctx, n, &layer.attn_out, &mut tmp, short);
            add_assign(&mut x, &tmp);
            layer_norm(&mut x, &layer.attn_norm, h, self.cfg.eps);
            linear(&x, n, &layer.inter, &mut inter, short);
            inter.iter_mut().for_each(|a| *a = gelu(*a));
            linear(&inter, n, &layer.out, &mut tmp, short);
            add_assign(&mut x, &tmp);
            layer_norm(&mut x, &layer.out_norm, h, self.cfg.eps);
        }
        let mut pooled = vec![0f32; h];
        for row in x.chunks_exact(h) {
            add_assign(&mut pooled, row);
        }
        let norm = pooled.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
        pooled.iter_mut().for_each(|a| *a /= norm);
        pooled
    }
}

/// `out = x · Wᵀ + b` for `n` rows, by row dot products if `short`, else by sgemm.
fn linear(x: &[f32], n: usize, l: &Linear, out: &mut [f32], short: bool) {
    for row in out[..n * l.out].chunks_exact_mut(l.out) {
        row.copy_from_slice(&l.b);
    }
    if short {
        dot::rows(x, n, l.inp, &l.w, l.out, l.inp, l.inp, out, l.out);
        return;
    }
    gemm(
        n,
        l.inp,
        l.out,
        Mat {
            data: x,
            rs: l.inp,
            cs: 1,
        },
        Mat {
            data: &l.w,
            rs: 1,
            cs: l.inp,
        },
        1.0,
        out,
        l.out,
    );
}

fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

fn layer_norm(x: &mut [f32], norm: &Norm, h: usize, eps: f32) {
    for row in x.chunks_exact_mut(h) {
        let mean = row.iter().sum::<f32>() / h as f32;
        let var = row.iter().map(|a| (a - mean) * (a - mean)).sum::<f32>() / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for (j, a) in row.iter_mut().enumerate() {
            *a = (*a - mean) * inv * norm.g[j] + norm.b[j];
        }
    }
}

/// GELU, erf form: `x/2 · (1 + erf(x/√2))`.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7), in f64.
fn erf(x: f32) -> f32 {
    let x = f64::from(x);
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    (if x < 0.0 { -y } else { y }) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 3e-7, "erf({x}) = {}", erf(x));
        }
    }
}
