//! Dot products of rows for the encoder's short inputs: `out[i][j] += x_i · w_j` over the
//! rows of two row-major matrices, with an AVX2+FMA kernel picked at run time (plain Rust
//! elsewhere).
//!
//! A query is a handful of tokens, so its matrices have a few rows only. sgemm copies
//! ("packs") both operands into its own layout on every call, which costs as much as the
//! multiply itself when one side has two rows; here the linear layers' weights, stored
//! `[out, in]` with each output's weights contiguous, are read once in place, and each
//! output is the dot product of an input row with a weight row. The kernel takes three input
//! rows and four weight rows at a time (twelve sums in flight, seven loads for twelve
//! multiply-adds), and while the first three input rows go through a block of weight rows it
//! prefetches the next block, so that fetching weights from memory overlaps the arithmetic
//! (worth 10-25% on this 2-core machine; two rows at a time instead of three, 5-10%).

/// `out[i * out_rs + j] += x[i * x_rs ..][..k] · w[j * w_rs ..][..k]` for every input row
/// `i < n` and weight row `j < m`. Panics if a row reaches past its slice or two output
/// rows overlap.
#[allow(clippy::too_many_arguments)] // two strided row sets, their common length, the output.
pub fn rows(
    x: &[f32],
    n: usize,
    x_rs: usize,
    w: &[f32],
    m: usize,
    w_rs: usize,
    k: usize,
    out: &mut [f32],
    out_rs: usize,
) {
    if n == 0 || m == 0 {
        return;
    }
    let last = |rows: usize, rs: usize, len: usize| (rows - 1) * rs + len;
    assert!(last(n, x_rs, k) <= x.len(), "dot: x out of bounds");
    assert!(last(m, w_rs, k) <= w.len(), "dot: w out of bounds");
    assert!(last(n, out_rs, m) <= out.len(), "dot: out out of bounds");
    assert!(m <= out_rs || n == 1, "dot: out rows overlap");
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above), and the asserts above
        // keep every row the kernel reads (`k` elements from `i * x_rs` and `j * w_rs`) and
        // every output it writes (`m` elements from `i * out_rs`) inside its slice.
        #[allow(unsafe_code)]
        unsafe {
            avx2::rows(x, n, x_rs, w, m, w_rs, k, out, out_rs);
        }
        return;
    }
    rows_plain(x, n, x_rs, w, m, w_rs, k, out, out_rs);
}

/// `rows` in plain Rust, for CPUs without AVX2 and FMA (bounds already checked).
#[allow(clippy::too_many_arguments)]
fn rows_plain(
    x: &[f32],
    n: usize,
    x_rs: usize,
    w: &[f32],
    m: usize,
    w_rs: usize,
    k: usize,
    out: &mut [f32],
    out_rs: usize,
) {
    for i in 0..n {
        let xi = &x[i * x_rs..][..k];
        let oi = &mut out[i * out_rs..][..m];
        for (j, o) in oi.iter_mut().enumerate() {
            *o += dot_plain(xi, &w[j * w_rs..][..k]);
        }
    }
}

/// `a · b` over the shorter length, in plain Rust: eight partial sums the compiler can keep
/// in one vector register.
pub fn dot_plain(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (a8, a_tail) = a[..len].split_at(len - len % 8);
    let (b8, b_tail) = b[..len].split_at(len - len % 8);
    let mut acc = [0f32; 8];
    for (ca, cb) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += ca[l] * cb[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (p, q) in a_tail.iter().zip(b_tail) {
        s += p * q;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::{
        __m128, __m256, _MM_HINT_T0, _mm_add_ps, _mm_prefetch, _mm_storeu_ps,
        _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_hadd_ps,
        _mm256_loadu_ps, _mm256_setzero_ps,
    };

    /// Whether this CPU has AVX2 and FMA (std caches the answer).
    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// The body of `super::rows`: for each block of 4 weight rows, the input rows 3 at a
    /// time (then 2 or 1), then the weight rows left over one at a time. The first group of
    /// input rows also prefetches the next block of weight rows, so that memory fetches it
    /// while this block is computed (the other groups find the block in cache).
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA, and the slices hold every row and output as
    /// `super::rows` asserts.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn rows(
        x: &[f32],
        n: usize,
        x_rs: usize,
        w: &[f32],
        m: usize,
        w_rs: usize,
        k: usize,
        out: &mut [f32],
        out_rs: usize,
    ) {
        let mut j = 0;
        while j + 4 <= m {
            // The next block of weight rows, if there is one.
            let mut ahead = if j + 8 <= m { 4 * w_rs } else { 0 };
            let mut i = 0;
            while i < n {
                let rows = (n - i).min(3);
                // SAFETY: rows i..i + rows of x and j..j + 4 of w are in bounds (caller).
                unsafe {
                    match rows {
                        3 => block::<3, 4>(x, i, x_rs, w, j, w_rs, k, out, out_rs, ahead),
                        2 => block::<2, 4>(x, i, x_rs, w, j, w_rs, k, out, out_rs, ahead),
                        _ => block::<1, 4>(x, i, x_rs, w, j, w_rs, k, out, out_rs, ahead),
                    }
                }
                i += rows;
                ahead = 0;
            }
            j += 4;
        }
        while j < m {
            for i in 0..n {
                // SAFETY: as above, for one row of each.
                unsafe { block::<1, 1>(x, i, x_rs, w, j, w_rs, k, out, out_rs, 0) };
            }
            j += 1;
        }
    }

    /// `R` input rows from `i` against `C` weight rows from `j`: `R × C` sums, eight lanes
    /// each, added into `out` at the end. With `ahead` non-zero, also prefetches the weights
    /// `ahead` elements after each of the `C` rows (a later block of rows).
    ///
    /// # Safety
    /// AVX2 and FMA are available; rows `i..i + R` of `x` and `j..j + C` of `w` hold `k`
    /// elements each, and outputs `(i + r) * out_rs + j + c` are inside `out`.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const R: usize, const C: usize>(
        x: &[f32],
        i: usize,
        x_rs: usize,
        w: &[f32],
        j: usize,
        w_rs: usize,
        k: usize,
        out: &mut [f32],
        out_rs: usize,
        ahead: usize,
    ) {
        let mut xp = [x.as_ptr(); R];
        for (r, p) in xp.iter_mut().enumerate() {
            *p = x[(i + r) * x_rs..].as_ptr();
        }
        let mut wp = [w.as_ptr(); C];
        for (c, p) in wp.iter_mut().enumerate() {
            *p = w[(j + c) * w_rs..].as_ptr();
        }
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let k8 = k - k % 8;
        let mut p = 0;
        while p < k8 {
            let mut xv = [_mm256_setzero_ps(); R];
            for r in 0..R {
                // SAFETY: p + 8 <= k, so the load reads inside row i + r (caller's bounds).
                xv[r] = unsafe { _mm256_loadu_ps(xp[r].add(p)) };
            }
            if ahead > 0 && p % 16 == 0 {
                for &row in &wp {
                    // A hint only: the address is not read, and the caller keeps it inside `w`.
                    _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(ahead + p).cast::<i8>());
                }
            }
            for c in 0..C {
                // SAFETY: as above.
                let wv = unsafe { _mm256_loadu_ps(wp[c].add(p)) };
                for r in 0..R {
                    acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
                }
            }
            p += 8;
        }
        for r in 0..R {
            let mut sums = [0f32; C];
            if C == 4 {
                // SAFETY: acc[r] has four vectors (C == 4) and sums four floats.
                unsafe { _mm_storeu_ps(sums.as_mut_ptr(), hsum4(&acc[r][..4])) };
            } else {
                for c in 0..C {
                    sums[c] = hsum(acc[r][c]);
                }
            }
            let xr = &x[(i + r) * x_rs..][..k];
            let o = &mut out[(i + r) * out_rs + j..][..C];
            for c in 0..C {
                let wc = &w[(j + c) * w_rs..][..k];
                let tail: f32 = xr[k8..].iter().zip(&wc[k8..]).map(|(a, b)| a * b).sum();
                o[c] += sums[c] + tail;
            }
        }
    }

    /// The lane sums of four vectors, as one vector of four.
    #[target_feature(enable = "avx2,fma")]
    fn hsum4(v: &[__m256]) -> __m128 {
        let a = _mm256_hadd_ps(v[0], v[1]);
        let b = _mm256_hadd_ps(v[2], v[3]);
        let s = _mm256_hadd_ps(a, b);
        _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1))
    }

    /// The sum of one vector's eight lanes.
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let mut l = [0f32; 4];
        // SAFETY: `l` holds four floats.
        unsafe { _mm_storeu_ps(l.as_mut_ptr(), s) };
        (l[0] + l[1]) + (l[2] + l[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reproducible pseudo-random vector in [-1, 1) (xorshift).
    fn noise(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The exact-ish product in f64, and the sum of the terms' magnitudes (the scale of the
    /// rounding error any f32 order of summation can make).
    fn reference(a: &[f32], b: &[f32]) -> (f64, f64) {
        a.iter().zip(b).fold((0.0, 0.0), |(s, m), (&p, &q)| {
            let t = f64::from(p) * f64::from(q);
            (s + t, m + t.abs())
        })
    }

    const LENGTHS: [usize; 8] = [0, 1, 7, 8, 9, 383, 384, 1536];

    /// `rows` or one of its bodies.
    type Kernel = fn(&[f32], usize, usize, &[f32], usize, usize, usize, &mut [f32], usize);

    /// Checks `kernel` on `n` input rows and `m` weight rows of every length, with strides
    /// longer than the rows and outputs that start non-zero.
    fn check(kernel: Kernel) {
        for k in LENGTHS {
            for (n, m) in [(1, 1), (2, 4), (3, 5), (5, 9), (2, 3), (4, 8), (7, 12)] {
                let (x_rs, w_rs, out_rs) = (k + 3, k + 1, m + 2);
                let x = noise(n * x_rs, k as u64 * 31 + n as u64);
                let w = noise(m * w_rs, k as u64 * 17 + m as u64);
                let start = noise(n * out_rs, 7);
                let mut out = start.clone();
                kernel(&x, n, x_rs, &w, m, w_rs, k, &mut out, out_rs);
                for i in 0..n {
                    for j in 0..out_rs {
                        let got = out[i * out_rs + j];
                        if j >= m {
                            assert_eq!(got, start[i * out_rs + j], "wrote past row {i}'s outputs");
                            continue;
                        }
                        let (want, scale) = reference(&x[i * x_rs..][..k], &w[j * w_rs..][..k]);
                        let want = want + f64::from(start[i * out_rs + j]);
                        let err = (f64::from(got) - want).abs();
                        assert!(
                            err <= 1e-5 * (scale + 1.0),
                            "k {k}, {n}×{m}, out ({i}, {j}): {got} vs {want} (scale {scale})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rows_match_the_f64_reference_on_every_length() {
        #[cfg(target_arch = "x86_64")]
        if std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" avx2 ")) {
            assert!(
                avx2::available(),
                "the CPU lists avx2 but the kernel is not used"
            );
        }
        check(rows);
    }

    #[test]
    fn the_plain_fallback_matches_the_f64_reference_on_every_length() {
        check(rows_plain);
    }

    #[test]
    fn dot_plain_matches_the_f64_reference() {
        for k in LENGTHS {
            let (a, b) = (noise(k, 1), noise(k, 2));
            let (want, scale) = reference(&a, &b);
            let got = f64::from(dot_plain(&a, &b));
            assert!(
                (got - want).abs() <= 1e-5 * (scale + 1.0),
                "k {k}: {got} vs {want}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn a_row_past_its_slice_panics_instead_of_reading_it() {
        let mut out = [0.0; 4];
        rows(&[0.0; 15], 2, 8, &[0.0; 16], 2, 8, 8, &mut out, 2);
    }
}
