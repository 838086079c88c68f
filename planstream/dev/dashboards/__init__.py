"""Grafana dashboards, generated from Python: ``python -m planstream.dev.dashboards write``.

The JSON files in deploy/grafana/dashboards/ are this package's output; a test fails when they
drift from it. docs/design-decisions.md ("Dashboards") says why they are generated.
"""
