"""models stage: the scaled-model zoo (timm builders), scaling strategies and the scaling search.

Public API: ``base_spec(name)``, ``build_model(spec, device)``, ``scale_spec(model, strategy, scale,
alpha)``, ``parse_strategy``, ``list_models``, ``ModelSpec``.

Importing this package (names, specs, strategies) does not import torch or timm: building or
counting a network does, when it happens (tests/test_imports.py keeps it so).
"""

from scaleprof.models.registry import all_models, base_spec, build_model, family_of, list_models
from scaleprof.models.spec import ModelSpec

__all__ = ["ModelSpec", "all_models", "base_spec", "build_model", "family_of", "list_models"]
from scaleprof.models.scaling import scale_spec  # noqa: E402
from scaleprof.models.strategies import NAMED as STRATEGIES, Strategy, parse_strategy  # noqa: E402

__all__ += ["STRATEGIES", "Strategy", "parse_strategy", "scale_spec"]
