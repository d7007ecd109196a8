"""Turning (config, prompt) into streamed replies: backends, model registry, caches."""
