"""Conformance suites: one per port, written once, run against the fake and the real adapter.

Each suite is a class of ``test_*`` methods that take a ``harness`` fixture (the implementation
under test plus what the test needs around it: a run to hang jobs on, a way to let time pass, a
way to look at what was stored). ``tests/unit/test_fakes_conform.py`` subclasses every suite with
the in-memory fakes; ``tests/integration/test_*_conform.py`` with the real adapters on the local
stack. ``tests/unit/test_conformance_catches.py`` runs deliberately broken fakes through the
suites, so every test is shown to be able to fail.
"""
