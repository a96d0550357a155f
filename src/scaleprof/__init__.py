"""scaleprof: how a scaled CNN really runs on each deployment target.

Stages, each a subpackage that knows nothing of the stages after it:
models -> complexity -> export -> engines -> profile -> sweep -> report.
"""

__version__ = "0.1.0"
