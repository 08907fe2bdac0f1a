//! HTTP (and file://) GETs with resumable downloads into the store.

use std::io::{Read, Write};
use std::time::Duration;

use airlock_store::{Partial, Store};

use crate::FetchError;

/// An HTTP client with sane time-outs. Plain `file:` URLs are read from disk,
/// so a local flat repository works like a mirror.
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

fn http_error(url: &str, message: impl std::fmt::Display) -> FetchError {
    FetchError::Http {
        url: url.to_owned(),
        message: message.to_string(),
    }
}

impl Http {
    /// A client: 15 s to connect, 60 s for response headers, 30 minutes for
    /// one body (a stalled transfer then fails and is resumed by a retry).
    /// Connections are kept for reuse by every download thread, and each host
    /// is resolved once: apt does the same, and it matters on hosts whose
    /// resolver sometimes drops a reply (glibc then waits 5 s per lookup).
    pub fn new() -> Http {
        let config = ureq::Agent::config_builder()
            .max_idle_connections(64)
            .max_idle_connections_per_host(32)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(30 * 60)))
            .http_status_as_error(false)
            .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: ureq::Agent::with_parts(
                config,
                ureq::unversioned::transport::DefaultConnector::default(),
                CachingResolver::default(),
            ),
        }
    }

    /// GETs a small file whole, refusing more than `max_bytes`.
    pub fn get(&self, url: &str, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        let mut bytes = Vec::new();
        if let Some(path) = file_path(url) {
            std::fs::File::open(path)
                .and_then(|f| f.take(max_bytes + 1).read_to_end(&mut bytes))
                .map_err(|e| http_error(url, e))?;
        } else {
            let mut response = self.agent.get(url).call().map_err(|e| http_error(url, e))?;
            let status = response.status().as_u16();
            if status != 200 {
                return Err(http_error(url, format!("HTTP status {status}")));
            }
            response
                .body_mut()
                .as_reader()
                .take(max_bytes + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| http_error(url, e))?;
        }
        if bytes.len() as u64 > max_bytes {
            return Err(http_error(url, format!("larger than {max_bytes} bytes")));
        }
        Ok(bytes)
    }

    /// The size the server announces for `url` (for model weights).
    pub fn content_length(&self, url: &str) -> Result<u64, FetchError> {
        if let Some(path) = file_path(url) {
            return std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(|e| http_error(url, e));
        }
        let response = self
            .agent
            .head(url)
            .call()
            .map_err(|e| http_error(url, e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(http_error(url, format!("HTTP status {status}")));
        }
        response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| http_error(url, "no Content-Length"))
    }

    /// Appends `url`'s bytes to `partial`, resuming with a Range request when
    /// it already holds some. Stops with an error past `max_bytes` in total.
    /// Calls `progress` with every chunk's size.
    pub fn download(
        &self,
        url: &str,
        store: &Store,
        partial: &mut Partial,
        max_bytes: u64,
        progress: &dyn Fn(u64),
    ) -> Result<(), FetchError> {
        let mut body: Box<dyn Read> = if let Some(path) = file_path(url) {
            let mut file = std::fs::File::open(path).map_err(|e| http_error(url, e))?;
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(partial.len))
                .map_err(|e| http_error(url, e))?;
            Box::new(file)
        } else {
            let mut request = self.agent.get(url);
            if partial.len > 0 {
                request = request.header("Range", format!("bytes={}-", partial.len));
            }
            let response = request.call().map_err(|e| http_error(url, e))?;
            match response.status().as_u16() {
                206 if partial.len > 0 => {}
                200 => store.reset_partial(partial)?,
                // The partial already holds everything; the digest check decides.
                416 if partial.len > 0 => return Ok(()),
                status => return Err(http_error(url, format!("HTTP status {status}"))),
            }
            Box::new(response.into_body().into_reader())
        };
        let mut buffer = vec![0u8; 256 << 10];
        loop {
            let n = body.read(&mut buffer).map_err(|e| http_error(url, e))?;
            if n == 0 {
                return Ok(());
            }
            if partial.len + n as u64 > max_bytes {
                store.reset_partial(partial)?;
                return Err(http_error(
                    url,
                    format!("more than the expected {max_bytes} bytes"),
                ));
            }
            // A write that fails is the store's (a full disk), not the
            // network's: it names the file, and is not retried.
            partial.file.write_all(&buffer[..n]).map_err(|source| {
                airlock_store::StoreError::Io {
                    path: partial.path().to_owned(),
                    source,
                }
            })?;
            partial.len += n as u64;
            progress(n as u64);
        }
    }
}

/// Resolves each host and port once per client; later lookups (from any
/// thread) reuse the answer. A lookup in progress holds the lock, so parallel
/// downloads wait for one answer instead of asking the resolver eight times.
#[derive(Debug, Default)]
struct CachingResolver {
    inner: ureq::unversioned::resolver::DefaultResolver,
    cache: std::sync::Mutex<
        std::collections::BTreeMap<String, ureq::unversioned::resolver::ResolvedSocketAddrs>,
    >,
}

impl ureq::unversioned::resolver::Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map_or("", |a| a.as_str())
        );
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(addresses) = cache.get(&key) {
            return Ok(addresses.clone());
        }
        let addresses = self.inner.resolve(uri, config, timeout)?;
        cache.insert(key, addresses.clone());
        Ok(addresses)
    }
}

fn file_path(url: &str) -> Option<&str> {
    url.strip_prefix("file://")
        .or_else(|| url.strip_prefix("file:"))
}
