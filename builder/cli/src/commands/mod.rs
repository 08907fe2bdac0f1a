//! One module per subcommand.

pub mod audit;
pub mod boot;
pub mod build;
pub mod diff;
pub mod disk_image;
pub mod export;
pub mod fetch;
pub mod gc;
pub mod install;
pub mod keygen;
pub mod lock;
pub mod rebuild;
pub mod sign;
pub mod sign_boot;
pub mod store;
pub mod test;
pub mod verify;
