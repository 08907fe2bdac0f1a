//! What several subcommands share: loading recipes and locks, opening the
//! store, choosing mirrors.

use std::path::{Path, PathBuf};

use airlock_fetch::mirror::{self, Mirrors};
use airlock_recipe::{LoadedRecipe, Lock};
use airlock_store::Store;
use anyhow::Context;

/// Options every command that touches the store takes.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Store folder [default: $XDG_CACHE_HOME/airlock, else ~/.cache/airlock].
    #[arg(long, env = "AIRLOCK_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    /// Opens the store.
    pub fn open(&self) -> anyhow::Result<Store> {
        let root = match &self.store {
            Some(root) => root.clone(),
            None => Store::default_root()
                .context("no store folder: set --store, AIRLOCK_STORE, XDG_CACHE_HOME or HOME")?,
        };
        Store::open(&root).with_context(|| format!("opening the store at {}", root.display()))
    }
}

/// Options for choosing mirrors.
#[derive(Debug, clap::Args)]
pub struct MirrorArgs {
    /// Mirror for every suite (URL) or one suite (SUITE=URL); repeatable.
    /// Default: AIRLOCK_MIRROR, then the host's apt sources.
    #[arg(long = "mirror", value_name = "[SUITE=]URL")]
    pub mirrors: Vec<String>,
}

impl MirrorArgs {
    /// The mirror for each of the recipe's suites.
    pub fn resolve(&self, recipe: &LoadedRecipe) -> anyhow::Result<Mirrors> {
        let archive = &recipe.recipe.archive;
        let environment = std::env::var("AIRLOCK_MIRROR").ok();
        Ok(mirror::resolve(
            &archive.suites,
            &archive.components_or_default(),
            &self.mirrors,
            environment.as_deref(),
            Path::new("/"),
        )?)
    }
}

/// The largest file a recipe reads (itself, an include, a key file).
const MAX_RECIPE_FILE: u64 = 16 << 20;

/// Reads and validates a recipe with its includes.
pub fn load_recipe(path: &Path) -> anyhow::Result<LoadedRecipe> {
    Ok(airlock_recipe::load(path, &mut read_recipe_file)?)
}

/// One file a recipe names, as text: a regular file of at most
/// [`MAX_RECIPE_FILE`] bytes (so a recipe naming /dev/zero is refused
/// instead of filling memory).
fn read_recipe_file(file: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let opened = std::fs::File::open(file)?;
    if !opened.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    opened.take(MAX_RECIPE_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_RECIPE_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_RECIPE_FILE >> 20),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text (a key file must be armored)",
        )
    })
}

/// The lock file that belongs to a recipe: `NAME.toml` → `NAME.lock`.
pub fn lock_path(recipe: &Path) -> PathBuf {
    recipe.with_extension("lock")
}

/// Reads a lock file.
pub fn read_lock(path: &Path) -> anyhow::Result<Lock> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the lock {} (run `airlock lock` first)",
            path.display()
        )
    })?;
    Ok(Lock::parse(path, &text)?)
}

/// Writes `text` to `path` atomically: a temporary file beside it, renamed.
pub fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("writing {}", file.path().display()))?;
    file.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Seconds since the epoch, from the clock (connected side only).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Prints a progress line for a person, on stderr.
pub fn say(line: &str) {
    eprintln!("{line}");
}

/// The password for secret keys, from AIRLOCK_KEY_PASSWORD.
pub fn key_password() -> anyhow::Result<Option<Vec<u8>>> {
    match std::env::var_os("AIRLOCK_KEY_PASSWORD") {
        None => Ok(None),
        Some(value) => Ok(Some(
            std::os::unix::ffi::OsStrExt::as_bytes(value.as_os_str()).to_vec(),
        )),
    }
}

/// A size: bytes, or a number with K, M, G or T (powers of 1024), with an
/// optional `iB` or `B`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let without = trimmed
        .strip_suffix("iB")
        .or_else(|| trimmed.strip_suffix('B'))
        .unwrap_or(trimmed);
    let (number, shift) = match without.char_indices().last() {
        Some((i, 'K' | 'k')) => (&without[..i], 10),
        Some((i, 'M' | 'm')) => (&without[..i], 20),
        Some((i, 'G' | 'g')) => (&without[..i], 30),
        Some((i, 'T' | 't')) => (&without[..i], 40),
        _ => (without, 0),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("{text:?} is not a size (bytes, or a number with K, M, G or T)"))
}

/// sha256 of the running airlock binary (hex), read once: the builder's
/// identity in the image cache key.
pub fn self_digest() -> anyhow::Result<String> {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(digest) = DIGEST.get() {
        return Ok(digest.clone());
    }
    let exe = std::env::current_exe().context("finding the airlock binary")?;
    let (digest, _) = airlock_store::hash_file(&exe)
        .with_context(|| format!("hashing the airlock binary {}", exe.display()))?;
    Ok(DIGEST.get_or_init(|| digest.to_hex()).clone())
}

/// The store entries of a lock's models or components, by name.
pub type Pinned = Vec<(String, PathBuf)>;

/// A lock's packages (in lock order), models and components as the build
/// takes them: each the store entry its sha256 names.
pub fn store_inputs(
    lock: &Lock,
    store: &Store,
) -> (Vec<airlock_image::extract::Package>, Pinned, Pinned) {
    let packages = lock
        .packages
        .iter()
        .map(|p| airlock_image::extract::Package {
            name: p.name.clone(),
            deb: store.path(&p.sha256),
        })
        .collect();
    let entries = |list: &[airlock_recipe::LockedModel]| {
        list.iter()
            .map(|m| (m.name.clone(), store.path(&m.sha256)))
            .collect()
    };
    (packages, entries(&lock.models), entries(&lock.components))
}

/// A progress bar over `total` bytes, on a terminal only.
pub fn bytes_bar(what: &str, total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{eta}}"
        ))
        .expect("a valid template"),
    );
    Some(bar)
}

#[cfg(test)]
mod recipe_file_tests {
    #[test]
    fn devices_binary_and_huge_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = super::read_recipe_file(std::path::Path::new("/dev/zero")).unwrap_err();
        assert_eq!(error.to_string(), "not a regular file");
        let binary = dir.path().join("key.gpg");
        std::fs::write(&binary, [0x99, 0x01, 0xff]).unwrap();
        let error = super::read_recipe_file(&binary).unwrap_err();
        assert!(error.to_string().contains("must be armored"), "{error}");
        let huge = dir.path().join("huge.toml");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(super::MAX_RECIPE_FILE + 1)
            .unwrap();
        let error = super::read_recipe_file(&huge).unwrap_err();
        assert_eq!(error.to_string(), "larger than 16 MiB");
        let fine = dir.path().join("r.toml");
        std::fs::write(&fine, "schema = 1\n").unwrap();
        assert_eq!(super::read_recipe_file(&fine).unwrap(), "schema = 1\n");
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("4095M"), Ok(4095 << 20));
        assert_eq!(super::parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(super::parse_size("512"), Ok(512));
        assert!(super::parse_size("1.5G").is_err());
        assert!(super::parse_size("99999999999T").is_err());
    }
}
