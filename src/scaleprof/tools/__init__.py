"""Subtools of the `scaleprof` command, one module each (see scaleprof.cli).

A subtool module defines NAME, HELP, add_arguments(parser) and run(args). The argument groups
subtools share, with their defaults and checks, live in tools/args.py: the one tools module a
subtool may import (tests/test_stage_order.py). Everything a subtool does beyond printing belongs
to a stage (scaleprof.sweep.config_file resolves shipped configs, for instance), imported when it runs.
"""
