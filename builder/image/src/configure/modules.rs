//! What `depmod` generates, computed natively from the modules' own
//! metadata (the ELF `.modinfo` section and `__ksymtab_` symbols), for every
//! kernel in usr/lib/modules: modules.dep, modules.alias, modules.symbols,
//! modules.softdep, modules.devname, and the binary tries kmod reads
//! (modules.dep.bin, modules.alias.bin, modules.symbols.bin,
//! modules.builtin.bin, modules.builtin.alias.bin).
//!
//! Dependencies come from each module's `depends=` (which modpost computed
//! from the same symbol tables depmod reads). A module's line lists its
//! whole dependency closure, each module before the ones it needs.

use std::collections::{BTreeMap, BTreeSet};

use airlock_store::Store;
use airlock_tree::{Kind, Tree};

use super::{generated, put, read_content, read_file};
use crate::BuildError;

/// One kernel module's metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Module {
    /// Path relative to the kernel's module folder.
    pub path: String,
    /// Name (`-` as `_`).
    pub name: String,
    /// `depends=` names.
    pub depends: Vec<String>,
    /// `alias=` patterns.
    pub aliases: Vec<String>,
    /// `softdep=` text.
    pub softdeps: Vec<String>,
    /// Exported symbols.
    pub symbols: Vec<String>,
}

/// The module name of a path: `kernel/fs/dm-verity.ko` → `dm_verity`.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_suffix(".ko").unwrap_or(file).replace('-', "_")
}

/// Reads a module's metadata from its ELF bytes.
pub fn parse_module(path: &str, bytes: &[u8]) -> Result<Module, String> {
    let elf = goblin::elf::Elf::parse(bytes).map_err(|e| format!("{path}: {e}"))?;
    let mut module = Module {
        path: path.to_owned(),
        name: module_name(path),
        ..Module::default()
    };
    for header in &elf.section_headers {
        if elf.shdr_strtab.get_at(header.sh_name) != Some(".modinfo") {
            continue;
        }
        let range = header
            .file_range()
            .filter(|r| r.end <= bytes.len())
            .ok_or_else(|| format!("{path}: .modinfo lies outside the file"))?;
        for entry in bytes[range].split(|b| *b == 0) {
            let Ok(entry) = std::str::from_utf8(entry) else {
                continue;
            };
            match entry.split_once('=') {
                Some(("depends", value)) => module.depends.extend(
                    value
                        .split(',')
                        .filter(|d| !d.is_empty())
                        .map(|d| d.replace('-', "_")),
                ),
                Some(("alias", value)) => module.aliases.push(value.to_owned()),
                Some(("softdep", value)) => module.softdeps.push(value.to_owned()),
                Some(("name", value)) => module.name = value.replace('-', "_"),
                _ => {}
            }
        }
    }
    for symbol in elf.syms.iter() {
        if let Some(name) = elf
            .strtab
            .get_at(symbol.st_name)
            .and_then(|n| n.strip_prefix("__ksymtab_"))
            && !name.is_empty()
        {
            module.symbols.push(name.to_owned());
        }
    }
    module.symbols.sort();
    module.symbols.dedup();
    Ok(module)
}

/// Every module's dependency closure, dependents before dependencies.
fn closures(modules: &[Module]) -> BTreeMap<&str, Vec<&str>> {
    let by_name: BTreeMap<&str, &Module> = modules.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut out = BTreeMap::new();
    for module in modules {
        // Depth-first post-order gives dependencies first; reversed, each
        // module comes before what it needs.
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        fn visit<'a>(
            name: &'a str,
            by_name: &BTreeMap<&'a str, &'a Module>,
            seen: &mut BTreeSet<&'a str>,
            order: &mut Vec<&'a str>,
        ) {
            if !seen.insert(name) {
                return;
            }
            if let Some(module) = by_name.get(name) {
                for dep in &module.depends {
                    visit(dep.as_str(), by_name, seen, order);
                }
                order.push(module.path.as_str());
            }
        }
        seen.insert(module.name.as_str());
        for dep in &module.depends {
            visit(dep.as_str(), &by_name, &mut seen, &mut order);
        }
        order.reverse();
        out.insert(module.name.as_str(), order);
    }
    out
}

/// The modules in load order for `names` (each after what it needs), as
/// paths, or the first name that is not a module.
pub fn load_order<'a>(modules: &'a [Module], names: &[String]) -> Result<Vec<&'a Module>, String> {
    let by_name: BTreeMap<&str, &Module> = modules.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    fn visit<'a>(
        name: &str,
        by_name: &BTreeMap<&str, &'a Module>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<&'a Module>,
    ) -> Result<(), String> {
        if !seen.insert(name.to_owned()) {
            return Ok(());
        }
        let module = by_name.get(name).ok_or_else(|| name.to_owned())?;
        for dep in &module.depends {
            visit(dep, by_name, seen, order)?;
        }
        order.push(module);
        Ok(())
    }
    for name in names {
        visit(&name.replace('-', "_"), &by_name, &mut seen, &mut order)?;
    }
    Ok(order)
}

/// The text and binary index files for one kernel, by file name.
pub fn indexes(
    modules: &[Module],
    builtin: &str,
    builtin_modinfo: &[u8],
) -> BTreeMap<&'static str, Vec<u8>> {
    let closures = closures(modules);
    let mut dep = String::new();
    let mut dep_index = Index::default();
    let mut alias = String::from("# Aliases extracted from modules themselves.\n");
    let mut alias_index = Index::default();
    let mut symbols = String::from("# Aliases for symbols, used by symbol_request().\n");
    let mut symbols_index = Index::default();
    let mut softdep = String::from("# Soft dependencies extracted from modules themselves.\n");
    let mut devname = String::from("# Device nodes to trigger on-demand module loading.\n");
    for (priority, module) in modules.iter().enumerate() {
        let priority = priority as u32;
        let deps = closures[module.name.as_str()].join(" ");
        let line = if deps.is_empty() {
            format!("{}:", module.path)
        } else {
            format!("{}: {deps}", module.path)
        };
        dep += &format!("{line}\n");
        dep_index.insert(&module.name, &line, 0);
        for pattern in &module.aliases {
            alias += &format!("alias {pattern} {}\n", module.name);
            alias_index.insert(&underscores(pattern), &module.name, priority);
        }
        for symbol in &module.symbols {
            symbols += &format!("alias symbol:{symbol} {}\n", module.name);
            symbols_index.insert(&format!("symbol:{symbol}"), &module.name, priority);
        }
        for soft in &module.softdeps {
            softdep += &format!("softdep {} {soft}\n", module.name);
        }
        let devnames: Vec<&str> = module
            .aliases
            .iter()
            .filter_map(|a| a.strip_prefix("devname:"))
            .collect();
        // The first char-major-M-m or block-major-M-m alias with numbers (a
        // wildcard such as block-major-7-* names no single node).
        let node = module.aliases.iter().find_map(|a| {
            let (kind, numbers) = a
                .strip_prefix("char-major-")
                .map(|n| ('c', n))
                .or_else(|| a.strip_prefix("block-major-").map(|n| ('b', n)))?;
            let (major, minor) = numbers.split_once('-')?;
            Some((kind, major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
        });
        if let (Some(name), Some((kind, major, minor))) = (devnames.first(), node) {
            devname += &format!("{} {name} {kind}{major}:{minor}\n", module.name);
        }
    }
    let mut builtin_index = Index::default();
    for line in builtin.lines().filter(|l| !l.is_empty()) {
        builtin_index.insert(&module_name(line), "", 0);
    }
    let mut builtin_alias_index = Index::default();
    for entry in builtin_modinfo.split(|b| *b == 0) {
        let Ok(entry) = std::str::from_utf8(entry) else {
            continue;
        };
        if let Some((module, value)) = entry.split_once(".alias=") {
            builtin_alias_index.insert(&underscores(value), &module.replace('-', "_"), 0);
        }
    }
    BTreeMap::from([
        ("modules.dep", dep.into_bytes()),
        ("modules.dep.bin", dep_index.write()),
        ("modules.alias", alias.into_bytes()),
        ("modules.alias.bin", alias_index.write()),
        ("modules.symbols", symbols.into_bytes()),
        ("modules.symbols.bin", symbols_index.write()),
        ("modules.softdep", softdep.into_bytes()),
        ("modules.devname", devname.into_bytes()),
        ("modules.builtin.bin", builtin_index.write()),
        ("modules.builtin.alias.bin", builtin_alias_index.write()),
    ])
}

/// What depmod and libkmod do to an alias before using it as a key: `-`
/// becomes `_`, except inside `[...]` character classes.
pub fn underscores(alias: &str) -> String {
    let mut out = String::with_capacity(alias.len());
    let mut in_class = false;
    for c in alias.chars() {
        match c {
            '[' => in_class = true,
            ']' => in_class = false,
            _ => {}
        }
        out.push(if c == '-' && !in_class { '_' } else { c });
    }
    out
}

/// kmod's index: a trie, written as libkmod-index.c reads it (big-endian,
/// magic 0xB007F457, version 2.1, nodes written children first).
#[derive(Debug, Default)]
pub struct Index {
    keys: BTreeMap<String, Vec<(u32, String)>>,
}

const MAGIC: u32 = 0xB007_F457;
const VERSION: u32 = 0x0002_0001;
const PREFIX: u32 = 0x8000_0000;
const VALUES: u32 = 0x4000_0000;
const CHILDS: u32 = 0x2000_0000;

#[derive(Default)]
struct Node {
    prefix: Vec<u8>,
    children: BTreeMap<u8, Node>,
    values: Vec<(u32, String)>,
}

impl Index {
    /// Adds a value under `key` (values are kept by priority, then order).
    pub fn insert(&mut self, key: &str, value: &str, priority: u32) {
        let values = self.keys.entry(key.to_owned()).or_default();
        if !values.iter().any(|(_, v)| v == value) {
            values.push((priority, value.to_owned()));
        }
    }

    /// The file's bytes.
    pub fn write(&self) -> Vec<u8> {
        let mut root = Node::default();
        for (key, values) in &self.keys {
            let mut node = &mut root;
            for byte in key.bytes() {
                node = node.children.entry(byte).or_default();
            }
            let mut values = values.clone();
            values.sort_by_key(|(priority, _)| *priority);
            node.values = values;
        }
        compress(&mut root);
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        let root_offset = write_node(&root, &mut out);
        out[8..12].copy_from_slice(&root_offset.to_be_bytes());
        out
    }
}

/// Folds chains of single children without values into prefixes.
fn compress(node: &mut Node) {
    while node.values.is_empty() && node.children.len() == 1 {
        let (byte, child) = node.children.pop_first().expect("one child");
        node.prefix.push(byte);
        node.prefix.extend_from_slice(&child.prefix);
        node.children = child.children;
        node.values = child.values;
    }
    for child in node.children.values_mut() {
        compress(child);
    }
}

fn write_node(node: &Node, out: &mut Vec<u8>) -> u32 {
    let children: Vec<(u8, u32)> = node
        .children
        .iter()
        .map(|(byte, child)| (*byte, write_node(child, out)))
        .collect();
    let offset = out.len() as u32;
    let mut flags = 0;
    if !node.prefix.is_empty() {
        flags |= PREFIX;
        out.extend_from_slice(&node.prefix);
        out.push(0);
    }
    if let (Some((first, _)), Some((last, _))) = (children.first(), children.last()) {
        flags |= CHILDS;
        out.push(*first);
        out.push(*last);
        for byte in *first..=*last {
            let child = children
                .iter()
                .find(|(b, _)| *b == byte)
                .map_or(0, |(_, o)| *o);
            out.extend_from_slice(&child.to_be_bytes());
        }
    }
    if !node.values.is_empty() {
        flags |= VALUES;
        out.extend_from_slice(&(node.values.len() as u32).to_be_bytes());
        for (priority, value) in &node.values {
            out.extend_from_slice(&priority.to_be_bytes());
            out.extend_from_slice(value.as_bytes());
            out.push(0);
        }
    }
    offset | flags
}

/// Looks a key up in an index file (what libkmod does), for tests.
pub fn lookup(index: &[u8], key: &str) -> Option<Vec<String>> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(index.get(at..at + 4)?.try_into().ok()?))
    };
    if u32_at(0)? != MAGIC || u32_at(4)? != VERSION {
        return None;
    }
    let mut offset = u32_at(8)?;
    let key = key.as_bytes();
    let mut i = 0;
    loop {
        let mut at = (offset & 0x0FFF_FFFF) as usize;
        if offset & PREFIX != 0 {
            let end = at + index.get(at..)?.iter().position(|b| *b == 0)?;
            for byte in &index[at..end] {
                if key.get(i) != Some(byte) {
                    return None;
                }
                i += 1;
            }
            at = end + 1;
        }
        let mut children = None;
        if offset & CHILDS != 0 {
            let (first, last) = (*index.get(at)?, *index.get(at + 1)?);
            children = Some((first, last, at + 2));
            at += 2 + 4 * (usize::from(last) - usize::from(first) + 1);
        }
        if i == key.len() {
            if offset & VALUES == 0 {
                return None;
            }
            let count = u32_at(at)? as usize;
            at += 4;
            let mut values = Vec::new();
            for _ in 0..count {
                at += 4;
                let end = at + index.get(at..)?.iter().position(|b| *b == 0)?;
                values.push(String::from_utf8_lossy(&index[at..end]).into_owned());
                at = end + 1;
            }
            return Some(values);
        }
        let (first, last, table) = children?;
        let byte = key[i];
        if byte < first || byte > last {
            return None;
        }
        offset = u32_at(table + 4 * usize::from(byte - first))?;
        if offset == 0 {
            return None;
        }
        i += 1;
    }
}

/// Every kernel's modules, by version: (version, modules in modules.order
/// order, then the rest by path).
pub fn scan(tree: &Tree, blobs: &Store) -> Result<Vec<(String, Vec<Module>)>, BuildError> {
    let Some((root, _)) = tree.lookup("usr/lib/modules") else {
        return Ok(Vec::new());
    };
    let mut kernels = Vec::new();
    let versions: Vec<String> = tree
        .children(&root)
        .into_iter()
        .filter(|(_, node)| matches!(node.kind, Kind::Directory))
        .map(|(name, _)| name.to_owned())
        .collect();
    for version in versions {
        let base = format!("{root}/{version}");
        let prefix = format!("{base}/");
        let files: Vec<(String, airlock_tree::Content)> = tree
            .iter()
            .filter_map(|(path, node)| {
                let relative = path.strip_prefix(&prefix)?;
                match &node.kind {
                    Kind::File(content) if relative.ends_with(".ko") => {
                        Some((relative.to_owned(), content.clone()))
                    }
                    _ => None,
                }
            })
            .collect();
        if files.is_empty() {
            continue;
        }
        let mut modules: BTreeMap<String, Module> = BTreeMap::new();
        for (path, content) in files {
            let bytes = read_content(blobs, &content)?;
            let module = parse_module(&path, &bytes).map_err(|message| BuildError::Config {
                what: format!("kernel modules {version}"),
                message,
            })?;
            modules.insert(path, module);
        }
        let order = read_file(tree, blobs, &format!("{base}/modules.order")).unwrap_or_default();
        let mut ordered = Vec::new();
        for line in String::from_utf8_lossy(&order).lines() {
            if let Some(module) = modules.remove(line.trim()) {
                ordered.push(module);
            }
        }
        ordered.extend(modules.into_values());
        kernels.push((version, ordered));
    }
    Ok(kernels)
}

/// Writes the indexes for every kernel; returns the kernels' modules.
pub fn configure(tree: &mut Tree, blobs: &Store) -> Result<Vec<(String, Vec<Module>)>, BuildError> {
    let kernels = scan(tree, blobs)?;
    for (version, modules) in &kernels {
        let base = format!("usr/lib/modules/{version}");
        let builtin =
            read_file(tree, blobs, &format!("{base}/modules.builtin")).unwrap_or_default();
        let builtin_modinfo =
            read_file(tree, blobs, &format!("{base}/modules.builtin.modinfo")).unwrap_or_default();
        for (name, bytes) in indexes(
            modules,
            &String::from_utf8_lossy(&builtin),
            &builtin_modinfo,
        ) {
            put(tree, &format!("{base}/{name}"), generated(bytes, 0o644))?;
        }
    }
    Ok(kernels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(path: &str, depends: &[&str], aliases: &[&str]) -> Module {
        Module {
            path: path.to_owned(),
            name: module_name(path),
            depends: depends.iter().map(|d| d.to_string()).collect(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            softdeps: Vec::new(),
            symbols: vec![format!("{}_sym", module_name(path))],
        }
    }

    #[test]
    fn dependencies_close_and_indexes_answer_like_kmod() {
        let modules = vec![
            module(
                "kernel/drivers/md/dm-verity.ko",
                &["dm_bufio", "dm_mod"],
                &[],
            ),
            module("kernel/drivers/md/dm-bufio.ko", &["dm_mod"], &[]),
            module(
                "kernel/drivers/md/dm-mod.ko",
                &[],
                &["devname:mapper/control", "char-major-10-236"],
            ),
            module(
                "kernel/drivers/block/virtio_blk.ko",
                &[],
                &["virtio:d00000002v*"],
            ),
        ];
        let files = indexes(
            &modules,
            "kernel/fs/ext4/ext4.ko\n",
            b"ext4.alias=fs-ext4\0",
        );
        let dep = String::from_utf8(files["modules.dep"].clone()).unwrap();
        assert_eq!(
            dep.lines().next().unwrap(),
            "kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko"
        );
        assert_eq!(
            lookup(&files["modules.dep.bin"], "dm_bufio").unwrap(),
            ["kernel/drivers/md/dm-bufio.ko: kernel/drivers/md/dm-mod.ko"]
        );
        assert_eq!(lookup(&files["modules.dep.bin"], "dm_b"), None);
        assert_eq!(lookup(&files["modules.dep.bin"], "dm_bufiox"), None);
        assert_eq!(
            lookup(&files["modules.alias.bin"], "virtio:d00000002v*").unwrap(),
            ["virtio_blk"]
        );
        assert_eq!(
            lookup(&files["modules.symbols.bin"], "symbol:dm_mod_sym").unwrap(),
            ["dm_mod"]
        );
        assert_eq!(lookup(&files["modules.builtin.bin"], "ext4").unwrap(), [""]);
        assert_eq!(underscores("nft-chain-[a-z]-x"), "nft_chain_[a-z]_x");
        assert_eq!(
            lookup(&files["modules.builtin.alias.bin"], "fs_ext4").unwrap(),
            ["ext4"]
        );
        assert!(
            String::from_utf8_lossy(&files["modules.devname"])
                .contains("dm_mod mapper/control c10:236")
        );
        let order = load_order(&modules, &["dm-verity".to_owned()]).unwrap();
        let names: Vec<&str> = order.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["dm_mod", "dm_bufio", "dm_verity"]);
        assert_eq!(
            load_order(&modules, &["nope".to_owned()]).unwrap_err(),
            "nope"
        );
    }
}
