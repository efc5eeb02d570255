"""The host's resources as Xen's hypervisor accounts for them.

memory.py  total memory, the dom0 reservation, autoballoon and admission control
"""
