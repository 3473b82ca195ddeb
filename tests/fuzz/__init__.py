"""Malformed-mail fuzzing: hostile input generators (strategies.py) and the property (harness.py).

Used by tests/test_fuzz.py (a fixed-seed subset in CI) and bench/fuzz.py (the full run).
"""
