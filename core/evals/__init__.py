"""Eval suites registered per agent, eval runs and their per-case results (storage only; the
runner is ``evals.runner``)."""
