//! Fetching pinned inputs into the store: parallel, resumable, retried,
//! verified, with a progress bar on a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use airlock_recipe::Sha256;
use airlock_store::{Store, StoreError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::FetchError;
use crate::http::Http;

/// One input to fetch.
#[derive(Clone, Debug)]
pub struct Item {
    /// What to call it in messages (a file name or URL).
    pub what: String,
    /// Where to get it.
    pub url: String,
    /// Its pinned digest.
    pub sha256: Sha256,
    /// Its pinned size, when known.
    pub size: Option<u64>,
}

/// How to fetch.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Parallel downloads.
    pub jobs: usize,
    /// Attempts per item.
    pub attempts: u32,
    /// Draw a progress bar (only when stderr is a terminal).
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: 8,
            attempts: 5,
            progress: true,
        }
    }
}

/// What a fetch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Items downloaded now.
    pub downloaded: usize,
    /// Items already in the store.
    pub present: usize,
    /// Bytes downloaded now.
    pub bytes: u64,
}

/// The items not yet in the store.
pub fn missing<'i>(store: &Store, items: &'i [Item]) -> Vec<&'i Item> {
    items
        .iter()
        .filter(|item| !store.contains(&item.sha256))
        .collect()
}

/// Fetches one item with retries and resume; returns its store path.
pub fn fetch_one(
    http: &Http,
    store: &Store,
    item: &Item,
    progress: &dyn Fn(u64),
) -> Result<PathBuf, FetchError> {
    fetch_with_attempts(http, store, item, Options::default().attempts, progress)
}

fn fetch_with_attempts(
    http: &Http,
    store: &Store,
    item: &Item,
    attempts: u32,
    progress: &dyn Fn(u64),
) -> Result<PathBuf, FetchError> {
    let target = store.path(&item.sha256);
    if target.is_file() {
        return Ok(target);
    }
    let max_bytes = item.size.unwrap_or(u64::MAX);
    let mut last_error = None;
    for attempt in 0..attempts.max(1) {
        if attempt > 0 {
            std::thread::sleep(backoff(attempt));
        }
        let mut partial = store.partial(&item.sha256)?;
        // Another process may have finished it while we waited for the lock.
        if target.is_file() {
            return Ok(target);
        }
        let result = http
            .download(&item.url, store, &mut partial, max_bytes, progress)
            .and_then(|()| {
                store
                    .commit_partial(partial, &item.what, item.size)
                    .map_err(FetchError::from)
            });
        match result {
            Ok(path) => return Ok(path),
            // Out of space: nothing to resume, and the partial holds space.
            Err(FetchError::Store(error)) if error.is_disk_full() => {
                store.discard_partial(&item.sha256);
                return Err(FetchError::Store(error));
            }
            // A size or digest mismatch after a complete transfer is worth one
            // clean retry (the partial was discarded); a network error resumes.
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.expect("at least one attempt was made"))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(5))
}

/// Fetches every item not yet in the store, `options.jobs` at a time. Every
/// item is attempted; the error lists each one that failed.
pub fn fetch_all(
    http: &Http,
    store: &Store,
    items: &[Item],
    options: Options,
) -> Result<Report, FetchError> {
    let _lock = store.lock_shared()?;
    let todo = missing(store, items);
    let mut report = Report {
        present: items.len() - todo.len(),
        ..Report::default()
    };
    if todo.is_empty() {
        return Ok(report);
    }
    let total: u64 = todo.iter().filter_map(|item| item.size).sum();
    let bar = if options.progress && std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message("fetching");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs.max(1))
        .build()
        .map_err(|e| FetchError::Http {
            url: String::new(),
            message: format!("cannot start download threads: {e}"),
        })?;
    let results: Vec<Result<u64, (String, bool)>> = pool.install(|| {
        todo.par_iter()
            .map(|item| {
                let counted = std::sync::atomic::AtomicU64::new(0);
                let progress = |n: u64| {
                    counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    bar.inc(n);
                };
                fetch_with_attempts(http, store, item, options.attempts, &progress)
                    .map(|_| counted.into_inner())
                    .map_err(|error| (describe(item, &error), error.is_verification_failure()))
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut failures = Vec::new();
    let mut mismatch = false;
    for result in results {
        match result {
            Ok(bytes) => {
                report.downloaded += 1;
                report.bytes += bytes;
            }
            Err((line, is_mismatch)) => {
                failures.push(line);
                mismatch |= is_mismatch;
            }
        }
    }
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(FetchError::Downloads {
            total: todo.len(),
            failures,
            mismatch,
        })
    }
}

fn describe(item: &Item, error: &FetchError) -> String {
    match error {
        FetchError::Store(StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. }) => {
            format!("  {error} (from {})", item.url)
        }
        other => format!("  {}: {other}", item.what),
    }
}
