"""xenlite: a Xen-style virtualization host for Linux on QEMU.

Packages (layering, lower never imports higher; see DESIGN.md):

- ``base``      L0  errors, host paths, subprocess helper, units
- ``config``    L1  xl.cfg grammar, disk/vif/pci/cpus specs, xl.conf, host boot options
- ``guestkit``  L2  the Debian-kernel + busybox test/demo guest
- ``cli``       L5  the xl-compatible command line
"""

__version__ = "0.1.0"
# The Xen release whose xl behaviour and formats xenlite follows.
XEN_COMPAT_VERSION = "4.17"
