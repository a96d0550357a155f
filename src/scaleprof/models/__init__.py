"""models stage: the scaled-model zoo (timm builders), scaling strategies and the scaling search.

Public API: ``base_spec(name)``, ``build_model(spec, device)``, ``scale_spec(model, strategy, scale,
alpha)``, ``parse_strategy``, ``list_models``, ``all_models``, ``family_of``, ``ModelSpec``.

    spec        ModelSpec: the concrete description of one (scaled) network
    strategies  how a flops factor splits into depth, width, group width and resolution
    families/   one module per model family (EfficientNet, EfficientNetV2, RegNet, ResNet, TResNet,
                and the detector EfficientDet), registered with @register_family; families.base holds
                what they share
    meta        building on torch's meta device without initialising weights
    recording   reading a base model's constructor arguments from timm's builder calls
    registry    the zoo: base models by name, base_spec, build_model
    scaling     the flops-targeting search (scale_spec); it counts candidates with the cost rules
                of scaleprof.core.costs, below this stage

Importing this package (names, specs, strategies) does not import torch or timm: building or
counting a network does, when it happens (tests/test_imports.py keeps it so).
"""

from scaleprof.models.families import FAMILIES, MIN_RESOLUTION, round8
from scaleprof.models.zoo import all_models, base_spec, build_model, family_of, get_family, list_models
from scaleprof.models.scaling import scale_spec
from scaleprof.models.spec import ModelSpec
from scaleprof.models.strategies import NAMED as STRATEGIES, Strategy, parse_strategy

__all__ = ["FAMILIES", "MIN_RESOLUTION", "ModelSpec", "STRATEGIES", "Strategy", "all_models", "base_spec",
           "build_model", "family_of", "get_family", "list_models", "parse_strategy", "round8", "scale_spec"]
