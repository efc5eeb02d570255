#!/bin/sh
# /init of the xenlite guest kit: busybox sh running as PID 1 in the initramfs.
#
# Boot: mount proc/sys/devtmpfs, load the virtio and ACPI button modules listed by the kit
# builder, configure the network from the kernel-style ip= option, start acpid and uevent
# (which onlines the vCPUs xl vcpu-set plugs), print
# "xenlite-guest: ready" on the console, then keep a shell on the serial console.
#
# Kernel command-line switches (read from /proc/cmdline):
#   ip=off | ip=dhcp | ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>[:<dns0>:<dns1>]
#   xenlite.cpuburn=N  start N CPU-bound busy loops once ready
#   xenlite.panic=1    crash the kernel (sysrq c) once ready
#   xenlite.reboot=1   reboot once ready, on EVERY boot: the initramfs keeps no state across a
#                      reboot and the switch stays on the command line, so whoever boots with it
#                      stops the guest after seeing it reboot.
#   root=DEV [ro|rw] [rootfstype=T] [init=PATH]
#                      boot the system installed on DEV (/dev/..., UUID=... or LABEL=...) as
#                      Debian's initramfs does: load the modules, mount it, switch_root to its
#                      init (default /sbin/init). The installed system says "ready" itself; if
#                      DEV cannot be booted (a config written for another kernel's root) the
#                      initramfs says why and goes on as the kit's own system.
#
# Shutdown: busybox halt/poweroff/reboot (without -f) signal PID 1 with USR1/USR2/TERM, and the
# ACPI power button (QMP system_powerdown) runs /etc/acpi/PWRF/00000080 via busybox acpid, which
# sends USR2. PID 1 then stops every process, syncs, unmounts and calls poweroff -f.

PATH=/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
TERM=${TERM:-linux}
export PATH HOME TERM
umask 022

say() {
	echo "xenlite-guest: $*"
}

mount_filesystems() {
	mkdir -p /proc /sys /dev /tmp /run /root /var/log
	mount -t proc -o nosuid,nodev,noexec proc /proc
	mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
	mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev
	mkdir -p /dev/pts /dev/shm
	mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
	mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
	mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
	mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
	ln -sf /run /var/run
}

# devtmpfs creates the nodes of devices the kernel knows; these are the ones a shell and
# busybox expect even when a driver is missing or devtmpfs could not be mounted.
make_device_nodes() {
	node() {
		[ -e "$1" ] || mknod -m "$2" "$1" "$3" "$4" "$5"
	}
	node /dev/console 600 c 5 1
	node /dev/null 666 c 1 3
	node /dev/zero 666 c 1 5
	node /dev/full 666 c 1 7
	node /dev/random 666 c 1 8
	node /dev/urandom 666 c 1 9
	node /dev/kmsg 644 c 1 11
	node /dev/tty 666 c 5 0
	node /dev/ptmx 666 c 5 2
	node /dev/ttyS0 660 c 4 64
	[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
	[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
	[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
	[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
}

# Each line of the list is "<module name> <path under /lib/modules>", dependencies first.
# Modules built into this kernel are left out by the builder; /sys/module covers the rest.
load_modules() {
	list=/lib/modules/$(uname -r)/xenlite-modules
	[ -r "$list" ] || {
		say "no module list for kernel $(uname -r); virtio devices will be missing"
		return 0
	}
	while read -r name file; do
		[ -n "$name" ] || continue
		[ -d "/sys/module/$name" ] && continue
		insmod "/lib/modules/$file" || say "could not load module $name ($file)"
	done <"$list"
}

write_helpers() {
	mkdir -p /etc/acpi/PWRF
	cat >/etc/acpi/PWRF/00000080 <<-'EOF'
		#!/bin/sh
		# busybox acpid runs this on the ACPI power button (KEY_POWER): power off via PID 1.
		kill -USR2 1
	EOF
	chmod 0755 /etc/acpi/PWRF/00000080

	cat >/etc/profile <<-'EOF'
		export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
		PS1='\h:\w\$ '
	EOF
	echo "root:x:0:0:root:/root:/bin/sh" >/etc/passwd
	echo "root:x:0:" >/etc/group
}

# The first network interface that is not loopback, waiting briefly for the driver.
first_interface() {
	tries=0
	while [ "$tries" -lt 30 ]; do
		for path in /sys/class/net/*; do
			name=${path##*/}
			[ "$name" = lo ] || [ ! -e "$path" ] || {
				echo "$name"
				return 0
			}
		done
		tries=$((tries + 1))
		sleep 0.1
	done
	return 1
}

wait_for_interface() {
	tries=0
	while [ ! -e "/sys/class/net/$1" ]; do
		[ "$tries" -lt 30 ] || return 1
		tries=$((tries + 1))
		sleep 0.1
	done
}

start_dhcp() {
	dev=$1
	hostname_wanted=$2
	ip link set dev "$dev" up
	# Foreground until a lease or five one-second attempts, then udhcpc backgrounds itself
	# and keeps renewing (or retrying) the lease.
	udhcpc -i "$dev" -s /etc/udhcpc.script -t 5 -T 1 -A 5 -b ${hostname_wanted:+-x "hostname:$hostname_wanted"} ||
		say "dhcp on $dev failed"
}

# Kernel-style ip= (Documentation/admin-guide/nfs/nfsroot.rst), static and dhcp only.
configure_network() {
	ip link set dev lo up
	conf=$1
	[ -n "$conf" ] || return 0
	case "$conf" in
	off | none) return 0 ;;
	dhcp | on | any | both | bootp | rarp)
		dev=$(first_interface) || {
			say "ip=$conf: no network interface found; check the guest has a virtio NIC"
			return 0
		}
		start_dhcp "$dev" ""
		return 0
		;;
	esac
	old_ifs=$IFS
	IFS=:
	set -f
	set -- $conf
	set +f
	IFS=$old_ifs
	client=$1 gw=$3 mask=$4 host=$5 dev=$6 auto=$7 dns0=$8 dns1=$9
	[ -n "$host" ] && hostname "$host"
	if [ -z "$dev" ]; then
		dev=$(first_interface) || {
			say "ip=$conf: no network interface found; check the guest has a virtio NIC"
			return 0
		}
	elif ! wait_for_interface "$dev"; then
		say "ip=$conf: interface $dev not found; name an existing device or leave it empty"
		return 0
	fi
	case "$auto" in
	off | none) ;;
	"") [ -n "$client" ] || auto=dhcp ;;
	*) auto=dhcp ;;
	esac
	if [ "$auto" = dhcp ]; then
		start_dhcp "$dev" "$host"
		return 0
	fi
	[ -n "$client" ] || {
		say "ip=$conf: static configuration needs a client address"
		return 0
	}
	# Like the kernel, an empty netmask means the address class's default.
	if [ -z "$mask" ]; then
		eval "$(ipcalc -m "$client")"
		mask=$NETMASK
	fi
	eval "$(ipcalc -p "$client" "$mask")"
	ip link set dev "$dev" up
	ip addr add "$client/$PREFIX" dev "$dev" || say "ip=$conf: could not set address on $dev"
	if [ -n "$gw" ]; then
		ip route add default via "$gw" dev "$dev" || say "ip=$conf: could not add route via $gw"
	fi
	if [ -n "$dns0$dns1" ]; then
		: >/etc/resolv.conf
		for server in $dns0 $dns1; do
			echo "nameserver $server" >>/etc/resolv.conf
		done
	fi
}

# busybox acpid maps the power button's KEY_POWER to /etc/acpi/PWRF/00000080. It only watches
# the input devices it opened at start, so "ready" waits until it holds one open: a button press
# right after the marker must not be lost.
start_acpid() {
	acpid -f -c /etc/acpi -l /run/acpid.log &
	/etc/wait-for-fd $! '/dev/input/event*' ||
		say "acpid has no input device open; the ACPI power button will not work"
}

# The kernel's uevents, for /etc/cpu-hotplug: "ready" waits until uevent holds its netlink
# socket, so that a vCPU plugged right after the marker is not missed.
start_uevent() {
	uevent /etc/cpu-hotplug &
	/etc/wait-for-fd $! 'socket:*' ||
		say "uevent has no socket open; vCPUs plugged by xl vcpu-set stay offline"
}

console_shell_loop() {
	while :; do
		# cttyhack finds the real console tty (ttyS0) so the shell gets job control and ^C.
		setsid cttyhack sh -l </dev/console >/dev/console 2>&1
		sleep 0.2
	done
}

# The block device a root= names, waiting briefly for its driver.
find_root_device() {
	tries=0
	while [ "$tries" -lt 30 ]; do
		case "$1" in
		UUID=* | LABEL=*)
			dev=$(findfs "$1" 2>/dev/null) && {
				echo "$dev"
				return 0
			}
			;;
		*)
			[ -b "$1" ] && {
				echo "$1"
				return 0
			}
			;;
		esac
		tries=$((tries + 1))
		sleep 0.1
	done
	return 1
}

# Returns only when the installed system cannot be booted.
boot_installed_system() {
	spec=$1 mode=$2 fstype=$3 next=$4
	dev=$(find_root_device "$spec") || {
		say "root=$spec: no such block device; check the disk is attached and the name"
		return 1
	}
	mkdir -p /newroot
	mount -t "$fstype" -o "$mode" "$dev" /newroot || {
		say "root=$spec: cannot mount $dev as $fstype"
		return 1
	}
	[ -x "/newroot$next" ] || {
		say "root=$spec: $dev has no executable $next; is a system installed on it?"
		umount /newroot
		return 1
	}
	# devtmpfs (with /dev/pts and /dev/shm) goes along; the system mounts the rest itself.
	if [ -d /newroot/dev ]; then
		mount -o move /dev /newroot/dev
	fi
	umount /tmp /run /sys /proc 2>/dev/null
	exec switch_root /newroot "$next"
}

cpuburn() {
	while :; do :; done
}

# Called from the signal traps of PID 1 and never returns.
shutdown_guest() {
	action=$1
	trap '' USR1 USR2 TERM
	case "$action" in
	poweroff) say "powering off" ;;
	reboot) say "rebooting" ;;
	halt) say "halting" ;;
	esac
	# Everything but PID 1 itself: give it a moment to exit, then insist.
	kill -TERM -1 2>/dev/null
	sleep 0.2
	kill -KILL -1 2>/dev/null
	sync
	umount -a -r 2>/dev/null
	sync
	"$action" -f
	# Only reached when the reboot system call itself failed.
	say "$action failed; halting here"
	while :; do sleep 3600; done
}

main() {
	mount_filesystems
	make_device_nodes
	exec </dev/console >/dev/console 2>&1
	hostname guest
	write_helpers

	ipconf="" burn=0 panic=0 reboot=0
	rootspec="" rootmode=ro rootfstype=ext4 rootinit=/sbin/init
	# Split the command line into words without glob-expanding them.
	set -f
	for arg in $(cat /proc/cmdline); do
		case "$arg" in
		ip=*) ipconf=${arg#ip=} ;;
		xenlite.cpuburn=*) burn=${arg#*=} ;;
		xenlite.panic=*) panic=${arg#*=} ;;
		xenlite.reboot=*) reboot=${arg#*=} ;;
		root=*) rootspec=${arg#root=} ;;
		rootfstype=*) rootfstype=${arg#rootfstype=} ;;
		init=*) rootinit=${arg#init=} ;;
		ro | rw) rootmode=$arg ;;
		esac
	done
	set +f
	case "$burn" in
	'' | *[!0-9]*)
		say "xenlite.cpuburn=$burn is not a number; no busy loops started"
		burn=0
		;;
	esac

	trap 'shutdown_guest poweroff' USR2
	trap 'shutdown_guest halt' USR1
	trap 'shutdown_guest reboot' TERM

	load_modules
	if [ -n "$rootspec" ]; then
		boot_installed_system "$rootspec" "$rootmode" "$rootfstype" "$rootinit"
		say "root=$rootspec not booted: the guest kit's own system starts instead"
	fi
	configure_network "$ipconf"
	start_acpid
	start_uevent

	say "ready"

	if [ "$panic" = 1 ]; then
		say "panicking"
		echo c >/proc/sysrq-trigger
	fi
	if [ "$reboot" = 1 ]; then
		shutdown_guest reboot
	fi
	n=0
	while [ "$n" -lt "$burn" ]; do
		cpuburn &
		n=$((n + 1))
	done

	console_shell_loop &
	# wait returns whenever a trapped signal arrives, so keep waiting; the traps never return.
	while :; do
		wait
	done
}

main
