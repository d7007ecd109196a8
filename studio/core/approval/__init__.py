"""Approval lifecycle, signing, evidence and the audit log."""
