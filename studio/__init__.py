"""CoSA Studio: author, probe, check and approve safety configs for locally run language models."""

__version__ = "0.1.0"
