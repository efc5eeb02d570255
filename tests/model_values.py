"""Change one field of a DomainConfig, named by its settings-table path, to a value that is
not libxl's default: what the table tests and the QEMU layer's refusal tests set."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any

from xenlite.config.domain.model import DomainConfig, HvmBuildInfo, PvBuildInfo, PvhBuildInfo
from xenlite.config.settings import BY_FIELD, Treatment

_KIND_CLASS: dict[str, type] = {"pv": PvBuildInfo, "pvh": PvhBuildInfo, "hvm": HvmBuildInfo}


def non_default(default: Any, field: dataclasses.Field[Any]) -> Any:
    """A value different from ``default`` of the field's libxl kind."""
    kind = field.metadata.get("kind")
    if kind in ("array", "string_list", "kv_list", "bitmaps"):
        item = field.metadata.get("item")
        if item is not None and dataclasses.is_dataclass(item):
            return (item(),)
        if kind == "kv_list":
            return (("k", "v"),)
        if kind == "bitmaps":
            return (frozenset({0}),)
        return ("x",) if kind == "string_list" else (1,)
    if kind == "bitmap":
        return frozenset({0, 5})
    if kind == "str":
        return "x"
    if kind in ("bool", "defbool"):
        return default is not True
    if kind == "int":
        return 1 if default != 1 else 2
    if kind == "enum":
        cls: type[StrEnum] = field.metadata["cls"]
        return next(member for member in cls if member != default)
    if kind == "struct":
        inner = default
        for sub in dataclasses.fields(inner):
            return dataclasses.replace(
                inner, **{sub.name: non_default(getattr(inner, sub.name), sub)}
            )
    raise AssertionError(f"no non-default value for {field.name} ({kind})")


def _changed(value: Any, names: list[str]) -> Any:
    field = next(f for f in dataclasses.fields(value) if f.name == names[0])
    current = getattr(value, names[0])
    if len(names) == 1:
        new = non_default(current, field)
    else:
        new = _changed(current, names[1:])
    return dataclasses.replace(value, **{names[0]: new})


def with_changed(cfg: DomainConfig, path: str) -> DomainConfig:
    """``cfg`` with the field at ``path`` (``b_info.tsc_mode``, ``pv.e820_host``, ...)
    set to a value that is not its default."""
    head, *rest = path.split(".")
    if head in _KIND_CLASS:
        u = _changed(_KIND_CLASS[head](), rest)
        return dataclasses.replace(cfg, b_info=dataclasses.replace(cfg.b_info, u=u))
    if head == "config":
        return _changed(cfg, rest)
    return _changed(cfg, [head, *rest])


def paths_treated(*treatments: Treatment) -> list[str]:
    """The model paths of the rows with one of ``treatments``, sorted."""
    return sorted(path for path, row in BY_FIELD.items() if row.treatment in treatments)


def refused_paths() -> list[str]:
    return paths_treated(Treatment.LATER, Treatment.REFUSED)
