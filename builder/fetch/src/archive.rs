//! The archive client: verified InRelease, then Packages indexes checked
//! against it and parsed while streaming into a [`Universe`].

use std::fs::File;
use std::io::{BufReader, Read};

use airlock_debian::index::Universe;
use airlock_debian::packages::read_packages;
use airlock_debian::release::{Release, verify_inrelease};
use airlock_recipe::{LockedSuite, Sha256};
use airlock_store::Store;
use sequoia_openpgp::Cert;
use sha2::Digest;

use crate::FetchError;
use crate::download::{Item, fetch_one};
use crate::http::Http;
use crate::mirror::Mirrors;

/// Largest InRelease accepted.
const MAX_INRELEASE: u64 = 64 << 20;
/// Largest uncompressed Packages index accepted (bookworm main is ~45 MiB).
const MAX_PACKAGES_UNCOMPRESSED: u64 = 2 << 30;

/// How strictly to check the archive.
#[derive(Clone, Copy, Debug)]
pub struct ArchiveOptions {
    /// Accept a Release whose Valid-Until has passed. Named insecure because a
    /// mirror could replay old, vulnerable metadata.
    pub insecure_ignore_valid_until: bool,
    /// The time to check Valid-Until and key validity at, in seconds.
    pub now: i64,
}

/// What was loaded: every candidate, and each suite's pinned state.
#[derive(Debug)]
pub struct LoadedArchive {
    /// Candidates from every suite, highest version winning.
    pub universe: Universe,
    /// The suites, in the recipe's order.
    pub suites: Vec<LockedSuite>,
}

/// Downloads, verifies and parses every suite of `archive`.
pub fn load(
    http: &Http,
    store: &Store,
    mirrors: &Mirrors,
    archive: &airlock_recipe::Archive,
    keyring: &[Cert],
    options: ArchiveOptions,
    log: &dyn Fn(&str),
) -> Result<LoadedArchive, FetchError> {
    let components = archive.components_or_default();
    let mut universe = Universe::new(&archive.architecture);
    let mut suites = Vec::new();
    for suite in &archive.suites {
        let base = mirrors.url(suite);
        let url = format!("{base}/dists/{suite}/InRelease");
        log(&format!(
            "fetching {url} (mirror from {})",
            mirrors.origin(suite)
        ));
        let inrelease = http.get(&url, MAX_INRELEASE)?;
        let inrelease_sha256 = Sha256::of(&inrelease);
        let release_error = |source| FetchError::Release {
            suite: suite.clone(),
            url: url.clone(),
            source,
        };
        let signed = verify_inrelease(&inrelease, keyring, options.now).map_err(release_error)?;
        let release = Release::parse(&signed).map_err(release_error)?;
        if !options.insecure_ignore_valid_until {
            release
                .check_valid_until(suite, options.now)
                .map_err(release_error)?;
        }
        store.insert_reader(&url, &inrelease_sha256, None, inrelease.as_slice())?;

        for component in &components {
            let stem = format!("{component}/binary-{}/Packages", archive.architecture);
            let (extension, item) = index_item(base, suite, &stem, &release, &url)?;
            let index_url = item.what.clone();
            if !store.contains(&item.sha256) {
                log(&format!("fetching {index_url}"));
            }
            let path = fetch_one(http, store, &item, &|_| {})?;
            let file = File::open(&path).map_err(|e| FetchError::Index {
                what: path.display().to_string(),
                message: e.to_string(),
            })?;
            let decoder: Box<dyn Read> = match extension {
                "xz" => Box::new(liblzma::read::XzDecoder::new(BufReader::new(file))),
                "gz" => Box::new(flate2::read::GzDecoder::new(BufReader::new(file))),
                _ => Box::new(file),
            };
            let mut hashing = HashingReader::new(decoder.take(MAX_PACKAGES_UNCOMPRESSED + 1));
            let count = read_packages(BufReader::new(&mut hashing), |package| {
                universe.add(package, suite)
            })
            .map_err(|e| FetchError::Index {
                what: index_url.clone(),
                message: e.to_string(),
            })?;
            // Drain what the parser did not need, so the digest covers it all.
            std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| FetchError::Index {
                what: index_url.clone(),
                message: e.to_string(),
            })?;
            if hashing.count > MAX_PACKAGES_UNCOMPRESSED {
                return Err(FetchError::Index {
                    what: index_url,
                    message: format!("decompresses to more than {MAX_PACKAGES_UNCOMPRESSED} bytes"),
                });
            }
            if let Some(plain) = release.sha256.get(&stem) {
                let actual = hashing.finish();
                if actual != plain.sha256 {
                    return Err(FetchError::IndexDigest {
                        what: index_url,
                        expected: plain.sha256,
                        actual,
                    });
                }
            }
            log(&format!("{suite}/{component}: {count} packages"));
        }
        suites.push(LockedSuite {
            name: suite.clone(),
            codename: release.codename.clone(),
            date: release.date.clone(),
            inrelease_sha256,
        });
    }
    universe.finish();
    Ok(LoadedArchive { universe, suites })
}

/// The index `stem` (`COMPONENT/binary-ARCH/Packages`) of `suite` as the
/// Release lists it, compressed the best way it offers (xz, gz, plain):
/// (the extension, what to fetch).
fn index_item(
    base: &str,
    suite: &str,
    stem: &str,
    release: &Release,
    inrelease_url: &str,
) -> Result<(&'static str, Item), FetchError> {
    let Some((extension, entry)) = ["xz", "gz", ""].into_iter().find_map(|extension| {
        let name = if extension.is_empty() {
            stem.to_owned()
        } else {
            format!("{stem}.{extension}")
        };
        release.sha256.get(&name).map(|entry| (extension, *entry))
    }) else {
        return Err(FetchError::Index {
            what: inrelease_url.to_owned(),
            message: format!("lists no index {stem}(.xz|.gz)"),
        });
    };
    let suffix = if extension.is_empty() {
        String::new()
    } else {
        format!(".{extension}")
    };
    let index_url = format!("{base}/dists/{suite}/{stem}{suffix}");
    // By hash where the archive offers it: the named index is replaced at
    // every publication (every few hours for security updates), so between
    // reading InRelease and fetching the index the name may already hold the
    // next one; the by-hash path of the digest this InRelease lists stays
    // put.
    let url = match (release.acquire_by_hash, stem.rsplit_once('/')) {
        (true, Some((folder, _))) => format!(
            "{base}/dists/{suite}/{folder}/by-hash/SHA256/{}",
            entry.sha256
        ),
        _ => index_url.clone(),
    };
    Ok((
        extension,
        Item {
            what: index_url,
            url,
            sha256: entry.sha256,
            size: Some(entry.size),
        },
    ))
}

/// A reader that hashes and counts what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    fn finish(self) -> Sha256 {
        Sha256(self.hasher.finalize().into())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(by_hash: &str) -> Release {
        let text = format!(
            "Date: Sat, 10 May 2025 09:12:34 UTC\nAcquire-By-Hash: {by_hash}\nSHA256:\n {} 12 main/binary-amd64/Packages.xz\n {} 40 main/binary-amd64/Packages\n",
            "a".repeat(64),
            "b".repeat(64)
        );
        Release::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn indexes_are_fetched_by_hash_only_where_the_release_offers_it() {
        let stem = "main/binary-amd64/Packages";
        let (extension, item) =
            index_item("http://m/debian", "bookworm", stem, &release("yes"), "r").unwrap();
        assert_eq!(extension, "xz");
        assert_eq!(
            item.url,
            format!(
                "http://m/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/{}",
                "a".repeat(64)
            )
        );
        // Messages still name the index, not its digest.
        assert_eq!(
            item.what,
            "http://m/debian/dists/bookworm/main/binary-amd64/Packages.xz"
        );
        assert_eq!(item.size, Some(12));
        let (_, item) =
            index_item("http://m/debian", "bookworm", stem, &release("no"), "r").unwrap();
        assert_eq!(item.url, item.what);
        let error = index_item(
            "http://m/debian",
            "bookworm",
            "contrib/binary-amd64/Packages",
            &release("yes"),
            "r",
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("lists no index contrib/binary-amd64/Packages(.xz|.gz)"),
            "{error}"
        );
    }
}
