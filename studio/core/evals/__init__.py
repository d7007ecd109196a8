"""Controllability checks: suites, judges, CoSA-Score, runs."""
