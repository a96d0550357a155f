"""predict stage: per-target latency prediction for configurations never measured.

    from scaleprof.predict import calibrate_source, save, find, Query, predict_query, recommend
    for cal in calibrate_source("out/paper"):            # a sweep directory (or a report's results.json)
        save(cal)                                         # into the per-user calibration store
    cal = find("cpu-ort")
    spec, features, prediction = predict_query(cal, Query("efficientnet_b0", "dWr", 4.0, 0.8))
    candidates = recommend(cal, "efficientnet_b0", budget_ms=20.0)

Any ONNX file, from its graph alone (kernel calibration, nn-Meter's idea calibrated in minutes):

    cal = calibrate_kernels("cpu-ort-1t", budget_min=8); save_kernels(cal)
    graph = file_kernels("net.onnx", *ort_settings(cal.target_config))   # the kernels ORT would run
    prediction = predict_kernels(cal.model, graph.kernels)                # sum of kernel models + run cost

A (sweep) calibration models a network as the sum over its layers of a fixed cost, a cost per flop and a cost
per byte moved, per op group, with an end-to-end correction (group_model.py), fitted to a few measured
networks (per-layer profiles, where recorded, fix the groups' rates). Predictions need counts only
(no export, no engine); each comes with an interval and says when it extrapolates. Importing this
package imports neither torch nor numpy.
"""

from scaleprof.predict.sweep_calibration import (Query, calibrate, calibrate_source, check_environment,
                                         current_environment_key, describe, predict_query)
from scaleprof.predict.network_fit import MIN_POINTS, BatchFit, Calibration, Prediction
from scaleprof.predict.calibration_store import (calibrations_dir, find, find_kernels, load, load_kernels, save,
                                                 save_kernels, stored)
from scaleprof.predict.evaluate import SPLITS, Evaluation, Score, evaluate, select_calibration
from scaleprof.predict.features import GROUPS, NetworkFeatures, network_features
from scaleprof.predict.group_model import LatencyModel, fit
from scaleprof.predict.kernel_calibration import (DEFAULT_BUDGET_MIN, KernelCalibration, calibrate_kernels,
                                                  ort_settings, target_definition, time_graph)
from scaleprof.predict.kernel_model import KernelModel, fit_kernels
from scaleprof.predict.kernel_prediction import NetworkPrediction, predict_kernels
from scaleprof.predict.onnx_kernels import Kernel, KernelGraph, file_kernels, graph_kernels
from scaleprof.predict.samples import Sample, features_for, sample_from_point, spec_for
from scaleprof.predict.recommendation import DEFAULT_ALPHAS, PAPER_ALPHA, Candidate, best_alpha, recommend

__all__ = ["Query", "calibrate_source", "check_environment", "current_environment_key", "describe",
           "predict_query", "MIN_POINTS", "BatchFit", "Calibration", "Prediction", "calibrate", "calibrations_dir",
           "find", "load", "save", "stored", "SPLITS", "Evaluation", "Score", "evaluate", "select_calibration",
           "GROUPS", "NetworkFeatures", "network_features", "LatencyModel", "fit", "Sample", "features_for",
           "sample_from_point", "spec_for", "DEFAULT_ALPHAS", "PAPER_ALPHA", "Candidate", "best_alpha", "recommend",
           "find_kernels", "load_kernels", "save_kernels", "DEFAULT_BUDGET_MIN", "KernelCalibration",
           "calibrate_kernels", "ort_settings", "target_definition", "time_graph", "KernelModel", "fit_kernels",
           "NetworkPrediction", "predict_kernels", "Kernel", "KernelGraph", "file_kernels", "graph_kernels"]
