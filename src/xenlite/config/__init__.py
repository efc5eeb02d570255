"""L1: every Xen configuration file an administrator has, read exactly as Xen reads it.

- ``values``    source positions and the value tree of xl.cfg (atoms, lists)
- ``grammar``   the xl.cfg lexer and parser (libxlu's language), overrides, rendering
- ``disk``, ``vif``, ``pci``, ``cpus``   one spec grammar per man page
- ``model``     the typed domain model (libxl_domain_config)
- ``domain``    xl.cfg keys -> DomainConfig, as xl's parser does
- ``libxl_json``  DomainConfig -> the JSON `xl create -n` prints
- ``xlconf``    /etc/xen/xl.conf
- ``bootopts``  the Xen command line (dom0_mem=, sched=, ...)
- ``xend``      legacy xend-config.sxp and its xl.conf translation

Only ``xenlite.base`` and the standard library are imported here.
"""
