//! What a writer reports about a file it wrote, and the metadata recorded for it.

use chrono::Utc;
use dj_core::object::ObjectMetadata;
use dj_core::store::StorePath;

/// What a writer ([`ObjectWriter`](crate::ObjectWriter), [`upload_file`](crate::upload_file))
/// wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenFile {
    /// The key.
    pub path: StorePath,
    /// Bytes written.
    pub size: u64,
    /// BLAKE3, lowercase base32.
    pub checksum: String,
}

impl WrittenFile {
    /// The metadata of the file just written to store `store`: size and checksum from here, a
    /// timestamp of now.
    pub fn into_metadata(self, store: &str, ext: Option<String>) -> ObjectMetadata {
        let mut meta = ObjectMetadata::new(self.path.as_str(), Some(store.to_string()));
        meta.size = Some(self.size);
        meta.ext = ext;
        meta.timestamp = Some(Utc::now());
        meta.checksum = Some(self.checksum);
        meta
    }
}
