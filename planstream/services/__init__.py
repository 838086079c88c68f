"""The step services and what they share: jobs and leases, the work pool, retries, the model
budget, signed URLs, the sweeper, dead-letter-free failure reports and the run's next step.

Typed against the Protocols in ``planstream.ports``; no module here imports an adapter, the Faust
glue or a dev tool, so every service runs on the in-memory fakes in ``tests/fakes``.
"""
