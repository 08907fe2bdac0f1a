//! Locking: resolve a recipe against the archive and pin every input.

use airlock_debian::relation::parse_relations;
use airlock_debian::release::read_keyring;
use airlock_debian::solver::{Request, resolve};
use airlock_recipe::{LOCK_VERSION, LoadedRecipe, Lock, LockedArchive, LockedModel, LockedPackage};
use airlock_store::Store;

use crate::FetchError;
use crate::archive::{self, ArchiveOptions};
use crate::download::Item;
use crate::http::Http;
use crate::mirror::Mirrors;

/// Builds the solver request from the recipe's [packages] and [kernel].
pub fn request(recipe: &LoadedRecipe) -> Result<Request, FetchError> {
    let packages = &recipe.recipe.packages;
    let mut install = Vec::new();
    for entry in &packages.install {
        let groups = parse_relations(entry.as_str()).map_err(|e| {
            FetchError::Recipe(format!(
                "{}: [packages] install entry {:?}: {e}",
                recipe.path.display(),
                entry.as_str()
            ))
        })?;
        install.extend(groups);
    }
    if let Some(kernel) = &recipe.recipe.kernel.package {
        install.extend(
            parse_relations(kernel.as_str()).map_err(|e| FetchError::Recipe(e.to_string()))?,
        );
    }
    Ok(Request {
        base: packages.base,
        install,
        exclude: packages
            .exclude
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
    })
}

/// Resolves `recipe` against the archive and returns its lock.
pub fn lock(
    http: &Http,
    store: &Store,
    mirrors: &Mirrors,
    recipe: &LoadedRecipe,
    keyring: &[u8],
    options: ArchiveOptions,
    log: &dyn Fn(&str),
) -> Result<Lock, FetchError> {
    let keyring_path = recipe
        .recipe
        .archive
        .keyring
        .as_ref()
        .map(|k| recipe.host_path(k.as_str()));
    let keyring = read_keyring(keyring).map_err(|e| {
        FetchError::Recipe(format!(
            "{}: {e}",
            keyring_path.map_or_else(|| "keyring".to_owned(), |p| p.display().to_string())
        ))
    })?;
    let request = request(recipe)?;
    let loaded = archive::load(
        http,
        store,
        mirrors,
        &recipe.recipe.archive,
        &keyring,
        options,
        log,
    )?;
    let started = std::time::Instant::now();
    let ids = resolve(&loaded.universe, &request)?;
    log(&format!(
        "resolved {} packages from {} candidates in {:.2?}",
        ids.len(),
        loaded.universe.len(),
        started.elapsed()
    ));
    let packages = ids
        .into_iter()
        .map(|id| {
            let candidate = loaded.universe.candidate(id);
            let package = &candidate.package;
            LockedPackage {
                name: package.name.clone(),
                version: package.version_text.clone(),
                architecture: package.architecture.clone(),
                suite: candidate.suite.clone(),
                filename: package.filename.clone(),
                size: package.size,
                sha256: package.sha256,
                source: package.source.clone(),
                source_version: package.source_version.clone(),
            }
        })
        .collect();
    let (models, components) = lock_pinned(http, recipe)?;
    Ok(Lock {
        version: LOCK_VERSION,
        recipe: recipe.digest,
        archive: LockedArchive {
            architecture: recipe.recipe.archive.architecture.clone(),
            components: recipe.recipe.archive.components_or_default(),
            suites: loaded.suites,
        },
        packages,
        models,
        components,
    })
}

/// Pins every model and component: a local file is hashed (and must match
/// the recipe); a URL's size is asked of the server (its bytes are checked
/// by `fetch`). Returns the models' pins and the components'.
fn lock_pinned(
    http: &Http,
    recipe: &LoadedRecipe,
) -> Result<(Vec<LockedModel>, Vec<LockedModel>), FetchError> {
    let (mut models, mut components) = (Vec::new(), Vec::new());
    for pinned in recipe.recipe.pinned() {
        let size = if let Some(path) = pinned.path {
            let path = recipe.host_path(path.as_str());
            let (actual, size) = airlock_store::hash_file(&path)?;
            if actual != pinned.sha256 {
                return Err(FetchError::Recipe(format!(
                    "{}: {} {}: sha256 mismatch: the recipe pins {}, the file is {actual}",
                    path.display(),
                    pinned.kind,
                    pinned.name,
                    pinned.sha256
                )));
            }
            size
        } else {
            let url = pinned.url.expect("validated: path or url");
            http.content_length(url.as_str())?
        };
        let locked = LockedModel {
            name: pinned.name.to_owned(),
            sha256: pinned.sha256,
            size,
        };
        if pinned.kind == "model" {
            models.push(locked);
        } else {
            components.push(locked);
        }
    }
    Ok((models, components))
}

/// Every input a lock pins, as download items. Packages come from their
/// suite's mirror; models from their URL, or (local files) from disk.
pub fn items(recipe: &LoadedRecipe, lock: &Lock, mirrors: &Mirrors) -> Vec<Item> {
    let mut items: Vec<Item> = lock
        .packages
        .iter()
        .map(|package| Item {
            what: package.file_name().to_owned(),
            url: format!("{}/{}", mirrors.url(&package.suite), package.filename),
            sha256: package.sha256,
            size: Some(package.size),
        })
        .collect();
    for pinned in recipe.recipe.pinned() {
        let Some(locked) = lock.pinned(pinned.kind, pinned.name) else {
            continue;
        };
        let url = match (pinned.url, pinned.path) {
            (Some(url), _) => url.as_str().to_owned(),
            (None, Some(path)) => {
                let path = recipe.host_path(path.as_str());
                let absolute = std::path::absolute(&path).unwrap_or(path);
                format!("file://{}", absolute.display())
            }
            (None, None) => continue,
        };
        items.push(Item {
            what: format!("{} {}", pinned.kind, locked.name),
            url,
            sha256: locked.sha256,
            size: Some(locked.size),
        });
    }
    items
}
