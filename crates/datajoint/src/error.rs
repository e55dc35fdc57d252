//! The one error type of the facade.
//!
//! Every layer of dj-rs has its own error enum (`dj_core::Error` for codecs, stores and
//! configuration, `dj_schema::Error` for tables and queries, `BlobError` and `NpyError` for the
//! formats). [`Error`] holds any of them, so that one function can use `?` on calls into every
//! layer and return [`Result`]:
//!
//! ```
//! # #[cfg(feature = "schema")]
//! async fn count_subjects() -> datajoint::Result<u64> {
//!     let mut config = datajoint::Config::from_json_str(r#"{"loglevel": "WARNING"}"#, ".")?; // dj_core::Error
//!     config.database.path = Some(":memory:".into()); // SQLite, in memory
//!     let conn = datajoint::schema::Connection::open(&config).await?; // dj_schema::Error
//!     let lab = conn.schema("lab").await?;
//!     let subject = lab
//!         .declare("Subject", datajoint::schema::Tier::Manual, "subject_id : int32")
//!         .await?;
//!     Ok(subject.len().await?)
//! }
//! # #[cfg(feature = "schema")]
//! # assert_eq!(tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
//! #     .block_on(count_subjects()).unwrap(), 0);
//! ```
//!
//! Code that implements a [`Codec`](crate::Codec) or a [`Store`](crate::Store) returns the core
//! contracts' own result type, `dj_core::Result` (re-exported as [`CoreResult`](crate::CoreResult)).

/// Any error of dj-rs, by the layer that reported it. Its message is the layer's message, which
/// names the table, attribute, store or key at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Codecs, stores, configuration, type specs (`dj_core::Error`).
    #[error(transparent)]
    Core(#[from] dj_core::Error),
    /// Tables, queries, transactions and the lifecycle tools (`dj_schema::Error`).
    #[cfg(feature = "schema")]
    #[error(transparent)]
    Schema(#[from] dj_schema::Error),
    /// The blob format (`dj_codec_blob::BlobError`).
    #[cfg(feature = "blob")]
    #[error(transparent)]
    Blob(#[from] dj_codec_blob::BlobError),
    /// The `.npy` format (`dj_codec_npy::NpyError`).
    #[cfg(feature = "npy")]
    #[error(transparent)]
    Npy(#[from] dj_codec_npy::NpyError),
}

/// The result of every call through the facade: `Result<T, datajoint::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
