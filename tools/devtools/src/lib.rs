//! Development tools of seccomp-sentinel (not part of the product).

pub mod bench;
