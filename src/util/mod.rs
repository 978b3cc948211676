//! Helpers with no knowledge of opt-outs: Arrow column access, a fast
//! hasher for in-memory maps, and progress lines on a terminal.

pub(crate) mod columns;
pub(crate) mod fasthash;
pub(crate) mod ordered;
pub(crate) mod progress;
pub(crate) mod trace;
