"""The layer below every stage: helpers that several stages need and that know no stage.

    text       first_line (an exception as one line), slug (a name safe in file names)
    files      atomic_target, write_atomic (write beside, rename over a regular file only)

Nothing here imports a stage (scaleprof.models, complexity, export, engines, profile, sweep, report).
"""
