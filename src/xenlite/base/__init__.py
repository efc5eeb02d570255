"""L0: standard-library-only foundations.

- ``errors``  the XenliteError tree
- ``proc``    the one subprocess helper
- ``units``   memory sizes and their suffixes
- ``paths``   per-user cache and host-root paths
- ``sockets`` unix-socket connect/bind (long paths) and closing mixins
- ``files``   the one atomic write (temporary file, fsync, rename, fsync of the directory)
- ``daemonise``  detach a daemon; the command returns once it serves, or with its reason
- ``crashpoint`` named kill -9 points for the crash-only tests (XENLITE_CRASH_AT)
"""
