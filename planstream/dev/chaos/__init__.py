"""The fault suite's harness: processes it controls, fault proxies, load, offline checkers, report.

Nothing here runs in production. ``make chaos`` (full profile) and ``make chaos-short`` (CI) run
``tests/chaos`` with it; see docs/reliability.md.
"""
