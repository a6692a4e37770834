//! Push and pull over any transport. The browser runs these with `fetch`, the CLI with a blocking client;
//! both see the same requests, answers and errors.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::batch::{parse_batch_manifest, BatchManifest};
use crate::endpoint::{check_status, Endpoint, HttpRequest, HttpResponse};
use crate::fragment::Fragment;
use crate::ledger::Ledger;
use crate::{layout, SyncError};

/// Sends requests. A request that never got an answer is `Err(SyncError::Offline)`.
#[allow(async_fn_in_trait)]
pub trait Transport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, SyncError>;
    /// Unix milliseconds: signatures are time-bound and fragments are dated.
    fn now_ms(&self) -> i64;
}

/// Delay before retry number `attempt` (0-based) of a transient failure: doubling from 1 s, capped at
/// one minute, so a server that is down is not hammered and one that is back is found quickly.
pub fn backoff_ms(attempt: u32) -> u64 {
    1000u64.saturating_mul(1u64 << attempt.min(6)).min(60_000)
}

#[derive(Clone, Debug, PartialEq)]
pub struct PushOutcome {
    pub key: String,
    pub bytes: usize,
    /// The server already had these exact bytes (a retried push whose first answer was lost).
    pub already_there: bool,
}

/// The cache readers use on hosts that cannot list: every fragment key of a batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchIndex {
    pub format: String,
    pub fragments: BTreeSet<String>,
}

/// Sends a request and turns any answer but 2xx into its [`SyncError`].
pub async fn send_checked<T: Transport>(
    t: &T,
    request: HttpRequest,
) -> Result<HttpResponse, SyncError> {
    let probe = HttpRequest {
        body: None,
        ..request.clone()
    };
    let response = t.send(request).await?;
    check_status(&probe, &response)?;
    Ok(response)
}

/// The most a fragment, a batch manifest or the index may weigh: far above real ones (a fragment of 200
/// crowded images is a few MB), low enough that a hostile object cannot exhaust memory.
pub const MAX_FRAGMENT_BYTES: u64 = 64 << 20;
pub const MAX_MANIFEST_BYTES: u64 = 32 << 20;
pub const MAX_INDEX_BYTES: u64 = 16 << 20;
/// A listing longer than this many pages (1,000 keys each on S3) is refused rather than followed.
pub const MAX_LISTING_PAGES: usize = 10_000;

/// GET that treats 404 as "not there", accepting at most `limit` bytes.
async fn get_optional<T: Transport>(
    t: &T,
    endpoint: &Endpoint,
    key: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, SyncError> {
    let request = endpoint.get(key, t.now_ms())?.limited_to(limit);
    let probe = request.clone();
    let response = t.send(request).await?;
    if response.status == 404 {
        return Ok(None);
    }
    check_status(&probe, &response)?;
    Ok(Some(response.body))
}

/// Writes one fragment (create-only), then adds it, and every key `known` holds, to the batch index.
pub async fn push_fragment<T: Transport>(
    t: &T,
    endpoint: &Endpoint,
    fragment: &Fragment,
    known: &BTreeSet<String>,
) -> Result<PushOutcome, SyncError> {
    let bytes = fragment.to_bytes();
    let key = fragment.key_for(&bytes);
    let size = bytes.len();
    let request = endpoint.put(&key, bytes, "application/json", true, t.now_ms())?;
    let probe = HttpRequest {
        body: None,
        ..request.clone()
    };
    let response = t.send(request).await?;
    // 412: the key exists. Keys are content hashes, so it holds these very bytes.
    let already_there = response.status == 412;
    if !already_there {
        check_status(&probe, &response)?;
    }
    let mut keys = known.clone();
    keys.insert(key.clone());
    add_to_index(t, endpoint, &fragment.batch, &keys).await?;
    Ok(PushOutcome {
        key,
        bytes: size,
        already_there,
    })
}

/// Reads the batch index; a missing or unreadable one is empty (it is only a cache of the listing).
pub async fn read_index<T: Transport>(
    t: &T,
    endpoint: &Endpoint,
    batch: &str,
) -> Result<BTreeSet<String>, SyncError> {
    let Some(bytes) = get_optional(t, endpoint, &layout::index_key(batch), MAX_INDEX_BYTES).await?
    else {
        return Ok(BTreeSet::new());
    };
    let index: BatchIndex = serde_json::from_slice(&bytes).unwrap_or_default();
    Ok(index
        .fragments
        .into_iter()
        .filter(|k| layout::is_fragment_key(batch, k))
        .collect())
}

/// Adds `keys` to the batch index (read-modify-write); writes nothing when it lists them all already.
/// Two pushes at once may drop each other's entry; the next push by either (which writes every key its
/// device knows) and every listing repair it.
pub async fn add_to_index<T: Transport>(
    t: &T,
    endpoint: &Endpoint,
    batch: &str,
    keys: &BTreeSet<String>,
) -> Result<(), SyncError> {
    let mut index = read_index(t, endpoint, batch).await?;
    if keys.is_subset(&index) {
        return Ok(());
    }
    index.extend(keys.iter().cloned());
    let body = serde_json::to_vec(&BatchIndex {
        format: "lamina-batch-index".into(),
        fragments: index,
    })
    .unwrap_or_default();
    let request = endpoint.put(
        &layout::index_key(batch),
        body,
        "application/json",
        false,
        t.now_ms(),
    )?;
    send_checked(t, request).await.map(|_| ())
}

/// Every fragment key of a batch: the server's listing (where it can list) joined with the index.
pub async fn fragment_keys<T: Transport>(
    t: &T,
    endpoint: &Endpoint,
    batch: &str,
) -> Result<BTreeSet<String>, SyncError> {
    let mut keys = read_index(t, endpoint, batch).await?;
    let mut folders = vec![layout::labels_prefix(batch)];
    while let Some(folder) = folders.pop() {
        let mut page: Option<String> = None;
        // A server that hands back a token it already gave would have us list forever.
        let mut tokens_seen: BTreeSet<String> = BTreeSet::new();
        loop {
            if tokens_seen.len() >= MAX_LISTING_PAGES {
                return Err(SyncError::BadListing(
                    folder,
                    format!("it runs to more than {MAX_LISTING_PAGES} pages"),
                ));
            }
            let Some(request) = endpoint.list(&folder, page.as_deref(), t.now_ms())? else {
                return Ok(keys);
            };
            let probe = request.clone();
            let response = t.send(request).await?;
            if response.status == 404 {
                break; // nothing pushed yet (WebDAV has no folder until its first file)
            }
            check_status(&probe, &response)?;
            let listing = endpoint.parse_listing(&folder, &response.body)?;
            keys.extend(
                listing
                    .keys
                    .into_iter()
                    .filter(|k| layout::is_fragment_key(batch, k)),
            );
            folders.extend(listing.folders);
            match listing.next {
                Some(next) if !tokens_seen.insert(next.clone()) => {
                    return Err(SyncError::BadListing(
                        folder,
                        format!(
                            "the server sent the continuation token {next:?} a second time, so the listing would never end"
                        ),
                    ));
                }
                Some(next) => page = Some(next),
                None => break,
            }
        }
    }
    Ok(keys)
}

#[derive(Debug, Default)]
pub struct PullOutcome {
    /// Fragments read for the first time, oldest key first.
    pub fragments: Vec<(String, Fragment)>,
    /// Objects that could not be used, each with why (they are skipped; the rest is merged).
    pub problems: Vec<String>,
}

/// Reads every fragment of `batch` the ledger does not know yet, and records it there.
pub async fn pull_fragments<T: Transport>(
    t: &T,
    endpoint: &Endpoint,
    batch: &str,
    ledger: &mut Ledger,
) -> Result<PullOutcome, SyncError> {
    let mut outcome = PullOutcome::default();
    for key in fragment_keys(t, endpoint, batch).await? {
        if ledger.knows(&key) {
            continue;
        }
        let Some(bytes) = get_optional(t, endpoint, &key, MAX_FRAGMENT_BYTES).await? else {
            outcome
                .problems
                .push(format!("{key} is in the index but not on the server"));
            continue;
        };
        match Fragment::parse(&key, batch, &bytes) {
            Ok(fragment) => {
                ledger.record(&key, &fragment);
                outcome.fragments.push((key, fragment));
            }
            Err(e) => outcome.problems.push(e.to_string()),
        }
    }
    Ok(outcome)
}

/// Fetches one fragment again (its labels are not kept on the device once merged).
pub async fn fetch_fragment<T: Transport>(
    t: &T,
    endpoint: &Endpoint,
    batch: &str,
    key: &str,
) -> Result<Fragment, SyncError> {
    let request = endpoint
        .get(key, t.now_ms())?
        .limited_to(MAX_FRAGMENT_BYTES);
    let bytes = send_checked(t, request).await?.body;
    Fragment::parse(key, batch, &bytes)
}

/// Fetches and reads a batch manifest (`manifest.json`, else `manifest.csv`).
pub async fn pull_manifest<T: Transport>(
    t: &T,
    endpoint: &Endpoint,
    batch: &str,
) -> Result<BatchManifest, SyncError> {
    layout::check_id(batch, "batch id")?;
    let json_key = layout::manifest_key(batch);
    let csv_key = json_key.replace(".json", ".csv");
    let bytes = match get_optional(t, endpoint, &json_key, MAX_MANIFEST_BYTES).await? {
        Some(b) => b,
        None => get_optional(t, endpoint, &csv_key, MAX_MANIFEST_BYTES)
            .await?
            .ok_or_else(|| SyncError::Rejected {
                status: 404,
                what: format!("GET {json_key}"),
                body: format!(
                    "batch `{batch}` has no manifest.json or manifest.csv on {}",
                    endpoint.describe()
                ),
            })?,
    };
    let text = String::from_utf8_lossy(&bytes);
    parse_batch_manifest(batch, &text).map_err(|e| SyncError::BadManifest(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let delays: Vec<u64> = (0..9).map(backoff_ms).collect();
        assert_eq!(delays[..4], [1000, 2000, 4000, 8000]);
        assert_eq!(delays[8], 60_000);
    }

    /// An in-memory WebDAV-style server: GET and PUT by URL, every request logged.
    #[derive(Default)]
    struct Memory {
        objects: std::cell::RefCell<std::collections::BTreeMap<String, Vec<u8>>>,
        log: std::cell::RefCell<Vec<String>>,
    }

    impl Transport for Memory {
        async fn send(&self, request: HttpRequest) -> Result<HttpResponse, SyncError> {
            self.log.borrow_mut().push(request.what.clone());
            let mut objects = self.objects.borrow_mut();
            Ok(match request.method {
                "PUT" => {
                    objects.insert(request.url, request.body.unwrap_or_default());
                    HttpResponse {
                        status: 201,
                        body: vec![],
                    }
                }
                _ => match objects.get(&request.url) {
                    Some(body) => HttpResponse {
                        status: 200,
                        body: body.clone(),
                    },
                    None => HttpResponse {
                        status: 404,
                        body: vec![],
                    },
                },
            })
        }

        fn now_ms(&self) -> i64 {
            0
        }
    }

    /// The protocol's futures never wait on this transport: one poll finishes them.
    fn ready<F: std::future::Future>(future: F) -> F::Output {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::pin!(future).poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("the in-memory transport never waits"),
        }
    }

    #[test]
    fn index_gets_the_union_and_is_not_rewritten_when_it_lists_every_key() {
        let t = Memory::default();
        let endpoint = Endpoint::Http {
            base_url: "http://host/".into(),
            token: None,
            writable: true,
        };
        let key = |n: u8| format!("batches/b1/labels/alice/{n}.json");
        let keys = |ns: &[u8]| ns.iter().map(|n| key(*n)).collect::<BTreeSet<_>>();
        let puts = || {
            t.log
                .borrow()
                .iter()
                .filter(|w| w.starts_with("PUT"))
                .count()
        };

        ready(add_to_index(&t, &endpoint, "b1", &keys(&[1, 2]))).unwrap();
        assert_eq!(puts(), 1);
        ready(add_to_index(&t, &endpoint, "b1", &keys(&[2, 3]))).unwrap();
        assert_eq!(puts(), 2);
        assert_eq!(
            ready(read_index(&t, &endpoint, "b1")).unwrap(),
            keys(&[1, 2, 3])
        );
        // Every key listed already: read, nothing written.
        ready(add_to_index(&t, &endpoint, "b1", &keys(&[1, 3]))).unwrap();
        assert_eq!(puts(), 2);
    }

    /// An S3 server whose listing always says "more" with the same continuation token.
    struct StuckListing {
        lists: std::cell::Cell<usize>,
    }

    impl Transport for StuckListing {
        async fn send(&self, request: HttpRequest) -> Result<HttpResponse, SyncError> {
            if !request.url.contains("list-type=2") {
                return Ok(HttpResponse {
                    status: 404,
                    body: vec![],
                });
            }
            self.lists.set(self.lists.get() + 1);
            if self.lists.get() > 1000 {
                panic!("the listing was asked for more than 1000 times: it loops");
            }
            let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>lamina</Name><Prefix>team/batches/b/labels/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>same</NextContinuationToken></ListBucketResult>"#;
            Ok(HttpResponse {
                status: 200,
                body: xml.as_bytes().to_vec(),
            })
        }

        fn now_ms(&self) -> i64 {
            1_795_000_000_000
        }
    }

    #[test]
    fn a_listing_that_repeats_its_continuation_token_is_an_error_not_a_loop() {
        let endpoint = Endpoint::S3 {
            location: crate::endpoint::S3Location {
                endpoint: "http://127.0.0.1:3900".into(),
                bucket: "lamina".into(),
                region: "garage".into(),
                path_style: true,
                prefix: "team/".into(),
            },
            credentials: None,
        };
        let t = StuckListing {
            lists: std::cell::Cell::new(0),
        };
        let err = ready(fragment_keys(&t, &endpoint, "b")).unwrap_err();
        assert!(matches!(err, SyncError::BadListing(..)), "{err}");
        assert!(err.to_string().contains("continuation token"), "{err}");
        assert!(
            t.lists.get() <= 2,
            "stopped at the first repeat ({} listings)",
            t.lists.get()
        );
    }
}
