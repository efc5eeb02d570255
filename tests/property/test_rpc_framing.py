"""Round-trips of the RPC wire (xenlite.rpc.protocol): frames, messages and errors."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from xenlite.base.errors import ConfigError, RpcError, XenliteError
from xenlite.rpc.protocol import (
    MAX_FDS,
    ErrorReply,
    Event,
    FrameDecoder,
    JsonObject,
    JsonValue,
    Reply,
    encode_frame,
    error_classes,
    error_from_wire,
    error_reply_to_wire,
    error_to_wire,
    event_to_wire,
    incoming_from_wire,
    reply_to_wire,
    request_from_wire,
    request_to_wire,
)

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_JSON: st.SearchStrategy[JsonValue] = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_OBJECTS: st.SearchStrategy[JsonObject] = st.dictionaries(st.text(max_size=8), _JSON, max_size=5)
_IDS = st.integers(0, 2**31) | st.text(min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(st.lists(_OBJECTS, max_size=5), st.data())
def test_frames_survive_any_split_of_the_byte_stream(
    objects: list[JsonObject], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(obj) for obj in objects)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    decoder = FrameDecoder()
    out: list[JsonObject] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out.extend(decoder.feed(stream[start:cut]))
        start = cut
    assert out == objects
    assert decoder.pending == 0


@settings(max_examples=100, deadline=None)
@given(_IDS, st.text(min_size=1, max_size=20), _OBJECTS)
def test_requests_round_trip(rid: int | str, method: str, params: JsonObject) -> None:
    (obj,) = FrameDecoder().feed(encode_frame(request_to_wire(rid, method, params)))
    request = request_from_wire(obj)
    assert (request.id, request.method, request.params) == (rid, method, params)


@settings(max_examples=200, deadline=None)
@given(_IDS, _JSON, st.text(max_size=10), st.integers(0, MAX_FDS))
def test_replies_and_events_round_trip(
    rid: int | str, value: JsonValue, name: str, nfds: int
) -> None:
    (reply,) = FrameDecoder().feed(encode_frame(reply_to_wire(rid, value, nfds)))
    incoming = incoming_from_wire(reply)
    assert (incoming.id, incoming.message, incoming.nfds) == (rid, Reply(value), nfds)
    (event,) = FrameDecoder().feed(encode_frame(event_to_wire(rid, name, value, nfds)))
    incoming = incoming_from_wire(event)
    assert (incoming.id, incoming.message, incoming.nfds) == (rid, Event(name, value), nfds)


_TEXT = st.text(max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(error_classes())), _TEXT, _TEXT, st.none() | _TEXT)
def test_errors_round_trip_with_any_text(name: str, what: str, cause: str, fix: str | None) -> None:
    cls = error_classes()[name]
    try:
        original = cls(what, cause, fix)
    except TypeError:  # a constructor that needs more than (what, cause, fix)
        original = XenliteError(what, cause, fix)
    wire = json.loads(encode_frame(error_reply_to_wire(3, original))[4:])
    incoming = incoming_from_wire(wire)
    assert isinstance(incoming.message, ErrorReply)
    copy = incoming.message.error
    assert type(copy) is type(original)
    assert (str(copy), copy.what, copy.cause, copy.fix) == (
        str(original),
        original.what,
        original.cause,
        original.fix,
    )
    assert vars(copy) == vars(original)


@settings(max_examples=200, deadline=None)
@given(
    _TEXT,
    st.none() | _TEXT,
    st.none() | st.integers(1, 10**6),
    st.none() | st.integers(1, 500),
    st.none() | _TEXT,
    st.lists(_TEXT, max_size=3),
)
def test_config_errors_keep_their_location(
    cause: str,
    path: str | None,
    line: int | None,
    col: int | None,
    key: str | None,
    more: list[str],
) -> None:
    original = ConfigError(cause, path=path, line=line, col=col, key=key, fix="f")
    original.more = [ConfigError(m, path=path) for m in more]  # type: ignore[attr-defined]
    copy = error_from_wire(json.loads(json.dumps(error_to_wire(original))))
    assert isinstance(copy, ConfigError)
    assert str(copy) == str(original)
    assert (copy.path, copy.line, copy.col, copy.key) == (path, line, col, key)
    assert [str(m) for m in copy.more] == [str(m) for m in original.more]  # type: ignore[attr-defined]
    assert isinstance(RpcError("a", "b"), XenliteError)
