"""The family registry: ``@register_family`` on a Family subclass registers one instance of it under
its name, as timm's ``@register_model`` registers entry points. Registration order is the order in
which ``scaleprof models`` lists the families (the import order in scaleprof.models.families)."""

from __future__ import annotations

from scaleprof.models.families.base import Family

FAMILIES: dict[str, Family] = {}


def register_family(cls: type[Family]) -> type[Family]:
    if not cls.name or cls.name in FAMILIES:
        raise ValueError(f"family class {cls.__name__} needs a name of its own, not {cls.name!r}")
    FAMILIES[cls.name] = cls()
    return cls
