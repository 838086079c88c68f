"""The local stack's scripted ``run-pipeline-step``: the old function planstream replaces, with
its old behaviour (WORKER_LIMIT when a call is too large, a double run on a double click)."""
