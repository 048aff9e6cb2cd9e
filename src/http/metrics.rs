//! The metrics registry moved to [`crate::metrics`] (the database layer counts into it too, and
//! must not import the HTTP layer); this path stays so callers keep compiling.

pub use crate::metrics::{Gauges, Metrics};
