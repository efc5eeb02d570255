"""Arbitrary text into the spec parsers: a ConfigError (ValueError for sizes) or a result."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from xenlite.base.errors import ConfigError
from xenlite.base.units import parse_mem_size_kb, parse_size_with_unit
from xenlite.config.specs.cpus import parse_cpu_list
from xenlite.config.specs.disk import DiskSpec, parse_disk_spec, vdev_to_devid
from xenlite.config.specs.pci import PciSpec, parse_pci_spec
from xenlite.config.specs.vif import parse_rate, parse_vif_spec
from xenlite.config.xlcfg.values import Pos

# Mostly spec-like characters, so the fuzzer reaches deep into the grammars.
_SPEC_TEXT = st.text(
    alphabet=st.sampled_from(list("abcdefghiopqrstvwx0123456789:,=@.*^-/ \t\nBKMGbkmus")),
    max_size=40,
) | st.text(max_size=40)
_WHERE = Pos("fuzz.cfg", 1, 1)

T = TypeVar("T")


def _outcome(parse: Callable[[], T]) -> T | ConfigError:
    """The parser's result, or the ConfigError it raised; anything else propagates."""
    try:
        return parse()
    except ConfigError as err:
        return err


def _check_error(err: ConfigError, key: str) -> None:
    assert err.key == key
    assert err.cause
    assert err.fix


@settings(max_examples=200, deadline=None)
@given(_SPEC_TEXT)
def test_disk_parser_only_raises_config_error(text: str) -> None:
    spec = _outcome(lambda: parse_disk_spec(text, where=_WHERE))
    if isinstance(spec, ConfigError):
        _check_error(spec, "disk")
    else:
        assert isinstance(spec, DiskSpec)
        assert spec.to_device().vdev == spec.vdev


@settings(max_examples=200, deadline=None)
@given(_SPEC_TEXT, st.integers(0, 16))
def test_vif_parser_only_raises_config_error(text: str, devid: int) -> None:
    result = _outcome(lambda: parse_vif_spec(text, devid, where=_WHERE))
    if isinstance(result, ConfigError):
        _check_error(result, "vif")
    else:
        spec, warnings = result
        assert all(warnings)
        assert spec.to_device().devid == devid


@settings(max_examples=200, deadline=None)
@given(_SPEC_TEXT)
def test_rate_parser_only_raises_config_error(text: str) -> None:
    result = _outcome(lambda: parse_rate(text))
    if isinstance(result, ConfigError):
        _check_error(result, "vif")
    else:
        per_interval, usecs = result
        assert usecs > 0
        assert per_interval >= 0


@settings(max_examples=200, deadline=None)
@given(_SPEC_TEXT)
def test_pci_parser_only_raises_config_error(text: str) -> None:
    spec = _outcome(lambda: parse_pci_spec(text, where=_WHERE))
    if isinstance(spec, ConfigError):
        _check_error(spec, "pci")
    else:
        assert isinstance(spec, PciSpec)
        assert spec.has_bdf != (spec.name is not None)


@settings(max_examples=200, deadline=None)
@given(_SPEC_TEXT, st.integers(1, 16), st.integers(1, 4))
def test_cpu_list_parser_only_raises_config_error(text: str, nr_cpus: int, nodes: int) -> None:
    cpus = _outcome(lambda: parse_cpu_list(text, nr_cpus, nr_nodes=nodes, where=_WHERE))
    if isinstance(cpus, ConfigError):
        _check_error(cpus, "cpus")
    else:
        assert all(0 <= cpu < nr_cpus for cpu in cpus)


@settings(max_examples=200, deadline=None)
@given(_SPEC_TEXT)
def test_vdev_to_devid_only_raises_config_error(text: str) -> None:
    devid = _outcome(lambda: vdev_to_devid(text))
    if isinstance(devid, ConfigError):
        _check_error(devid, "vdev")
    else:
        assert 0 <= devid < 2**31


@settings(max_examples=200, deadline=None)
@given(_SPEC_TEXT)
def test_sizes_only_raise_value_error(text: str) -> None:
    for parse in (parse_mem_size_kb, parse_size_with_unit):
        message = ""
        size = 0
        try:
            size = parse(text)
        except ValueError as err:
            message = str(err)
            assert "size" in message
        assert size >= 0
