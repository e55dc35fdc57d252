//! # dj-codec-attach: file attachments
//!
//! `<attach>` keeps a file with its name: the stored bytes are the UTF-8 file name, a NUL byte, and
//! the contents, exactly as DataJoint 2.x stores them. In the table the column is `bytes`;
//! `<attach@>` and `<attach@store>` chain into `<hash@>`, so identical attachments are stored once
//! (the hash covers name and contents).
//!
//! On insert an attachment is either a local file path ([`Value::String`]) or an in-memory
//! [`Attachment`] (a name and bytes). On fetch the file is written to the configured
//! `download_path` with DataJoint's collision rule (a file with identical contents is reused,
//! otherwise `stem_1.ext`, `stem_2.ext`, …), and the value returned is an [`Attachment`] carrying
//! the name, the bytes and where it was saved.
//!
//! File names containing `/`, `\`, NUL, or equal to `.` or `..` are rejected on insert and on
//! fetch, so an attachment can never be written outside `download_path`. So are names longer than
//! [`MAX_FILENAME_BYTES`] (255 bytes, the file-system limit): whatever insert accepts, fetch can
//! write. The temporary file fetch writes first has a short name of its own, so a 255-byte name
//! round-trips.
//!
//! ```
//! use dj_codec_attach::{Attachment, pack, unpack};
//!
//! let packed = pack("att.txt", b"attached").unwrap();
//! assert_eq!(&packed[..], b"att.txt\0attached");
//! let (name, data) = unpack(&packed).unwrap();
//! assert_eq!((name, &data[..]), ("att.txt", &b"attached"[..]));
//! assert!(pack("../x", b"").is_err());
//! # let _ = Attachment::new("a", b"b".to_vec());
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use dj_core::codec::{Codec, CodecContext};
use dj_core::error::{Error, Result};
use dj_core::typespec::{CoreType, TypeSpec};
use dj_core::value::Value;

/// The codec name.
pub const NAME: &str = "attach";

/// An attachment: a file name and its contents, and, after fetch, where it was saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name (no directories).
    pub filename: String,
    /// The contents.
    pub data: Bytes,
    /// Where fetch wrote the file, if it did.
    pub saved_to: Option<PathBuf>,
}

impl Attachment {
    /// An in-memory attachment to insert.
    pub fn new(filename: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Attachment {
            filename: filename.into(),
            data: data.into(),
            saved_to: None,
        }
    }
}

/// The longest attachment file name, in bytes: the limit of common file systems (ext4, XFS,
/// APFS, NTFS), so that fetch can write every name insert accepts.
pub const MAX_FILENAME_BYTES: usize = 255;

/// Check an attachment file name: one path segment (no `/` or `\`, not `.` or `..`, not
/// empty), no NUL or other control characters, no Windows drive prefix (the rule of
/// [`dj_layout::check_file_name`], which it applies), and at most [`MAX_FILENAME_BYTES`]
/// bytes.
pub fn check_filename(name: &str) -> Result<()> {
    dj_layout::check_file_name(name)?;
    if name.len() > MAX_FILENAME_BYTES {
        return Err(Error::invalid_path(
            name,
            format!(
                "attachment file name is {} bytes long; at most {MAX_FILENAME_BYTES} bytes can be \
                 written as a file on fetch",
                name.len()
            ),
        ));
    }
    Ok(())
}

/// Pack a name and contents as DataJoint stores them: `name\0contents`.
pub fn pack(filename: &str, data: &[u8]) -> Result<Bytes> {
    check_filename(filename)?;
    let mut buf = BytesMut::with_capacity(filename.len() + 1 + data.len());
    buf.put_slice(filename.as_bytes());
    buf.put_u8(0);
    buf.put_slice(data);
    Ok(buf.freeze())
}

/// Split stored bytes into name and contents, checking the name.
pub fn unpack(stored: &Bytes) -> Result<(&str, Bytes)> {
    let nul = stored.iter().position(|&b| b == 0).ok_or_else(|| {
        Error::codec(
            NAME,
            "stored attachment has no NUL between file name and contents",
        )
    })?;
    let name = std::str::from_utf8(&stored[..nul])
        .map_err(|_| Error::codec(NAME, "stored attachment file name is not UTF-8"))?;
    check_filename(name)?;
    Ok((name, stored.slice(nul + 1..)))
}

/// Write `data` as `filename` into `dir` with DataJoint's collision rule and return the path:
/// an existing file with identical contents is reused; otherwise `stem_1.ext`, `stem_2.ext`, … is
/// tried until a free name or one with identical contents is found. When `stem_N.ext` would be
/// longer than [`MAX_FILENAME_BYTES`], the stem is shortened (at a character boundary) to fit.
///
/// Safe under concurrency (several rows of one fetch, several processes): the contents are
/// written to a temporary file first and published under the chosen name with a rename that
/// fails if the name is taken (`tempfile`'s `persist_noclobber`). So a file is never visible half-written under a final name, and
/// nothing is ever overwritten. Where hard links are not supported, the file is created with
/// `create_new` and written in place.
pub fn save_into(dir: &Path, filename: &str, data: &[u8]) -> Result<PathBuf> {
    check_filename(filename)?;
    let io = |path: &Path, source: std::io::Error| Error::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let original = Path::new(filename);
    let stem = original
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = original
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut staged = Staged::new(dir);
    let mut candidate = dir.join(filename);
    let mut counter = 0u64;
    loop {
        match std::fs::read(&candidate) {
            Ok(existing) if existing == data => return Ok(candidate),
            Ok(_) => {
                counter += 1;
                candidate = dir.join(numbered_name(&stem, &ext, counter));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match staged.publish(&candidate, data) {
                    Ok(true) => return Ok(candidate),
                    // Taken meanwhile: look at what is there now.
                    Ok(false) => continue,
                    Err(e) => return Err(io(&candidate, e)),
                }
            }
            Err(e) => return Err(io(&candidate, e)),
        }
    }
}

/// `{stem}_{counter}{ext}`, with the stem (and, if that is not enough, the extension) cut at a
/// character boundary so that the name is at most [`MAX_FILENAME_BYTES`] bytes long.
fn numbered_name(stem: &str, ext: &str, counter: u64) -> String {
    let suffix = format!("_{counter}");
    let room = MAX_FILENAME_BYTES.saturating_sub(suffix.len());
    let ext = prefix_within(ext, room);
    let stem = prefix_within(stem, room - ext.len());
    format!("{stem}{suffix}{ext}")
}

/// The longest prefix of `s` of at most `max` bytes that ends at a character boundary.
fn prefix_within(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The temporary file [`save_into`] writes once and publishes under the name it settles on: a
/// `tempfile` beside the target with a short name independent of the attachment's (which may
/// already be as long as the file system allows), `.dj-XXXXXX.dj-part`. It is persisted without
/// clobbering (an atomic rename that fails when the name is taken); until then, dropping it (an
/// error, a panic) removes it.
struct Staged<'a> {
    dir: &'a Path,
    file: Option<tempfile::NamedTempFile>,
    links: bool,
}

impl<'a> Staged<'a> {
    fn new(dir: &'a Path) -> Staged<'a> {
        Staged {
            dir,
            file: None,
            links: true,
        }
    }

    /// The temporary file holding `data`, written on first use.
    fn written(&mut self, data: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
        use std::io::Write;
        if let Some(file) = self.file.take() {
            return Ok(file);
        }
        let mut file = tempfile::Builder::new()
            .prefix(".dj-")
            .suffix(".dj-part")
            .tempfile_in(self.dir)?;
        file.write_all(data)?;
        file.as_file().sync_all()?;
        Ok(file)
    }

    /// Make `target` hold `data` unless the name is taken: `Ok(true)` when published,
    /// `Ok(false)` when something else is already there.
    fn publish(&mut self, target: &Path, data: &[u8]) -> std::io::Result<bool> {
        use std::io::Write;
        if self.links {
            match self.written(data)?.persist_noclobber(target) {
                Ok(_) => return Ok(true),
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                    self.file = Some(e.file);
                    return Ok(false);
                }
                // No atomic rename or hard links here (some network and FAT file systems):
                // the temporary file is removed and the data written in place.
                Err(_) => self.links = false,
            }
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target)
        {
            Ok(mut f) => {
                f.write_all(data)?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The `<attach>` codec.
#[derive(Debug, Default, Clone, Copy)]
pub struct AttachCodec;

dj_core::submit_codec!(NAME, || Arc::new(AttachCodec));

/// Local file work, always on the blocking pool when a runtime is running.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    dj_rt::task::run_blocking(true, NAME, "file task", f).await?
}

#[async_trait]
impl Codec for AttachCodec {
    fn name(&self) -> &str {
        NAME
    }

    fn dtype(&self, is_store: bool) -> Result<TypeSpec> {
        if is_store {
            Ok(TypeSpec::Codec {
                name: "hash".into(),
                store: None,
            })
        } else {
            Ok(TypeSpec::Core(CoreType::Bytes))
        }
    }

    fn validate(&self, value: &Value) -> Result<()> {
        match value {
            Value::String(_) => Ok(()),
            Value::Domain(d) if d.is::<Attachment>() => d
                .downcast_ref::<Attachment>()
                .map_or(Ok(()), |a| check_filename(&a.filename)),
            other => Err(Error::codec(
                NAME,
                format!(
                    "<attach> takes a file path or an Attachment, found {}",
                    other.kind()
                ),
            )),
        }
    }

    async fn encode(&self, value: Value, _ctx: &CodecContext) -> Result<Value> {
        match value {
            Value::String(path) => {
                let packed = blocking(move || {
                    let p = PathBuf::from(&path);
                    let io = |source| Error::Io {
                        path: path.clone(),
                        source,
                    };
                    let meta = std::fs::metadata(&p).map_err(io)?;
                    if meta.is_dir() {
                        return Err(Error::codec(
                            NAME,
                            format!("`{path}` is a directory; <attach> takes files"),
                        ));
                    }
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .ok_or_else(|| Error::invalid_path(path.clone(), "has no file name"))?;
                    let data = std::fs::read(&p).map_err(|source| Error::Io {
                        path: path.clone(),
                        source,
                    })?;
                    pack(&name, &data)
                })
                .await?;
                Ok(Value::Bytes(packed))
            }
            Value::Domain(d) => match d.downcast_ref::<Attachment>() {
                Some(a) => Ok(Value::Bytes(pack(&a.filename, &a.data)?)),
                None => Err(Error::codec(
                    NAME,
                    format!("<attach> cannot take `{}`", d.type_name()),
                )),
            },
            other => Err(Error::codec(
                NAME,
                format!(
                    "<attach> takes a file path or an Attachment, found {}",
                    other.kind()
                ),
            )),
        }
    }

    async fn decode(&self, stored: Value, ctx: &CodecContext) -> Result<Value> {
        let Value::Bytes(bytes) = stored else {
            return Err(Error::codec(
                NAME,
                format!("stored attachment must be bytes, found {}", stored.kind()),
            ));
        };
        let (name, data) = unpack(&bytes)?;
        let name = name.to_string();
        let dir = ctx.config.download_path.clone();
        let (saved, name, data) = blocking(move || {
            let saved = save_into(&dir, &name, &data)?;
            Ok((saved, name, data))
        })
        .await?;
        Ok(Value::domain(Attachment {
            filename: name,
            data,
            saved_to: Some(saved),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_rejected() {
        for bad in ["", "a/b", "..", ".", "a\\b", "a\0b", "/etc/passwd"] {
            assert!(pack(bad, b"x").is_err(), "{bad:?}");
        }
        let stored = Bytes::from_static(b"../evil\0x");
        assert!(unpack(&stored).is_err());
        assert!(unpack(&Bytes::from_static(b"no-nul")).is_err());
    }

    #[test]
    fn names_up_to_255_bytes_are_accepted_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        // 255 bytes, with an extension, and one made of 2-byte characters (254 bytes + "x").
        let long = format!("{}.txt", "a".repeat(MAX_FILENAME_BYTES - 4));
        let wide = format!("{}x", "é".repeat(127));
        for name in [&long, &wide] {
            assert_eq!(name.len(), MAX_FILENAME_BYTES);
            let packed = pack(name, b"one").unwrap();
            let (n, d) = unpack(&packed).unwrap();
            assert_eq!((n, &d[..]), (name.as_str(), &b"one"[..]));
            let a = save_into(dir.path(), name, b"one").unwrap();
            assert_eq!(a, dir.path().join(name));
            assert_eq!(std::fs::read(&a).unwrap(), b"one");
            // Collisions shorten the stem so that the numbered names fit too.
            let b = save_into(dir.path(), name, b"two").unwrap();
            let c = save_into(dir.path(), name, b"three").unwrap();
            for (p, want) in [(&b, &b"two"[..]), (&c, &b"three"[..])] {
                let file_name = p.file_name().unwrap().to_str().unwrap();
                assert!(file_name.len() <= MAX_FILENAME_BYTES, "{file_name}");
                assert_eq!(std::fs::read(p).unwrap(), want);
            }
            assert!(b.to_str().unwrap().ends_with("_1.txt") || name == &wide);
            assert_ne!(b, c);
            assert_eq!(save_into(dir.path(), name, b"two").unwrap(), b);
        }
    }

    #[test]
    fn names_longer_than_255_bytes_are_refused_at_insert() {
        let name = "a".repeat(MAX_FILENAME_BYTES + 1);
        let err = pack(&name, b"x").unwrap_err().to_string();
        assert!(err.contains("256 bytes"), "{err}");
        let mut stored = name.into_bytes();
        stored.extend_from_slice(b"\0x");
        assert!(unpack(&Bytes::from(stored)).is_err());
    }

    #[test]
    fn numbered_names_fit() {
        let ext = format!(".{}", "e".repeat(300));
        for (stem, ext, counter) in [
            ("a".repeat(251), ".txt", 1),
            ("ü".repeat(200), ".dat", 12345),
            ("a".to_string(), ext.as_str(), u64::MAX),
            (String::new(), "", 7),
        ] {
            let n = numbered_name(&stem, ext, counter);
            assert!(n.len() <= MAX_FILENAME_BYTES, "{n}");
            assert!(n.contains(&format!("_{counter}")), "{n}");
            assert!(stem.starts_with(n.split(&format!("_{counter}")).next().unwrap()));
        }
        assert_eq!(numbered_name("r", ".txt", 2), "r_2.txt");
    }

    #[test]
    fn collision_rule() {
        let dir = tempfile::tempdir().unwrap();
        let a = save_into(dir.path(), "r.txt", b"one").unwrap();
        assert_eq!(a, dir.path().join("r.txt"));
        assert_eq!(save_into(dir.path(), "r.txt", b"one").unwrap(), a);
        let b = save_into(dir.path(), "r.txt", b"two").unwrap();
        assert_eq!(b, dir.path().join("r_1.txt"));
        let c = save_into(dir.path(), "r.txt", b"three").unwrap();
        assert_eq!(c, dir.path().join("r_2.txt"));
        assert_eq!(save_into(dir.path(), "r.txt", b"two").unwrap(), b);
        assert_eq!(std::fs::read(&c).unwrap(), b"three");
    }

    #[test]
    fn concurrent_saves_never_see_half_written_files() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![7u8; 4 << 20];
        // The same content from many threads: one file, every caller gets its path.
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..12)
                .map(|_| s.spawn(|| save_into(dir.path(), "same.bin", &big).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(
            paths.iter().all(|p| *p == dir.path().join("same.bin")),
            "{paths:?}"
        );
        // Different contents under one name: each gets its own file, none overwritten.
        let saved: Vec<(u8, PathBuf)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u8)
                .map(|i| {
                    let d = dir.path();
                    s.spawn(move || (i, save_into(d, "x.dat", &vec![i; 1 << 20]).unwrap()))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut names: Vec<_> = saved.iter().map(|(_, p)| p.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 8);
        for (i, p) in &saved {
            assert_eq!(std::fs::read(p).unwrap(), vec![*i; 1 << 20]);
        }
        // No temporary files are left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".dj-part"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_staged_file_that_is_never_published_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let parts = || -> Vec<_> {
            std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".dj-part"))
                .map(|e| e.path())
                .collect()
        };
        {
            let mut staged = Staged::new(dir.path());
            // The name is taken: the staged file is kept for the next candidate...
            std::fs::write(dir.path().join("taken.txt"), b"other").unwrap();
            assert!(
                !staged
                    .publish(&dir.path().join("taken.txt"), b"data")
                    .unwrap()
            );
            assert_eq!(parts().len(), 1);
            // ...and removed when the save stops there (an error, a panic, an unwound task).
        }
        assert!(parts().is_empty(), "{:?}", parts());
        assert_eq!(
            std::fs::read(dir.path().join("taken.txt")).unwrap(),
            b"other"
        );
    }
}
