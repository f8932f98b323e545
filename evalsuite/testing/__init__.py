"""Testing helpers for evalsuite users: the pytest plugin and its baselines."""
