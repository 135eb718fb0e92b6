"""Open Policy Ledger: the write side and the verifiable log (no web framework here)."""

__version__ = "0.1.0"
