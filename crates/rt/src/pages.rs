//! Fresh large buffers backed by transparent huge pages.
//!
//! Filling a freshly allocated 64 MiB buffer costs more in page faults than in copying: with
//! 4 KiB pages that is 16,384 faults, each zeroing a page, and it caps a read or a decode into
//! a new buffer at about 1 GiB/s on a typical Linux server, where a copy into warm memory runs at
//! 8 to 11 GiB/s. Most distributions set transparent huge pages to `madvise`, so a buffer gets
//! 2 MiB pages (512 times fewer faults) only when asked. [`advise_huge`] asks, for buffers of
//! [`HUGE_MIN`] or more, before anything touches them; [`zeroed_bytes`] makes such a buffer.
//! Elsewhere than Linux both are plain.
//!
//! The advice itself is dj-core's (hidden there), because `dj_core::store::GetResult::bytes`
//! uses it and dj-core cannot depend on this crate; it is re-exported here.

pub use dj_core::pages::{HUGE_MIN, advise_huge};

/// A zeroed byte buffer of `len` bytes whose pages are not yet touched (large zeroed allocations
/// come straight from the kernel) and are advised to be huge pages.
pub fn zeroed_bytes(len: usize) -> Vec<u8> {
    let v = vec![0u8; len];
    advise_huge(v.as_ptr(), v.capacity());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_bytes_are_zeroed_at_every_size() {
        for n in [0usize, 1, 1000, HUGE_MIN + 3, HUGE_MIN * 3] {
            let v = zeroed_bytes(n);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|x| *x == 0));
        }
    }

    #[test]
    fn advice_on_an_owned_buffer_keeps_its_contents() {
        let mut v = vec![7u8; HUGE_MIN * 2 + 12345];
        advise_huge(v.as_ptr(), v.len());
        v[HUGE_MIN] = 9;
        assert_eq!(v[0], 7);
        assert_eq!(v[HUGE_MIN], 9);
        assert_eq!(v.iter().filter(|b| **b == 7).count(), v.len() - 1);
    }
}
