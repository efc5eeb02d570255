"""Arbitrary bytes and text into the xl.cfg parser: a config or a located ConfigError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xenlite.base.errors import ConfigError
from xenlite.config.xlcfg.grammar import XlConfig, parse, parse_with_overrides

# Mostly xl.cfg-like characters, so the fuzzer reaches deep into the grammar.
_CFG_TEXT = st.text(
    alphabet=st.sampled_from(list("ab.x_019=+[],;#\"'\\ \t\n\r()-:A\x00é")), max_size=80
)


def _check(outcome: XlConfig | ConfigError) -> None:
    if isinstance(outcome, ConfigError):
        assert outcome.line is not None
        assert outcome.line >= 1
        assert outcome.col is not None
        assert outcome.col >= 1
        assert outcome.fix
        return
    names = outcome.keys()
    for key in names:
        # every getter answers or raises a located ConfigError, never anything else
        for getter in (outcome.get_string, outcome.get_long, outcome.get_string_or_list):
            failure: ConfigError | None = None
            try:
                getter(key)
            except ConfigError as err:
                failure = err
            if failure is not None:
                assert failure.key == key
                assert failure.line is not None


def _parse(data: str | bytes) -> XlConfig | ConfigError:
    try:
        return parse(data, "fuzz.cfg")
    except ConfigError as err:
        return err


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_binary_only_raises_config_error(data: bytes) -> None:
    _check(_parse(data))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_text_only_raises_config_error(text: str) -> None:
    _check(_parse(text))


@settings(max_examples=200, deadline=None)
@given(_CFG_TEXT)
def test_cfg_like_text_only_raises_config_error(text: str) -> None:
    _check(_parse(text))


@settings(max_examples=100, deadline=None)
@given(_CFG_TEXT, st.lists(_CFG_TEXT, max_size=3))
def test_overrides_only_raise_config_error(text: str, overrides: list[str]) -> None:
    try:
        outcome: XlConfig | ConfigError = parse_with_overrides(text, "fuzz.cfg", overrides)
    except ConfigError as err:
        outcome = err
    _check(outcome)


def test_deep_nesting_and_long_inputs_do_not_recurse() -> None:
    for text in ("a=" + "[" * 20000, "[" * 20000, "a=" + "[" * 3000 + "]" * 3000 + "\n"):
        _check(_parse(text))
