"""L1: every Xen configuration file an administrator has, read exactly as Xen reads it.

- ``values``    source positions and the value tree of xl.cfg (atoms, lists)
- ``cnum``      C's number readers (strtol, strtoul, atoi, sscanf %x, Xen's simple_strtoull)
- ``cursor``    a line/column-tracking reading position shared by the hand-written readers
- ``lexer``     the xl.cfg tokens (libxlu's flex scanner): positions, unescaping, Python hints
- ``grammar``   the xl.cfg parser (libxlu's language), typed getters, overrides, rendering
- ``disk``, ``vif``, ``pci``, ``cpus``   one spec grammar per man page
- ``choices``   the model's enumerations (libxl's Enumeration types) as StrEnums
- ``model``     the typed domain model (libxl_domain_config); re-exports ``choices``
- ``domain``    xl.cfg keys -> DomainConfig, as xl's parser does (the public entry points)
- ``domain_reader``   typed, located key reads and C string helpers shared by domain_*
- ``domain_core``     type, name, uuid, memory, vcpus, boot, device-model and on_* keys
- ``domain_hvm``      HVM-only keys: firmware, platform features, display, USB
- ``domain_devices``  the device lists (disk, vif, pci, vfb, vkb, vsnd, channel, usb, ...)
- ``domain_render``   DomainConfig -> xl.cfg text
- ``libxl_json``  DomainConfig -> the JSON `xl create -n` prints
- ``xlconf``    /etc/xen/xl.conf
- ``bootopts``  the Xen command line (dom0_mem=, sched=, ...): the model and the public API
- ``boot_sizes``    command-line sizes, dom0_mem= and dom0's share of a host
- ``grub_default``  GRUB_CMDLINE_XEN(_DEFAULT) out of /etc/default/grub
- ``xend``      legacy xend-config.sxp and its xl.conf translation
- ``settings``  the settings table: what xenlite does with every key, option and field

Only ``xenlite.base`` and the standard library are imported here.
"""
