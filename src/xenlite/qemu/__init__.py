"""QEMU: how xenlite runs every domU.

Modules: ``accel`` (KVM-or-TCG probe: a short real guest under a deadline, cached per host
boot). The argv builder, process launcher and QMP monitor live beside it as they land.
"""
