"""Upward aggregation (逐级汇总): the metric registry and its stored roll-ups.

* :mod:`portal.metrics.registry`: every figure, declared once (``REGISTRY``,
  ``INDICATORS``, with their definitions).
* :mod:`portal.metrics.engine`: marking units dirty in the write's
  transaction, the refresh of a unit's ancestor chain, the set-based rebuild,
  the reconcile, and reading stored figures.

Consolidated pages and the API read only the stored figures
(``metric_values``); the source rows remain the truth.
"""
from portal.metrics.registry import FAMILIES, INDICATORS, REGISTRY, Indicator, Metric  # noqa: F401
from portal.metrics.engine import (  # noqa: F401
    claim, current_month, dirty_unit_ids, drilldown, ended_month, has_history, is_dirty, last_reconcile, mark_dirty,
    months_of, pick, read, rebuild_all, recompute, reconcile, refresh_chain, refresh_units, stored_period,
    stored_values,
)
