"""The wire codec: header layout, incremental decoding, limits, string fields."""

from __future__ import annotations

import struct

import pytest

from xenlite.base.errors import XenStoreError
from xenlite.xenstore.wire import (
    ERROR_NAMES,
    HEADER_SIZE,
    PAYLOAD_MAX,
    Decoder,
    Op,
    Packet,
    ProtocolError,
    join_strings,
    split_strings,
)


def test_op_numbers_match_xs_wire_h() -> None:
    assert Op.CONTROL == 0
    assert Op.WRITE == 11
    assert Op.SET_TARGET == 19
    assert Op.RESET_WATCHES == 21
    assert Op.DIRECTORY_PART == 22
    assert Op.SET_QUOTA == 26
    assert Op.INVALID == 0xFFFF


def test_error_table_order() -> None:
    assert ERROR_NAMES[0] == "EINVAL"
    assert ERROR_NAMES[12] == "EAGAIN"
    assert ERROR_NAMES[-2:] == ("E2BIG", "EPERM")
    assert len(ERROR_NAMES) == 16


def test_encode_is_four_le_uint32_then_payload() -> None:
    data = Packet(Op.READ, 7, 3, b"/a\0").encode()
    assert len(data) == HEADER_SIZE + 3
    assert struct.unpack("<IIII", data[:16]) == (2, 7, 3, 3)
    assert data[16:] == b"/a\0"


def test_encode_refuses_oversized_payload() -> None:
    with pytest.raises(ProtocolError):
        Packet(Op.WRITE, 1, 0, b"x" * (PAYLOAD_MAX + 1)).encode()
    assert len(Packet(Op.WRITE, 1, 0, b"x" * PAYLOAD_MAX).encode()) == HEADER_SIZE + PAYLOAD_MAX


def test_decoder_reassembles_byte_by_byte() -> None:
    packets = [Packet(Op.READ, i, 0, b"/p%d\0" % i) for i in range(5)]
    stream = b"".join(p.encode() for p in packets)
    d = Decoder()
    got: list[Packet] = []
    for i in range(len(stream)):
        got += d.feed(stream[i : i + 1])
    assert got == packets
    assert d.pending == 0


def test_decoder_many_in_one_chunk_and_partial_tail() -> None:
    packets = [Packet(Op.WRITE, i, 9, b"x" * i) for i in range(100)]
    stream = b"".join(p.encode() for p in packets)
    d = Decoder()
    assert d.feed(stream[:-5]) == packets[:-1]
    assert d.pending == len(packets[-1].encode()) - 5
    assert d.feed(stream[-5:]) == packets[-1:]


def test_decoder_rejects_oversized_length_without_clamping() -> None:
    d = Decoder()
    header = struct.pack("<IIII", Op.WRITE, 1, 0, PAYLOAD_MAX + 1)
    with pytest.raises(ProtocolError) as info:
        d.feed(header)
    assert isinstance(info.value, XenStoreError)
    assert "4097" in str(info.value)


def test_split_and_join_strings() -> None:
    assert split_strings(b"") == []
    assert split_strings(b"a\0b\0") == [b"a", b"b"]
    assert split_strings(b"a\0b") == [b"a", b"b"]
    assert split_strings(b"\0") == [b""]
    assert join_strings(b"a", b"b") == b"a\0b\0"
    assert join_strings(b"a", b"b", trailing_nul=False) == b"a\0b"
