//! The one way a metric joins the registry, which every area's file uses.

use prometheus_client::registry::{Metric, Registry};

/// A new metric, registered as `name` with `help`, and the handle to count with: the
/// registry keeps a clone, and prometheus-client's clones share one value.
pub(super) fn registered<M: Metric + Clone + Default>(
    registry: &mut Registry,
    name: &str,
    help: &str,
) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}
