"""Saved bad cases: Case (one versioned JSON file) and Casebook (a folder of them)."""
