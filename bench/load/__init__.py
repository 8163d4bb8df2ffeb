"""``make load``: a bounded load test of the portal on 127.0.0.1 (see run.py)."""
