//! Matrix multiply for the encoder: a bounds-checked safe wrapper around `matrixmultiply`'s
//! sgemm (pure Rust, runtime-detected AVX/FMA kernels).

/// A matrix view over a slice: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// `c = a · b + beta · c` for an `m × k` `a`, a `k × n` `b` and an `m × n` `c` stored
/// row-major with row stride `c_rs`. Panics if any view reaches past its slice.
#[allow(clippy::too_many_arguments)] // sgemm's own shape: three sizes, three views, beta.
pub fn gemm(m: usize, k: usize, n: usize, a: Mat, b: Mat, beta: f32, c: &mut [f32], c_rs: usize) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows - 1) * rs + cols.saturating_sub(1) * cs
    };
    if k > 0 {
        assert!(
            last(m, k, a.rs, a.cs) < a.data.len(),
            "gemm: a out of bounds"
        );
        assert!(
            last(k, n, b.rs, b.cs) < b.data.len(),
            "gemm: b out of bounds"
        );
    }
    assert!(last(m, n, c_rs, 1) < c.len(), "gemm: c out of bounds");
    assert!(n <= c_rs || m == 1, "gemm: c rows overlap");
    // SAFETY: every element sgemm reads or writes lies inside the slices, as checked above
    // (the last element of each view is in bounds and strides are non-negative), `c` is a
    // unique borrow, and its rows do not overlap.
    #[allow(unsafe_code)]
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            c_rs as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_match_the_naive_loop_with_transposed_views() {
        // a: 2×3 row-major; w: 2×3 row-major used as b = wᵀ (3×2).
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let w = [1.0, 0.0, -1.0, 0.5, 0.5, 0.5];
        let mut c = [10.0; 4];
        gemm(
            2,
            3,
            2,
            Mat {
                data: &a,
                rs: 3,
                cs: 1,
            },
            Mat {
                data: &w,
                rs: 1,
                cs: 3,
            },
            1.0,
            &mut c,
            2,
        );
        assert_eq!(c, [10.0 - 2.0, 13.0, 10.0 - 2.0, 17.5]);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn a_view_past_its_slice_panics_instead_of_reading_it() {
        let mut c = [0.0; 4];
        gemm(
            2,
            3,
            2,
            Mat {
                data: &[0.0; 5],
                rs: 3,
                cs: 1,
            },
            Mat {
                data: &[0.0; 6],
                rs: 2,
                cs: 1,
            },
            0.0,
            &mut c,
            2,
        );
    }
}
