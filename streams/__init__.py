"""The stream processors: pure cleaning, matching, sharing and quality logic, and the thin Faust wiring in ``streams.app``."""
