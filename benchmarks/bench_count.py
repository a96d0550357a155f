"""How long counting takes per configuration, against running the model on real tensors.

Counts 100 scaled configurations (5 families x 10 strategies x 2 scales) from shapes alone
(meta device: build + one shape-propagation pass, pycls conventions), then times building the
model with real weights and one real forward pass of a few of them on the CPU at batch 1.
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import statistics
import time

import torch

from scaleprof.complexity import count_spec
from scaleprof.models import build_model, scale_spec
from scaleprof.models.scaling import quick_counts

BASES = ["efficientnet_b0", "efficientnetv2_rw_t", "regnety_040", "tresnet_m", "resnet50"]
STRATEGIES = ["d", "w", "r", "dw", "dr", "wr", "dwr", "dWr", "en", "d1_w8_g8_r1"]
SCALES = [2, 4]


def main() -> None:
    t0 = time.perf_counter()
    specs = [scale_spec(b, st, s) for b in BASES for st in STRATEGIES for s in SCALES]
    t_scale = time.perf_counter() - t0
    print(f"scaling search: {len(specs)} configurations in {t_scale:.1f} s "
          f"({1000 * t_scale / len(specs):.0f} ms each, including each family's first counts)")

    t0 = time.perf_counter()
    per_config = []
    for spec in specs:
        t = time.perf_counter()
        count_spec(spec)
        per_config.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    print(f"count_spec (meta build + shape pass, per-layer rows): {len(specs)} configurations in {total:.1f} s; "
          f"median {1000 * statistics.median(per_config):.0f} ms, max {1000 * max(per_config):.0f} ms per configuration")

    t0 = time.perf_counter()
    for spec in specs:
        quick_counts(spec)
    total_q = time.perf_counter() - t0
    print(f"quick_counts (cached decomposition, totals only): {1000 * total_q / len(specs):.2f} ms per configuration")

    print(f"\ncounting by running the model on real tensors ({torch.get_num_threads()} CPU threads, batch 1: "
          f"build with real weights + one forward) vs count_spec (meta build + shape pass):")
    for spec in specs[::20]:
        t = time.perf_counter()
        model = build_model(spec)
        with torch.inference_mode():
            model(torch.randn(1, 3, spec.resolution, spec.resolution))
        real = time.perf_counter() - t
        t = time.perf_counter()
        count_spec(spec)
        counted = time.perf_counter() - t
        print(f"  {spec.label:36s} res {spec.resolution:4d}  real {1000 * real:7.0f} ms   count {1000 * counted:5.0f} ms"
              f"   (count is x{real / counted:.1f} faster)")


if __name__ == "__main__":
    main()
