"""Test support shipped with minimalt: the in-memory simulated network (``sim``)."""
