"""The command table, in the shape of xl's xl_cmdtable.c: one entry per verb.

Handlers are ``module:function`` strings so that ``xl --version`` and ``xl help`` import
nothing beyond this file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    handler: str  # "xenlite.cli.commands.module:function"
    summary: str
    usage: str
    options: str = ""
    modifies: bool = False  # accepts the global -f
    can_dryrun: bool = False  # accepts the global -N
    xenlite_only: bool = False  # a xenlite addition, not an xl verb


COMMANDS: tuple[Command, ...] = (
    Command(
        "create",
        "xenlite.cli.commands.create:main_create",
        "Create a domain from config file <filename>",
        "<ConfigFile> [options] [vars]",
        "-h                      Print this help.\n"
        "-p                      Leave the domain paused after it is created.\n"
        "-c                      Connect to the console after the domain is created.\n"
        "-f FILE, --defconfig=FILE\n"
        "                        Use the given configuration file.\n"
        "-q, --quiet             Quiet.\n"
        "-n, --dryrun            Dry run - prints the resulting configuration\n"
        "                         (deprecated in favour of global -N option).\n"
        "-d                      Enable debug messages.\n"
        "-F                      Run in foreground until death of the domain.\n"
        "-e                      Do not wait in the background for the death of the domain.\n"
        "                        (xenlite: xenlited supervises every domain, so xl never\n"
        "                        waits in the background; -e is accepted and changes nothing.)\n"
        "-V, --vncviewer         Connect to the VNC display after the domain is created.\n"
        "-A, --vncviewer-autopass\n"
        "                        Pass VNC password to viewer via stdin.\n"
        "                        (xenlite: without a vncviewer installed, the display's\n"
        "                        address is printed)",
        modifies=True,
        can_dryrun=True,
    ),
    Command(
        "list",
        "xenlite.cli.commands.domains:main_list",
        "List information about all/some domains",
        "[options] [Domain]",
        "-l, --long              Output all VM details\n"
        "-v, --verbose           Prints out UUIDs and security context\n"
        "-Z, --context           Prints out security context\n"
        "-c, --cpupool           Prints the cpupool the domain is in\n"
        "-n, --numa              Prints out NUMA node affinity\n"
        "                        (refused until xenlite tracks NUMA affinity)",
    ),
    Command(
        "destroy",
        "xenlite.cli.commands.domains:main_destroy",
        "Terminate a domain immediately",
        "[options] <Domain>",
        "-f                      Permit destroying domain 0, which will only succeed\n"
        "                        when run from disaggregated toolstack domain with a\n"
        "                        hardware domain distinct from domain 0.\n"
        "                        (xenlite: Domain-0 is the host; it is never destroyed.)",
        modifies=True,
    ),
    Command(
        "shutdown",
        "xenlite.cli.commands.domains:main_shutdown",
        "Issue a shutdown signal to a domain",
        "[options] <-a|Domain>",
        "-a, --all               Shutdown all guest domains.\n"
        "-h                      Print this help.\n"
        "-F                      Fallback to ACPI power event for HVM guests with\n"
        "                        no PV drivers. (xenlite always presses the ACPI\n"
        "                        power button next to writing control/shutdown.)\n"
        "-w, --wait              Wait for guest(s) to shutdown (twice: wait until\n"
        "                        the domain is gone).",
        modifies=True,
    ),
    Command(
        "reboot",
        "xenlite.cli.commands.domains:main_reboot",
        "Issue a reboot signal to a domain",
        "[options] <-a|Domain>",
        "-a, --all               Shutdown all guest domains.\n"
        "-h                      Print this help.\n"
        "-F                      Fallback to ACPI reset event for HVM guests with\n"
        "                        no PV drivers. (xenlite always resets the guest\n"
        "                        next to writing control/shutdown.)\n"
        "-w, --wait              Wait for guest(s) to reboot.",
        modifies=True,
    ),
    Command(
        "pause",
        "xenlite.cli.commands.domains:main_pause",
        "Pause execution of a domain",
        "<Domain>",
        modifies=True,
    ),
    Command(
        "unpause",
        "xenlite.cli.commands.domains:main_unpause",
        "Unpause a paused domain",
        "<Domain>",
        modifies=True,
    ),
    Command(
        "console",
        "xenlite.cli.commands.console:main_console",
        "Attach to domain's console",
        "[options] <Domain>",
        "-t <type>       console type, pv , serial or vuart\n"
        "                (xenlite: a domain's PV console is its serial port, so pv and\n"
        "                serial attach to the same console; vuart is refused)\n"
        "-n <number>     console number (xenlite domains have console 0 only)\n"
        "-e <escape>     escape character (default ^], i.e. Ctrl-])",
    ),
    Command(
        "vncviewer",
        "xenlite.cli.commands.vnc:main_vncviewer",
        "Attach to domain's VNC server.",
        "[options] <Domain>",
        "--autopass               Pass VNC password to viewer via stdin.\n"
        "(xenlite: without a vncviewer installed, the display's address is printed)",
    ),
    Command(
        "sysrq",
        "xenlite.cli.commands.console:main_sysrq",
        "Send a sysrq to a domain",
        "<Domain> <letter>",
        "(xenlite presses Alt+SysRq+<letter> on the guest's keyboard; letters 0-9, a-z)",
        modifies=True,
    ),
    Command(
        "trigger",
        "xenlite.cli.commands.console:main_trigger",
        "Send a trigger to a domain",
        "<Domain> <nmi|reset|init|power|sleep|s3resume> [<VCPU>]",
        "(xenlite: nmi, reset, power and s3resume through QEMU; init and sleep are refused,\n"
        "QEMU cannot do them; an NMI reaches every vCPU, so only VCPU 0 may be named)",
        modifies=True,
    ),
    Command(
        "vm-list",
        "xenlite.cli.commands.domains:main_vm_list",
        "List guest domains, excluding dom0, stubdoms, etc.",
        "",
    ),
    Command(
        "info",
        "xenlite.cli.commands.host:main_info",
        "Get information about Xen host",
        "[-n] [<Field>]",
        "-n, --numa         List host NUMA topology information\n"
        "                   (refused until xenlited reports the topology)\n"
        "<Field>            Print only the values of the fields that start with it.",
    ),
    Command(
        "domid",
        "xenlite.cli.commands.domains:main_domid",
        "Convert a domain name to domain id",
        "<DomainName>",
    ),
    Command(
        "domname",
        "xenlite.cli.commands.domains:main_domname",
        "Convert a domain id to domain name",
        "<DomainId>",
    ),
    Command(
        "mem-max",
        "xenlite.cli.commands.memory:main_mem_max",
        "Set the maximum amount reservation for a domain",
        "<Domain> <MemMB['b'[bytes]|'k'[KB]|'m'[MB]|'g'[GB]|'t'[TB]]>",
        "(xenlite: up to the size the domain's QEMU was built with, maxmem= or memory=)",
        modifies=True,
    ),
    Command(
        "mem-set",
        "xenlite.cli.commands.memory:main_mem_set",
        "Set the current memory usage for a domain",
        "<Domain> <MemMB['b'[bytes]|'k'[KB]|'m'[MB]|'g'[GB]|'t'[TB]]>",
        "(xenlite: through the guest's virtio balloon; for Domain-0, the host's reservation)",
        modifies=True,
    ),
    Command(
        "sched-credit",
        "xenlite.cli.commands.sched:main_sched_credit",
        "Get/set credit scheduler parameters",
        "[-d <Domain> [-w[=WEIGHT]|-c[=CAP]]] [-s [-t TSLICE] [-r RATELIMIT] [-m DELAY]] "
        "[-p CPUPOOL]",
        "-d DOMAIN, --domain=DOMAIN        Domain to modify\n"
        "-w WEIGHT, --weight=WEIGHT        Weight (int)\n"
        "-c CAP, --cap=CAP                 Cap (int)\n"
        "-s         --schedparam           Query / modify scheduler parameters\n"
        "-t TSLICE, --tslice_ms=TSLICE     Set the timeslice, in milliseconds\n"
        "-r RLIMIT, --ratelimit_us=RLIMIT  Set the scheduling rate limit, in microseconds\n"
        "-m DLY, --migration_delay_us=DLY  Set the migration delay, in microseconds\n"
        "-p CPUPOOL, --cpupool=CPUPOOL     Restrict output to CPUPOOL\n"
        "(xenlite: weight and cap go to the domain's cgroup; -t, -r and -m are refused,\n"
        "Linux's CFS has no such parameters)",
        modifies=True,
    ),
    Command(
        "sched-credit2",
        "xenlite.cli.commands.sched:main_sched_credit2",
        "Get/set credit2 scheduler parameters",
        "[-d <Domain> [-w[=WEIGHT]|-c[=CAP]]] [-s [-r RATELIMIT]] [-p CPUPOOL]",
        "-d DOMAIN, --domain=DOMAIN        Domain to modify\n"
        "-w WEIGHT, --weight=WEIGHT        Weight (int)\n"
        "-c CAP, --cap=CAP                 Cap (int)\n"
        "-s         --schedparam           Query / modify scheduler parameters\n"
        "-r RLIMIT, --ratelimit_us=RLIMIT  Set the scheduling rate limit, in microseconds\n"
        "-p CPUPOOL, --cpupool=CPUPOOL     Restrict output to CPUPOOL\n"
        "(xenlite: weight and cap go to the domain's cgroup; -r is refused)",
        modifies=True,
    ),
    Command(
        "vcpu-list",
        "xenlite.cli.commands.vcpu:main_vcpu_list",
        "List the VCPUs for all/some domains",
        "[Domain, ...]",
    ),
    Command(
        "block-attach",
        "xenlite.cli.commands.devices:main_block_attach",
        "Create a new virtual block device",
        "<Domain> <disk-spec-component(s)>...",
        modifies=True,
        can_dryrun=True,
    ),
    Command(
        "network-attach",
        "xenlite.cli.commands.network:main_network_attach",
        "Create a new virtual network device",
        "<Domain> [<nic-spec>]",
        modifies=True,
        can_dryrun=True,
    ),
    Command(
        "network-list",
        "xenlite.cli.commands.network:main_network_list",
        "List virtual network interfaces for a domain",
        "[-l] <Domain(s)>",
        "-l, --long              Each vif as its backend describes it, in JSON\n"
        "                        (beyond xl: bridge, script, ip, rate, gatewaydev)",
    ),
    Command(
        "network-detach",
        "xenlite.cli.commands.network:main_network_detach",
        "Destroy a domain's virtual network device",
        "<Domain> <DevId|mac>",
        modifies=True,
    ),
    Command(
        "block-list",
        "xenlite.cli.commands.devices:main_block_list",
        "List virtual block devices for a domain",
        "<Domain(s)>",
    ),
    Command(
        "block-detach",
        "xenlite.cli.commands.devices:main_block_detach",
        "Destroy a domain's virtual block device",
        "[option] <Domain> <DevId>",
        "-f, --force        forcefully detach the device (xenlite: QEMU cannot take a disk\n"
        "                   from a guest that holds it; the detach then fails and says so)",
        modifies=True,
    ),
    Command(
        "cd-insert",
        "xenlite.cli.commands.devices:main_cd_insert",
        "Insert a cdrom into a guest's cd drive",
        "<Domain> <VirtualDevice> <path-to-cdrom-image>",
        "(xenlite: PV and PVH guests have cdrom drives too, not only HVM guests)",
        modifies=True,
    ),
    Command(
        "cd-eject",
        "xenlite.cli.commands.devices:main_cd_eject",
        "Eject a cdrom from a guest's cd drive",
        "<Domain> <VirtualDevice>",
        "(xenlite: PV and PVH guests have cdrom drives too, not only HVM guests)",
        modifies=True,
    ),
    Command(
        "vcpu-pin",
        "xenlite.cli.commands.vcpu:main_vcpu_pin",
        "Set which CPUs a VCPU can use",
        "[option] <Domain> <VCPU|all> <Hard affinity|-|all> <Soft affinity|-|all>",
        "-f, --force        undo an override pinning done by the kernel\n"
        "(xenlite: the hard affinity is the vCPU thread's CPU affinity; a soft affinity is\n"
        "recorded and shown, but Linux has no soft affinity to steer the thread with)",
        modifies=True,
    ),
    Command(
        "vcpu-set",
        "xenlite.cli.commands.vcpu:main_vcpu_set",
        "Set the number of active VCPUs allowed for the domain",
        "[option] <Domain> <vCPUs>",
        "-i, --ignore-host  Don't limit the vCPU based on the host CPU count\n"
        "(xenlite: QEMU's CPU hot-plug by ACPI, up to maxvcpus; the guest onlines a new\n"
        "vCPU, and must let a removed one go)",
        modifies=True,
    ),
    Command(
        "cpupool-create",
        "xenlite.cli.commands.cpupool:main_cpupool_create",
        "Create a new CPU pool",
        "[options] [<ConfigFile>] [Variable=value ...]",
        "-h, --help                   Print this help.\n"
        "-f FILE, --defconfig=FILE    Use the given configuration file.\n"
        "-n, --dryrun                 Dry run - prints the resulting configuration.\n"
        "                              (deprecated in favour of global -N option).\n"
        "(xenlite: the pool's CPUs are the cpuset of each of its domains' cgroups)",
        modifies=True,
        can_dryrun=True,
    ),
    Command(
        "cpupool-list",
        "xenlite.cli.commands.cpupool:main_cpupool_list",
        "List CPU pools on host",
        "[-c|--cpus] [<CPU Pool>]",
        "-c, --cpus                     Output list of CPUs used by a pool",
    ),
    Command(
        "cpupool-destroy",
        "xenlite.cli.commands.cpupool:main_cpupool_destroy",
        "Deactivates a CPU pool",
        "<CPU Pool>",
        modifies=True,
    ),
    Command(
        "cpupool-rename",
        "xenlite.cli.commands.cpupool:main_cpupool_rename",
        "Renames a CPU pool",
        "<CPU Pool> <new name>",
        modifies=True,
    ),
    Command(
        "cpupool-cpu-add",
        "xenlite.cli.commands.cpupool:main_cpupool_cpu_add",
        "Adds a CPU to a CPU pool",
        "<CPU Pool> <CPU nr>|node:<node nr>",
        modifies=True,
    ),
    Command(
        "cpupool-cpu-remove",
        "xenlite.cli.commands.cpupool:main_cpupool_cpu_remove",
        "Removes a CPU from a CPU pool",
        "<CPU Pool> <CPU nr>|node:<node nr>",
        modifies=True,
    ),
    Command(
        "cpupool-migrate",
        "xenlite.cli.commands.cpupool:main_cpupool_migrate",
        "Moves a domain into a CPU pool",
        "<Domain> <CPU Pool>",
        "(xenlite: the domain's cgroup cpuset takes the pool's CPUs; its vCPUs' affinity\n"
        "is reset, as Xen resets it)",
        modifies=True,
    ),
    Command(
        "cpupool-numa-split",
        "xenlite.cli.commands.cpupool:main_cpupool_numa_split",
        "Splits up the machine into one CPU pool per NUMA node",
        "",
        modifies=True,
    ),
    Command(
        "rename",
        "xenlite.cli.commands.domains:main_rename",
        "Rename a domain",
        "<Domain> <NewDomainName>",
        modifies=True,
    ),
    Command(
        "dmesg",
        "xenlite.cli.commands.host:main_dmesg",
        "Read and/or clear dmesg buffer",
        "[-c]",
        "  -c                        Clear dmesg buffer as well as printing it",
    ),
    Command(
        "uptime",
        "xenlite.cli.commands.domains:main_uptime",
        "Print uptime for all/some domains",
        "[-s] [Domain]",
    ),
    Command(
        "help",
        "xenlite.cli.main:main_help",
        "Print help about commands",
        "[--long] [<subcommand>]",
        "--long                  Print the usage of every subcommand.",
    ),
    Command(
        "guest-kit",
        "xenlite.cli.commands.guestkit:main_guest_kit",
        "Build the test/demo guest (Debian cloud kernel + busybox initramfs)",
        "build [--out DIR] [--force] | boot [--timeout S] [--append ARGS]",
        "build                   Build (or reuse from the cache) the kernel and initramfs;\n"
        "                        prints their paths.\n"
        "  --out DIR             Also place copies of the kernel and initramfs in DIR.\n"
        "  --force               Rebuild even when the cache is current.\n"
        "boot                    Boot the kit under QEMU to its ready marker, then power\n"
        "                        it off through the ACPI power button.\n"
        "  --timeout S           Give up after S seconds (default 60).\n"
        "  --append ARGS         Extra kernel command line (e.g. xenlite.cpuburn=1).",
        xenlite_only=True,
    ),
    Command(
        "create-image",
        "xenlite.cli.commands.images:main_create_image",
        "Make a guest that boots: disk, system, bootloader config and xl.cfg (xen-create-image)",
        "--hostname NAME (--dir DIR | --lvm VG) [--dist busybox|bookworm|trixie] [--size 4G] "
        "[--swap 128M | --noswap] [--memory 256M] [--vcpus 1] [--ip ADDR... [--netmask M] "
        "[--gateway GW] [--nameserver NS] | --dhcp] [--mac MAC] [--bridge BR] [--pygrub] "
        "[--image sparse|full] [--fs ext4|ext3|ext2] [--mirror URL] [--cache yes|no] "
        "[--cachedir DIR] [--password PW] [--output DIR] [--force]",
        "--hostname NAME         The guest's host name and domain name.\n"
        "--dir DIR               Image files in DIR/domains/NAME/ (disk.img: partition 1 the\n"
        "                        root filesystem, partition 2 swap).\n"
        "--lvm VG                A logical volume NAME-disk in VG (needs device-mapper).\n"
        "--dist D                busybox (default: the host's static busybox and the guest\n"
        "                        kit's kernel, in seconds), bookworm or trixie (debootstrap\n"
        "                        from --mirror, default http://deb.debian.org/debian:\n"
        "                        systemd, Debian's cloud kernel, ifupdown; about a minute).\n"
        "--cache yes|no          Keep debootstrap's packages for the next image (default\n"
        "                        yes), in --cachedir (default /var/cache/xenlite/debootstrap).\n"
        "--password PW           Debian: root's password (default: made up and shown).\n"
        "--size S, --swap S      Root filesystem (default 4G) and swap (default 128M) sizes;\n"
        "                        --noswap for none. A bare number is MiB.\n"
        "--memory M, --vcpus N   The domain's memory (default 256M) and vCPUs (default 1).\n"
        "--ip ADDR               A static address (repeat for more) with --netmask (default\n"
        "                        255.255.255.0), --gateway and --nameserver; the vif gets\n"
        "                        ip= too. --dhcp (the default): the guest asks by DHCP.\n"
        "--mac MAC, --bridge BR  The vif's MAC address and bridge.\n"
        "--pygrub                Boot with pygrub from the image's /boot/grub/grub.cfg;\n"
        "                        without it the kernel is copied beside the image.\n"
        "--image sparse|full     A sparse image file (default) or every block allocated now.\n"
        "--fs F                  The root filesystem: ext4 (default), ext3 or ext2.\n"
        "--output DIR            Where the xl.cfg goes (default /etc/xen).\n"
        "--force                 Replace an image and config of the same name.",
        xenlite_only=True,
    ),
    Command(
        "delete-image",
        "xenlite.cli.commands.images:main_delete_image",
        "Delete images made by create-image, with their configs (xen-delete-image)",
        "[--dir DIR | --lvm VG] [--output DIR] NAME...",
        "--dir DIR, --lvm VG     Where the image is (default: read from its config's disk).\n"
        "--output DIR            Where its xl.cfg is (default /etc/xen).\n"
        "A running guest's image is skipped.",
        xenlite_only=True,
    ),
    Command(
        "list-images",
        "xenlite.cli.commands.images:main_list_images",
        "List the guests configured in /etc/xen (xen-list-images)",
        "[--output DIR]",
        "--output DIR            Read the configs of DIR instead of /etc/xen.",
        xenlite_only=True,
    ),
    Command(
        "config",
        "xenlite.cli.commands.config:main_config",
        "Read and translate host configuration files",
        "import-xend <xend-config.sxp> | xlconf [<xl.conf>] | bootopts <cmdline>|--grub <file> "
        "| settings [--json] [<name>...]",
        "import-xend FILE        Print the xl.conf equivalent of a legacy xend-config.sxp.\n"
        "xlconf [FILE]           Print the toolstack settings read from xl.conf as JSON\n"
        "                        (default /etc/xen/xl.conf; xl's defaults when absent).\n"
        "bootopts CMDLINE        Print the Xen command line options as JSON.\n"
        "bootopts --grub FILE    Read GRUB_CMDLINE_XEN(_DEFAULT) from a grub defaults file.\n"
        "settings [--json] [NAME...]\n"
        "                        Print what xenlite does with each xl.cfg key, Xen boot\n"
        "                        option and xl.conf key (the settings table).",
        xenlite_only=True,
    ),
    Command(
        "pygrub",
        "xenlite.cli.commands.pygrub:main_pygrub",
        "Find a guest's kernel in its disk image, as Xen's pygrub",
        "[-q|--quiet] [-i|--interactive] [-l|--list-entries] [-n|--not-really] [--output=] "
        "[--kernel=] [--ramdisk=] [--args=] [--entry=] [--output-directory=] "
        "[--output-format=sxp|simple|simple0] [--offset=] [--isconfig] <image>",
        "-q, --quiet             Boot the default (or --entry) without the menu.\n"
        "-i, --interactive       Show the menu on the terminal (the default without -q).\n"
        "-l, --list-entries      List the boot entries and exit.\n"
        "-n, --not-really        Choose, print the paths inside the guest, copy nothing.\n"
        "--entry=N|TITLE         Boot entry N (from 0) or the entry with this title.\n"
        "--kernel=P --ramdisk=P  Copy these files out of the image instead of reading a menu.\n"
        "--args=ARGS             Append ARGS to the entry's kernel command line.\n"
        "--output=FILE           Write the result to FILE instead of stdout.\n"
        "--output-format=F       sxp (default), simple or simple0 (NUL-separated).\n"
        "--output-directory=DIR  Copy the kernel and ramdisk into DIR\n"
        "                        (default /var/run/xen/pygrub under the host root).\n"
        "--offset=BYTES          Read the filesystem at this byte offset of the image.\n"
        "--isconfig              <image> is a boot config file: print what it chooses.\n"
        "Reads raw and qcow2 images (any format QEMU reads), MBR and GPT partitions,\n"
        "ext2/3/4, FAT and ISO 9660; GRUB legacy, GRUB 2 and extlinux configs.",
        xenlite_only=True,
    ),
    Command(
        "demo",
        "xenlite.cli.commands.demo:main_demo",
        "Show xenlite working: run the built-in demo domain on a private host",
        "[--print-config] [--no-boot]",
        "--print-config          Print the built-in demo domain config and exit.\n"
        "--no-boot               Only dry-run the demo config; do not start a host.",
        xenlite_only=True,
    ),
    Command(
        "xenstored",
        "xenlite.cli.commands.xenstore:main_xenstored",
        "Run the XenStore daemon",
        "[--no-fork] [--socket PATH] [--pid-file FILE] [--persist FILE] [quota options]",
        "See 'xenlite xenstored --help' for every option.",
        xenlite_only=True,
    ),
    Command(
        "xenstore-read",
        "xenlite.cli.commands.xenstore:main_xenstore_read",
        "Read values from XenStore",
        "[-p] [-s] [-R] PATH...",
        xenlite_only=True,
    ),
    Command(
        "xenstore-write",
        "xenlite.cli.commands.xenstore:main_xenstore_write",
        "Write values to XenStore",
        "[-s] [-R] PATH VALUE [PATH VALUE]...",
        xenlite_only=True,
    ),
    Command(
        "xenstore-rm",
        "xenlite.cli.commands.xenstore:main_xenstore_rm",
        "Remove XenStore nodes",
        "[-s] [-t] PATH...",
        xenlite_only=True,
    ),
    Command(
        "xenstore-list",
        "xenlite.cli.commands.xenstore:main_xenstore_list",
        "List the children of XenStore nodes",
        "[-p] [-s] PATH...",
        xenlite_only=True,
    ),
    Command(
        "xenstore-ls",
        "xenlite.cli.commands.xenstore:main_xenstore_ls",
        "Show a XenStore subtree",
        "[-p] [-f] [-s] [PATH]...",
        xenlite_only=True,
    ),
    Command(
        "xenstore-exists",
        "xenlite.cli.commands.xenstore:main_xenstore_exists",
        "Test whether XenStore nodes exist",
        "[-s] PATH...",
        xenlite_only=True,
    ),
    Command(
        "xenstore-chmod",
        "xenlite.cli.commands.xenstore:main_xenstore_chmod",
        "Set the permissions of XenStore nodes",
        "[-r] [-s] [-u] PATH PERM...",
        xenlite_only=True,
    ),
    Command(
        "xenstore-watch",
        "xenlite.cli.commands.xenstore:main_xenstore_watch",
        "Watch XenStore nodes for changes",
        "[-n NR] [-s] PATH...",
        xenlite_only=True,
    ),
    Command(
        "network-bridge",
        "xenlite.cli.commands.netbridge:main_network_bridge",
        "Make, show or take down a bridge for vifs, as Xen's network-bridge script",
        "start|stop|status [bridge=NAME] [netdev=IF] [--force]",
        "bridge=NAME        the bridge (xenbr0)\n"
        "netdev=IF          start: the uplink to enslave, its addresses and routes moved\n"
        "                   to the bridge (and back on stop); none: a private network\n"
        "-f, --force        start: move even the interface of the default route",
        xenlite_only=True,
    ),
    Command(
        "start",
        "xenlite.daemon.services:main_start",
        "Start the host services (xenstored and xenlited), as Xen's xencommons",
        "[--no-xenstored]",
        xenlite_only=True,
    ),
    Command(
        "stop",
        "xenlite.daemon.services:main_stop",
        "Stop the host services",
        "",
        xenlite_only=True,
    ),
    Command(
        "xenlited",
        "xenlite.daemon.main:main_xenlited",
        "Run the toolstack daemon",
        "[--no-fork] [--pid-file FILE] [--log-file FILE]",
        xenlite_only=True,
    ),
)

BY_NAME = {c.name: c for c in COMMANDS}

# xl verbs that a later xenlite release provides; named so that a user gets an honest answer.
_NOT_YET_TEXT = """
    config-update pci-attach pci-detach pci-list pci-assignable-add pci-assignable-remove
    pci-assignable-list save migrate restore migrate-receive dump-core
    button-press sharing
    sched-rtds debug-keys set-parameters top
    channel-list
    vtpm-attach vtpm-list vtpm-detach vdispl-attach vdispl-list vdispl-detach
    vsnd-attach vsnd-list vsnd-detach claims
    getenforce setenforce loadpolicy remus devd psr-hwinfo psr-cmt-attach psr-cmt-detach
    psr-cmt-show psr-cat-set psr-cat-show psr-mba-set psr-mba-show usbctrl-attach
    usbctrl-detach usbdev-attach usbdev-detach usb-list qemu-monitor-command suspend resume
"""
XL_VERBS_NOT_YET = frozenset(_NOT_YET_TEXT.split())
