"""The guest kit: a Debian cloud kernel and a busybox initramfs to boot test and demo guests.

Modules: ``build`` (resolve, fetch, assemble and cache the kit), ``cpio`` (the newc writer),
``boot`` (boot a kit under QEMU to its ready marker and power it off), ``init.sh`` (the
guest's /init).
"""
