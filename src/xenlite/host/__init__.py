"""The host's resources as Xen's hypervisor accounts for them.

memory.py  total memory, the dom0 reservation, autoballoon and admission control
cgroups.py one cgroup per domain: weight and cap (v1 and v2), cpusets
facts.py   what the host is: memory, CPU topology and clock, CPU and boot time
"""
