"""Headless core of the studio. Never imports Qt, torch, transformers or TRL."""
