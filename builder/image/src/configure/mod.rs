//! Native configuration: what maintainer scripts would do, done
//! declaratively from the packages' data and the recipe. Nothing from a
//! package runs; where a script is read at all (to learn which units it
//! enables or which alternatives it installs), it is read as text, and what
//! cannot be read that way is reported, never guessed.

pub mod accounts;
pub mod agent;
pub mod alternatives;
pub mod audit;
pub mod caches;
pub mod capabilities;
pub mod certificates;
pub mod defaults;
pub mod diversions;
pub mod dpkg;
pub mod exim4;
pub mod files;
pub mod firewall;
pub mod firstboot;
pub mod health;
pub mod literal;
pub mod maintscripts;
pub mod modules;
pub mod pam;
pub mod scripts;
pub mod shells;
pub mod statoverride;
pub mod system;
pub mod systemd;
pub mod sysv;
pub mod tmpfiles;
pub mod trust;
pub mod ucf;

use airlock_store::Store;
use airlock_tree::{Content, Kind, Node, Tree};

use crate::BuildError;

/// Reads a (small) regular file of the tree, following symlinks.
pub(crate) fn read_file(tree: &Tree, blobs: &Store, path: &str) -> Option<Vec<u8>> {
    let (_, node) = tree.lookup(path)?;
    match &node.kind {
        Kind::File(content) => read_content(blobs, content).ok(),
        _ => None,
    }
}

/// The bytes of a file's content.
pub(crate) fn read_content(blobs: &Store, content: &Content) -> Result<Vec<u8>, BuildError> {
    match content {
        Content::Inline(bytes) => Ok(bytes.clone()),
        Content::Stored { sha256, .. } => {
            let path = blobs.path(sha256);
            std::fs::read(&path).map_err(|source| BuildError::Io {
                what: path.display().to_string(),
                source,
            })
        }
    }
}

/// A file airlock generates, owned by root.
pub(crate) fn generated(bytes: impl Into<Vec<u8>>, mode: u32) -> Node {
    Node::new(Kind::File(Content::Inline(bytes.into())), mode)
}

/// A symlink airlock generates.
pub(crate) fn symlink(target: &str) -> Node {
    Node::new(Kind::Symlink(target.to_owned()), 0o777)
}

/// Writes airlock's own node, turning a tree error into a build error.
pub(crate) fn put(tree: &mut Tree, path: &str, node: Node) -> Result<(), BuildError> {
    tree.put(path, node)
        .map(drop)
        .map_err(|source| BuildError::Tree {
            package: "airlock".to_owned(),
            source,
        })
}

/// Removes what is at `path` (and below it), turning a tree error into a
/// build error.
pub(crate) fn remove(tree: &mut Tree, path: &str) -> Result<(), BuildError> {
    tree.remove(path)
        .map(drop)
        .map_err(|source| BuildError::Tree {
            package: "airlock".to_owned(),
            source,
        })
}

/// `[firewall]`, `[audit]` and `[agent]`: writes their files and returns
/// the recipe's `[services]` plus the units they need enabled.
fn sovereign(
    tree: &mut Tree,
    recipe: &airlock_recipe::Recipe,
    added: &[files::Added],
    accounts: &accounts::Accounts,
) -> Result<airlock_recipe::Services, BuildError> {
    let mut services = recipe.services.clone();
    let agent = match &recipe.agent {
        Some(agent) => {
            let uid = accounts
                .uid(agent.user.as_str())
                .ok_or_else(|| BuildError::Config {
                    what: "[agent]".to_owned(),
                    message: format!("no account {} was made", agent.user),
                })?;
            Some((agent, uid))
        }
        None => None,
    };
    let config = |what: &str, message: String| BuildError::Config {
        what: what.to_owned(),
        message,
    };
    if let Some(firewall) = &recipe.firewall {
        if tree.lookup("usr/sbin/nft").is_none() {
            return Err(config(
                "[firewall]",
                "the image has no nft: add \"nftables\" to [packages] install".to_owned(),
            ));
        }
        if added.iter().any(|a| a.path == firewall::PATH) {
            return Err(config(
                "[firewall]",
                format!(
                    "/{} comes from [firewall]; remove it from [files]",
                    firewall::PATH
                ),
            ));
        }
        put(
            tree,
            firewall::PATH,
            generated(firewall::render(firewall, agent), 0o644),
        )?;
        services.enable.push("nftables.service".to_owned());
    }
    trust::configure(tree, &recipe.signing, added)?;
    services.enable.extend(health::configure(tree, recipe)?);
    if let Some(audit) = &recipe.audit {
        services
            .enable
            .extend(audit::configure(tree, audit, agent)?);
    }
    if let Some((agent, _)) = agent {
        services
            .enable
            .push(agent::configure(tree, agent, recipe.audit.is_some())?);
    }
    Ok(services)
}

/// Everything native configuration did that a reader of the build report
/// should know.
#[derive(Clone, Debug, Default)]
pub struct Configured {
    /// Accounts made.
    pub accounts: accounts::Accounts,
    /// Kernels and their modules.
    pub kernels: Vec<(String, Vec<modules::Module>)>,
    /// What was not understood or had no effect (sorted).
    pub notes: Vec<String>,
    /// File capabilities packages granted.
    pub capabilities: Vec<capabilities::Granted>,
    /// What the image makes at first boot.
    pub first_boot: Vec<airlock_format::report::FirstBoot>,
}

/// Runs every step on a tree that holds the packages and the recipe's
/// files, in a fixed order.
pub fn configure(
    tree: &mut Tree,
    blobs: &Store,
    packages: &[crate::extract::Unpacked],
    recipe: &airlock_recipe::Recipe,
    added: &[files::Added],
) -> Result<Configured, BuildError> {
    firstboot::before_scripts(tree, &recipe.services)?;
    let scripts = scripts::read(tree, blobs, packages);
    let installed: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let mut notes =
        maintscripts::account(tree, &scripts, &installed, &recipe.packages.acknowledge)?;
    let epoch = recipe.image.epoch;
    // Before the recipe's files: a file the recipe replaces keeps none of
    // the package's capabilities.
    let capabilities = capabilities::configure(tree, &scripts.commands)?;
    files::apply(tree, added)?;
    let mut users = recipe.users.clone();
    if let Some(agent) = &recipe.agent {
        users.push(airlock_recipe::User {
            name: agent.user.clone(),
            uid: None,
            group: None,
            groups: Vec::new(),
            home: None,
            shell: None,
            comment: "airlock agent".to_owned(),
            system: true,
            authorized_keys: Vec::new(),
        });
    }
    let accounts = accounts::configure(tree, blobs, &scripts.commands, &users, epoch)?;
    files::set_owners(tree, added, &accounts)?;
    defaults::configure(tree, &accounts)?;
    literal::configure(tree, blobs, &scripts.commands, &accounts, added)?;
    notes.extend(alternatives::configure(tree, &scripts.commands)?);
    let services = sovereign(tree, recipe, added, &accounts)?;
    audit::augenrules(tree, blobs)?;
    notes.extend(systemd::configure(
        tree,
        blobs,
        &scripts.commands,
        &services,
    )?);
    notes.extend(sysv::configure(tree, blobs, &scripts.commands)?);
    system::configure(tree, &recipe.image)?;
    exim4::configure(
        tree,
        scripts.handled.contains_key(exim4::PACKAGE),
        system::hostname(&recipe.image),
    )?;
    tmpfiles::configure(tree, blobs)?;
    pam::configure(tree, blobs)?;
    shells::configure(tree, blobs, &scripts.commands)?;
    ucf::configure(tree, blobs, &scripts.commands)?;
    certificates::configure(tree, blobs, added)?;
    caches::configure(tree, blobs, packages)?;
    let (first_boot, off) = firstboot::configure(tree, &recipe.services)?;
    notes.extend(off);
    let kernels = modules::configure(tree, blobs)?;
    dpkg::configure(tree, blobs, packages)?;
    diversions::configure(tree, &scripts.commands)?;
    statoverride::configure(tree, &scripts.commands, &accounts)?;
    literal::remove_scratch(tree)?;
    notes.sort();
    notes.dedup();
    Ok(Configured {
        accounts,
        kernels,
        notes,
        capabilities,
        first_boot,
    })
}
