//! Verified whole-object reads ([`GetOptions::verify`](dj_core::store::GetOptions::verify)): one
//! blocking task opens the file, reads it into a buffer that is not zeroed first, and hashes each
//! chunk right after reading it, while it is still in cache; a digest that differs fails the
//! read. A fetch of a hash-addressed object thus costs one trip to the blocking pool instead of
//! three (open, read, hash), and the bytes are walked once from memory instead of twice.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use dj_core::config::HashAlgorithm;
use dj_layout::ContentHasher;

/// The bytes read and hashed at a time: small enough to stay in the L2 cache between the read
/// that writes them and the hash that reads them.
const CHUNK: usize = 256 * 1024;

/// What a verified read found.
pub(crate) enum Outcome {
    /// The whole file, with its metadata.
    Bytes(Vec<u8>, std::fs::Metadata),
    /// The file's digest differs: the actual one.
    Mismatch(String),
    /// No regular file at the path.
    Missing,
}

/// Read the file at `path` whole, hashing it with `algorithm` as it is read, and compare the
/// digest with `expected`.
pub(crate) fn read_verified(
    path: &Path,
    algorithm: HashAlgorithm,
    expected: &str,
) -> io::Result<Outcome> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Outcome::Missing),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Outcome::Missing);
    }
    let len = usize::try_from(meta.len()).map_err(|_| {
        io::Error::other(format!(
            "the file holds {} bytes, more than this machine can address",
            meta.len()
        ))
    })?;
    // Not zeroed: each `read_to_end` reads straight into the spare capacity, so each page is
    // written once, by the read.
    let mut buf = Vec::with_capacity(len);
    dj_rt::pages::advise_huge(buf.as_ptr(), buf.capacity());
    let mut hasher = ContentHasher::new(algorithm);
    while buf.len() < len {
        let start = buf.len();
        let want = (len - start).min(CHUNK);
        let got = (&mut file).take(want as u64).read_to_end(&mut buf)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the file ended {} bytes early (it shrank while being read)",
                    len - start
                ),
            ));
        }
        hasher.update(&buf[start..]);
    }
    // Objects are never written in place (every write renames or links a complete staging file),
    // so the bytes read are one version of the object; the digest says whether it is the one
    // expected.
    let actual = hasher.finalize();
    if actual != expected {
        return Ok(Outcome::Mismatch(actual));
    }
    Ok(Outcome::Bytes(buf, meta))
}
