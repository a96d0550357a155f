"""complexity stage."""
