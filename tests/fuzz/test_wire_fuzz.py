"""Fuzz the frame decoder: arbitrary bytes, in arbitrary chunks, only ever give ProtocolError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xenlite.xenstore.wire import HEADER_SIZE, PAYLOAD_MAX, Decoder, Packet, ProtocolError


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(1, 64), max_size=40))
def test_decoder_only_raises_protocol_error(data: bytes, cuts: list[int]) -> None:
    d = Decoder()
    pos = 0
    total = 0
    try:
        for cut in [*cuts, len(data)]:
            for p in d.feed(data[pos : pos + cut]):
                assert len(p.payload) <= PAYLOAD_MAX
                total += HEADER_SIZE + len(p.payload)
            pos += cut
    except ProtocolError:
        return
    assert total + d.pending == min(pos, len(data))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**32 - 1),
            st.binary(max_size=300),
        ),
        max_size=20,
    ),
    st.integers(1, 97),
)
def test_roundtrip_any_chunking(fields: list[tuple[int, int, int, bytes]], chunk: int) -> None:
    packets = [Packet(*f) for f in fields]
    stream = b"".join(p.encode() for p in packets)
    d = Decoder()
    got: list[Packet] = []
    for i in range(0, len(stream), chunk):
        got += d.feed(stream[i : i + chunk])
    assert got == packets
