//! Loading a recipe: includes, merge rules, validation and the canonical
//! digest.
//!
//! Merge rules (docs/recipe.md): files are merged depth-first, each include in
//! the order listed, then the including file on top. Scalars: the later file
//! wins, so the including file beats what it includes. Arrays (including
//! arrays of tables such as `[[users]]`): appended in that order. Tables:
//! merged key by key with the same rules.
//!
//! Relative host paths (`archive.keyring`, `files.tree[].source`,
//! `models[].path`, `components[].path`, `include`) are relative to the file that names them; the
//! loaded recipe rewrites them relative to the top-level recipe's folder.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::error::{Location, RecipeError};
use crate::schema::Recipe;
use airlock_format::Sha256;

/// A recipe read from disk with its includes merged and validated.
#[derive(Clone, Debug)]
pub struct LoadedRecipe {
    /// The merged recipe. Relative host paths are relative to `base_dir`.
    pub recipe: Recipe,
    /// The top-level recipe file, as given.
    pub path: PathBuf,
    /// The folder relative host paths are relative to.
    pub base_dir: PathBuf,
    /// Every file read, top-level first.
    pub files: Vec<PathBuf>,
    /// The canonical digest: independent of comments, whitespace, key order
    /// and how the recipe is split into includes.
    pub digest: Sha256,
}

impl LoadedRecipe {
    /// A host path from the recipe, resolved against the recipe's folder.
    pub fn host_path(&self, path: &str) -> PathBuf {
        self.base_dir.join(path)
    }
}

/// Reads and validates one recipe text on its own, without following
/// includes. Used by tools and fuzzers; [`load`] is what the CLI uses.
pub fn parse_single(file: &Path, text: &str) -> Result<Recipe, RecipeError> {
    toml::from_str::<Recipe>(text).map_err(|error| toml_error(file, text, &error))
}

/// Loads the recipe at `path`, reading files through `read`.
pub fn load(
    path: &Path,
    read: &mut dyn FnMut(&Path) -> io::Result<String>,
) -> Result<LoadedRecipe, RecipeError> {
    let path = normalize(path);
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut loader = Loader {
        read,
        base_dir: base_dir.clone(),
        stack: Vec::new(),
        files: Vec::new(),
    };
    let merged = loader.load_file(&path)?;
    let files = loader.files;

    let semantic = |message: String| RecipeError::Semantic {
        file: path.clone(),
        message,
    };
    let recipe: Recipe =
        toml::Value::Table(merged)
            .try_into()
            .map_err(|error: toml::de::Error| {
                semantic(format!("after merging includes: {}", error.message()))
            })?;
    let problems = recipe.validate();
    if !problems.is_empty() {
        return Err(semantic(problems.join("; ")));
    }
    let digest = canonical_digest(&recipe);
    Ok(LoadedRecipe {
        recipe,
        path,
        base_dir,
        files,
        digest,
    })
}

/// The digest of the recipe's canonical JSON form. Structs serialize in
/// declaration order and maps are BTreeMaps, so the bytes depend only on the
/// recipe's meaning.
pub fn canonical_digest(recipe: &Recipe) -> Sha256 {
    let mut bytes = airlock_format::names::domain::RECIPE.to_vec();
    serde_json::to_writer(&mut bytes, recipe).expect("a recipe always serializes to JSON");
    Sha256::of(&bytes)
}

/// How deep includes may nest (the top recipe is depth 1).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// How many files one recipe may read, itself and every include.
pub const MAX_INCLUDED_FILES: usize = 256;

struct Loader<'r> {
    read: &'r mut dyn FnMut(&Path) -> io::Result<String>,
    base_dir: PathBuf,
    stack: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

/// Host-path keys whose relative values are rebased onto the top-level folder.
const HOST_PATH_KEYS: &[&[&str]] = &[
    &["archive", "keyring"],
    &["files", "tree", "*", "source"],
    &["models", "*", "path"],
    &["components", "*", "path"],
];

impl Loader<'_> {
    fn load_file(&mut self, path: &Path) -> Result<toml::Table, RecipeError> {
        let text = (self.read)(path).map_err(|source| RecipeError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        self.files.push(path.to_path_buf());
        let typed = parse_single(path, &text)?;
        let mut raw: toml::Table =
            toml::from_str(&text).map_err(|error| toml_error(path, &text, &error))?;
        raw.remove("include");

        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.inline_keys(&mut raw, path, &dir)?;
        let prefix = relative_to(&self.base_dir, &dir);
        for key_path in HOST_PATH_KEYS {
            rebase(&mut raw, key_path, &prefix);
        }

        self.stack.push(path.to_path_buf());
        let mut merged = toml::Table::new();
        for include in &typed.include {
            let target = normalize(&dir.join(include.get_ref().as_str()));
            if let Some(start) = self.stack.iter().position(|p| *p == target) {
                let mut chain = self.stack[start..].to_vec();
                chain.push(target);
                return Err(RecipeError::IncludeLoop {
                    location: Location::at(path.to_path_buf(), &text, include.span().start),
                    chain,
                });
            }
            if self.stack.len() >= MAX_INCLUDE_DEPTH || self.files.len() >= MAX_INCLUDED_FILES {
                return Err(RecipeError::IncludeLimit {
                    location: Location::at(path.to_path_buf(), &text, include.span().start),
                    depth: self.stack.len() + 1,
                    files: self.files.len(),
                });
            }
            let included = self.load_file(&target)?;
            merge(&mut merged, included);
        }
        self.stack.pop();
        merge(&mut merged, raw);
        Ok(merged)
    }
}

/// Largest certificate or public key file a recipe may name.
pub const MAX_KEY_FILE: usize = 256 * 1024;

/// `[signing]` keys read from files: `(list, file key, inlined key)`.
const KEY_FILES: &[(&str, &str, &str)] = &[
    ("signers", "certificate_file", "certificate"),
    ("builders", "key_file", "key"),
];

impl Loader<'_> {
    /// Reads the files `[signing]` names (`certificate_file`, `key_file`,
    /// relative to `dir`) into the recipe (`certificate`, `key`), so its
    /// digest covers the keys' bytes and the merged recipe carries them.
    fn inline_keys(
        &mut self,
        raw: &mut toml::Table,
        path: &Path,
        dir: &Path,
    ) -> Result<(), RecipeError> {
        let semantic = |message: String| RecipeError::Semantic {
            file: path.to_path_buf(),
            message,
        };
        let Some(toml::Value::Table(signing)) = raw.get_mut("signing") else {
            return Ok(());
        };
        for (list, file_key, key) in KEY_FILES {
            let Some(toml::Value::Array(entries)) = signing.get_mut(*list) else {
                continue;
            };
            for entry in entries.iter_mut().filter_map(toml::Value::as_table_mut) {
                let Some(file) = entry.remove(*file_key) else {
                    continue;
                };
                let name = entry
                    .get("name")
                    .and_then(toml::Value::as_str)
                    .unwrap_or("?");
                if entry.contains_key(*key) {
                    return Err(semantic(format!(
                        "[signing] {list} {name}: give {file_key} or {key}, not both"
                    )));
                }
                let file = dir.join(file.as_str().unwrap_or_default());
                let text = (self.read)(&file).map_err(|source| RecipeError::Read {
                    file: file.clone(),
                    source,
                })?;
                if text.len() > MAX_KEY_FILE || text.contains('\0') {
                    return Err(semantic(format!(
                        "[signing] {list} {name}: {} is not an armored key of at most {MAX_KEY_FILE} bytes",
                        file.display()
                    )));
                }
                self.files.push(file);
                entry.insert((*key).to_owned(), toml::Value::String(text));
            }
        }
        Ok(())
    }
}

/// Merges `over` into `base` with the recipe merge rules.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(over_table)) => {
                merge(base_table, over_table)
            }
            (Some(toml::Value::Array(base_array)), toml::Value::Array(over_array)) => {
                base_array.extend(over_array)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn rebase(value: &mut toml::Table, key_path: &[&str], prefix: &Path) {
    let Some((first, rest)) = key_path.split_first() else {
        return;
    };
    let Some(child) = value.get_mut(*first) else {
        return;
    };
    match (rest, child) {
        ([], toml::Value::String(text))
            if Path::new(text.as_str()).is_relative() && !prefix.as_os_str().is_empty() =>
        {
            *text = normalize(&prefix.join(&*text))
                .to_string_lossy()
                .into_owned();
        }
        ([next, tail @ ..], toml::Value::Array(items)) if *next == "*" => {
            for item in items {
                if let toml::Value::Table(table) = item {
                    rebase(table, tail, prefix);
                }
            }
        }
        (rest, toml::Value::Table(table)) if !rest.is_empty() => rebase(table, rest, prefix),
        _ => {}
    }
}

/// Removes `.` and resolves `..` lexically (without touching the disk).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let last_is_normal =
                    matches!(out.components().next_back(), Some(Component::Normal(_)));
                if last_is_normal {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `target` relative to `base`, lexically; both normalized and of the same
/// kind (both relative to the working directory, or both absolute).
fn relative_to(base: &Path, target: &Path) -> PathBuf {
    let base = normalize(base);
    let target = normalize(target);
    let base_parts: Vec<_> = base.components().collect();
    let target_parts: Vec<_> = target.components().collect();
    let common = base_parts
        .iter()
        .zip(&target_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in common..base_parts.len() {
        out.push("..");
    }
    for part in &target_parts[common..] {
        out.push(part);
    }
    out
}

fn toml_error(file: &Path, text: &str, error: &toml::de::Error) -> RecipeError {
    let offset = error.span().map_or(0, |span| span.start);
    RecipeError::Invalid {
        location: Location::at(file.to_path_buf(), text, offset),
        message: error.message().trim_end().to_owned(),
    }
}

#[cfg(test)]
mod tests;
