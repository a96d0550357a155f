"""sweep stage: a grid of points (model x strategy x scale x shape x precision x target) through the
earlier stages, every measurement kept in one SQLite store per output directory.

    config.py    what a sweep measures: Target (and presets), Point, SweepConfig
    config_file.py  reading a sweep YAML (or a shipped config by name) into a SweepConfig
    bounded_yaml YAML loading that a config cannot make expand (size, depth, aliases, duplicate keys)
    stages.py    the pipeline as the runner sees it: Stages; UpstreamStages calls scaleprof's stages
    runner.py    run_sweep (resumable; groups share an export and an engine; each stage timed under
                 its own name) and dry_run
    rounds.py    the timing phase in interleaved rounds per target, with a control network
    progress.py  what a running sweep shows on stderr
    store.py     the results store: WAL, one transaction per point, versioned schema; a target name
                 stands for one definition in a store
    round_store  the store's record of each timing round (resuming a stopped sweep)
    rows.py      reading stored rows defensively (a malformed row is left out, by name)
    executors/   where the groups run: here (the default), --jobs N worker processes, --ray hosts

    from scaleprof.sweep.config_file import resolve_config
    from scaleprof.sweep.runner import run_sweep
    result = run_sweep(resolve_config("demo"), "out/demo")
"""
