"""The pure core: events, ids, rules, decisions, policy, spaces, prompts and the contracts.

Values in, values out: nothing here awaits, reads a clock, mints a random id on its own or
imports an I/O library (the import contracts in pyproject.toml hold it to that).
"""
