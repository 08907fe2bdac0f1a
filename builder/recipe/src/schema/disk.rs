//! `[disk]`: the disk image's layout and how a host decides that an
//! updated release booted good.

use serde::{Deserialize, Serialize};

/// `[disk]`: sizes of the disk image's partitions, in MiB.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Disk {
    /// The EFI system partition (FAT32: 34 MiB at least). It holds
    /// systemd-boot and a unified kernel image per slot.
    pub esp_mib: u64,
    /// Each slot's root partition; absent: the root's own size, rounded up
    /// to a MiB. An update must fit in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_mib: Option<u64>,
    /// The /var partition, formatted (ext4) by the initrd at first boot.
    pub var_mib: u64,
    /// Whether the disk has an empty slot B for A/B updates; off for an
    /// image that is never updated in place.
    pub slot_b: bool,
    /// Units that must be active for a boot of a new release to count as
    /// good (`airlock-health.service`, ordered before
    /// `boot-complete.target`); absent from the recipe's digest when empty.
    /// Needs airlock-host (a `[[components]]` file at
    /// /usr/bin/airlock-host) and systemd-boot in the image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<String>,
}

impl Default for Disk {
    fn default() -> Self {
        Disk {
            esp_mib: 256,
            root_mib: None,
            var_mib: 1024,
            slot_b: true,
            health: Vec::new(),
        }
    }
}
