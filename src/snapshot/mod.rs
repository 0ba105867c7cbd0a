//! The snapshot store: records, schema, atomic writes, listing, checks and
//! the store lock.

pub mod batch;
pub mod check;
pub mod forget;
pub mod lock;
pub mod meta;
pub mod record;
pub mod schema;
pub mod store;
pub mod write;

pub use store::{SnapshotFile, Store};
pub use write::{SnapshotMeta, write_snapshot};
