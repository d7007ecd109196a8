"""Headless CoSAlign trainer. Imports torch, transformers, TRL and PEFT only inside functions."""
