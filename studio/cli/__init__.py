"""The ``studio`` command line: one module per command group, above the core rooms and below the GUI."""
