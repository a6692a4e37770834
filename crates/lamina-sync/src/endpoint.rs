//! The HTTP requests sync needs, for both kinds of endpoint, and how to read their answers.
//!
//! - **S3** (AWS, Garage, Ceph, R2, MinIO): every request is a SigV4-presigned URL made by `rusty-s3` at a
//!   time the caller passes in, so the browser signs with its own clock and the secret never leaves the
//!   device. Path-style or virtual-hosted addressing, any region, optional session token.
//! - **HTTP** (WebDAV-style, e.g. nginx with `dav_methods PUT`): objects are files under a base URL, written
//!   with PUT and an optional bearer token, listed through a JSON directory index (nginx
//!   `autoindex_format json`); a host that only serves GET is pull-only.
//!
//! Fragments are written with `If-None-Match: *` where the server honours it; their keys hold a content
//! hash, so even where it does not, a repeat writes identical bytes.

use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde::{Deserialize, Serialize};

use crate::SyncError;

/// Where a bucket is; saved with the project (no secret in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Location {
    /// e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:3900`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// Path-style (`endpoint/bucket/key`) rather than virtual-hosted (`bucket.endpoint/key`) addressing.
    pub path_style: bool,
    /// Keys live under this prefix ("" or e.g. `teams/path/`).
    #[serde(default)]
    pub prefix: String,
}

/// Kept in memory unless the user asks to remember them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Credentials {
    pub access_key: String,
    pub secret_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Endpoint {
    S3 {
        location: S3Location,
        /// None: an anonymous (public-read) bucket.
        credentials: Option<S3Credentials>,
    },
    Http {
        /// The folder that holds `batches/` (a trailing `/` is added when missing).
        base_url: String,
        /// Sent as `Authorization: Bearer …` when set.
        token: Option<String>,
        /// Whether the server accepts PUT; a GET-only host is pull-only.
        writable: bool,
    },
}

/// A request to execute as it is. `url` is complete (signed, for S3).
#[derive(Clone, Debug, PartialEq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// What it is for, in words, for error messages (`PUT batches/b/index.json`).
    pub what: String,
    /// The largest answer body the transport accepts; a bigger one is refused ([`SyncError::TooLarge`])
    /// before it is held in memory.
    pub max_response_bytes: u64,
}

/// Answer limits: an image (100 MP uncompressed TIFF is 300 MB), anything else fetched, one listing page,
/// the answer to a PUT.
pub const MAX_IMAGE_BYTES: u64 = 512 << 20;
pub const MAX_LISTING_PAGE_BYTES: u64 = 16 << 20;
pub const MAX_PUT_ANSWER_BYTES: u64 = 1 << 20;

impl HttpRequest {
    /// The same request, accepting an answer of at most `bytes`.
    pub fn limited_to(mut self, bytes: u64) -> HttpRequest {
        self.max_response_bytes = bytes;
        self
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One page of a listing: keys (relative to the endpoint root), folders still to list (WebDAV lists one
/// level at a time), and where the next page starts (S3).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    pub keys: Vec<String>,
    pub folders: Vec<String>,
    pub next: Option<String>,
}

/// How long a presigned URL stays valid: long enough for a slow upload, short enough to be useless later.
const PRESIGN_TTL: Duration = Duration::from_secs(15 * 60);

impl Endpoint {
    pub fn check(&self) -> Result<(), SyncError> {
        match self {
            Endpoint::S3 { location, .. } => self::bucket(location).map(|_| ()),
            Endpoint::Http { base_url, .. } => url::Url::parse(base_url)
                .map_err(|e| SyncError::BadEndpoint(format!("{base_url}: {e}")))
                .and_then(|u| match u.scheme() {
                    "http" | "https" => Ok(()),
                    s => Err(SyncError::BadEndpoint(format!("{base_url}: scheme `{s}`"))),
                }),
        }
    }

    pub fn can_write(&self) -> bool {
        match self {
            Endpoint::S3 { credentials, .. } => credentials.is_some(),
            Endpoint::Http { writable, .. } => *writable,
        }
    }

    /// A short description for the status line (no secret).
    pub fn describe(&self) -> String {
        match self {
            Endpoint::S3 { location, .. } => format!(
                "s3://{}/{} at {}",
                location.bucket, location.prefix, location.endpoint
            ),
            Endpoint::Http { base_url, .. } => base_url.clone(),
        }
    }

    /// The URL of one object: presigned for `method` on S3, under the base URL on WebDAV.
    fn object_url(&self, key: &str, put: bool, now_ms: i64) -> Result<String, SyncError> {
        Ok(match self {
            Endpoint::S3 {
                location,
                credentials,
            } => {
                let bucket = bucket(location)?;
                let creds = credentials.as_ref().map(to_rusty);
                let full = format!("{}{key}", location.prefix);
                let time = timestamp(now_ms)?;
                if put {
                    bucket
                        .put_object(creds.as_ref(), &full)
                        .sign_with_time(PRESIGN_TTL, &time)
                } else {
                    bucket
                        .get_object(creds.as_ref(), &full)
                        .sign_with_time(PRESIGN_TTL, &time)
                }
                .to_string()
            }
            Endpoint::Http { base_url, .. } => http_url(base_url, key),
        })
    }

    /// GET an object. `now_ms`: the caller's clock, Unix milliseconds (signatures are time-bound).
    pub fn get(&self, key: &str, now_ms: i64) -> Result<HttpRequest, SyncError> {
        Ok(self.with_auth(HttpRequest {
            method: "GET",
            url: self.object_url(key, false, now_ms)?,
            headers: vec![],
            body: None,
            what: format!("GET {key}"),
            max_response_bytes: MAX_IMAGE_BYTES,
        }))
    }

    /// PUT an object. `create_only` sends `If-None-Match: *` (the server refuses to replace an object).
    pub fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        create_only: bool,
        now_ms: i64,
    ) -> Result<HttpRequest, SyncError> {
        if !self.can_write() {
            return Err(SyncError::ReadOnly);
        }
        let url = self.object_url(key, true, now_ms)?;
        let mut headers = vec![("Content-Type".to_owned(), content_type.to_owned())];
        if create_only {
            headers.push(("If-None-Match".into(), "*".into()));
        }
        Ok(self.with_auth(HttpRequest {
            method: "PUT",
            url,
            headers,
            body: Some(body),
            what: format!("PUT {key}"),
            max_response_bytes: MAX_PUT_ANSWER_BYTES,
        }))
    }

    /// Lists `folder` (a key prefix ending in `/`). S3 lists recursively, page by page (`page` is the
    /// continuation token of the previous [`Listing`]); WebDAV lists one level (sub-folders come back in
    /// [`Listing::folders`]). `None` when the endpoint cannot list (a GET-only host: use the index).
    pub fn list(
        &self,
        folder: &str,
        page: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<HttpRequest>, SyncError> {
        let url = match self {
            Endpoint::S3 {
                location,
                credentials,
            } => {
                let bucket = bucket(location)?;
                let creds = credentials.as_ref().map(to_rusty);
                let mut action = bucket.list_objects_v2(creds.as_ref());
                action.with_prefix(format!("{}{folder}", location.prefix));
                if let Some(token) = page {
                    action.with_continuation_token(token.to_owned());
                }
                action
                    .sign_with_time(PRESIGN_TTL, &timestamp(now_ms)?)
                    .to_string()
            }
            Endpoint::Http {
                base_url, writable, ..
            } => {
                if !writable {
                    return Ok(None);
                }
                http_url(base_url, folder)
            }
        };
        Ok(Some(self.with_auth(HttpRequest {
            method: "GET",
            url,
            headers: vec![],
            body: None,
            what: format!("list {folder}"),
            max_response_bytes: MAX_LISTING_PAGE_BYTES,
        })))
    }

    /// Reads a listing answer (status already checked to be 2xx).
    pub fn parse_listing(&self, folder: &str, body: &[u8]) -> Result<Listing, SyncError> {
        let bad = |e: String| SyncError::BadListing(folder.to_owned(), e);
        match self {
            Endpoint::S3 { location, .. } => {
                let text = std::str::from_utf8(body).map_err(|e| bad(e.to_string()))?;
                let page = rusty_s3::actions::ListObjectsV2::parse_response(text)
                    .map_err(|e| bad(e.to_string()))?;
                let keys = page
                    .contents
                    .into_iter()
                    .filter_map(|c| c.key.strip_prefix(&location.prefix).map(str::to_owned))
                    .collect();
                Ok(Listing {
                    keys,
                    folders: vec![],
                    next: page.next_continuation_token,
                })
            }
            Endpoint::Http { .. } => {
                #[derive(Deserialize)]
                struct Entry {
                    name: String,
                    #[serde(rename = "type")]
                    kind: String,
                }
                let entries: Vec<Entry> = serde_json::from_slice(body).map_err(|e| {
                    bad(format!(
                        "{e} (the server must answer a folder GET with a JSON index, nginx: `autoindex_format json`)"
                    ))
                })?;
                let mut listing = Listing::default();
                for e in entries {
                    // Only entries of this folder: an empty name would list the folder itself as a
                    // file (found by fuzzing).
                    if e.name.is_empty() || e.name.contains('/') || e.name == ".." || e.name == "."
                    {
                        continue;
                    }
                    match e.kind.as_str() {
                        "directory" => listing.folders.push(format!("{folder}{}/", e.name)),
                        "file" => listing.keys.push(format!("{folder}{}", e.name)),
                        _ => {}
                    }
                }
                Ok(listing)
            }
        }
    }

    fn with_auth(&self, mut request: HttpRequest) -> HttpRequest {
        if let Endpoint::Http {
            token: Some(token), ..
        } = self
        {
            if !token.is_empty() {
                request
                    .headers
                    .push(("Authorization".into(), format!("Bearer {token}")));
            }
        }
        request
    }
}

/// Sorts an answer into what sync does next.
pub fn check_status(request: &HttpRequest, response: &HttpResponse) -> Result<(), SyncError> {
    let status = response.status;
    let what = request.what.clone();
    match status {
        200..=299 => Ok(()),
        401 | 403 => Err(SyncError::Unauthorized { status, what }),
        404 => Err(SyncError::NotFound { what }),
        408 | 429 | 500..=599 => Err(SyncError::ServerError { status, what }),
        // Some gateways answer 0 when the request never left (the browser's opaque network error).
        0 => Err(SyncError::Offline(what)),
        _ => Err(SyncError::Rejected {
            status,
            what,
            body: String::from_utf8_lossy(&response.body)
                .chars()
                .take(300)
                .collect(),
        }),
    }
}

fn http_url(base_url: &str, key: &str) -> String {
    if base_url.ends_with('/') {
        format!("{base_url}{key}")
    } else {
        format!("{base_url}/{key}")
    }
}

fn bucket(location: &S3Location) -> Result<Bucket, SyncError> {
    let endpoint = url::Url::parse(&location.endpoint)
        .map_err(|e| SyncError::BadEndpoint(format!("{}: {e}", location.endpoint)))?;
    let style = if location.path_style {
        UrlStyle::Path
    } else {
        UrlStyle::VirtualHost
    };
    if !location.prefix.is_empty() && !location.prefix.ends_with('/') {
        return Err(SyncError::BadEndpoint(format!(
            "the prefix `{}` must end with `/`",
            location.prefix
        )));
    }
    Bucket::new(
        endpoint,
        style,
        location.bucket.clone(),
        location.region.clone(),
    )
    .map_err(|e| SyncError::BadEndpoint(format!("bucket `{}`: {e}", location.bucket)))
}

fn to_rusty(c: &S3Credentials) -> Credentials {
    match &c.session_token {
        Some(token) if !token.is_empty() => {
            Credentials::new_with_token(c.access_key.clone(), c.secret_key.clone(), token.clone())
        }
        _ => Credentials::new(c.access_key.clone(), c.secret_key.clone()),
    }
}

fn timestamp(now_ms: i64) -> Result<jiff::Timestamp, SyncError> {
    jiff::Timestamp::from_millisecond(now_ms)
        .map_err(|e| SyncError::BadEndpoint(format!("the clock reads {now_ms} ms: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(path_style: bool) -> Endpoint {
        Endpoint::S3 {
            location: S3Location {
                endpoint: "http://127.0.0.1:3900".into(),
                bucket: "lamina".into(),
                region: "garage".into(),
                path_style,
                prefix: "team/".into(),
            },
            credentials: Some(S3Credentials {
                access_key: "GK0123".into(),
                secret_key: "secret".into(),
                session_token: Some("tok".into()),
            }),
        }
    }

    #[test]
    fn s3_requests_are_presigned_for_the_right_object() {
        let now = 1_795_000_000_000;
        let put = s3(true)
            .put(
                "batches/b/index.json",
                b"{}".to_vec(),
                "application/json",
                true,
                now,
            )
            .unwrap();
        assert!(
            put.url
                .starts_with("http://127.0.0.1:3900/lamina/team/batches/b/index.json?"),
            "{}",
            put.url
        );
        for part in [
            "X-Amz-Signature=",
            "X-Amz-Credential=GK0123",
            "garage%2Fs3%2Faws4_request",
            "X-Amz-Security-Token=tok",
        ] {
            assert!(put.url.contains(part), "{part} missing in {}", put.url);
        }
        assert!(put.headers.contains(&("If-None-Match".into(), "*".into())));
        // Virtual-hosted addressing needs a host name (an IP cannot carry the bucket).
        assert!(s3(false).get("k", now).is_err());
        let list = s3(true)
            .list("batches/b/labels/", Some("next-page"), now)
            .unwrap()
            .unwrap();
        assert!(
            list.url.contains("prefix=team%2Fbatches%2Fb%2Flabels%2F"),
            "{}",
            list.url
        );
        assert!(
            list.url.contains("continuation-token=next-page"),
            "{}",
            list.url
        );
    }

    #[test]
    fn s3_listing_keys_are_made_relative_to_the_prefix() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>lamina</Name><Prefix>team/batches/b/labels/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>abc</NextContinuationToken><Contents><Key>team/batches/b/labels/alice/1-aa.json</Key><LastModified>2026-11-27T18:00:00.000Z</LastModified><ETag>"x"</ETag><Size>10</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"#;
        let listing = s3(true)
            .parse_listing("batches/b/labels/", xml.as_bytes())
            .unwrap();
        assert_eq!(listing.keys, ["batches/b/labels/alice/1-aa.json"]);
        assert_eq!(listing.next.as_deref(), Some("abc"));
        assert!(s3(true).parse_listing("x/", b"<html>").is_err());
    }

    #[test]
    fn webdav_requests_carry_the_token_and_listings_are_one_level() {
        let dav = Endpoint::Http {
            base_url: "http://127.0.0.1:8081/labels".into(),
            token: Some("t0k".into()),
            writable: true,
        };
        let put = dav
            .put("batches/b/x.json", vec![], "application/json", true, 0)
            .unwrap();
        assert_eq!(put.url, "http://127.0.0.1:8081/labels/batches/b/x.json");
        assert!(put
            .headers
            .contains(&("Authorization".into(), "Bearer t0k".into())));
        let body = br#"[{"name":"alice","type":"directory","mtime":"x"},{"name":"index.json","type":"file","mtime":"x","size":2}]"#;
        let listing = dav.parse_listing("batches/b/", body).unwrap();
        assert_eq!(listing.folders, ["batches/b/alice/"]);
        assert_eq!(listing.keys, ["batches/b/index.json"]);
        let err = dav
            .parse_listing("batches/b/", b"<html>index</html>")
            .unwrap_err();
        assert!(err.to_string().contains("autoindex_format json"), "{err}");

        let read_only = Endpoint::Http {
            base_url: "https://example.org/".into(),
            token: None,
            writable: false,
        };
        assert_eq!(
            read_only.put("k", vec![], "x", false, 0).unwrap_err(),
            SyncError::ReadOnly
        );
        assert_eq!(read_only.list("batches/", None, 0).unwrap(), None);
    }

    #[test]
    fn answers_are_sorted_into_retry_auth_and_refusal() {
        let req = HttpRequest {
            method: "PUT",
            url: String::new(),
            headers: vec![],
            body: None,
            what: "PUT k".into(),
            max_response_bytes: 1,
        };
        let answer = |status| HttpResponse {
            status,
            body: b"nope".to_vec(),
        };
        assert!(check_status(&req, &answer(204)).is_ok());
        assert!(check_status(&req, &answer(503)).unwrap_err().is_transient());
        assert!(matches!(
            check_status(&req, &answer(403)),
            Err(SyncError::Unauthorized { .. })
        ));
        assert!(matches!(
            check_status(&req, &answer(400)),
            Err(SyncError::Rejected { .. })
        ));
    }
}
