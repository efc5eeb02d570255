"""L1: every Xen configuration file an administrator has, read exactly as Xen reads it.

Four jobs, one sub-package each, and what they share:

- ``xlcfg``     the xl.cfg language (libxlu): ``values`` (source positions and the value
                tree), ``lexer`` (tokens, unescaping), ``grammar`` (parser, typed getters,
                command-line overrides, rendering)
- ``specs``     one spec grammar per man page: ``disk``, ``vif``, ``pci``, ``cpus``
- ``domain``    the domain model and its builder: ``choices`` (libxl's enumerations),
                ``model`` (libxl_domain_config), ``build`` (xl.cfg keys -> DomainConfig, the
                public entry points), ``reader`` (typed, located key reads), ``core``,
                ``hvm``, ``devices`` (the key families), ``render`` (-> xl.cfg text),
                ``libxl_json`` (-> the JSON ``xl create -n`` prints, and back)
- ``hostconf``  host configuration: ``xlconf`` (/etc/xen/xl.conf), ``bootopts`` (the Xen
                command line), ``boot_sizes`` (its sizes, dom0_mem=), ``grub_default``
                (GRUB_CMDLINE_XEN), ``xend`` (xend-config.sxp), ``cursor`` (the line/column
                reading position of the hand-written readers)
- ``cnum``      C's number readers (strtol, strtoul, atoi, sscanf %x, simple_strtoull),
                shared by all four
- ``settings``  the settings table: what xenlite does with every key, option and field

Dependencies run one way: xlcfg <- specs <- domain, xlcfg <- hostconf <- domain, settings
reads the model and xl.conf and domain.build reads settings. The sub-packages' own
``__init__`` modules import nothing, so ``specs`` can use ``domain.model`` while
``domain.devices`` uses ``specs``.

Only ``xenlite.base`` and the standard library are imported here.
"""
