"""L5: the xl-compatible command line (``xl`` and ``xenlite`` are the same program).

- ``main``      entry point: global options, dispatch, the one error -> exit-code mapping
- ``table``     the command table (xl_cmdtable-style): names, usage, option help, handlers
- ``getopt``    xl's option parsing (GNU getopt with permutation)
- ``commands``  one module per verb group, imported only when its verb runs

The CLI imports only ``xenlite.base``, ``xenlite.config`` and (later) ``xenlite.rpc`` at
module level, and keeps start-up fast: handlers are dotted names imported lazily.
"""
