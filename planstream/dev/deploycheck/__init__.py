"""Static checks of the deploy files: the Helm chart, docker-compose.yml and their generated parts.

``python -m planstream.dev.deploycheck`` (run by ``make lint``) lints and renders the chart with
Helm, validates every rendered object against Kubernetes' schemas offline, checks the compose file
against the shape the project allows and the invariants the project relies on, and fails when a
generated file drifts; ``python -m planstream.dev.deploycheck sync`` (``make chart-files``)
regenerates those files. Each check returns its problems as lines of text (empty: it passed).
"""
