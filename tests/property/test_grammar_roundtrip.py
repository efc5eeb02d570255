"""parse(render_config(items)) gives back every key and value, whatever the text inside."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xenlite.config.xlcfg.grammar import parse, parse_with_overrides, render_config, render_value
from xenlite.config.xlcfg.values import Atom, ListValue

Plain = str | int | list["Plain"]

KEYS = st.from_regex(r"[a-z][._0-9a-z]{0,12}", fullmatch=True)
# Any text but NUL, which no C string (and so no xl.cfg string) can hold.
TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=30)
TRICKY = st.text(alphabet=st.sampled_from(list("\"'\\#[],;=+\n\r\t\a\b\f\v\x01\x7f ax0")))
NUMBERS = st.integers(min_value=0, max_value=2**63 - 1)
ATOMS = TEXT | TRICKY | NUMBERS
VALUES: st.SearchStrategy[Plain] = st.recursive(
    ATOMS, lambda inner: st.lists(inner, max_size=4), max_leaves=12
)


def expected(value: Plain) -> object:
    if isinstance(value, list):
        return [expected(item) for item in value]
    return str(value)


def plain(value: Atom | ListValue) -> object:
    if isinstance(value, Atom):
        return value.text
    return [plain(item) for item in value.items]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(KEYS, VALUES), max_size=8))
def test_render_then_parse_gives_the_values_back(items: list[tuple[str, Plain]]) -> None:
    cfg = parse(render_config(items))
    assert [(s.name, plain(s.value)) for s in cfg.settings] == [
        (key, expected(value)) for key, value in items
    ]
    for key, value in dict(items).items():  # last assignment wins
        setting = cfg.find(key)
        assert setting is not None
        assert plain(setting.value) == expected(value)


@settings(max_examples=200, deadline=None)
@given(KEYS, VALUES)
def test_numbers_stay_numbers_and_strings_stay_quoted(key: str, value: Plain) -> None:
    setting = parse(f"{key} = {render_value(value)}\n").find(key)
    assert setting is not None
    if isinstance(value, int):
        assert setting.value == Atom(str(value), setting.value.pos, quoted=False)
        assert parse(f"{key} = {render_value(value)}\n").get_long(key) == value
    elif isinstance(value, str):
        assert isinstance(setting.value, Atom)
        assert setting.value.quoted


@settings(max_examples=200, deadline=None)
@given(KEYS, TEXT | TRICKY, TEXT | TRICKY)
def test_plus_equals_joins_rendered_strings(key: str, first: str, second: str) -> None:
    text = f"{key} = {render_value(first)}\n{key} += {render_value(second)}\n"
    assert parse(text).get_string(key) == first + second


@settings(max_examples=200, deadline=None)
@given(KEYS, VALUES, VALUES)
def test_rendered_override_wins(key: str, in_file: Plain, override: Plain) -> None:
    cfg = parse_with_overrides(
        render_config([(key, in_file)]), "vm.cfg", [f"{key}={render_value(override)}"]
    )
    setting = cfg.find(key)
    assert setting is not None
    assert plain(setting.value) == expected(override)
    assert setting.pos.path == "<command line>"
