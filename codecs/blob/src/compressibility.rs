//! Whether a blob is worth compressing, decided without compressing it.
//!
//! [`Compression::Fast`](crate::Compression::Fast) compresses only blobs that zlib at level 1
//! would shrink by about a tenth or more. Trying zlib on a sample costs about as much as the
//! blob's whole encoding for blobs of tens of kilobytes, and for an incompressible blob (noisy
//! recordings, random floats) that work is thrown away. This module estimates instead, from a
//! few evenly spread windows of the blob, the two things deflate gains from:
//!
//! - **repeats**: the share of bytes that a greedy scan with a small hash table of 4-byte
//!   sequences finds again earlier in the same window (what LZ77 turns into short matches);
//! - **skewed byte frequencies**: the order-0 entropy of the bytes that are not repeats (what
//!   Huffman coding of literals saves).
//!
//! The estimate reads an eighth of the blob once (at least 8 KiB, at most [`SAMPLE_BYTES`]). It
//! only steers the cost: a blob estimated compressible is still compressed for real and kept
//! uncompressed when that does not make it smaller, so a wrong guess never changes what a reader
//! gets back.

/// The most bytes the estimate reads.
pub(crate) const SAMPLE_BYTES: usize = 32 * 1024;
/// The size of one window.
const WINDOW: usize = 4 * 1024;
/// Hash-table bits of the repeat scan (per window, so repeats are found within `WINDOW` bytes,
/// inside deflate's 32 KiB reach).
const HASH_BITS: u32 = 12;
/// Compress when the estimated size is below this share of the input (deflate at level 1 must
/// save about a tenth to be worth its time on the read side too).
const WORTH_BELOW: f64 = 0.88;

/// Estimated compressed size as a share of the input (0 = all repeats, ~1 = incompressible).
pub(crate) fn estimated_ratio(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 1.0;
    }
    let mut counts = [0u32; 256];
    let mut literals = 0u64;
    let mut repeated = 0u64;
    let mut table = vec![0u32; 1 << HASH_BITS];
    for window in windows(data) {
        table.fill(0);
        let mut i = 0;
        while i < window.len() {
            if i + 4 <= window.len() {
                let word = word_at(window, i);
                let slot = (word.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize;
                // Positions are stored plus one so that zero means empty.
                let previous = table[slot] as usize;
                table[slot] = (i + 1) as u32;
                // Compared as words: a slice comparison of four bytes is a call to `bcmp`,
                // and on noise nearly every position has an earlier one in its slot.
                if previous > 0 && word_at(window, previous - 1) == word {
                    // Extend the match as deflate would, then skip over it.
                    let mut len = 4;
                    let from = previous - 1;
                    while i + len < window.len()
                        && len < 258
                        && window[from + len] == window[i + len]
                    {
                        len += 1;
                    }
                    repeated += len as u64;
                    i += len;
                    continue;
                }
            }
            counts[window[i] as usize] += 1;
            literals += 1;
            i += 1;
        }
    }
    let total = (literals + repeated) as f64;
    let entropy = entropy_bits(&counts, literals);
    // A match costs deflate roughly 3 bytes per 32 covered at level 1's typical lengths; a
    // literal costs its entropy plus Huffman's overhead of about a tenth of a bit.
    let match_cost = repeated as f64 * (3.0 / 32.0);
    let literal_cost = literals as f64 * ((entropy + 0.1).min(8.0) / 8.0);
    (match_cost + literal_cost) / total
}

/// The little-endian word of the four bytes at `at` (which the caller keeps in bounds).
fn word_at(window: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&window[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Whether zlib at level 1 is expected to shrink `data` enough to be worth doing.
pub(crate) fn worth_compressing(data: &[u8]) -> bool {
    estimated_ratio(data) < WORTH_BELOW
}

/// The sample is at least this share of the blob (`1 / SAMPLE_SHARE`), up to [`SAMPLE_BYTES`],
/// and at least [`MIN_SAMPLE`]: a blob of 64 KiB is judged from two windows, one of 256 KiB or
/// more from eight. The scan costs a few nanoseconds a byte, so a sample of half a 64 KiB blob
/// cost more than hashing the whole blob with MD5.
const SAMPLE_SHARE: usize = 8;
/// The smallest sample, for blobs longer than it.
const MIN_SAMPLE: usize = 2 * WINDOW;

/// The bytes the estimate reads from a blob of `len` bytes.
fn sample_len(len: usize) -> usize {
    (len / SAMPLE_SHARE)
        .clamp(MIN_SAMPLE, SAMPLE_BYTES)
        .min(len)
}

/// Windows spread evenly over `data`, [`sample_len`] bytes in all (the whole of it when short).
fn windows(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let sample = sample_len(data.len());
    let n = sample.div_ceil(WINDOW).max(1);
    let stride = if n > 1 {
        (data.len() - WINDOW.min(data.len())) / (n - 1)
    } else {
        0
    };
    (0..n).map(move |k| {
        let start = if data.len() <= sample {
            k * WINDOW
        } else {
            k * stride
        };
        let end = (start + WINDOW).min(data.len());
        &data[start.min(end)..end]
    })
}

/// Order-0 entropy in bits per byte of a histogram with `total` entries.
fn entropy_bits(counts: &[u32; 256], total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let total = total as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / total;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::ZlibEncoder;

    use super::*;

    fn zlib1_ratio(data: &[u8]) -> f64 {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::new(1));
        e.write_all(data).unwrap();
        e.finish().unwrap().len() as f64 / data.len() as f64
    }

    /// A deterministic pseudo-random generator (xorshift), so the corpus is the same each run.
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn f64_bytes(values: impl Iterator<Item = f64>) -> Vec<u8> {
        values.flat_map(f64::to_le_bytes).collect()
    }

    fn corpus() -> Vec<(&'static str, Vec<u8>)> {
        let n = 1 << 17;
        let random = noise(n * 8, 7);
        let random_f64 = f64_bytes(
            random
                .chunks(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) % 1.0e3),
        );
        let mut repeated_block = noise(2000, 3);
        repeated_block = repeated_block.repeat(60);
        let mut half = noise(60_000, 11);
        half.extend(std::iter::repeat_n(0u8, 60_000));
        // Gaussian noise (Box-Muller), like a recording's noise floor.
        let gaussian = f64_bytes(random.chunks(16).map(|c| {
            let u1 =
                (u64::from_le_bytes(c[..8].try_into().unwrap()) >> 11) as f64 / (1u64 << 53) as f64;
            let u2 =
                (u64::from_le_bytes(c[8..].try_into().unwrap()) >> 11) as f64 / (1u64 << 53) as f64;
            (-2.0 * (u1 + 1e-300).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }));
        vec![
            ("random bytes", random.clone()),
            ("gaussian noise as float64", gaussian),
            ("random floats", random_f64),
            ("zeros", vec![0; 100_000]),
            (
                "small integers as int64",
                (0..n as i64)
                    .flat_map(|i| (i % 100).to_le_bytes())
                    .collect(),
            ),
            (
                "counter as int32",
                (0..n as i32).flat_map(i32::to_le_bytes).collect(),
            ),
            (
                "slow sine as float64",
                f64_bytes((0..n).map(|i| (i as f64 / 5000.0).sin())),
            ),
            (
                "quantized signal as float64",
                f64_bytes((0..n).map(|i| ((i as f64 / 50.0).sin() * 100.0).round())),
            ),
            ("a repeated random block", repeated_block),
            (
                "text",
                "the quick brown fox jumps over the lazy dog, "
                    .repeat(3000)
                    .into_bytes(),
            ),
            ("noise then zeros", half),
            (
                "7-bit noise",
                noise(100_000, 5).iter().map(|b| b & 0x7f).collect(),
            ),
        ]
    }

    /// The estimate agrees with zlib itself wherever zlib's answer is clear: it calls
    /// compressible what zlib level 1 shrinks below 80%, and incompressible what zlib leaves
    /// above 95%.
    #[test]
    fn agrees_with_zlib_where_zlib_is_clear() {
        for (name, data) in corpus() {
            let real = zlib1_ratio(&data);
            let estimate = estimated_ratio(&data);
            eprintln!("{name}: zlib {real:.3} estimate {estimate:.3}");
            if real < 0.80 {
                assert!(
                    worth_compressing(&data),
                    "{name}: zlib gives {real:.3}, the estimate {estimate:.3} says no"
                );
            } else if real > 0.95 {
                assert!(
                    !worth_compressing(&data),
                    "{name}: zlib gives {real:.3}, the estimate {estimate:.3} says yes"
                );
            }
        }
    }

    #[test]
    fn short_and_empty_inputs() {
        assert!(!worth_compressing(&[]));
        assert!(worth_compressing(&[0; 1001]));
        assert!(!worth_compressing(&noise(1001, 9)));
        // Windows never run past the end, whatever the length.
        for len in [
            1,
            3,
            4,
            4095,
            4096,
            4097,
            8 * 1024 + 1,
            32 * 1024,
            32 * 1024 + 1,
            64 * 1024,
            100_003,
            256 * 1024 + 5,
        ] {
            let _ = estimated_ratio(&noise(len, len as u64));
            let zeros = vec![0u8; len];
            let windows: Vec<&[u8]> = windows(&zeros).collect();
            let read: usize = windows.iter().map(|w| w.len()).sum();
            assert!(read <= len && read <= SAMPLE_BYTES, "{len}: {read}");
            assert!(
                read >= sample_len(len).saturating_sub(WINDOW),
                "{len}: {read}"
            );
        }
        assert_eq!(sample_len(64 * 1024), 2 * WINDOW);
        assert_eq!(sample_len(1 << 20), SAMPLE_BYTES);
    }
}
