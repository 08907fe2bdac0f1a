//! Tests that boot airlock images under qemu-system-x86_64 (TCG) and run
//! commands in the guest over the serial console.
//!
//! The harness arrives with the boot issue; until an image can be built
//! there is nothing to boot, and this crate only holds the place the layout
//! fixes for it.
