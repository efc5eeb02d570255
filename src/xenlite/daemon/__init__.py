"""xenlited, the toolstack daemon (L4), and the host services around it.

- ``main``        ``xenlite xenlited``: options, daemonising, the event loop
- ``rpc_server``  the RPC socket with one handler per operation
- ``ops``         the operations (host.info, host.dmesg, domain.*)
- ``dmesg``       the hypervisor-style log that ``xl dmesg`` prints
- ``consoles``    guest console logs and where ``xl console`` connects
- ``services``    ``xenlite start`` / ``xenlite stop`` (xencommons) and dom0's XenStore nodes
"""
