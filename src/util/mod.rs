//! Helpers with no knowledge of opt-outs: Arrow column access, a fast
//! hasher for in-memory maps, and progress lines on a terminal.

pub mod columns;
pub mod fasthash;
pub mod ordered;
pub mod progress;
