"""L0: standard-library-only foundations.

- ``errors``  the XenliteError tree
- ``proc``    the one subprocess helper
- ``units``   memory sizes and their suffixes
- ``paths``   per-user cache and host-root paths
- ``sockets`` unix-socket connect/bind (long paths) and closing mixins
"""
