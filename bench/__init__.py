"""Benchmarks for Backline's hot path and post-call pipeline (see bench/README.md).

Each benchmark is a runnable module (``python -m bench.<name> --help``) that starts what it needs
on loopback (a fresh database, the Temporal dev server, the API and a worker), prints a results
table and stops every child process it started.
"""
