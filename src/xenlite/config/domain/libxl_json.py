"""libxl's JSON form of a domain config: what ``xl create -n`` prints, and back.

Implements the generated ``libxl_domain_config_gen_json`` / ``_parse_json`` of Xen 4.17's
libxl_types.idl: keys in IDL order, fields at their init value omitted, defbools as
"True"/"False", bitmaps as index arrays, keyed unions as ``"type.hvm": {...}``, nested
structs always present (``"arch_arm": {}``), and yajl's beautified layout (four spaces,
empty containers printed with an empty line inside) byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar, cast

from xenlite.base.errors import ConfigError
from xenlite.config.domain.model import CpuidLeaf, DomainConfig

T = TypeVar("T")

JsonValue = dict[str, "JsonValue"] | list["JsonValue"] | str | int | bool | None


def domain_config_to_json(cfg: DomainConfig) -> dict[str, object]:
    """libxl's JSON object for ``cfg`` (the dict ``json.loads`` gives of ``xl create -n``)."""
    return struct_to_json(cfg)


def struct_to_json(obj: object) -> dict[str, object]:
    """Any model struct (a disk, a nic, ...) as libxl's JSON object, in IDL key order."""
    return cast(dict[str, object], _struct_to_json(obj))


def dumps_domain_config(cfg: DomainConfig) -> str:
    """The exact text ``xl create -n`` prints for ``cfg`` (yajl beautified, final newline)."""
    return dumps_libxl_json(domain_config_to_json(cfg)) + "\n"


def domain_config_from_json(obj: object, *, source: str = "<json>") -> DomainConfig:
    """Rebuild a DomainConfig from libxl's JSON (``xl list -l``, saved configs).

    :raise ConfigError: when ``obj`` is not a libxl domain config; ``source`` names it.
    """
    return _struct_from_json(DomainConfig, obj, source, "")


def struct_from_json(cls: type[T], obj: object, *, source: str = "<json>") -> T:
    """Any model struct (a disk, a nic, ...) from its libxl JSON object.

    :raise ConfigError: when ``obj`` does not fit ``cls``.
    """
    return _struct_from_json(cls, obj, source, "")


# ---------------------------------------------------------------- to JSON


def _struct_to_json(obj: object) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {}
    for f in dataclasses.fields(cast(Any, obj)):
        kind = f.metadata["kind"]
        value = getattr(obj, f.name)
        if kind == "struct":
            out[f.name] = _struct_to_json(value)
        elif kind == "union":
            if value is not None:
                out[f"{f.metadata['key']}.{value.TAG}"] = _struct_to_json(value)
        elif kind in ("array", "bitmaps", "string_list", "kv_list", "bitmap"):
            if value:
                out[f.name] = _container_to_json(kind, value)
        elif kind == "cpuid":
            if value:
                out[f.name] = {"cpuid": [_struct_to_json(leaf) for leaf in value], "msr": []}
        elif value != f.default:
            out[f.name] = _scalar_to_json(kind, value)
    return out


def _container_to_json(kind: str, value: Any) -> JsonValue:
    if kind == "bitmap":
        return sorted(value)
    if kind == "bitmaps":
        return [sorted(bits) for bits in value]
    if kind == "string_list":
        return list(value)
    if kind == "kv_list":
        return dict(value)
    items: list[JsonValue] = []
    for item in value:
        if dataclasses.is_dataclass(item):
            items.append(_struct_to_json(item))
        elif isinstance(item, StrEnum):
            items.append(item.value)
        else:
            items.append(item)
    return items


def _scalar_to_json(kind: str, value: Any) -> JsonValue:
    if kind == "defbool":
        return "True" if value else "False"
    if kind == "enum":
        return str(value.value)
    if kind == "int" and value is None:
        # An "unset" MemKB/limit that a caller cleared explicitly: libxl would omit it too.
        return None
    return cast(JsonValue, value)


# ---------------------------------------------------------------- text layout


def dumps_libxl_json(value: object, indent: int = 0) -> str:
    """``value`` as yajl_gen_beautify prints it (4-space indent, empty containers on 3 lines)."""
    pad = "    " * indent
    inner = "    " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{\n\n" + pad + "}"
        parts = [
            f"{inner}{_yajl_string(str(k))}: {dumps_libxl_json(v, indent + 1)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(parts) + "\n" + pad + "}"
    if isinstance(value, list):
        if not value:
            return "[\n\n" + pad + "]"
        parts = [inner + dumps_libxl_json(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(parts) + "\n" + pad + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _yajl_string(value)
    if value is None:
        return "null"
    raise TypeError(f"cannot encode {type(value).__name__} as libxl JSON")


_YAJL_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_YAJL_ESCAPES["\t"] = "\\t"


def _yajl_string(text: str) -> str:
    # yajl escapes quotes, backslashes and control characters; '/' and non-ASCII pass.
    out = []
    for ch in text:
        if ch in _YAJL_ESCAPES:
            out.append(_YAJL_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


# ---------------------------------------------------------------- from JSON


def _bad(source: str, where: str, cause: str) -> ConfigError:
    return ConfigError(
        cause,
        path=source,
        key=where or None,
        fix="give libxl's domain config JSON as 'xl create -n' or 'xl list -l' prints it",
    )


def _struct_from_json(cls: type[T], obj: object, source: str, where: str) -> T:
    if not isinstance(obj, Mapping):
        raise _bad(source, where, f"expected a JSON object, found {json.dumps(obj)[:40]}")
    fields = {f.name: f for f in dataclasses.fields(cast(Any, cls))}
    unions = {f.metadata["key"]: f for f in fields.values() if f.metadata["kind"] == "union"}
    kwargs: dict[str, object] = {}
    for key, raw in obj.items():
        here = f"{where}.{key}" if where else str(key)
        if key in fields:
            f = fields[key]
            kwargs[key] = _field_from_json(f, raw, source, here)
            continue
        prefix, _, tag = str(key).partition(".")
        if prefix in unions:
            f = unions[prefix]
            for member in f.metadata["members"]:
                if tag == member.TAG:
                    kwargs[f.name] = _struct_from_json(member, raw, source, here)
                    break
            else:
                raise _bad(source, here, f"unknown {prefix} '{tag}'")
            continue
        raise _bad(source, here, f"unknown field '{key}' in {cls.__name__}")
    return cls(**kwargs)


def _field_from_json(f: dataclasses.Field[Any], raw: object, source: str, where: str) -> object:
    kind = f.metadata["kind"]
    if kind == "struct":
        return _struct_from_json(f.metadata["cls"], raw, source, where)
    if kind == "bitmap":
        return frozenset(_int_list(raw, source, where))
    if kind == "bitmaps":
        return tuple(frozenset(_int_list(b, source, where)) for b in _list(raw, source, where))
    if kind == "string_list":
        return tuple(_str(s, source, where) for s in _list(raw, source, where))
    if kind == "kv_list":
        if not isinstance(raw, Mapping):
            raise _bad(source, where, "expected a JSON object of strings")
        return tuple((str(k), _str(v, source, where)) for k, v in raw.items())
    if kind == "array":
        item = f.metadata["item"]
        items = _list(raw, source, where)
        if item is int:
            return tuple(_int(v, source, where) for v in items)
        if isinstance(item, type) and issubclass(item, StrEnum):
            return tuple(_enum(item, v, source, where) for v in items)
        return tuple(
            _struct_from_json(item, v, source, f"{where}[{i}]") for i, v in enumerate(items)
        )
    if kind == "cpuid":
        if not isinstance(raw, Mapping):
            raise _bad(source, where, 'expected {"cpuid": [...], "msr": [...]}')
        if raw.get("msr"):
            raise _bad(source, where, "MSR policies are not supported by xenlite")
        leaves = _list(raw.get("cpuid", []), source, where)
        return tuple(
            _struct_from_json(CpuidLeaf, v, source, f"{where}.cpuid[{i}]")
            for i, v in enumerate(leaves)
        )
    if kind == "defbool":
        if raw == "True":
            return True
        if raw == "False":
            return False
        raise _bad(source, where, f'expected "True" or "False", found {json.dumps(raw)}')
    if kind == "bool":
        if not isinstance(raw, bool):
            raise _bad(source, where, f"expected true or false, found {json.dumps(raw)}")
        return raw
    if kind == "enum":
        return _enum(f.metadata["cls"], raw, source, where)
    if kind == "int":
        return _int(raw, source, where)
    return _str(raw, source, where)


def _list(raw: object, source: str, where: str) -> Sequence[object]:
    if not isinstance(raw, list):
        raise _bad(source, where, f"expected a JSON array, found {json.dumps(raw)[:40]}")
    return raw


def _int_list(raw: object, source: str, where: str) -> list[int]:
    return [_int(v, source, where) for v in _list(raw, source, where)]


def _int(raw: object, source: str, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _bad(source, where, f"expected an integer, found {json.dumps(raw)[:40]}")
    return raw


def _str(raw: object, source: str, where: str) -> str:
    if not isinstance(raw, str):
        raise _bad(source, where, f"expected a string, found {json.dumps(raw)[:40]}")
    return raw


def _enum(cls: type[StrEnum], raw: object, source: str, where: str) -> StrEnum:
    text = _str(raw, source, where)
    try:
        return cls(text.lower())
    except ValueError:
        names = ", ".join(m.value for m in cls)
        raise _bad(source, where, f"unknown value '{text}' (known: {names})") from None
