"""QEMU: how xenlite runs every domU.

Modules: ``accel`` (KVM-or-TCG probe: a short real guest under a deadline, cached per host
boot), ``binary`` (find qemu-system-x86_64 or device_model_override; cache what it offers),
``runpaths`` (a domain's sockets, pid file and logs), ``argv`` (DomainConfig -> command line,
pure; refuses what it cannot honour), ``process`` (detached launch, pid file, re-attach, kill)
and ``monitor`` (the only user of qemu.qmp: commands under timeouts, bounded events).
"""
