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
    let models = lock_models(http, recipe)?;
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
    })
}

/// Pins every model: a local file is hashed (and must match the recipe); a
/// URL's size is asked of the server (its bytes are checked by `fetch`).
fn lock_models(http: &Http, recipe: &LoadedRecipe) -> Result<Vec<LockedModel>, FetchError> {
    let mut models = Vec::new();
    for model in &recipe.recipe.models {
        let size = if let Some(path) = &model.path {
            let path = recipe.host_path(path.as_str());
            let (actual, size) = airlock_store::hash_file(&path)?;
            if actual != model.sha256 {
                return Err(FetchError::Recipe(format!(
                    "{}: model {}: sha256 mismatch: the recipe pins {}, the file is {actual}",
                    path.display(),
                    model.name,
                    model.sha256
                )));
            }
            size
        } else {
            let url = model.url.as_ref().expect("validated: path or url");
            http.content_length(url.as_str())?
        };
        models.push(LockedModel {
            name: model.name.as_str().to_owned(),
            sha256: model.sha256,
            size,
        });
    }
    Ok(models)
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
    for locked in &lock.models {
        let Some(model) = recipe
            .recipe
            .models
            .iter()
            .find(|m| m.name.as_str() == locked.name)
        else {
            continue;
        };
        let url = match (&model.url, &model.path) {
            (Some(url), _) => url.as_str().to_owned(),
            (None, Some(path)) => {
                let path = recipe.host_path(path.as_str());
                let absolute = std::path::absolute(&path).unwrap_or(path);
                format!("file://{}", absolute.display())
            }
            (None, None) => continue,
        };
        items.push(Item {
            what: format!("model {}", locked.name),
            url,
            sha256: locked.sha256,
            size: Some(locked.size),
        });
    }
    items
}
