"""Probe drafting in parts: the list of drafts (``table``), where accepted drafts go (``target``) and the dialog
that drafts with a model and wires them (``dialog``)."""
