"""Benchmarks of planstream against raw baselines on the local stack (``planstream bench``).

One module per figure (``hop``, ``pipeline``, ``slow_model``, ``head_of_line``, ``sink``,
``dedup``), the shared harness (``workspace``, ``children``, ``kafka_io``, ``seeding``,
``cpu``), child-process entry points (``raw_hop``, ``model_server``; planstream's own hop is
``planstream.dev.bench.hop_app``), and the runner and report. Every figure verifies its own
output before it reports a number.
"""
