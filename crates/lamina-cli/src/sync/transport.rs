//! The CLI's transport (blocking `ureq`, retrying transient failures), `block_on` for its futures, and `rfc3339_now`.

use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};

use lamina_sync::driver::{backoff_ms, Transport};
use lamina_sync::endpoint::HttpResponse;
use lamina_sync::{HttpRequest, SyncError};

/// The CLI's transport: ureq, retrying transient failures.
pub(super) struct Ureq {
    agent: ureq::Agent,
    attempts: u32,
    /// Requests sent and bytes moved, for the throughput figures.
    pub(super) stats: std::cell::Cell<(u64, u64)>,
}

impl Ureq {
    pub(super) fn new(attempts: u32, timeout_s: u64) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(timeout_s.max(1))))
            .build();
        Ureq {
            agent: config.into(),
            attempts: attempts.max(1),
            stats: Default::default(),
        }
    }

    /// A protocol result in the CLI's words. A transient failure that outlasted every attempt is not
    /// queued anywhere (the app's wording says it is), so say what to do instead.
    pub(super) fn finish<T>(&self, result: Result<T, SyncError>) -> Result<T> {
        result.map_err(|e| {
            let cause = match &e {
                SyncError::Offline(what) => format!("the server could not be reached ({what})"),
                SyncError::ServerError { status, what } => {
                    format!("the server failed (HTTP {status} on {what})")
                }
                _ => return anyhow::Error::new(e),
            };
            anyhow!(
                "{cause}, on all {} attempt(s), retried with backoff; nothing is queued: run the same \
                 command again once the server is back (repeating it is safe: no label is written twice)",
                self.attempts
            )
        })
    }

    fn once(&self, request: &HttpRequest) -> Result<HttpResponse, SyncError> {
        let mut builder = ureq::http::Request::builder()
            .method(request.method)
            .uri(&request.url);
        for (k, v) in &request.headers {
            builder = builder.header(k, v);
        }
        let body = request.body.clone().unwrap_or_default();
        let sent = body.len() as u64;
        let http = builder
            .body(body)
            .map_err(|e| SyncError::BadEndpoint(e.to_string()))?;
        let mut response = self
            .agent
            .run(http)
            .map_err(|e| SyncError::Offline(format!("{}: {e}", request.what)))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(request.max_response_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(limit) => SyncError::TooLarge {
                    what: request.what.clone(),
                    limit,
                },
                other => SyncError::Offline(format!("{}: {other}", request.what)),
            })?;
        let (n, bytes) = self.stats.get();
        self.stats.set((n + 1, bytes + sent + body.len() as u64));
        Ok(HttpResponse { status, body })
    }
}

impl Transport for Ureq {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, SyncError> {
        let mut attempt = 0;
        loop {
            let outcome = self.once(&request);
            let transient = match &outcome {
                Err(e) => e.is_transient(),
                Ok(r) => matches!(r.status, 429 | 500..=599),
            };
            attempt += 1;
            if !transient || attempt >= self.attempts {
                return outcome;
            }
            std::thread::sleep(Duration::from_millis(backoff_ms(attempt - 1)));
        }
    }

    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// Runs one of the protocol's futures to completion. The transport blocks inside `send`, so every
/// future is ready when first polled; there is nothing to wait for.
pub(super) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = TaskContext::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

pub(super) fn rfc3339_now(ms: i64) -> String {
    // Always three decimals, as the browser's `Date.toISOString()` writes them (fragment keys sort on it).
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(super::rfc3339_now(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339_now(1_795_784_400_123),
            "2026-11-27T13:00:00.123Z"
        );
        assert_eq!(
            super::rfc3339_now(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
