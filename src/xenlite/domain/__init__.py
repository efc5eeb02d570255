"""The domain engine (L3): what a Xen toolstack does for each domU, on QEMU.

- ``xspaths``  libxl's XenStore layout; the only place XenStore path strings are built
- ``state``    the lifecycle states, shutdown reasons, xl's state flags and ``require()``
- ``record``   the durable per-domain record and the persisted domid high-water mark
- ``live``     a live domain, the host facts the engine works with, an ``xl list`` row
- ``manager``  create/destroy/pause/unpause/rename/shutdown, QMP events and the on_* actions,
  rebuild after a daemon restart
- ``resources`` memory (mem-set/mem-max), scheduling (cgroups) and vCPU placement
- ``vcpu``     vCPU threads: affinity and the rows of xl vcpu-list
"""
