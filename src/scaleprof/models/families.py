"""Model families: build timm networks from JSON-able knobs, through timm's own builders.

Nothing here re-implements an architecture. Each family reads a base model's constructor
arguments from timm itself (by recording the call timm's registered entry point makes to its
builder), keeps them as JSON in ``ModelSpec.arch``, and rebuilds through the same builder with
the scaling knobs changed:

- efficientnet / efficientnetv2: timm's ``_gen_*`` builder functions with ``channel_multiplier``
  and a per-stage ``depth_multiplier`` tuple (``decode_arch_def`` accepts one multiplier per stage
  of the arch_def; with the ``ceil`` truncation timm uses, a multiplier of (n - 0.5) / repeats
  gives exactly n blocks).
- regnet: timm's ``RegNet`` with its ``RegNetCfg`` (pycls generator parameters w0, wa, wm, depth,
  group size); scaled models override the per-stage depth, width and group width that timm derives
  from the generator (pycls' scaler converts a RegNet to per-stage AnyNet parameters the same way).
- resnet: timm's ``ResNet(block, layers, channels, stem_width, ...)``.
- tresnet: timm's ``TResNet(layers, width_factor)``.

Every family also tells which (stage, block) a qualified module name belongs to, so the scaling
search can count a network once and derive the counts of every depth combination exactly
(blocks after the first in a stage are identical).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import re
from dataclasses import asdict, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:       # importing this module (and scaleprof.models) does not import torch
    import torch

_JSON_TYPES = (int, float, str, bool, type(None))
# Arguments timm's entry points pass along that do not describe the architecture.
_NOT_ARCH = {"pretrained", "device", "dtype", "cache_dir", "pretrained_cfg", "pretrained_cfg_overlay",
             "features_only", "pretrained_strict", "variant"}


def _jsonable(value):
    if isinstance(value, _JSON_TYPES):
        return True
    if isinstance(value, (list, tuple)):
        return all(_jsonable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _jsonable(v) for k, v in value.items())
    return False


def round8(value: float, minimum: int = 8) -> int:
    """Nearest multiple of 8, at least ``minimum``."""
    return max(minimum, int(round(value / 8.0)) * 8)


@contextlib.contextmanager
def _recording(module, names, calls):
    """Temporarily wrap module-level functions ``names`` so their bound arguments land in ``calls``."""
    originals = {n: getattr(module, n) for n in names}

    def wrap(name, fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def recorder(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            extra = arguments.pop("kwargs", {}) or {}
            calls.append((name, {**arguments, **extra}))
            return fn(*args, **kwargs)

        return recorder

    try:
        for n, fn in originals.items():
            setattr(module, n, wrap(n, fn))
        yield calls
    finally:
        for n, fn in originals.items():
            setattr(module, n, fn)


_FILLS = frozenset({"normal_", "uniform_", "zero_", "fill_", "trunc_normal_", "copy_", "kaiming_normal_",
                    "kaiming_uniform_", "xavier_uniform_", "xavier_normal_", "ones_", "zeros_", "constant_",
                    "orthogonal_", "bernoulli_", "exponential_", "clamp_", "erfinv_", "mul_", "add_"})


@functools.lru_cache(maxsize=None)
def _skip_init_mode():
    """The TorchFunctionMode class behind _SkipInitOnMeta (defined on first use: it needs torch)."""
    import torch
    from torch.overrides import TorchFunctionMode

    class SkipInitOnMetaMode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if getattr(func, "__name__", "") in _FILLS:
                target = args[0] if args else kwargs.get("tensor", kwargs.get("self"))
                if isinstance(target, torch.Tensor) and target.is_meta:
                    return target
            return func(*args, **kwargs)

    return SkipInitOnMetaMode


class _SkipInitOnMeta:
    """Weight initialisation is meaningless on the meta device and costs most of a meta build
    (torch's meta normal_ goes through the reference implementation): skip the in-place fills.

    A context manager around a torch function mode; torch is imported when it is entered."""

    def __init__(self):
        self._modes = []          # one per (possibly nested) entry

    def __enter__(self):
        mode = _skip_init_mode()()
        self._modes.append(mode)
        return mode.__enter__()

    def __exit__(self, *exc):
        return self._modes.pop().__exit__(*exc)


def _create_on_meta(model: str):
    import timm

    with _SkipInitOnMeta():
        return timm.create_model(model, device="meta")


def _builder_arguments(module, builder: str, model: str) -> dict:
    """The arguments timm's ``module.builder`` receives when ``model`` is created (on meta)."""
    calls: list = []
    with _recording(module, [builder], calls):
        _create_on_meta(model)
    return dict(calls[0][1])


def _geomean(values) -> float:
    values = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else 1.0


class Family:
    """A model family: how to read a base model's knobs from timm and rebuild with new ones."""

    name: str = ""
    title: str = ""
    bases: tuple[str, ...] = ()
    block_pattern: re.Pattern
    has_groups = False           # grouped convs whose group width scales with width

    # -- knobs ---------------------------------------------------------------------------------
    def base_arch(self, model: str) -> dict:
        raise NotImplementedError

    def default_resolution(self, model: str) -> int:
        import timm

        cfg = timm.models.get_pretrained_cfg(model)
        size = getattr(cfg, "input_size", None) if cfg is not None else None
        return int(size[-1]) if size else 224

    def build(self, arch: dict, device="cpu", dtype=None) -> torch.nn.Module:
        raise NotImplementedError

    def depths(self, arch: dict) -> list[int]:
        raise NotImplementedError

    def widths(self, arch: dict) -> list[int]:
        """Main channel width of each stage (what width scaling multiplies)."""
        raise NotImplementedError

    def group_widths(self, arch: dict) -> list[int] | None:
        return None

    def with_knobs(self, base: dict, depths: list[int], width: float, group: float = 1.0) -> dict:
        """The base arch with these stage depths, width multiplier and group-width multiplier."""
        raise NotImplementedError

    depth_key = "depths"

    def with_depths(self, arch: dict, depths: list[int]) -> dict:
        return dict(arch, **{self.depth_key: [int(d) for d in depths]})

    def width_signature(self, arch: dict) -> str:
        """A key that is equal for two archs (at equal depths) exactly when their widths are: lets
        the scaling search reuse one count for every continuous width that rounds the same."""
        return json.dumps(arch, sort_keys=True)

    # -- decomposition ---------------------------------------------------------------------------
    def block_of(self, name: str) -> tuple[int, int] | None:
        """(stage index from 0, block index from 0) of a qualified module name, or None (stem/head)."""
        m = self.block_pattern.match(name)
        if not m:
            return None
        return self._stage_block(int(m.group(1)), int(m.group(2)))

    def _stage_block(self, stage: int, block: int) -> tuple[int, int]:
        return stage, block


# ---------------------------------------------------------------------------------------------
class EfficientNetFamily(Family):
    name = "efficientnet"
    title = "EfficientNet (Tan & Le 2019), timm _gen_efficientnet; tf_*: TensorFlow 'same' padding"
    # tf_*: timm's ports of the TensorFlow models, the same networks with TF "same" padding (timm's
    # Conv2dSame/MaxPool2dSame compute their pads from the input size; the export fixes them) and
    # TF's BatchNorm epsilon. They scale like the others: pad_type and bn_eps are builder kwargs.
    bases = tuple(f"efficientnet_b{i}" for i in range(8)) + tuple(f"tf_efficientnet_b{i}" for i in range(8))
    block_pattern = re.compile(r"^blocks\.(\d+)\.(\d+)(\.|$)")
    # EfficientNet paper resolutions (SCALING.md, timm's _gen_efficientnet docstring); timm's own
    # trained weights use other sizes, but the named B-models are defined at these.
    paper_resolution = {f"{prefix}efficientnet_b{i}": r for prefix in ("", "tf_")
                        for i, r in enumerate((224, 240, 260, 300, 380, 456, 528, 600))}

    def default_resolution(self, model: str) -> int:
        return self.paper_resolution.get(model) or super().default_resolution(model)

    def base_arch(self, model: str) -> dict:
        from timm.models import _efficientnet_builder as builder
        from timm.models import efficientnet as effnet

        gens = [n for n in dir(effnet) if n.startswith("_gen_")]
        calls: list = []
        decoded: list = []
        original_decode = effnet.decode_arch_def

        def decode_recorder(arch_def, *args, **kwargs):
            out = original_decode(arch_def, *args, **kwargs)
            raw = [sum(builder._decode_block_str(s)[1] for s in stage) for stage in arch_def]
            decoded.append((raw, [len(stage) for stage in out]))
            return out

        with _recording(effnet, gens, calls):
            effnet.decode_arch_def = decode_recorder
            try:
                _create_on_meta(model)
            finally:
                effnet.decode_arch_def = original_decode
        gen, arguments = calls[0]
        raw, depths = decoded[0]
        arguments.pop("pretrained", None)
        variant = arguments.pop("variant")
        channel_multiplier = float(arguments.pop("channel_multiplier", 1.0))
        arguments.pop("depth_multiplier", None)
        arguments = {k: v for k, v in arguments.items() if _jsonable(v) and k not in _NOT_ARCH}
        return {
            "builder": f"timm.models.efficientnet.{gen}",
            "variant": variant,
            "kwargs": arguments,
            "channel_multiplier": channel_multiplier,
            "raw_repeats": raw,      # repeats per stage in timm's arch_def
            "depths": depths,        # blocks per stage of this network
        }

    def _widths_of(self, gen, variant, kwargs, cm, raw, depths):
        import torch

        # Output width of each stage: the last conv registered in its last block (conv_pw of a
        # depthwise-separable block, conv_pwl of inverted-residual and edge-residual blocks).
        with _SkipInitOnMeta():
            model = self._build(gen, variant, kwargs, cm, raw, depths, device="meta", dtype=None)
        widths = []
        for stage in model.blocks:
            convs = [m for m in stage[-1].modules() if isinstance(m, torch.nn.Conv2d)]
            widths.append(int(convs[-1].out_channels))
        return widths

    @staticmethod
    def _build(gen, variant, kwargs, cm, raw, depths, device, dtype):
        from timm.models import efficientnet as effnet

        fn = getattr(effnet, gen.rsplit(".", 1)[-1])
        # ceil((n - 0.5) / r * r) == n: the per-stage multiplier that gives exactly n blocks.
        multipliers = tuple((n - 0.5) / r for n, r in zip(depths, raw))
        return fn(variant, channel_multiplier=cm, depth_multiplier=multipliers, pretrained=False,
                  device=device, dtype=dtype, **kwargs)

    def build(self, arch, device="cpu", dtype=None):
        return self._build(arch["builder"], arch["variant"], arch["kwargs"], arch["channel_multiplier"],
                           arch["raw_repeats"], arch["depths"], device, dtype)

    def width_signature(self, arch):
        # Every channel count of the network is round_chs_fn(c) for a c of the arch_def (or derived
        # from one), so the rounded values of those c determine all widths.
        from timm.models._efficientnet_builder import round_channels

        rounded = [round_channels(c, arch["channel_multiplier"], divisor, cmin, limit)
                   for c, divisor, cmin, limit in self._round_calls(arch["builder"], arch["variant"],
                                                                     json.dumps(arch["kwargs"], sort_keys=True))]
        rest = {k: v for k, v in arch.items() if k != "channel_multiplier"}
        return json.dumps([rounded, rest], sort_keys=True)

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def _round_calls(gen, variant, kwargs_json):
        from timm.models import efficientnet as effnet

        calls: list = []
        with _recording(effnet, ["round_channels"], calls), _SkipInitOnMeta():
            fn = getattr(effnet, gen.rsplit(".", 1)[-1])
            fn(variant, pretrained=False, device="meta", **json.loads(kwargs_json))
        seen = []
        for _, a in calls:
            item = (a["channels"], a["divisor"], a["channel_min"], a["round_limit"])
            if item not in seen:
                seen.append(item)
        return tuple(seen)

    def depths(self, arch):
        return list(arch["depths"])

    def widths(self, arch):
        # widths do not depend on depths: count them on a one-block-per-stage build
        return list(self._cached_widths(arch["builder"], arch["variant"], json.dumps(arch["kwargs"], sort_keys=True),
                                        arch["channel_multiplier"], tuple(arch["raw_repeats"])))

    @functools.lru_cache(maxsize=4096)
    def _cached_widths(self, gen, variant, kwargs_json, cm, raw):
        return tuple(self._widths_of(gen, variant, json.loads(kwargs_json), cm, list(raw), [1] * len(raw)))

    def with_knobs(self, base, depths, width, group=1.0):
        arch = dict(base)
        arch["depths"] = [int(d) for d in depths]
        arch["channel_multiplier"] = float(base["channel_multiplier"]) * float(width)
        return arch


class EfficientNetV2Family(EfficientNetFamily):
    name = "efficientnetv2"
    title = "EfficientNetV2 (Tan & Le 2021), timm _gen_efficientnetv2_*; tf_*: TensorFlow 'same' padding"
    bases = ("efficientnetv2_s", "efficientnetv2_m", "efficientnetv2_l", "efficientnetv2_xl",
             "efficientnetv2_rw_t", "efficientnetv2_rw_s", "efficientnetv2_rw_m",
             "tf_efficientnetv2_s", "tf_efficientnetv2_m", "tf_efficientnetv2_l", "tf_efficientnetv2_xl")
    paper_resolution: dict = {}


# ---------------------------------------------------------------------------------------------
def _regnet_class():
    from timm.layers import calculate_drop_path_rates
    from timm.models.regnet import RegNet

    class StagedRegNet(RegNet):
        """timm's RegNet with explicit per-stage depth, width and group width.

        The generator (w0, wa, wm, depth, group size) still defines the base network; a scaled
        network keeps everything timm derives from it (strides, block type, SE, head) and only
        replaces the three per-stage quantities that scaling changes.
        """

        def __init__(self, cfg, stages=None, **kwargs):
            object.__setattr__(self, "_scaleprof_stages", stages)
            super().__init__(cfg, **kwargs)

        def _get_stage_args(self, cfg, default_stride=2, output_stride=32, drop_path_rate=0.0):
            per_stage, common = super()._get_stage_args(cfg, default_stride, output_stride, drop_path_rate)
            stages = getattr(self, "_scaleprof_stages", None)
            if stages:
                dpr = calculate_drop_path_rates(drop_path_rate, list(stages["depths"]), stagewise=True)
                for i, args in enumerate(per_stage):
                    args.update(depth=int(stages["depths"][i]), out_chs=int(stages["widths"][i]),
                                group_size=int(stages["group_widths"][i]), drop_path_rates=dpr[i])
            return per_stage, common

    return StagedRegNet


class RegNetFamily(Family):
    name = "regnet"
    title = "RegNet X/Y (Radosavovic et al. 2020), timm RegNet + RegNetCfg (pycls generator)"
    bases = tuple(f"regnet{k}_{m}" for k in "xy" for m in
                  ("002", "004", "006", "008", "016", "032", "040", "064", "080", "120", "160", "320"))
    block_pattern = re.compile(r"^s(\d+)\.b(\d+)(\.|$)")
    has_groups = True

    def _stage_block(self, stage, block):
        return stage - 1, block - 1

    def base_arch(self, model):
        from timm.models import regnet

        cfg = regnet.model_cfgs[model]
        per_stage, _ = regnet.RegNet._get_stage_args(None, cfg)
        cfg_dict = {k: v for k, v in asdict(cfg).items() if _jsonable(v)}
        return {
            "builder": "timm.models.regnet.RegNet",
            "variant": model,
            "cfg": cfg_dict,
            "depths": [int(a["depth"]) for a in per_stage],
            "widths": [int(a["out_chs"]) for a in per_stage],
            "group_widths": [int(a["group_size"]) for a in per_stage],
            "bottle_ratios": [float(a["bottle_ratio"]) for a in per_stage],
        }

    def build(self, arch, device="cpu", dtype=None):
        from timm.models.regnet import RegNetCfg

        known = {f.name for f in fields(RegNetCfg)}
        cfg = RegNetCfg(**{k: v for k, v in arch["cfg"].items() if k in known})
        stages = {k: arch[k] for k in ("depths", "widths", "group_widths")}
        return _regnet_class()(cfg, stages=stages, device=device, dtype=dtype)

    def depths(self, arch):
        return list(arch["depths"])

    def widths(self, arch):
        return list(arch["widths"])

    def group_widths(self, arch):
        return list(arch["group_widths"])

    def with_knobs(self, base, depths, width, group=1.0):
        # pycls rounding: widths to multiples of 8, group widths to multiples of 8 (1, 2 or 4 when
        # tiny), group width at most the (bottleneck) width, then widths made divisible by it.
        widths, gws = [], []
        for w0, g0, b in zip(base["widths"], base["group_widths"], base["bottle_ratios"]):
            w = round8(w0 * width)
            g = g0 * group
            g = max(1, round(g)) if g <= 2 else (4 if g <= 5 else round8(g))
            wb = int(w * b)
            g = min(g, wb)
            wb = max(g, int(round(wb / g)) * g)
            widths.append(int(wb / b))
            gws.append(int(g))
        arch = dict(base)
        arch.update(depths=[int(d) for d in depths], widths=widths, group_widths=gws)
        return arch


# ---------------------------------------------------------------------------------------------
class ResNetFamily(Family):
    name = "resnet"
    title = "ResNet (He et al. 2016), timm ResNet(block, layers, channels)"
    bases = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet50d")
    block_pattern = re.compile(r"^layer(\d+)\.(\d+)(\.|$)")
    depth_key = "layers"

    def _stage_block(self, stage, block):
        return stage - 1, block

    def base_arch(self, model):
        from timm.models import resnet

        arguments = _builder_arguments(resnet, "_create_resnet", model)
        block = arguments.pop("block")
        layers = [int(x) for x in arguments.pop("layers")]
        sig = inspect.signature(resnet.ResNet.__init__).parameters
        arguments = {k: v for k, v in arguments.items() if k in sig and k not in _NOT_ARCH}
        odd = {k: v for k, v in arguments.items() if not _jsonable(v)}
        if odd:
            raise ValueError(f"{model}: constructor arguments scaleprof cannot store: {sorted(odd)}")
        channels = [int(c) for c in arguments.pop("channels", sig["channels"].default)]
        stem_width = int(arguments.pop("stem_width", sig["stem_width"].default))
        return {
            "builder": "timm.models.resnet.ResNet",
            "variant": model,
            "block": block.__name__,
            "layers": layers,
            "channels": channels,
            "stem_width": stem_width,
            "kwargs": arguments,
        }

    def build(self, arch, device="cpu", dtype=None):
        from timm.models import resnet

        block = getattr(resnet, arch["block"])
        return resnet.ResNet(block=block, layers=tuple(arch["layers"]), channels=tuple(arch["channels"]),
                             stem_width=arch["stem_width"], device=device, dtype=dtype, **arch["kwargs"])

    def depths(self, arch):
        return list(arch["layers"])

    def widths(self, arch):
        return list(arch["channels"])

    def with_knobs(self, base, depths, width, group=1.0):
        arch = dict(base)
        arch.update(layers=[int(d) for d in depths],
                    channels=[round8(c * width) for c in base["channels"]],
                    stem_width=round8(base["stem_width"] * width))
        return arch


# ---------------------------------------------------------------------------------------------
class TResNetFamily(Family):
    name = "tresnet"
    title = "TResNet (Ridnik et al. 2021), timm TResNet(layers, width_factor)"
    bases = ("tresnet_m", "tresnet_l", "tresnet_xl")
    block_pattern = re.compile(r"^body\.layer(\d+)\.(\d+)(\.|$)")
    depth_key = "layers"

    def _stage_block(self, stage, block):
        return stage - 1, block

    def base_arch(self, model):
        from timm.models import tresnet

        allowed = inspect.signature(tresnet.TResNet.__init__).parameters
        arguments = {k: v for k, v in _builder_arguments(tresnet, "_create_tresnet", model).items()
                     if k in allowed and k not in _NOT_ARCH}
        return {
            "builder": "timm.models.tresnet.TResNet",
            "variant": model,
            "layers": [int(x) for x in arguments.pop("layers")],
            "width_factor": float(arguments.pop("width_factor", 1.0)),
            "kwargs": {k: v for k, v in arguments.items() if _jsonable(v)},
        }

    def build(self, arch, device="cpu", dtype=None):
        from timm.models.tresnet import TResNet

        return TResNet(layers=list(arch["layers"]), width_factor=arch["width_factor"], device=device,
                       dtype=dtype, **arch["kwargs"])

    def depths(self, arch):
        return list(arch["layers"])

    def widths(self, arch):
        planes = int(64 * arch["width_factor"])
        if arch["kwargs"].get("v2"):
            planes = planes // 8 * 8
        return [planes, planes * 2, planes * 4, planes * 8]

    def with_knobs(self, base, depths, width, group=1.0):
        arch = dict(base)
        wf = base["width_factor"] * width
        # TResNet stage widths are int(64*wf) * (1, 2, 4, 8): multiples of 8 iff 64*wf is.
        wf = max(1, round(wf * 8)) / 8.0 if abs(width - 1.0) > 1e-12 else base["width_factor"]
        arch.update(layers=[int(d) for d in depths], width_factor=wf)
        return arch


FAMILIES: dict[str, Family] = {f.name: f for f in (
    EfficientNetFamily(), EfficientNetV2Family(), RegNetFamily(), TResNetFamily(), ResNetFamily())}
