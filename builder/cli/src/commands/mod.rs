//! One module per subcommand.

pub mod boot;
pub mod build;
pub mod fetch;
pub mod gc;
pub mod lock;
pub mod store;
