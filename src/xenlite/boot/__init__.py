"""The bootloader: a guest's kernel found inside its own disk, as pygrub finds it.

menu.py      a boot menu's model, pygrub's choice of entry and of kernel, ramdisk, args
grubmenu.py  GRUB legacy menu.lst and GRUB 2 grub.cfg
extlinux.py  extlinux / syslinux / isolinux configs
"""
