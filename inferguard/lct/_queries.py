"""The ready queries of `inferguard query` (SQL over a dataset of trace exports and fleet
rows): data only, so the CLI can list them without loading the exporter."""

from __future__ import annotations

# Ready queries over a dataset root (trace exports of many nodes, fleet results).
READY_QUERIES: dict[str, tuple[str, str]] = {
    "fleet-hit-rate-by-model": (
        "instances per model in the fleet results, and their mean hit rate where known",
        "SELECT model, count(DISTINCT node) AS instances, count(hit_rate) AS with_hit_rate, "
        "avg(hit_rate) AS mean_hit_rate FROM (SELECT node, hit_rate, unnest(models) AS model "
        "FROM fleet) GROUP BY model ORDER BY instances DESC, model"),
    "keys-reused-across-nodes": (
        "key fingerprints seen on more than one node (well-formed keys only)",
        "SELECT fingerprint, count(DISTINCT node) AS nodes, count(*) AS key_rows FROM keys "
        "WHERE status = 0 GROUP BY fingerprint HAVING count(DISTINCT node) > 1 "
        "ORDER BY nodes DESC, key_rows DESC, fingerprint LIMIT 1000"),
    "nodes-with-lifecycle-breaks": (
        "per node, every lifecycle rule that broke and how often",
        "SELECT node, instance, rule, count, exact, first_offset FROM lifecycle "
        "WHERE count > 0 ORDER BY node, rule"),
}
