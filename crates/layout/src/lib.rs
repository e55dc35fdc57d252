//! Store layout: the one place that builds (and recognises) every key dj-rs writes to a store.
//!
//! Writers, readers and garbage collection all go through this crate, so they cannot drift
//! apart. The layouts are DataJoint 2.x's, byte for byte:
//!
//! - **hash section** (`<hash@>`, `<blob@>`, `<attach@>`):
//!   `{hash_prefix}/{schema}/[{fold1}/{fold2}/…/]{hash}`, where `hash` is the content hash in
//!   lowercase base32 without padding and each fold is the next run of its characters;
//! - **schema section** (`<object@>`, `<npy@>`):
//!   `{schema_prefix}/[{part}=…/]{schema}/{table}/{pk}=…/{field}_{token}{ext}`, with primary-key
//!   values encoded by [`encode_pk_value`] and partition attributes (from `partition_pattern`)
//!   pulled in front of the schema;
//! - user paths (`<filepath@>`) are checked by [`StoreLayout::check_filepath`].
//!
//! **Hash algorithms.** MD5 hashes are 26 base32 characters, BLAKE3 hashes 52. Both use the same
//! layout, so both kinds of object can live side by side in one store; the length of the last
//! segment tells them apart ([`hash_algorithm_of`]), and [`StoreLayout::classify`] reports which
//! algorithm a listed hash object uses.
//!
//! No key built here can leave the store root: every segment is checked, and user-controlled text
//! either lands inside an `attr=value` segment or is rejected.
//!
//! ```
//! use dj_core::config::StoreSpec;
//! use dj_layout::{self as layout, StoreLayout};
//! use dj_core::value::Value;
//!
//! let mut spec = StoreSpec::new("main", "memory", "");
//! spec.subfolding = Some(vec![2, 2]);
//! let hash = layout::hash_md5_base32(b"hello world");
//! assert_eq!(hash, "l23dxo7ad3xnbe6lek5y6wwnym");
//! let key = layout::hash_path(&spec, "lab", &hash)?;
//! assert_eq!(key.as_str(), "_hash/lab/l2/3d/l23dxo7ad3xnbe6lek5y6wwnym");
//!
//! let pk = [("rec_id", Value::Int(1)), ("name", Value::from("a/b c"))];
//! let key = StoreLayout::from(&spec).schema_path("lab", "rec", "obj", pk, Some("txt"), "ZkRa_cGg")?;
//! assert_eq!(key.as_str(), "_schema/lab/rec/rec_id=1/name=a%2Fb%20c/obj_ZkRa_cGg.txt");
//! # Ok::<(), dj_core::Error>(())
//! ```

// Python's text formats (pk path segments); for the codec crates and their tests.
#[doc(hidden)]
pub mod pyfmt;

use std::borrow::Borrow;
use std::fmt::Write as _;

use md5::{Digest, Md5};
use rand::Rng;

use crate::pyfmt::float_repr;
use dj_core::config::{HashAlgorithm, StoreSpec};
use dj_core::error::{Error, Result};
use dj_core::store::StorePath;
use dj_core::value::Value;

/// A file extension as schema paths and object metadata record it: trimmed, with a leading `.`
/// (`"txt"` and `".txt"` both give `".txt"`); empty (or a lone `.`) means none.
pub fn normalize_ext(ext: Option<&str>) -> Option<String> {
    let ext = ext.map(str::trim).filter(|e| !e.is_empty() && *e != ".")?;
    Some(if ext.starts_with('.') {
        ext.to_string()
    } else {
        format!(".{ext}")
    })
}

/// The 64 symbols of schema-path tokens: `A–Z a–z 0–9 - _`.
pub const TOKEN_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Shortest allowed token length (`token_length` is clamped to this).
pub const MIN_TOKEN_LENGTH: usize = 4;
/// Longest allowed token length.
pub const MAX_TOKEN_LENGTH: usize = 16;
/// The default token length.
pub const DEFAULT_TOKEN_LENGTH: usize = 8;

/// Length of an MD5 hash in lowercase base32 without padding.
pub const MD5_HASH_LEN: usize = 26;
/// Length of a BLAKE3 (256-bit) hash in lowercase base32 without padding.
pub const BLAKE3_HASH_LEN: usize = 52;

/// Normalise a section prefix the way DataJoint does (`strip("/")`) and check it: `""` (no
/// section) or a relative path. `key` names the setting in errors.
pub fn normalize_prefix(prefix: &str, key: &str) -> Result<String> {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        return Ok(String::new());
    }
    StorePath::parse(p)
        .map_err(|e| Error::config(key, format!("`{prefix}` is not a valid relative path: {e}")))?;
    Ok(p.to_string())
}

/// The attribute names of a partition pattern, in pattern order.
///
/// A pattern is one or more `/`-separated segments, each exactly `{attribute}` (letters, digits,
/// `_`), e.g. `{subject_id}/{session_date}`. DataJoint only reads the braced names and ignores any
/// other text, so brace-less or decorated patterns (`subject_id/session_date`, `s{a}`) would
/// silently do something else than they seem to; they are errors here, as are repeated names.
pub fn partition_attributes(pattern: &str) -> Result<Vec<String>> {
    let bad = |why: &str| {
        Error::invalid_path(
            pattern,
            format!(
                "invalid partition pattern: {why}; write `{{attr}}` segments separated by `/`, e.g. `{{subject_id}}/{{session_date}}`"
            ),
        )
    };
    let mut names: Vec<String> = Vec::new();
    for segment in pattern.split('/') {
        let name = segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .ok_or_else(|| {
                bad(&format!(
                    "segment `{segment}` is not of the form `{{attr}}`"
                ))
            })?;
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(bad(&format!("`{segment}` does not name an attribute")));
        }
        if names.iter().any(|n| n == name) {
            return Err(bad(&format!("attribute `{name}` appears twice")));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// Clamp a token length to 4–16, as DataJoint does.
pub fn clamp_token_length(length: usize) -> usize {
    length.clamp(MIN_TOKEN_LENGTH, MAX_TOKEN_LENGTH)
}

/// Strings longer than this (in characters) are shortened and percent-encoded in pk segments.
const PK_MAX_RAW_CHARS: usize = 100;
/// How many characters of a long pk string are kept before the `_{md5 prefix}` suffix.
const PK_TRUNCATE_CHARS: usize = 50;
/// Characters that force a pk string to be percent-encoded.
const PK_UNSAFE_CHARS: &[char] = &['/', '\\', ':', '*', '?', '"', '<', '>', '|'];

// ------------------------------------------------------------------------------------------------
// Hashing
// ------------------------------------------------------------------------------------------------

fn base32_lower(bytes: &[u8]) -> String {
    data_encoding::BASE32_NOPAD
        .encode(bytes)
        .to_ascii_lowercase()
}

/// DataJoint's content hash: MD5 of `data`, base32 (RFC 4648), no padding, lowercase: 26 chars.
pub fn hash_md5_base32(data: &[u8]) -> String {
    base32_lower(&Md5::digest(data))
}

/// BLAKE3 of `data`, base32 (RFC 4648), no padding, lowercase: 52 chars.
pub fn hash_blake3_base32(data: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    blake3_update(&mut h, data);
    base32_lower(h.finalize().as_bytes())
}

/// BLAKE3 input chunks of this many bytes or more are hashed on every core (BLAKE3 is a tree
/// hash, so the result is the same); below it the hand-off to the thread pool costs more than
/// it saves.
const BLAKE3_PARALLEL_MIN: usize = 1 << 20;

/// Feed `data` to a BLAKE3 hasher, on several cores when it is large.
fn blake3_update(h: &mut blake3::Hasher, data: &[u8]) {
    if data.len() >= BLAKE3_PARALLEL_MIN {
        h.update_rayon(data);
    } else {
        h.update(data);
    }
}

/// The content hash of `data` with `algorithm`, as used in hash paths and metadata.
pub fn content_hash(algorithm: HashAlgorithm, data: &[u8]) -> String {
    let mut h = ContentHasher::new(algorithm);
    h.update(data);
    h.finalize()
}

/// A streaming content hasher: feed chunks with [`update`](Self::update), then
/// [`finalize`](Self::finalize) to get the same string [`content_hash`] gives for the whole input.
///
/// ```
/// use dj_core::config::HashAlgorithm;
/// use dj_layout::{ContentHasher, content_hash};
///
/// let mut h = ContentHasher::new(HashAlgorithm::Blake3);
/// h.update(b"hello ");
/// h.update(b"world");
/// assert_eq!(h.finalize(), content_hash(HashAlgorithm::Blake3, b"hello world"));
/// ```
#[derive(Clone)]
pub struct ContentHasher {
    inner: HasherInner,
}

#[derive(Clone)]
enum HasherInner {
    Md5(Md5),
    Blake3(Box<blake3::Hasher>),
}

impl std::fmt::Debug for ContentHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentHasher")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl ContentHasher {
    /// A hasher for `algorithm`.
    pub fn new(algorithm: HashAlgorithm) -> Self {
        let inner = match algorithm {
            HashAlgorithm::Md5 => HasherInner::Md5(Md5::new()),
            HashAlgorithm::Blake3 => HasherInner::Blake3(Box::new(blake3::Hasher::new())),
        };
        ContentHasher { inner }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        match self.inner {
            HasherInner::Md5(_) => HashAlgorithm::Md5,
            HasherInner::Blake3(_) => HashAlgorithm::Blake3,
        }
    }

    /// Feed the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        match &mut self.inner {
            HasherInner::Md5(h) => h.update(chunk),
            HasherInner::Blake3(h) => blake3_update(h, chunk),
        }
    }

    /// The hash of everything fed so far, lowercase base32 without padding.
    pub fn finalize(self) -> String {
        match self.inner {
            HasherInner::Md5(h) => base32_lower(&h.finalize()),
            HasherInner::Blake3(h) => base32_lower(h.finalize().as_bytes()),
        }
    }
}

fn is_base32_lower(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// The algorithm a hash string belongs to, judged by its length and alphabet (26 base32 chars:
/// MD5, 52: BLAKE3), or `None` if it is neither.
pub fn hash_algorithm_of(hash: &str) -> Option<HashAlgorithm> {
    if !is_base32_lower(hash) {
        return None;
    }
    match hash.len() {
        MD5_HASH_LEN => Some(HashAlgorithm::Md5),
        BLAKE3_HASH_LEN => Some(HashAlgorithm::Blake3),
        _ => None,
    }
}

/// The algorithm of hash-addressed metadata with `hash`, given its `hash_algorithm` key:
/// `blake3` (in any case) is BLAKE3 and any other value MD5; without the key it is judged from
/// the hash itself, MD5 when that says nothing.
///
/// ```
/// use dj_core::config::HashAlgorithm;
/// use dj_layout::metadata_hash_algorithm;
///
/// assert_eq!(metadata_hash_algorithm(Some("BLAKE3"), "x"), HashAlgorithm::Blake3);
/// assert_eq!(metadata_hash_algorithm(None, "l23dxo7ad3xnbe6lek5y6wwnym"), HashAlgorithm::Md5);
/// ```
pub fn metadata_hash_algorithm(hash_algorithm: Option<&str>, hash: &str) -> HashAlgorithm {
    match hash_algorithm {
        Some(a) if a.eq_ignore_ascii_case("blake3") => HashAlgorithm::Blake3,
        Some(_) => HashAlgorithm::Md5,
        None => hash_algorithm_of(hash).unwrap_or(HashAlgorithm::Md5),
    }
}

/// Check that `hash` is a well-formed hash for `algorithm`: the right length, lowercase base32.
pub fn validate_hash(algorithm: HashAlgorithm, hash: &str) -> Result<()> {
    let (name, len) = match algorithm {
        HashAlgorithm::Md5 => ("MD5", MD5_HASH_LEN),
        HashAlgorithm::Blake3 => ("BLAKE3", BLAKE3_HASH_LEN),
    };
    if hash.len() != len || !is_base32_lower(hash) {
        return Err(Error::invalid_path(
            hash,
            format!(
                "not a {name} content hash (expected {len} lowercase base32 characters `a-z2-7`)"
            ),
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Segment checks
// ------------------------------------------------------------------------------------------------

/// Check that `segment` can be used as one path segment: non-empty, not `.` or `..`, without `/`,
/// `\`, NUL or other control characters. `what` names it in the error (`schema name`, …).
fn check_segment(segment: &str, what: &str) -> Result<()> {
    let reason = if segment.is_empty() {
        "is empty"
    } else if segment == "." || segment == ".." {
        "is `.` or `..`, which would leave its folder"
    } else if segment.contains('/') || segment.contains('\\') {
        "contains a path separator (`/` or `\\`)"
    } else if segment.chars().any(char::is_control) {
        "contains NUL or another control character"
    } else {
        return Ok(());
    };
    Err(Error::invalid_path(
        segment.escape_debug().to_string(),
        format!("{what} {reason}"),
    ))
}

/// Check a file name given by a user (an attachment's name, a downloaded file): exactly one path
/// segment that cannot leave its folder. Returns the name unchanged.
///
/// ```
/// use dj_layout::check_file_name;
/// assert_eq!(check_file_name("scan 1.tif")?, "scan 1.tif");
/// assert!(check_file_name("../passwd").is_err());
/// assert!(check_file_name("..").is_err());
/// # Ok::<(), dj_core::Error>(())
/// ```
pub fn check_file_name(name: &str) -> Result<&str> {
    check_segment(name, "file name")?;
    if has_drive_prefix(name) {
        return Err(Error::invalid_path(
            name,
            "file name looks like a Windows drive path",
        ));
    }
    Ok(name)
}

fn has_drive_prefix(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// Check a relative path given by a user (e.g. a `<filepath@>` value) and turn it into a key.
///
/// Rejected: empty paths, absolute paths (`/x`, `C:\x`, `C:/x`), backslashes, `.`/`..` or empty
/// segments, NUL and other control characters. One trailing `/` (a folder) is allowed and dropped.
///
/// ```
/// use dj_layout::check_relative_path;
/// assert_eq!(check_relative_path("raw/session 1/data.bin")?.as_str(), "raw/session 1/data.bin");
/// assert_eq!(check_relative_path("raw/session1/")?.as_str(), "raw/session1");
/// assert!(check_relative_path("raw/../../etc").is_err());
/// assert!(check_relative_path("/etc/passwd").is_err());
/// # Ok::<(), dj_core::Error>(())
/// ```
pub fn check_relative_path(path: &str) -> Result<StorePath> {
    if path.starts_with('/') {
        return Err(Error::invalid_path(
            path,
            "absolute paths are not allowed; give a path relative to the store root",
        ));
    }
    if has_drive_prefix(path) {
        return Err(Error::invalid_path(
            path,
            "Windows drive paths are not allowed; give a path relative to the store root",
        ));
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    StorePath::parse(trimmed)
}

// ------------------------------------------------------------------------------------------------
// Primary-key encoding and partitions
// ------------------------------------------------------------------------------------------------

/// Encode one primary-key value for a schema-path segment, exactly as DataJoint's
/// `encode_pk_value` does:
///
/// - integers and floats: Python's `str()` (`1`, `1.0`, `1e-05`, `0.1`, `True`/`False` for bools);
/// - datetimes: `%Y-%m-%dT%H-%M-%S` (sub-seconds dropped); dates: ISO `YYYY-MM-DD`;
/// - everything else (strings, decimals, UUIDs) as text. Text containing any of
///   `/ \ : * ? " < > |`, or longer than 100 characters, is percent-encoded with nothing kept but
///   `A–Z a–z 0–9 _ . - ~` (Python's `quote(s, safe="")`), after text longer than 100 characters
///   is first cut to 50 characters plus `_` plus the first 8 hex digits of its MD5. Other text is
///   used raw, spaces and non-ASCII included.
///
/// Values that cannot be primary keys (null, bytes, JSON, domain values) are errors, and so is
/// raw text containing control characters (DataJoint would write them into a file name).
///
/// ```
/// use dj_layout::encode_pk_value;
/// use dj_core::value::Value;
/// assert_eq!(encode_pk_value(&Value::Float(1e-5))?, "1e-05");
/// assert_eq!(encode_pk_value(&Value::from("a/b c"))?, "a%2Fb%20c");
/// assert_eq!(encode_pk_value(&Value::from("m 1"))?, "m 1");
/// # Ok::<(), dj_core::Error>(())
/// ```
pub fn encode_pk_value(value: &Value) -> Result<String> {
    let text = match value {
        Value::Int(i) => return Ok(i.to_string()),
        Value::UInt(u) => return Ok(u.to_string()),
        Value::Float(f) => return Ok(float_repr(*f)),
        Value::Bool(b) => return Ok(if *b { "True" } else { "False" }.to_string()),
        Value::DateTime(dt) => return Ok(dt.format("%Y-%m-%dT%H-%M-%S").to_string()),
        Value::Date(d) => return Ok(d.format("%Y-%m-%d").to_string()),
        Value::String(s) => s.clone(),
        Value::Decimal(s) => s.clone(),
        Value::Uuid(u) => u.hyphenated().to_string(),
        other => {
            return Err(Error::wrong_type(
                "a primary-key value (number, text, date, datetime or uuid)",
                other.kind(),
            ));
        }
    };
    let char_count = text.chars().count();
    if char_count > PK_MAX_RAW_CHARS || text.contains(PK_UNSAFE_CHARS) {
        let text = if char_count > PK_MAX_RAW_CHARS {
            let head: String = text.chars().take(PK_TRUNCATE_CHARS).collect();
            let digest = Md5::digest(text.as_bytes());
            format!("{head}_{}", data_encoding::HEXLOWER.encode(&digest[..4]))
        } else {
            text
        };
        return Ok(percent_encode_all(&text));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::invalid_path(
            text.escape_debug().to_string(),
            "primary-key value contains NUL or another control character, which cannot be part of a store key",
        ));
    }
    Ok(text)
}

/// Python's `urllib.parse.quote(s, safe="")`: every UTF-8 byte except `A–Z a–z 0–9 _ . - ~`
/// becomes `%XX` (uppercase hex).
fn percent_encode_all(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A fresh random token of `length` symbols from [`TOKEN_ALPHABET`] (length clamped to 4–16),
/// drawn from a cryptographically secure generator.
pub fn generate_token(length: usize) -> String {
    let length = clamp_token_length(length);
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(TOKEN_ALPHABET[rng.random_range(0..TOKEN_ALPHABET.len())]))
        .collect()
}

fn check_token(token: &str) -> Result<()> {
    if token.is_empty() || !token.bytes().all(|b| TOKEN_ALPHABET.contains(&b)) {
        return Err(Error::invalid_path(
            token.escape_debug().to_string(),
            "a token must be made of `A-Za-z0-9-_`",
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// The layout of one store
// ------------------------------------------------------------------------------------------------

/// The layout settings of one store, borrowed from its [`StoreSpec`].
///
/// Prefixes are used with leading and trailing `/` removed, as DataJoint does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLayout<'a> {
    /// Root of the hash section (`_hash` by default; `""` for none).
    pub hash_prefix: &'a str,
    /// Root of the schema section (`_schema` by default; `""` for none).
    pub schema_prefix: &'a str,
    /// Required prefix of `<filepath@>` paths, if any.
    pub filepath_prefix: Option<&'a str>,
    /// Hash subfolding, e.g. `[2, 2]`; empty for flat.
    pub subfolding: &'a [usize],
    /// The partition pattern, e.g. `{subject_id}/{session_date}`.
    pub partition_pattern: Option<&'a str>,
    /// Token length (clamped to 4–16 when used).
    pub token_length: usize,
}

impl Default for StoreLayout<'static> {
    fn default() -> Self {
        StoreLayout {
            hash_prefix: "_hash",
            schema_prefix: "_schema",
            filepath_prefix: None,
            subfolding: &[],
            partition_pattern: None,
            token_length: DEFAULT_TOKEN_LENGTH,
        }
    }
}

impl<'a> From<&'a StoreSpec> for StoreLayout<'a> {
    fn from(spec: &'a StoreSpec) -> Self {
        StoreLayout {
            hash_prefix: &spec.hash_prefix,
            schema_prefix: &spec.schema_prefix,
            filepath_prefix: spec.filepath_prefix.as_deref(),
            subfolding: spec.subfolding.as_deref().unwrap_or(&[]),
            partition_pattern: spec.partition_pattern.as_deref().filter(|p| !p.is_empty()),
            token_length: spec.token_length,
        }
    }
}

impl<'a> From<&StoreLayout<'a>> for StoreLayout<'a> {
    fn from(layout: &StoreLayout<'a>) -> Self {
        *layout
    }
}

/// What a listed key is, for garbage collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyClass {
    /// A hash-addressed object: `{hash_prefix}/{schema}/[folds/]{hash}`.
    Hash {
        /// The schema segment.
        schema: String,
        /// The hash (the last segment).
        hash: String,
        /// Which algorithm the hash's length says it is.
        algorithm: HashAlgorithm,
    },
    /// A file in the schema section (an object file, a file inside a folder object, or a
    /// `.manifest.json` sidecar): `{schema_prefix}/[partitions/]{schema}/{table}/…`.
    Schema {
        /// The schema segment.
        schema: String,
        /// The table segment.
        table: String,
        /// The partition segments before the schema, as `(attribute, encoded value)`.
        partition: Vec<(String, String)>,
    },
    /// Anything else: user files, `<filepath@>` targets, stray files inside a section that do not
    /// follow its grammar. GC must never delete these.
    Other,
}

fn strip_prefix_segments<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    if prefix.is_empty() {
        return Some(key);
    }
    key.strip_prefix(prefix)?.strip_prefix('/')
}

fn prefix_key(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else {
        format!("{prefix}/{rest}")
    }
}

impl<'a> StoreLayout<'a> {
    fn hash_prefix(&self) -> &'a str {
        self.hash_prefix.trim_matches('/')
    }

    fn schema_prefix(&self) -> &'a str {
        self.schema_prefix.trim_matches('/')
    }

    /// The key of a hash-addressed object: `{hash_prefix}/{schema}/[folds/]{hash}`.
    ///
    /// `hash` must be an MD5 (26) or BLAKE3 (52) lowercase base32 hash; subfolds take consecutive
    /// characters from its start and must not run past its end.
    pub fn hash_path(&self, schema: &str, hash: &str) -> Result<StorePath> {
        check_segment(schema, "schema name")?;
        if hash_algorithm_of(hash).is_none() {
            return Err(Error::invalid_path(
                hash.escape_debug().to_string(),
                format!(
                    "not a content hash (expected {MD5_HASH_LEN} or {BLAKE3_HASH_LEN} lowercase base32 characters)"
                ),
            ));
        }
        let total: usize = self.subfolding.iter().sum();
        if self.subfolding.contains(&0) || total > hash.len() {
            return Err(Error::invalid_path(
                hash,
                format!(
                    "subfolding {:?} does not fit a {}-character hash",
                    self.subfolding,
                    hash.len()
                ),
            ));
        }
        let mut key = String::with_capacity(hash.len() * 2 + schema.len() + 16);
        let prefix = self.hash_prefix();
        if !prefix.is_empty() {
            key.push_str(prefix);
            key.push('/');
        }
        key.push_str(schema);
        let mut at = 0;
        for &fold in self.subfolding {
            key.push('/');
            key.push_str(&hash[at..at + fold]);
            at += fold;
        }
        key.push('/');
        key.push_str(hash);
        StorePath::parse(key)
    }

    /// The prefix under which every hash object of `schema` lies (`{hash_prefix}/{schema}`).
    pub fn hash_section(&self, schema: &str) -> Result<StorePath> {
        check_segment(schema, "schema name")?;
        StorePath::parse(prefix_key(self.hash_prefix(), schema))
    }

    /// The prefix to list to find every schema-section file of `schema`.
    ///
    /// Without a partition pattern this is `{schema_prefix}/{schema}`. With one, partition
    /// segments come *before* the schema, so the whole section `{schema_prefix}` must be listed
    /// (and each key [classified](Self::classify)); `None` means the whole store (empty prefix).
    pub fn schema_listing_prefix(&self, schema: &str) -> Result<Option<StorePath>> {
        check_segment(schema, "schema name")?;
        let prefix = self.schema_prefix();
        if self.partition_pattern.is_some() {
            return if prefix.is_empty() {
                Ok(None)
            } else {
                StorePath::parse(prefix).map(Some)
            };
        }
        StorePath::parse(prefix_key(prefix, schema)).map(Some)
    }

    /// The key of a schema-addressed object with a given `token`:
    /// `{schema_prefix}/[partition parts/]{schema}/{table}/{pk parts}/{field}_{token}{ext}`.
    ///
    /// `pk` holds the primary-key attributes in heading order; those named in the partition
    /// pattern move, in pattern order, in front of the schema. `ext` is normalised by
    /// [`normalize_ext`].
    pub fn schema_path<I, K, V>(
        &self,
        schema: &str,
        table: &str,
        field: &str,
        pk: I,
        ext: Option<&str>,
        token: &str,
    ) -> Result<StorePath>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Borrow<Value>,
    {
        check_segment(schema, "schema name")?;
        check_segment(table, "table name")?;
        check_segment(field, "attribute name")?;
        check_token(token)?;
        let partition_names = match self.partition_pattern {
            Some(p) => partition_attributes(p)?,
            None => Vec::new(),
        };
        let mut partition: Vec<Option<String>> = vec![None; partition_names.len()];
        let mut parts: Vec<String> = Vec::new();
        for (name, value) in pk {
            let name = name.as_ref();
            check_segment(name, "primary-key attribute name")?;
            let encoded = encode_pk_value(value.borrow()).map_err(|e| e.with_attribute(name))?;
            let segment = format!("{name}={encoded}");
            match partition_names.iter().position(|p| p == name) {
                Some(i) => partition[i] = Some(segment),
                None => parts.push(segment),
            }
        }
        let mut file = format!("{field}_{token}");
        if let Some(ext) = normalize_ext(ext) {
            file.push_str(&ext);
        }
        check_segment(&file, "file name")?;
        let prefix = self.schema_prefix();
        let mut segments: Vec<&str> = Vec::new();
        if !prefix.is_empty() {
            segments.push(prefix);
        }
        segments.extend(partition.iter().flatten().map(String::as_str));
        segments.push(schema);
        segments.push(table);
        segments.extend(parts.iter().map(String::as_str));
        segments.push(&file);
        StorePath::parse(segments.join("/"))
    }

    /// As [`schema_path`](Self::schema_path) with a fresh random token of the configured length.
    /// Returns the key and the token.
    pub fn new_schema_path<I, K, V>(
        &self,
        schema: &str,
        table: &str,
        field: &str,
        pk: I,
        ext: Option<&str>,
    ) -> Result<(StorePath, String)>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Borrow<Value>,
    {
        let token = generate_token(self.token_length);
        let path = self.schema_path(schema, table, field, pk, ext, &token)?;
        Ok((path, token))
    }

    /// Check a `<filepath@>` path: a safe relative path ([`check_relative_path`]) that does not
    /// enter the hash or schema section and, when `filepath_prefix` is set, lies under it.
    pub fn check_filepath(&self, path: &str) -> Result<StorePath> {
        let key = check_relative_path(path)?;
        for (name, prefix) in [
            ("hash_prefix", self.hash_prefix()),
            ("schema_prefix", self.schema_prefix()),
        ] {
            if !prefix.is_empty() && strip_prefix_segments(key.as_str(), prefix).is_some() {
                return Err(Error::invalid_path(
                    path,
                    format!(
                        "`{prefix}/` is the store's {name} section, which dj-rs manages; <filepath@> paths cannot point into it"
                    ),
                ));
            }
        }
        if let Some(fp) = self
            .filepath_prefix
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
            && strip_prefix_segments(key.as_str(), fp).is_none_or(str::is_empty)
        {
            return Err(Error::invalid_path(
                path,
                format!("<filepath@> paths in this store must lie under `{fp}/` (filepath_prefix)"),
            ));
        }
        Ok(key)
    }

    /// Say what a listed key is: a hash object, a schema-section file, or something else.
    ///
    /// Hash objects are recognised in any subfolding (folds must spell the start of the hash), so
    /// objects written before a subfolding change are still recognised. Schema-section files are
    /// recognised with and without partition segments (any leading `attr=value` segments whose
    /// attributes appear in the partition pattern in order).
    pub fn classify(&self, key: &StorePath) -> KeyClass {
        if let Some(class) = self.classify_hash(key.as_str()) {
            return class;
        }
        if let Some(class) = self.classify_schema(key.as_str()) {
            return class;
        }
        KeyClass::Other
    }

    /// Whether `key` is a key this layout writes for a path-addressed object of `table` in
    /// `schema` (or a file inside such a folder object, or its `.manifest.json` sidecar), as
    /// [`schema_path`](Self::schema_path) builds it: the section prefix; one `attr=value` segment
    /// for each primary-key attribute named in the partition pattern, in pattern order;
    /// `{schema}/{table}`; one `attr=value` segment for each other primary-key attribute, in
    /// `primary_key` order; then `{field}_{token}{ext}` for one of `fields`, the token 4 to 16
    /// symbols of [`TOKEN_ALPHABET`]. Keys without partition segments (written before the
    /// pattern was set, all primary-key segments after the table) count too.
    ///
    /// Garbage collection deletes a schema-section key only when this holds for a table it knows,
    /// so files of the user's own under a schema's folder are never taken for objects.
    ///
    /// ```
    /// use dj_layout::StoreLayout;
    /// use dj_core::store::StorePath;
    ///
    /// let layout = StoreLayout::default();
    /// let key = |k: &str| StorePath::parse(k).unwrap();
    /// let ours = |k: &str| layout.is_object_key(&key(k), "lab", "rec", &["rid"], &["video"]);
    /// assert!(ours("_schema/lab/rec/rid=1/video_AbCd1234.mp4"));
    /// assert!(ours("_schema/lab/rec/rid=1/video_AbCd1234/frame0.png"));
    /// assert!(ours("_schema/lab/rec/rid=1/video_AbCd1234.manifest.json"));
    /// assert!(!ours("_schema/lab/rec/rid=1/notes.txt"));
    /// assert!(!ours("_schema/lab/rec/session=1/video_AbCd1234"));
    /// assert!(!ours("_schema/lab/raw/rid=1/video_AbCd1234"));
    /// ```
    pub fn is_object_key(
        &self,
        key: &StorePath,
        schema: &str,
        table: &str,
        primary_key: &[&str],
        fields: &[&str],
    ) -> bool {
        let Some(rest) = strip_prefix_segments(key.as_str(), self.schema_prefix()) else {
            return false;
        };
        let pattern = match self.partition_pattern {
            Some(p) => match partition_attributes(p) {
                Ok(names) => names,
                Err(_) => return false,
            },
            None => Vec::new(),
        };
        let partitioned: Vec<&str> = pattern
            .iter()
            .map(String::as_str)
            .filter(|n| primary_key.contains(n))
            .collect();
        // Objects written before the partition pattern was set have no partition segments.
        let matches = |partitioned: &[&str]| {
            let key_segment = |segment: Option<&str>, name: &str| {
                segment
                    .and_then(|s| s.split_once('='))
                    .is_some_and(|(attr, _)| attr == name)
            };
            let mut segments = rest.split('/');
            for name in partitioned {
                if !key_segment(segments.next(), name) {
                    return false;
                }
            }
            if segments.next() != Some(schema) || segments.next() != Some(table) {
                return false;
            }
            for name in primary_key.iter().filter(|n| !partitioned.contains(n)) {
                if !key_segment(segments.next(), name) {
                    return false;
                }
            }
            let Some(file) = segments.next() else {
                return false;
            };
            fields.iter().any(|field| {
                file.strip_prefix(field)
                    .and_then(|f| f.strip_prefix('_'))
                    .is_some_and(|tail| {
                        let token = tail.split('.').next().unwrap_or_default();
                        (MIN_TOKEN_LENGTH..=MAX_TOKEN_LENGTH).contains(&token.len())
                            && token.bytes().all(|b| TOKEN_ALPHABET.contains(&b))
                    })
            })
        };
        matches(&partitioned) || (!partitioned.is_empty() && matches(&[]))
    }

    fn classify_hash(&self, key: &str) -> Option<KeyClass> {
        let rest = strip_prefix_segments(key, self.hash_prefix())?;
        let segments: Vec<&str> = rest.split('/').collect();
        let (hash, head) = segments.split_last()?;
        let (schema, folds) = head.split_first()?;
        let algorithm = hash_algorithm_of(hash)?;
        let joined: String = folds.concat();
        if folds.iter().any(|f| f.is_empty())
            || !hash.starts_with(joined.as_str())
            || joined.len() > hash.len()
        {
            return None;
        }
        if self.hash_prefix().is_empty() && folds.len() != self.subfolding.len() {
            // With no section prefix, only the configured grammar is trusted.
            return None;
        }
        Some(KeyClass::Hash {
            schema: (*schema).to_string(),
            hash: (*hash).to_string(),
            algorithm,
        })
    }

    fn classify_schema(&self, key: &str) -> Option<KeyClass> {
        let rest = strip_prefix_segments(key, self.schema_prefix())?;
        let segments: Vec<&str> = rest.split('/').collect();
        let names = match self.partition_pattern {
            Some(p) => partition_attributes(p).ok()?,
            None => Vec::new(),
        };
        let mut partition = Vec::new();
        let mut next_name = 0;
        let mut i = 0;
        while let Some(seg) = segments.get(i) {
            let Some((attr, value)) = seg.split_once('=') else {
                break;
            };
            let Some(pos) = names[next_name..].iter().position(|n| n == attr) else {
                break;
            };
            next_name += pos + 1;
            partition.push((attr.to_string(), value.to_string()));
            i += 1;
        }
        // schema, table, and at least one more segment.
        let schema = segments.get(i)?;
        let table = segments.get(i + 1)?;
        if segments.len() < i + 3 || schema.contains('=') {
            return None;
        }
        Some(KeyClass::Schema {
            schema: (*schema).to_string(),
            table: (*table).to_string(),
            partition,
        })
    }
}

/// The key of a hash-addressed object in the store described by `layout` (a [`StoreSpec`] or a
/// [`StoreLayout`]): `{hash_prefix}/{schema}/[folds/]{hash}`. See [`StoreLayout::hash_path`].
pub fn hash_path<'a>(
    layout: impl Into<StoreLayout<'a>>,
    schema: &str,
    hash: &str,
) -> Result<StorePath> {
    layout.into().hash_path(schema, hash)
}

/// The key of a schema-addressed object with a fresh token. See
/// [`StoreLayout::new_schema_path`].
pub fn new_schema_path<'a, I, K, V>(
    layout: impl Into<StoreLayout<'a>>,
    schema: &str,
    table: &str,
    field: &str,
    pk: I,
    ext: Option<&str>,
) -> Result<(StorePath, String)>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Borrow<Value>,
{
    layout.into().new_schema_path(schema, table, field, pk, ext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_python() {
        // urllib.parse.quote(s, safe="")
        assert_eq!(percent_encode_all("a/b c"), "a%2Fb%20c");
        assert_eq!(percent_encode_all("~x_y.z-1"), "~x_y.z-1");
        assert_eq!(percent_encode_all("é:"), "%C3%A9%3A");
    }

    #[test]
    fn large_blake3_inputs_hash_as_small_chunks_do() {
        // Over BLAKE3_PARALLEL_MIN the input is hashed on several cores; the hash must be the
        // one a plain sequential pass gives, whole or fed in pieces of either kind.
        let data: Vec<u8> = (0..3 * BLAKE3_PARALLEL_MIN + 12_345)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let sequential = base32_lower(blake3::hash(&data).as_bytes());
        assert_eq!(hash_blake3_base32(&data), sequential);
        assert_eq!(content_hash(HashAlgorithm::Blake3, &data), sequential);
        let mut pieces = ContentHasher::new(HashAlgorithm::Blake3);
        for piece in data.chunks(BLAKE3_PARALLEL_MIN + 7) {
            pieces.update(piece);
        }
        assert_eq!(pieces.finalize(), sequential);
        let mut small = ContentHasher::new(HashAlgorithm::Blake3);
        for piece in data.chunks(4096) {
            small.update(piece);
        }
        assert_eq!(small.finalize(), sequential);
    }

    #[test]
    fn segment_checks() {
        assert!(check_segment("ok", "x").is_ok());
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b", "a\nb"] {
            assert!(check_segment(bad, "x").is_err(), "{bad:?}");
        }
    }
}
