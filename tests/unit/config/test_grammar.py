"""xl.cfg grammar: every rule of libxlu's language, with values checked against Xen 4.17."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlite.base.errors import ConfigError
from xenlite.config.xlcfg.grammar import (
    MAX_LIST_DEPTH,
    PYTHON_WIKI,
    ConfigSyntaxError,
    NumberRangeError,
    XlConfig,
    parse,
    parse_file,
    parse_with_overrides,
    render_config,
    render_value,
    strtol,
)
from xenlite.config.xlcfg.values import Atom, ListValue, Pos


def plain(value: Atom | ListValue) -> object:
    """A value as nested Python lists of texts."""
    if isinstance(value, Atom):
        return value.text
    return [plain(item) for item in value.items]


def values(cfg: XlConfig) -> dict[str, object]:
    found = {}
    names = cfg.keys()
    for key in names:
        setting = cfg.find(key)
        assert setting is not None
        found[key] = plain(setting.value)
    return found


def error_of(text: str, path: str = "t.cfg") -> ConfigSyntaxError:
    with pytest.raises(ConfigSyntaxError) as info:
        parse(text, path)
    return info.value


# ------------------------------------------------------------------ statements and values


def test_statements_values_and_positions() -> None:
    cfg = parse('name = "vm1"\nmemory = 512\n\n  vcpus=2 # two\n', "vm.cfg")
    assert cfg.path == "vm.cfg"
    assert values(cfg) == {"name": "vm1", "memory": "512", "vcpus": "2"}
    assert [(s.name, s.op, s.pos.line, s.pos.col) for s in cfg.settings] == [
        ("name", "=", 1, 1),
        ("memory", "=", 2, 1),
        ("vcpus", "=", 4, 3),
    ]
    name = cfg.find("name")
    assert name is not None
    assert name.value == Atom("vm1", Pos("vm.cfg", 1, 8), quoted=True)
    memory = cfg.find("memory")
    assert memory is not None
    assert memory.value == Atom("512", Pos("vm.cfg", 2, 10), quoted=False)
    assert cfg.pos_of("vcpus") == Pos("vm.cfg", 4, 3)


def test_semicolons_and_empty_statements() -> None:
    cfg = parse("a=1 ; b=2;;\n;c=3")  # no final newline after an assignment is fine
    assert values(cfg) == {"a": "1", "b": "2", "c": "3"}
    assert [s.pos.line for s in cfg.settings] == [1, 1, 2]
    assert parse("").settings == ()
    assert parse("\n\n  \t\n;;\n# only a comment\n").settings == ()


def test_identifier_charset_allows_dots_digits_underscores() -> None:
    cfg = parse('vif.default.bridge="xenbr1"\nvm.cpumask="0-3"\na_1.b.="x"\n')
    assert cfg.keys() == ["vif.default.bridge", "vm.cpumask", "a_1.b."]


@pytest.mark.parametrize(
    ("text", "col", "words"),
    [
        ("Name = 1\n", 1, "upper-case 'N'"),
        ("nAme = 1\n", 2, "upper-case 'A'"),
        ("_a = 1\n", 1, "unexpected '_'"),
    ],
)
def test_bad_identifiers_are_lexical_errors(text: str, col: int, words: str) -> None:
    err = error_of(text)
    assert (err.path, err.line, err.col) == ("t.cfg", 1, col)
    assert words in err.cause
    assert err.fix


def test_numbers_are_kept_as_text() -> None:
    cfg = parse("a=010\nb=0x100\nc=1e5\nd=0x\ne=99999999999999999999\n")
    assert values(cfg) == {
        "a": "010",
        "b": "0x100",
        "c": "1e5",
        "d": "0x",
        "e": "99999999999999999999",
    }
    for key in ("a", "b", "c"):
        setting = cfg.find(key)
        assert setting is not None
        assert isinstance(setting.value, Atom)
        assert setting.value.quoted is False


def test_upper_case_hex_digits_are_not_part_of_a_number() -> None:
    err = error_of("a=0xFF\n")
    assert (err.line, err.col) == (1, 5)
    assert "'FF'" in err.cause


def test_number_followed_by_word_is_a_syntax_error() -> None:
    err = error_of("a=123g\n")
    assert (err.line, err.col, err.key) == (1, 6, "a")
    assert "the word 'g'" in err.cause


# ------------------------------------------------------------------ strings


def test_strings_single_and_double_quotes() -> None:
    cfg = parse("a='x \"y\"'\nb=\"it's\"\nc=''\n")
    assert values(cfg) == {"a": 'x "y"', "b": "it's", "c": ""}


@pytest.mark.parametrize(
    ("source", "value"),
    [
        (r'"\"\'\\"', "\"'\\"),
        (r'"\a\b\f\n\r\t\v"', "\a\b\f\n\r\t\v"),
        (r'"\x41\x7e"', "A~"),
        (r'"\101\60x"', "A0x"),
        (r"'tab\there'", "tab\there"),
        ('"raw\ttab and \x01 control"', "raw\ttab and \x01 control"),
        ('"caf\u00e9 \u65e5\u672c"', "caf\u00e9 \u65e5\u672c"),
    ],
)
def test_string_escapes(source: str, value: str) -> None:
    assert parse(f"a = {source}\n").get_string("a") == value


@pytest.mark.parametrize(
    ("source", "col", "words"),
    [
        (r'"ab\qc"', 8, "invalid escape \\q"),
        (r'"\x4"', 6, "two hex digits"),
        (r'"\xzz"', 6, "two hex digits"),
        (r'"\x00"', 6, "not a character code"),
        (r'"\0"', 6, "not a character code"),
    ],
)
def test_bad_escapes_are_located(source: str, col: int, words: str) -> None:
    err = error_of(f"a = {source}\n")
    assert (err.line, err.col) == (1, col)
    assert words in err.cause
    assert err.fix


def test_unterminated_string_and_string_over_two_lines() -> None:
    err = error_of('name = "vm1\nmemory = 1\n')
    assert (err.line, err.col) == (1, 8)
    assert "not closed" in err.cause
    err = error_of('a="1\\\n2"\n')
    assert err.line == 1
    assert [m.line for m in err.more] == [2]


def test_nul_byte_is_reported_not_crashing() -> None:
    err = error_of('a="x\x00y"\n')
    assert (err.line, err.col) == (1, 5)
    assert "NUL" in err.cause
    err = error_of("a=1\x00\n")
    assert "NUL" in err.cause


# ------------------------------------------------------------------ lists


def test_nested_lists_over_lines_with_comments_and_trailing_commas() -> None:
    text = 'disk = [\n  "a", # first\n\n  [ 1, [ ] , ],\n  "b",\n]\nempty=[ ]\nnl=[\n]\n'
    cfg = parse(text, "l.cfg")
    assert values(cfg) == {"disk": ["a", ["1", []], "b"], "empty": [], "nl": []}
    disk = cfg.get_list("disk")
    assert disk is not None
    assert disk.pos == Pos("l.cfg", 1, 8)
    inner = disk.items[1]
    assert isinstance(inner, ListValue)
    assert inner.pos == Pos("l.cfg", 4, 3)
    assert inner.items[0] == Atom("1", Pos("l.cfg", 4, 5), quoted=False)
    setting = cfg.find("disk")
    assert setting is not None
    assert setting.pos.line == 1


def test_list_nesting_limit_is_bisons_stack() -> None:
    deep = MAX_LIST_DEPTH
    cfg = parse("a=" + "[" * deep + "]" * deep + "\n")
    value = cfg.get_list("a")
    depth = 0
    while isinstance(value, ListValue) and value.items:
        value = value.items[0]  # type: ignore[assignment]
        depth += 1
    assert depth == deep - 1
    err = error_of("a=" + "[" * (deep + 1) + "]" * (deep + 1) + "\n")
    assert (err.line, err.col) == (1, 3 + deep)
    assert "nested" in err.cause


# ------------------------------------------------------------------ last wins and +=


def test_repeated_key_last_wins() -> None:
    cfg = parse('a="x"\nb=[\n"1",\n]\na="y"\n')
    assert cfg.get_string("a") == "y"
    assert cfg.pos_of("a").line == 5
    assert cfg.keys() == ["a", "b"]
    assert [(s.name, s.pos.line) for s in cfg.settings] == [("a", 1), ("b", 2), ("a", 5)]


def test_plus_equals_joins_strings_and_lists() -> None:
    text = 'a="x"\na+="y"\na += 4\nb=[1]\nb+=[[2],3]\nb+=[]\nc+=4\nd=[]\nd+=[5]\n'
    cfg = parse(text)
    assert values(cfg) == {"a": "xy4", "b": ["1", ["2"], "3"], "c": "4", "d": ["5"]}
    assert [(s.name, s.op) for s in cfg.settings] == [
        ("a", "="),
        ("a", "+="),
        ("a", "+="),
        ("b", "="),
        ("b", "+="),
        ("b", "+="),
        ("c", "+="),
        ("d", "="),
        ("d", "+="),
    ]
    winner = cfg.find("a")
    assert winner is not None
    assert winner.op == "+="
    assert winner.pos.line == 3
    # an earlier link of the chain keeps its own operand (joining stays linear)
    assert plain(cfg.settings[1].value) == "y"
    assert plain(cfg.settings[0].value) == "x"


def test_long_plus_equals_chains_join_every_part() -> None:
    cfg = parse("a=[0]\n" + "a+=[1]\n" * 20000 + 's="x"\n' + 's+="y"\n' * 20000)
    joined = cfg.get_list("a")
    assert joined is not None
    assert len(joined.items) == 20001
    assert cfg.get_string("s") == "x" + "y" * 20000


def test_plus_equals_after_equals_restarts() -> None:
    cfg = parse('a="x"\na+="y"\na="z"\na+="w"\n')
    assert cfg.get_string("a") == "zw"


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ('a="x"\na+=[1]\n', 2, 6),
        ('a=[1]\na+="x"\n', 2, 4),
        ('a="x"\na+=[1,\n2\n]\n', 4, 1),  # libxlu reports it at the list's last token
    ],
)
def test_plus_equals_mixing_types_is_an_error(text: str, line: int, col: int) -> None:
    err = error_of(text)
    assert 'can\'t add [list] to "string" or vice versa' in err.cause
    assert (err.line, err.col, err.key) == (line, col, "a")


def test_get_long_refuses_plus_equals() -> None:
    cfg = parse("m=1\nm+=2\n")
    assert cfg.get_string("m") == "12"
    with pytest.raises(ConfigError, match=r"can't use \+= with numbers") as info:
        cfg.get_long("m")
    assert info.value.key == "m"
    assert info.value.line == 2


# ------------------------------------------------------------------ comments and the last line


def test_comment_without_final_newline_is_an_error_like_libxlu() -> None:
    err = error_of('name="x"\n#VBoxManage clonehd --format RAW a.vdi\n'.rstrip("\n"))
    assert (err.line, err.col) == (2, 1)
    assert "comment without a newline" in err.cause
    assert err.fix == "add a newline at the end of the file"
    parse('name="x"\n# fine\n')
    parse('name="x"\n#')  # a lone '#' at the very end is accepted by libxlu too


def test_comment_between_tokens() -> None:
    cfg = parse("a = 1 # c\n# full line\nb = [ # open\n 2 # two\n ] # close\n")
    assert values(cfg) == {"a": "1", "b": ["2"]}


# ------------------------------------------------------------------ lexical errors


@pytest.mark.parametrize(
    ("text", "col", "near"),
    [
        ("a=1 +2\n", 5, "'+2'"),
        ("install-method = debootstrap\n", 8, "'-method'"),
        ('kernel = "/boot/" + arch\n', 19, "'+'"),
        ("x = (1)\n", 5, "'(1)'"),
        ("x = 1:\n", 6, "':'"),
    ],
)
def test_python_characters_say_so(text: str, col: int, near: str) -> None:
    err = error_of(text)
    assert (err.line, err.col) == (1, col)
    assert near in err.cause
    assert "Python" in err.cause
    assert err.fix is not None
    assert PYTHON_WIKI in err.fix


def test_python_file_first_error_mentions_python() -> None:
    err = error_of("import os, re\narch = os.uname()[4]\n")
    assert (err.line, err.col, err.key) == (1, 8, "import")
    assert "Python" in err.cause
    assert err.fix is not None
    assert PYTHON_WIKI in err.fix
    assert [m.line for m in err.more] == [2, 2]


def test_windows_line_endings() -> None:
    err = error_of("a=1\r\nb=2\r\n")
    assert (err.line, err.col) == (1, 4)
    assert "carriage return" in err.cause
    assert [m.line for m in err.more] == [2]


def test_byte_order_mark() -> None:
    err = error_of("\ufeffname='x'\n")
    assert "byte-order mark" in err.cause


def test_further_errors_are_collected_like_libxlu() -> None:
    err = error_of("a=(\nb=)\nc=$\nd=1\n")
    assert [(e.line, e.col) for e in [err, *err.more]] == [(1, 3), (2, 3), (3, 3)]


def test_syntax_errors_and_recovery() -> None:
    err = error_of("memory\n\n\n1\n")
    assert (err.line, err.col, err.key) == (1, 7, "memory")
    assert "expected '=' or '+='" in err.cause
    assert [(m.line, m.col) for m in err.more] == [(4, 1)]


def test_error_after_a_value_stops_parsing() -> None:
    # bison has already reduced to `file` here, so libxlu reports nothing more
    err = error_of("a=1 b=2\nc=(\n")
    assert (err.line, err.col, err.key) == (1, 5, "a")
    assert err.more == []


@pytest.mark.parametrize(
    ("text", "line", "col", "key", "words"),
    [
        # statements
        ("a=\n1\n", 1, 3, "a", "found the end of the line"),
        ("a\n=1\n", 1, 2, "a", "expected '=' or '+='"),
        ("a=1\nb=", 2, 3, "b", "found the end of the file"),
        ("a==1\n", 1, 3, "a", "found '='"),
        ("a = xenbr0\n", 1, 5, "a", "the word 'xenbr0'"),
        ('"x" = 1\n', 1, 1, None, "expected a setting"),
        # lists
        ("a=[,]\n", 1, 4, "a", "found ','"),
        ("a=[1,,2]\n", 1, 6, "a", "found ','"),
        ("a=[1 2]\n", 1, 6, "a", "expected ',' or ']'"),
        ("a=[1;2]\n", 1, 5, "a", "found ';'"),
        ("a=[1,\n", 1, 6, "a", "ends inside the list"),
        ("a=[1]]\n", 1, 6, "a", "after the value of 'a'"),
    ],
)
def test_syntax_error_positions(
    text: str, line: int, col: int, key: str | None, words: str
) -> None:
    err = error_of(text)
    assert (err.line, err.col, err.key) == (line, col, key)
    assert words in err.cause
    assert str(err).startswith(f"t.cfg:{line}:{col}: ")


def test_unquoted_word_suggests_quotes() -> None:
    err = error_of("bridge = xenbr0\n")
    assert err.fix == 'quote text values: bridge = "xenbr0"'


def test_junk_after_a_blank_at_end_of_file_is_ignored_like_libxlu() -> None:
    assert values(parse("a=1\nb=1 (")) == {"a": "1", "b": "1"}


# ------------------------------------------------------------------ getters


def test_get_long_strtol_semantics() -> None:
    text = (
        'dec=512\noct=010\nhex=0x100\nneg="-5"\nsp=" 7"\nplus="+3"\nbig=99999999999999999999\n'
        'bad="12 "\nuuid="2c474d2e-28ba"\nzero=0\nhexq="0X1f"\nempty=""\n'
    )
    cfg = parse(text)
    assert cfg.get_long("dec") == 512
    assert cfg.get_long("oct") == 8
    assert cfg.get_long("hex") == 256
    assert cfg.get_long("neg") == -5
    assert cfg.get_long("sp") == 7
    assert cfg.get_long("plus") == 3
    assert cfg.get_long("zero") == 0
    assert cfg.get_long("hexq") == 31
    assert cfg.get_long("missing") is None
    with pytest.raises(ConfigError, match="out of range") as info:
        cfg.get_long("big")
    assert (info.value.key, info.value.line, info.value.col) == ("big", 7, 5)
    for key in ("bad", "uuid", "empty"):
        with pytest.raises(ConfigError, match="not a valid number") as info:
            cfg.get_long(key)
        assert info.value.key == key
        assert info.value.fix


def test_get_long_bounds() -> None:
    cfg = parse("w=70000\n")
    assert cfg.get_long("w", min=1, max=70000) == 70000
    with pytest.raises(ConfigError, match="greater than the maximum 65535"):
        cfg.get_long("w", max=65535)
    with pytest.raises(ConfigError, match="smaller than the minimum 80000"):
        cfg.get_long("w", min=80000)


def test_get_bool() -> None:
    cfg = parse("on=1\noff=0\nhexon=0x10\n")
    assert cfg.get_bool("on") is True
    assert cfg.get_bool("off") is False
    assert cfg.get_bool("hexon") is True
    assert cfg.get_bool("none") is None


def test_get_string_and_list_type_errors() -> None:
    cfg = parse('s="x"\nl=["a", "b"]\nn=["a", ["b"]]\n', "g.cfg")
    assert cfg.get_string("s") == "x"
    assert cfg.get_string("nope") is None
    with pytest.raises(ConfigError, match="is a list but should be a single value") as info:
        cfg.get_string("l")
    assert (info.value.path, info.value.line, info.value.col, info.value.key) == (
        "g.cfg",
        2,
        3,
        "l",
    )
    with pytest.raises(ConfigError, match="is a list"):
        cfg.get_long("l")
    with pytest.raises(ConfigError, match="is a single value but should be a list") as info:
        cfg.get_list("s")
    assert info.value.key == "s"
    assert cfg.get_string_list("l") == ["a", "b"]
    assert cfg.get_string_list("nope") is None
    with pytest.raises(ConfigError, match="item 2 of the list is a list") as info:
        cfg.get_string_list("n")
    assert (info.value.line, info.value.col) == (3, 9)
    assert cfg.get_string_or_list("s") == "x"
    assert cfg.get_string_or_list("l") == ["a", "b"]
    assert cfg.get_string_or_list("nope") is None
    assert cfg.has("s")
    assert not cfg.has("nope")


def test_strtol_directly() -> None:
    assert strtol("0") == 0
    assert strtol("\t\n -0x1F") == -31
    assert strtol("0777") == 511
    assert strtol("9223372036854775807") == 2**63 - 1
    assert strtol("-9223372036854775808") == -(2**63)
    with pytest.raises(NumberRangeError):
        strtol("9223372036854775808")
    for bad in ("", " ", "-", "08", "0x", "1.5", "12abc", "\u0661", "1 "):
        with pytest.raises(ValueError, match="not a valid number"):
            strtol(bad)


# ------------------------------------------------------------------ overrides


def test_overrides_win_and_are_located_on_the_command_line() -> None:
    cfg = parse_with_overrides('memory=256\nname="a"\n#c', "vm.cfg", ["memory=512", 'name="b"'])
    assert cfg.get_long("memory") == 512
    assert cfg.get_string("name") == "b"
    setting = cfg.find("memory")
    assert setting is not None
    assert setting.pos == Pos("<command line>", 1, 1)
    value = setting.value
    assert isinstance(value, Atom)
    assert value.pos == Pos("<command line>", 1, 8)
    assert cfg.pos_of("name") == Pos("<command line>", 2, 1)
    first = cfg.settings[0]
    assert first.pos == Pos("vm.cfg", 1, 1)


def test_override_errors_are_located_in_the_argument() -> None:
    with pytest.raises(ConfigSyntaxError) as info:
        parse_with_overrides("memory=256\n", "vm.cfg", ["vcpus=2", "name=vm1"])
    err = info.value
    assert (err.path, err.line, err.col, err.key) == ("<command line>", 2, 6, "name")
    with pytest.raises(ConfigSyntaxError) as info:
        parse_with_overrides("memory=256\n", "vm.cfg", ["vcpus=(2"])
    assert (info.value.path, info.value.line, info.value.col) == ("<command line>", 1, 7)
    with pytest.raises(ConfigError, match="not a KEY=VALUE setting") as plain_info:
        parse_with_overrides("memory=256\n", "vm.cfg", ["other.cfg"])
    assert (plain_info.value.path, plain_info.value.line) == ("<command line>", 1)


def test_file_errors_stay_in_the_file_with_overrides() -> None:
    with pytest.raises(ConfigSyntaxError) as info:
        parse_with_overrides("memory=256\nbad\n", "vm.cfg", ["vcpus=2"])
    assert (info.value.path, info.value.line) == ("vm.cfg", 2)


def test_no_overrides_is_plain_parse() -> None:
    with pytest.raises(ConfigSyntaxError):
        parse_with_overrides("a=1\n#x", "vm.cfg", [])
    assert parse_with_overrides("a=1\n#x", "vm.cfg", ["b=2"]).get_long("b") == 2


# ------------------------------------------------------------------ files and bytes


def test_parse_file(tmp_path: Path) -> None:
    path = tmp_path / "vm.cfg"
    path.write_bytes(b'name = "caf\xc3\xa9"\n')
    cfg = parse_file(path)
    assert cfg.get_string("name") == "caf\u00e9"
    assert cfg.path == str(path)
    path.write_bytes(b'name = "caf\xe9"\n')  # Latin-1, not UTF-8
    assert parse_file(path).get_string("name") == "caf\u00e9"


def test_parse_file_unreadable(tmp_path: Path) -> None:
    missing = tmp_path / "missing.cfg"
    with pytest.raises(ConfigError, match="cannot read the configuration file") as info:
        parse_file(missing)
    assert info.value.path == str(missing)
    assert info.value.fix
    with pytest.raises(ConfigError, match="cannot read"):
        parse_file(tmp_path)


def test_parse_bytes() -> None:
    assert parse(b"a='\xff'\n").get_string("a") == "\u00ff"


# ------------------------------------------------------------------ rendering


def test_render_value() -> None:
    assert render_value("plain") == '"plain"'
    assert render_value('q"\\\n\t') == '"q\\"\\\\\\n\\t"'
    assert render_value(512) == "512"
    assert render_value(-5) == '"-5"'
    assert render_value(True) == "1"
    assert render_value(["a", 1, ["b"], []]) == '[ "a", 1, [ "b" ], [ ] ]'
    assert render_value(Atom("0x10", Pos("x", 1, 1), quoted=False)) == "0x10"
    assert render_value(Atom("0x10", Pos("x", 1, 1), quoted=True)) == '"0x10"'
    assert render_value(Atom("abc", Pos("x", 1, 1), quoted=False)) == '"abc"'
    with pytest.raises(ValueError, match="NUL"):
        render_value("a\x00b")


def test_render_config_parses_back() -> None:
    long = [f"phy:/dev/vg/guest-{i},xvd{chr(97 + i)},w" for i in range(5)]
    text = render_config([("name", "vm1"), ("memory", 512), ("disk", long), ("extra", "a'b\"c")])
    assert text.startswith('name = "vm1"\nmemory = 512\ndisk = [\n')
    cfg = parse(text)
    assert values(cfg) == {"name": "vm1", "memory": "512", "disk": long, "extra": "a'b\"c"}
    with pytest.raises(ValueError, match=r"not a valid xl\.cfg key"):
        render_config([("Bad-Key", 1)])
