"""xenlite: a Xen-style virtualization host for Linux on QEMU.

Packages (layering, lower never imports higher; see DESIGN.md):

- ``base``      L0  errors, host paths, atomic writes, daemonising, subprocess helper, units
- ``config``    L1  xl.cfg grammar, disk/vif/pci/cpus specs, xl.conf, host boot options,
                    and the settings table (what xenlite does with each setting)
- ``xenstore``  L1  the XenStore daemon, its wire protocol and the client
- ``rpc``       L1  the CLI <-> xenlited contract: framing, methods, typed answers
- ``guestkit``  L2  the Debian-kernel + busybox test/demo guest
- ``qemu``      L2  argv from a domain model, accelerator probe, detached launch, QMP
- ``host``      L2  cgroups, the memory book
- ``domain``    L3  records, lifecycle, XenStore paths, create/destroy, recovery
- ``daemon``    L4  xenlited: RPC operations, consoles, dmesg, start/stop, XenStore link
- ``cli``       L5  the xl-compatible command line
"""

__version__ = "0.1.0"
# The Xen release whose xl behaviour and formats xenlite follows.
XEN_COMPAT_VERSION = "4.17"
