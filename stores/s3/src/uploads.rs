//! Multipart uploads nobody completed or aborted: listing them (ListMultipartUploads, ListParts)
//! and aborting them (AbortMultipartUpload).
//!
//! `object_store` aborts through [`MultipartStore::abort_multipart`], but has no call that lists
//! uploads or their parts. Those two requests are signed by `object_store` itself
//! ([`Signer::signed_url_opts`], a SigV4 query-string signature with the store's own credential
//! provider, region and session token) and sent with an `object_store` HTTP client; the XML
//! answers are read with `quick-xml`, which `object_store` already uses for S3.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use dj_core::error::{Error, Result};
use dj_core::store::{IncompleteKind, IncompleteRemoval, IncompleteWrite, StorePath};
use object_store::aws::AmazonS3;
use object_store::client::{HttpClient, HttpRequest, HttpRequestBody};
use object_store::multipart::MultipartStore;
use object_store::path::Path as OsPath;
use object_store::signer::{Method, SignedUrlOptions, Signer};
use serde::Deserialize;

/// How long a signed listing URL stays valid: it is used at once.
const URL_LIFETIME: Duration = Duration::from_secs(300);

/// S3 reports times in whole seconds (moto and AWS write `.000Z`): a part reported at `hh:mm:ss`
/// may have been written up to a second later, so every reported time is moved up by this much
/// before it is compared with a cutoff.
const TIME_RESOLUTION: TimeDelta = TimeDelta::seconds(1);

/// Everything the upload requests need.
#[derive(Clone, Debug)]
pub(crate) struct Uploads {
    pub(crate) name: String,
    pub(crate) backend: String,
    pub(crate) s3: Arc<AmazonS3>,
    pub(crate) http: HttpClient,
    /// The key prefix inside the bucket (the store's location), without slashes at its ends.
    pub(crate) location: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListUploadsResult {
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_key_marker: Option<String>,
    #[serde(default)]
    next_upload_id_marker: Option<String>,
    #[serde(default, rename = "Upload")]
    uploads: Vec<UploadEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadEntry {
    key: String,
    upload_id: String,
    initiated: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPartsResult {
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_part_number_marker: Option<String>,
    #[serde(default, rename = "Part")]
    parts: Vec<PartEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PartEntry {
    size: u64,
    last_modified: String,
}

/// A request's answer: the body of a 2xx, or why not.
enum Answer {
    Body(String),
    /// `NoSuchUpload`: completed or aborted meanwhile.
    NoSuchUpload,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

impl Uploads {
    fn error(
        &self,
        operation: &'static str,
        path: &str,
        retryable: bool,
        message: String,
    ) -> Error {
        Error::Store {
            store: self.name.clone(),
            operation,
            path: path.to_string(),
            retryable,
            source: format!("{}: {message}", self.backend).into(),
        }
    }

    /// The bucket key of a store key (or key prefix; `""` is the whole store).
    fn bucket_key(&self, key: &str) -> String {
        match (&self.location, key.is_empty()) {
            (Some(l), true) => format!("{l}/"),
            (Some(l), false) => format!("{l}/{key}"),
            (None, _) => key.to_string(),
        }
    }

    /// The store key of a bucket key, when it lies inside the store's location and is a key.
    fn store_key(&self, bucket_key: &str) -> Option<StorePath> {
        let rel = match &self.location {
            Some(l) => bucket_key.strip_prefix(l.as_str())?.strip_prefix('/')?,
            None => bucket_key,
        };
        StorePath::parse(rel).ok()
    }

    /// Sign and send a GET of `path` (`""`: the bucket) with `query`.
    async fn get(
        &self,
        operation: &'static str,
        err_path: &str,
        path: &OsPath,
        query: Vec<(String, String)>,
    ) -> Result<Answer> {
        let options = SignedUrlOptions::new().with_query(query);
        let url = self
            .s3
            .signed_url_opts(Method::GET, path, URL_LIFETIME, &options)
            .await
            .map_err(|e| self.error(operation, err_path, false, format!("cannot sign: {e}")))?;
        let mut request = HttpRequest::new(HttpRequestBody::empty());
        *request.uri_mut() = url
            .as_str()
            .parse()
            .map_err(|e| self.error(operation, err_path, false, format!("bad URL: {e}")))?;
        // HTTP errors may quote the URL, whose query holds the signature and the access key:
        // show it without the query.
        let mut shown = url.clone();
        shown.set_query(None);
        let redact = |text: String| text.replace(url.as_str(), shown.as_str());
        let response = self.http.execute(request).await.map_err(|e| {
            let retryable = dj_store_object_store::classify_http(&e).unwrap_or(false);
            self.error(operation, err_path, retryable, redact(e.to_string()))
        })?;
        let status = response.status();
        let body = response.into_body().bytes().await.map_err(|e| {
            let retryable = dj_store_object_store::classify_http(&e).unwrap_or(false);
            self.error(operation, err_path, retryable, redact(e.to_string()))
        })?;
        let text = String::from_utf8_lossy(&body).into_owned();
        if status.is_success() {
            return Ok(Answer::Body(text));
        }
        if text.contains("<Code>NoSuchUpload</Code>") {
            return Ok(Answer::NoSuchUpload);
        }
        let code = status.as_u16();
        let retryable = code >= 500 || code == 408 || code == 429;
        Err(self.error(
            operation,
            err_path,
            retryable,
            format!("the server answered {status}: {text}"),
        ))
    }

    /// The uploaded parts' total size and the newest part's time (moved up by the time
    /// resolution), or `None` when the upload is gone.
    async fn parts(
        &self,
        bucket_key: &str,
        upload_id: &str,
    ) -> Result<Option<(u64, Option<DateTime<Utc>>)>> {
        const OP: &str = "list the parts of an unfinished upload to";
        let path = OsPath::parse(bucket_key)
            .map_err(|e| self.error(OP, bucket_key, false, e.to_string()))?;
        let mut size = 0u64;
        let mut newest: Option<DateTime<Utc>> = None;
        let mut marker: Option<String> = None;
        loop {
            let mut query = vec![("uploadId".to_string(), upload_id.to_string())];
            if let Some(m) = &marker {
                query.push(("part-number-marker".to_string(), m.clone()));
            }
            let text = match self.get(OP, bucket_key, &path, query).await? {
                Answer::Body(t) => t,
                Answer::NoSuchUpload => return Ok(None),
            };
            let page: ListPartsResult = quick_xml::de::from_str(&text).map_err(|e| {
                self.error(
                    OP,
                    bucket_key,
                    false,
                    format!("unreadable answer ({e}): {text}"),
                )
            })?;
            for p in &page.parts {
                size += p.size;
                let t = self.time(OP, bucket_key, &p.last_modified)?;
                newest = newest.max(Some(t));
            }
            let next = non_empty(page.next_part_number_marker);
            if !page.is_truncated {
                return Ok(Some((size, newest)));
            }
            if next.is_none() || next == marker {
                return Err(self.error(
                    OP,
                    bucket_key,
                    false,
                    "the listing is truncated but gives no next marker".into(),
                ));
            }
            marker = next;
        }
    }

    /// A reported time, moved up by the time resolution.
    fn time(&self, operation: &'static str, path: &str, text: &str) -> Result<DateTime<Utc>> {
        let t = DateTime::parse_from_rfc3339(text.trim()).map_err(|e| {
            self.error(
                operation,
                path,
                false,
                format!("unreadable time `{text}`: {e}"),
            )
        })?;
        Ok(t.with_timezone(&Utc) + TIME_RESOLUTION)
    }

    /// Every unfinished upload whose target key equals `prefix` or lies below it.
    pub(crate) async fn list(&self, prefix: Option<&StorePath>) -> Result<Vec<IncompleteWrite>> {
        const OP: &str = "list the unfinished uploads under";
        let prefix_str = prefix.map_or("", StorePath::as_str);
        let bucket_prefix = self.bucket_key(prefix_str);
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query = vec![
                ("uploads".to_string(), String::new()),
                ("prefix".to_string(), bucket_prefix.clone()),
            ];
            if let Some((k, u)) = &markers {
                query.push(("key-marker".to_string(), k.clone()));
                query.push(("upload-id-marker".to_string(), u.clone()));
            }
            let Answer::Body(text) = self.get(OP, prefix_str, &OsPath::default(), query).await?
            else {
                return Err(self.error(
                    OP,
                    prefix_str,
                    false,
                    "the server answered NoSuchUpload to a listing".into(),
                ));
            };
            let page: ListUploadsResult = quick_xml::de::from_str(&text).map_err(|e| {
                self.error(
                    OP,
                    prefix_str,
                    false,
                    format!("unreadable answer ({e}): {text}"),
                )
            })?;
            for u in page.uploads {
                // Segment-wise, as every listing: `a/b` does not contain `a/bc`; keys of other
                // locations and keys this store could not have written are not ours.
                let Some(key) = self.store_key(&u.key) else {
                    continue;
                };
                if prefix.is_some_and(|p| !key.starts_with(p)) {
                    continue;
                }
                let initiated = self.time(OP, prefix_str, &u.initiated)?;
                let Some((size, newest_part)) = self.parts(&u.key, &u.upload_id).await? else {
                    continue;
                };
                let last = newest_part.map_or(initiated, |p| p.max(initiated));
                out.push(IncompleteWrite::new(
                    key,
                    IncompleteKind::MultipartUpload,
                    u.upload_id,
                    size,
                    last,
                ));
            }
            if !page.is_truncated {
                return Ok(out);
            }
            let next = match (
                non_empty(page.next_key_marker),
                non_empty(page.next_upload_id_marker),
            ) {
                (Some(k), Some(u)) => Some((k, u)),
                _ => None,
            };
            if next.is_none() || next == markers {
                return Err(self.error(
                    OP,
                    prefix_str,
                    false,
                    "the listing is truncated but gives no next markers".into(),
                ));
            }
            markers = next;
        }
    }

    /// Abort one unfinished upload unless a part arrived after `not_after`.
    pub(crate) async fn abort(
        &self,
        write: &IncompleteWrite,
        not_after: DateTime<Utc>,
    ) -> Result<IncompleteRemoval> {
        const OP: &str = "abort the unfinished upload to";
        let bucket_key = self.bucket_key(write.path.as_str());
        // Look again: a part uploaded since the listing makes the upload young.
        let Some((size, newest_part)) = self.parts(&bucket_key, &write.id).await? else {
            return Ok(IncompleteRemoval::Gone);
        };
        if write.last_modified > not_after || newest_part.is_some_and(|t| t > not_after) {
            return Ok(IncompleteRemoval::Young);
        }
        let path = OsPath::parse(&bucket_key)
            .map_err(|e| self.error(OP, &bucket_key, false, e.to_string()))?;
        match self.s3.abort_multipart(&path, &write.id).await {
            Ok(()) => Ok(IncompleteRemoval::Removed { bytes_freed: size }),
            Err(object_store::Error::NotFound { .. }) => Ok(IncompleteRemoval::Gone),
            Err(e) => {
                let retryable = dj_store_object_store::is_retryable(
                    &e,
                    Some(dj_store_object_store::classify_http),
                );
                Err(self.error(OP, &write.to_string(), retryable, e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        let uploads = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>lab/x</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>lab/a &amp; b</Key><UploadId>u1</UploadId>
    <Initiator><ID>x</ID><DisplayName>y</DisplayName></Initiator>
    <StorageClass>STANDARD</StorageClass><Initiated>2024-01-02T03:04:05.000Z</Initiated></Upload>
  <Upload><Key>lab/x</Key><UploadId>u2</UploadId><Initiated>2024-01-02T03:04:06Z</Initiated></Upload>
</ListMultipartUploadsResult>"#;
        let r: ListUploadsResult = quick_xml::de::from_str(uploads).unwrap();
        assert!(r.is_truncated);
        assert_eq!(r.uploads.len(), 2);
        assert_eq!(r.uploads[0].key, "lab/a & b");
        assert_eq!(r.uploads[1].upload_id, "u2");
        assert_eq!(r.next_upload_id_marker.as_deref(), Some("u2"));
        let empty = r#"<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"#;
        let r: ListUploadsResult = quick_xml::de::from_str(empty).unwrap();
        assert!(!r.is_truncated && r.uploads.is_empty());
        let parts = r#"<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>
  <PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>
  <IsTruncated>false</IsTruncated>
  <Part><PartNumber>1</PartNumber><LastModified>2024-01-02T03:04:05.000Z</LastModified><ETag>"e"</ETag><Size>5242880</Size></Part>
  <Part><PartNumber>2</PartNumber><LastModified>2024-01-02T03:05:05.000Z</LastModified><ETag>"f"</ETag><Size>7</Size></Part>
</ListPartsResult>"#;
        let r: ListPartsResult = quick_xml::de::from_str(parts).unwrap();
        assert_eq!(r.parts.iter().map(|p| p.size).sum::<u64>(), 5_242_887);
        assert_eq!(r.parts[1].last_modified, "2024-01-02T03:05:05.000Z");
    }
}
