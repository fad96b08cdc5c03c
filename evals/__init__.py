"""Evals: scenario and suite files (``evals.scenarios``), caller personas (``evals.personas``),
a speech-to-text noise model (``evals.noise``) and regression verdicts (``evals.verdict``)."""
