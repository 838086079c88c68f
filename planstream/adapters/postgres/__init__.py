"""PostgreSQL through asyncpg: pools and migrations, the repository, job leases, the model-call
log, the decision log and the run view."""
