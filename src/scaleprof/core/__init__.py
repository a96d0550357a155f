"""The layer below every stage: helpers that several stages need and that know no stage.

    text       first_line (an exception as one line), slug (a name safe in file names),
               single_line (control characters escaped), parse_json (bounded, one-line errors)
    files      atomic_target, write_atomic (write beside, rename over a regular file only),
               make_temp_dir and remove_stale (temporary names carry their owner: a killed
               run's leftovers go on the next run)
    limits     what a run may ask of the machine: batch, resolution, threads, memory
    onnx_file  reading ONNX files defensively, scaleprof's metadata keys, PRECISIONS
    counts     the count records: CONVENTION, LayerCount, Counts (no torch)
    kernels    the layer count's classifier: which operations execute a layer, of which kind
    costs      what a torch layer costs (per_position_cost, direct_params, call_cost) and
               count_model, the meta-device walk that applies those rules to a whole network:
               the flops search (scaleprof.models.scaling) and the complexity stage both count
               with it, so every formula is written once. Importing it imports torch.

Nothing here imports a stage (scaleprof.models, complexity, export, engines, profile, sweep, report).
"""
