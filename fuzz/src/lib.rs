//! cpstat's decoding modules, compiled from cpstat's own source files.
//!
//! The fuzz targets include the files themselves instead of depending on the
//! `cpstat` crate, because building polars with the fuzzer's coverage
//! instrumentation takes far longer than the fuzzing. The module paths match
//! cpstat's, so `crate::snapshot::record` resolves in both builds.
//! NOTE: a new `crate::` import in these files needs its module added here.

#[path = "../../src/snapshot"]
pub mod snapshot {
    pub mod record;
}

#[path = "../../src/api"]
pub mod api {
    pub mod decode;
    pub mod retry;
}
