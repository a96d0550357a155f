"""Subtools of the `scaleprof` command, one module each (see scaleprof.cli)."""
