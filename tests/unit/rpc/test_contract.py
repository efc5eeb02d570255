"""The CLI <-> xenlited contract exists once: every method has one handler, and a DomainInfo
survives the wire as the CLI reads it."""

from __future__ import annotations

from xenlite.daemon.ops import Operations
from xenlite.rpc.contract import DomainInfo, Method, ShutdownReason, domain_info_from_json
from xenlite.rpc.protocol import HEADER, decode_body, encode_frame


def test_every_method_has_exactly_one_handler() -> None:
    # handlers() only binds methods: a bare instance is enough to read its keys.
    operations = object.__new__(Operations)
    handlers = operations.handlers()
    assert set(handlers) == set(Method)
    assert all(isinstance(name, Method) for name in handlers)


def test_a_domain_info_crosses_the_wire_unchanged() -> None:
    info = DomainInfo(
        domid=3, name="web01", uuid="8a4c0cba-5b6f-4d39-9e80-2d6f0b0c7d21",
        current_memkb=262144, outstanding_memkb=0, max_memkb=524288, vcpu_online=2,
        max_vcpus=4, running=False, blocked=True, paused=False, shutdown=True, dying=False,
        shutdown_reason=ShutdownReason.CRASH, cpu_time_ns=123, start_time=1.5,
        config={"c_info": {"name": "web01"}},
    )  # fmt: skip
    frame = encode_frame({"id": 1, "result": [info]})
    body = decode_body(frame[HEADER.size :])
    result = body["result"]
    assert isinstance(result, list)
    assert domain_info_from_json(result[0]) == info
    assert ShutdownReason.CRASH.code == 3  # libxl_shutdown_reason's IDL order
