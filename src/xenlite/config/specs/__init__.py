"""The spec grammars of the device and CPU man pages: disk, vif, pci and cpus specs."""
