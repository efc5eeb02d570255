"""Host configuration: xl.conf, the Xen command line (and GRUB's copy of it), xend-config.sxp."""
