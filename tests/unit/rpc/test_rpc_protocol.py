"""protocol.py on its own: frames, message validation, the handshake, the error mapping."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from xenlite.base import errors
from xenlite.base.errors import (
    ConfigError,
    DaemonNotRunning,
    RpcError,
    XenliteError,
)
from xenlite.base.sockets import unix_address
from xenlite.config.xlcfg.grammar import ConfigSyntaxError
from xenlite.rpc import protocol
from xenlite.rpc.protocol import (
    HEADER,
    MAX_FRAME,
    PROTOCOL_VERSION,
    ErrorReply,
    Event,
    FrameDecoder,
    Reply,
    RpcCode,
    check_hello,
    decode_body,
    encode_frame,
    error_classes,
    error_from_wire,
    error_to_wire,
    incoming_from_wire,
    request_from_wire,
    socket_path,
)


def _protocol_error(excinfo: pytest.ExceptionInfo[RpcError]) -> RpcError:
    err = excinfo.value
    assert type(err) is RpcError
    assert err.code == RpcCode.PROTOCOL
    assert err.fix
    return err


# --------------------------------------------------------------------------- frames


def test_frame_is_big_endian_length_then_compact_utf8_json() -> None:
    frame = encode_frame({"id": 1, "result": "dom\u00e9"})
    body = '{"id":1,"result":"dom\u00e9"}'.encode()
    assert frame == len(body).to_bytes(4, "big") + body


def test_decoder_reassembles_frames_fed_byte_by_byte() -> None:
    stream = encode_frame({"a": 1}) + encode_frame({"b": [1, 2]}) + encode_frame({})
    decoder = FrameDecoder()
    out = []
    for i in range(len(stream)):
        out.extend(decoder.feed(stream[i : i + 1]))
    assert out == [{"a": 1}, {"b": [1, 2]}, {}]
    assert decoder.pending == 0


def test_decoder_refuses_an_oversized_frame_from_its_header_alone() -> None:
    with pytest.raises(RpcError) as excinfo:
        FrameDecoder().feed(HEADER.pack(MAX_FRAME + 1))
    assert "limit" in _protocol_error(excinfo).cause


def test_decoder_limit_is_configurable() -> None:
    decoder = FrameDecoder(max_frame=8)
    assert decoder.feed(encode_frame({"a": 1})) == [{"a": 1}]
    with pytest.raises(RpcError):
        decoder.feed(encode_frame({"a": 12345}))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"{", "JSON"),
        (b"[1, 2]", "list"),
        (b'"text"', "str"),
        (b'{"a": NaN}', "JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
    ],
)
def test_decoder_refuses_what_is_not_a_json_object(body: bytes, words: str) -> None:
    with pytest.raises(RpcError) as excinfo:
        decode_body(body)
    assert words in _protocol_error(excinfo).cause


def test_encoder_refuses_nan_and_unserialisable_values() -> None:
    with pytest.raises(ValueError, match="JSON"):
        encode_frame({"x": float("nan")})
    with pytest.raises(TypeError, match="object"):
        encode_frame({"x": object()})


def test_encoder_refuses_a_frame_over_the_limit() -> None:
    with pytest.raises(RpcError) as excinfo:
        encode_frame({"x": "a" * MAX_FRAME})
    assert excinfo.value.code == RpcCode.TOO_LARGE
    assert str(MAX_FRAME) in excinfo.value.cause


class _Colour(StrEnum):
    RED = "red"


@dataclasses.dataclass(frozen=True, slots=True)
class _Row:
    name: str
    domid: int
    colour: _Colour
    disk: Path


def test_encoder_carries_dataclasses_paths_enums_and_sets() -> None:
    frame = encode_frame({"rows": [_Row("web01", 3, _Colour.RED, Path("/img"))], "s": {2, 1}})
    assert json.loads(frame[4:]) == {
        "rows": [{"name": "web01", "domid": 3, "colour": "red", "disk": "/img"}],
        "s": [1, 2],
    }


# --------------------------------------------------------------------------- messages


def test_request_from_wire_accepts_a_well_formed_request() -> None:
    request = request_from_wire({"id": 7, "method": "domain.list", "params": {"long": True}})
    assert (request.id, request.method, request.params) == (7, "domain.list", {"long": True})
    assert request_from_wire({"id": "a", "method": "m"}).params == {}


@pytest.mark.parametrize(
    "obj",
    [
        {"method": "m"},
        {"id": True, "method": "m"},
        {"id": 1.5, "method": "m"},
        {"id": 1},
        {"id": 1, "method": ""},
        {"id": 1, "method": 3},
        {"id": 1, "method": "m", "params": [1]},
        {"id": 1, "method": "m", "params": {}, "extra": 1},
    ],
)
def test_request_from_wire_refuses_malformed_requests(obj: protocol.JsonObject) -> None:
    with pytest.raises(RpcError) as excinfo:
        request_from_wire(obj)
    _protocol_error(excinfo)


def test_incoming_from_wire_tells_results_events_and_errors_apart() -> None:
    reply = incoming_from_wire({"id": 1, "result": [1], "fds": 2})
    assert reply.message == Reply([1])
    assert reply.nfds == 2
    event = incoming_from_wire({"id": 1, "event": "progress", "data": {"step": 3}})
    assert event.message == Event("progress", {"step": 3})
    assert event.nfds == 0
    error = incoming_from_wire({"id": None, "error": error_to_wire(RpcError("w", "c"))})
    assert isinstance(error.message, ErrorReply)
    assert error.message.id is None
    assert str(error.message.error) == "w: c"


@pytest.mark.parametrize(
    "obj",
    [
        {"id": None, "result": 1},
        {"id": 1.0, "result": 1},
        {"id": 1},
        {"id": 1, "result": 1, "fds": -1},
        {"id": 1, "result": 1, "fds": protocol.MAX_FDS + 1},
        {"id": 1, "result": 1, "fds": True},
        {"id": 1, "error": "boom"},
        {"id": 1, "error": {"type": "RpcError"}},
    ],
)
def test_incoming_from_wire_refuses_malformed_frames(obj: protocol.JsonObject) -> None:
    with pytest.raises(RpcError) as excinfo:
        incoming_from_wire(obj)
    _protocol_error(excinfo)


# --------------------------------------------------------------------------- handshake


def test_hello_answers_with_the_server_and_its_version() -> None:
    answer = check_hello(protocol.hello_params("xl"), "xenlited")
    assert answer == {"protocol": PROTOCOL_VERSION, "server": "xenlited"}


def test_hello_from_a_newer_client_is_a_clear_version_mismatch() -> None:
    with pytest.raises(RpcError) as excinfo:
        check_hello({"protocol": PROTOCOL_VERSION + 1, "client": "xl 9"}, "xenlited")
    err = excinfo.value
    assert err.code == RpcCode.VERSION_MISMATCH
    assert f"xl 9 speaks protocol {PROTOCOL_VERSION + 1}" in err.cause
    assert f"xenlited speaks protocol {PROTOCOL_VERSION}" in err.cause
    assert "(xenlited is older)" in err.cause
    assert err.fix is not None
    assert "xenlite start" in err.fix


@pytest.mark.parametrize("params", [{}, {"protocol": "1"}, {"protocol": True}])
def test_hello_without_a_version_is_a_protocol_error(params: protocol.JsonObject) -> None:
    with pytest.raises(RpcError) as excinfo:
        check_hello(params, "xenlited")
    _protocol_error(excinfo)


# --------------------------------------------------------------------------- errors


def _sample(name: str, annotation: str) -> object:
    """A value for constructor parameter ``name`` typed ``annotation`` (a string here)."""
    if "Sequence" in annotation or "list" in annotation:
        return [f"{name}-0", f"{name}-1"]
    if annotation.startswith("int"):
        return 3
    return f"{name} text"


def _example(cls: type[XenliteError]) -> XenliteError:
    """One instance of ``cls``, built from its constructor's signature.

    Introspection rather than a table, so classes added to base/errors.py (or constructors
    changed there) are covered without touching this test.
    """
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        value = _sample(param.name, str(param.annotation))
        if param.kind == param.KEYWORD_ONLY:
            kwargs[param.name] = value
        else:
            args.append(value)
    return cls(*args, **kwargs)


def test_the_registry_holds_every_class_of_base_errors() -> None:
    classes = error_classes()
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, XenliteError)
    }
    assert set(classes) == defined
    assert {"XenliteError", "ConfigError", "RpcError", "DaemonNotRunning"} <= set(classes)


@pytest.mark.parametrize("name", sorted(error_classes()))
def test_every_error_class_is_recreated_as_itself(name: str) -> None:
    original = _example(error_classes()[name])
    wire = json.loads(json.dumps(error_to_wire(original)))  # what really crosses the socket
    copy = error_from_wire(wire)
    assert type(copy) is type(original)
    assert str(copy) == str(original)
    assert copy.args == original.args
    assert (copy.what, copy.cause, copy.fix) == (original.what, original.cause, original.fix)
    assert vars(copy) == vars(original)


def test_config_error_keeps_its_location_for_the_cli() -> None:
    copy = error_from_wire(
        error_to_wire(
            ConfigError(
                "unknown key 'brige'",
                path="web01.cfg",
                line=12,
                col=8,
                key="vif",
                fix="use bridge=",
            )
        )
    )
    assert isinstance(copy, ConfigError)
    assert str(copy) == "web01.cfg:12:8: vif: unknown key 'brige'"
    assert (copy.path, copy.line, copy.col, copy.key) == ("web01.cfg", 12, 8, "vif")


def test_a_subclass_from_elsewhere_travels_as_its_base_errors_ancestor() -> None:
    original = ConfigSyntaxError(
        "syntax error",
        path="a.cfg",
        line=1,
        col=2,
        fix="quote it",
        more=[ConfigError("second", path="a.cfg", line=4)],
    )
    wire = error_to_wire(original)
    assert wire["type"] == "ConfigError"
    copy = error_from_wire(json.loads(json.dumps(wire)))
    assert type(copy) is ConfigError
    assert str(copy) == str(original)
    more = copy.more  # type: ignore[attr-defined]
    assert len(more) == 1
    assert type(more[0]) is ConfigError
    assert str(more[0]) == "a.cfg:4: second"


def test_daemon_not_running_keeps_its_class_and_code() -> None:
    copy = error_from_wire(error_to_wire(DaemonNotRunning("xenlited", "down", "start it")))
    assert isinstance(copy, DaemonNotRunning)
    assert copy.code == DaemonNotRunning("a", "b").code


def test_an_unknown_error_type_becomes_an_rpc_error_with_the_same_message() -> None:
    copy = error_from_wire(
        {"type": "FutureError", "what": "dom 3", "cause": "new trouble", "fix": "upgrade"}
    )
    assert type(copy) is RpcError
    assert copy.code == RpcCode.UNKNOWN_ERROR_TYPE
    assert (str(copy), copy.fix) == ("dom 3: new trouble", "upgrade")


def test_data_cannot_overwrite_the_message_or_private_attributes() -> None:
    copy = error_from_wire(
        {
            "type": "HostError",
            "what": "w",
            "cause": "c",
            "fix": None,
            "data": {"what": "x", "args": [1], "_secret": 1, "__class__": "x", "not id": 1},
        }
    )
    assert type(copy) is errors.HostError
    assert (str(copy), copy.what, copy.args) == ("w: c", "w", ("w: c",))
    assert vars(copy) == {"what": "w", "cause": "c", "fix": None}


@pytest.mark.parametrize(
    "obj",
    [
        {"what": "w", "cause": "c"},
        {"type": "HostError", "cause": "c"},
        {"type": "HostError", "what": "w", "cause": 3},
        {"type": "HostError", "what": "w", "cause": "c", "fix": 1},
        {"type": "HostError", "what": "w", "cause": "c", "data": []},
    ],
)
def test_malformed_error_objects_are_protocol_errors(obj: protocol.JsonObject) -> None:
    with pytest.raises(RpcError) as excinfo:
        error_from_wire(obj)
    _protocol_error(excinfo)


# --------------------------------------------------------------------------- addresses


def test_socket_path_hangs_off_the_host_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XENLITED_SOCKET", raising=False)
    monkeypatch.setenv("XENLITE_ROOT", "/srv/host1")
    assert socket_path() == Path("/srv/host1/run/xenlite/xenlited.sock")
    monkeypatch.delenv("XENLITE_ROOT")
    assert socket_path() == Path("/run/xenlite/xenlited.sock")


def test_xenlited_socket_overrides_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XENLITE_ROOT", "/srv/host1")
    monkeypatch.setenv("XENLITED_SOCKET", "/tmp/x.sock")
    assert socket_path() == Path("/tmp/x.sock")


def test_long_paths_go_through_the_directory_descriptor(tmp_path: Path) -> None:
    short = tmp_path / "s.sock"
    assert unix_address(short) == (str(short), None)
    deep = tmp_path / ("d" * 150)
    deep.mkdir()
    address, dirfd = unix_address(deep / "s.sock")
    assert dirfd is not None
    try:
        assert address == f"/proc/self/fd/{dirfd}/s.sock"
        assert os.path.samefile(f"/proc/self/fd/{dirfd}", deep)
    finally:
        os.close(dirfd)
