"""L1: the CLI <-> xenlited contract (DESIGN.md "Processes"): JSON frames on a unix socket.

- ``contract``  the method names and typed answers (DomainInfo, ShutdownReason) both ends use
- ``protocol``  framing, messages, the rpc.hello handshake, the XenliteError <-> wire mapping,
                the socket path
- ``client``    the blocking client ``xl`` uses (no asyncio: the CLI starts fast)
- ``server``    the asyncio server xenlited mounts its operations on
"""
