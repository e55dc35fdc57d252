//! Fresh large typed buffers backed by transparent huge pages (see [`dj_rt::pages`]).

pub(crate) use dj_rt::pages::advise_huge;

/// A zeroed `Vec<T>` of `n` elements whose pages are not yet touched (large zeroed allocations
/// come straight from the kernel) and are advised to be huge pages.
pub(crate) fn zeroed_vec<T: bytemuck::Pod>(n: usize) -> Vec<T> {
    let v: Vec<T> = bytemuck::zeroed_vec(n);
    advise_huge(v.as_ptr().cast(), v.capacity() * std::mem::size_of::<T>());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_vec_is_zeroed_at_every_size() {
        const N: usize = dj_rt::pages::HUGE_MIN / 8;
        for n in [0usize, 1, 1000, N + 3, N * 3] {
            let v: Vec<f64> = zeroed_vec(n);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|x| *x == 0.0));
        }
    }
}
