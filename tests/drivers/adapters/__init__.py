"""Driver adapters for the shared suite (see base.py)."""
