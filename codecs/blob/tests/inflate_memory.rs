//! Inflating a `ZL123` blob never allocates more than the decompressed-size limit, even when the
//! header lies: a 1 MiB zlib stream of zeros that inflates to 1 GiB is refused (by the limit when
//! the header tells the truth, by the size check when it understates) while the decoder's
//! allocations stay small.
//!
//! This binary counts every allocation through a global allocator, so it holds a single test.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
// The counting allocator below must implement `GlobalAlloc`, an unsafe trait; it only forwards to
// the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use dj_codec_blob::{BlobError, DecodeOptions, decode_with};

/// The system allocator, keeping track of the bytes live and of their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn record(grown: usize) {
    let now = LIVE.fetch_add(grown, Ordering::SeqCst) + grown;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// have no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Count the new block before the old one is released, as a realloc may move.
        record(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most memory held at once while `f` runs, beyond what was held when it started.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

/// `ZL123`, the declared length, and a zlib stream of a `uint8` array header followed by `n - 29`
/// zero bytes (so the stream inflates to `n` bytes), written without holding the zeros.
fn zeros_blob(n: u64, declared: u64) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let elements = n - 29;
    z.write_all(b"mYm\0A").unwrap();
    z.write_all(&1u64.to_le_bytes()).unwrap();
    z.write_all(&elements.to_le_bytes()).unwrap();
    z.write_all(&9u32.to_le_bytes()).unwrap();
    z.write_all(&0u32.to_le_bytes()).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = elements;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        z.write_all(&chunk[..k]).unwrap();
        left -= k as u64;
    }
    let mut blob = b"ZL123\0".to_vec();
    blob.extend_from_slice(&declared.to_le_bytes());
    blob.extend_from_slice(&z.finish().unwrap());
    blob
}

fn limited(limit: u64) -> DecodeOptions {
    DecodeOptions {
        max_decompressed_size: limit,
        ..DecodeOptions::default()
    }
}

#[test]
fn inflating_never_allocates_past_the_limit() {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    let honest = zeros_blob(GIB, GIB);
    assert!(
        (honest.len() as u64) < 2 * MIB,
        "a zlib bomb: {} bytes",
        honest.len()
    );

    // The header tells the truth: refused before anything is allocated.
    let (result, peak) = peak_during(|| decode_with(&honest, limited(64 * MIB)));
    assert_eq!(
        result.unwrap_err(),
        BlobError::TooLarge {
            declared: GIB,
            limit: 64 * MIB
        }
    );
    assert!(peak < 64 * 1024, "{peak} bytes allocated");

    // The header understates (1 MiB, within a 64 MiB limit): inflating stops one byte past the
    // stated size, with about that much memory.
    let mut lying = honest.clone();
    lying[6..14].copy_from_slice(&MIB.to_le_bytes());
    let (result, peak) = peak_during(|| decode_with(&lying, limited(64 * MIB)));
    assert!(
        matches!(result, Err(BlobError::SizeMismatch { expected, actual }) if expected == MIB && actual == MIB + 1),
        "{result:?}"
    );
    assert!(peak < (MIB + 256 * 1024) as usize, "{peak} bytes allocated");

    // A header that overstates (within the limit) allocates only as the data arrives: a 4 MiB
    // stream declaring 60 MiB holds a buffer of at most twice what arrived.
    let short = zeros_blob(4 * MIB, 60 * MIB);
    let (result, peak) = peak_during(|| decode_with(&short, limited(64 * MIB)));
    assert!(
        matches!(result, Err(BlobError::SizeMismatch { expected, actual }) if expected == 60 * MIB && actual == 4 * MIB),
        "{result:?}"
    );
    assert!(
        peak <= (8 * MIB + 256 * 1024) as usize,
        "{peak} bytes allocated"
    );

    // A legitimate blob at the limit reads, with one buffer of its size (and the decoded array).
    let fits = zeros_blob(16 * MIB, 16 * MIB);
    let (result, peak) = peak_during(|| decode_with(&fits, limited(16 * MIB)).map(drop));
    result.unwrap();
    assert!(
        peak <= (2 * 16 * MIB + MIB) as usize,
        "{peak} bytes allocated"
    );
}
