"""Boot the real guest kit under QEMU (TCG) and drive it: ACPI button, console, switches.

Also checks the KVM probe's pieces: its payload really exits through isa-debug-exit, and
XENLITE_ACCEL forcing and the per-boot cache behave.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from xenlite.base.errors import HostError, Unsupported
from xenlite.base.proc import run_sync
from xenlite.guestkit.boot import READY_MARKER, GuestRun, boot_to_ready
from xenlite.guestkit.build import GuestKit, build_guest_kit
from xenlite.qemu import accel
from xenlite.qemu.accel import Accel, probe_accel, probe_payload

QEMU = shutil.which("qemu-system-x86_64")
needs_qemu = pytest.mark.skipif(
    QEMU is None, reason="qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
)
PROMPT = "# "


@pytest.fixture(scope="module")
def kit() -> GuestKit:
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    for program in ("apt-get", "apt-cache", "dpkg-deb", "dpkg-query"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is missing: the guest kit is built from Debian packages")
    if not Path("/bin/busybox").is_file():
        pytest.skip("/bin/busybox is missing (apt-get install busybox-static)")
    return build_guest_kit()


def run_command(run: GuestRun, command: str, *, start: int, timeout: float = 20) -> tuple[str, int]:
    """Type ``command`` at the prompt; return its output and the console offset after it.

    The end marker is computed by the guest's shell ($((...))) so that the echo of the typed
    line never matches it.
    """
    run.send(f"{command}; echo command-done-$((40 + 2))\n")
    end = run.wait_for("command-done-42\n", timeout=timeout, start=start)
    return run.console[start:end], end


@pytest.mark.qemu
@pytest.mark.slow
def test_boots_to_ready_and_powers_off_on_the_acpi_button(kit: GuestKit) -> None:
    started = time.monotonic()
    result = boot_to_ready(kit, accel="tcg", timeout=60, shutdown_timeout=30)
    assert result.accel == "tcg"
    assert 0 < result.seconds_to_ready < 60
    assert result.console.count(READY_MARKER) == 1
    after_ready = result.console.split(READY_MARKER, 1)[1]
    assert "xenlite-guest: powering off" in after_ready
    assert "reboot: Power down" in after_ready
    assert "could not load module" not in result.console
    assert time.monotonic() - started < 90


@pytest.mark.qemu
@pytest.mark.slow
def test_cpuburn_keeps_a_vcpu_busy_and_typed_poweroff_stops_the_guest(kit: GuestKit) -> None:
    extra = "xenlite.cpuburn=1 ip=dhcp"
    with GuestRun(kit, accel="tcg", cmdline_extra=extra) as run:
        ready = run.wait_for(READY_MARKER, timeout=60)
        # QEMU's user-mode network (restrict=on) hands out 10.0.2.15.
        assert "udhcpc: lease of 10.0.2.15" in run.console
        prompt = run.wait_for(PROMPT, timeout=20, start=ready)
        output, end = run_command(
            run, "head -n 1 /proc/stat; sleep 2; head -n 1 /proc/stat", start=prompt
        )
        samples = [line.split()[1:] for line in output.splitlines() if line.startswith("cpu ")]
        assert len(samples) == 2, output
        before, after = ([int(v) for v in sample] for sample in samples)
        delta = [b - a for a, b in zip(before, after, strict=True)]
        busy = delta[0] + delta[1] + delta[2]  # user, nice, system
        assert sum(delta) > 0
        assert busy / sum(delta) > 0.7, delta
        output, end = run_command(run, "ip -4 addr show dev eth0", start=end)
        assert "inet 10.0.2.15/24" in output
        run.send("poweroff\n")
        assert run.wait_exit(timeout=30) == 0
        assert "xenlite-guest: powering off" in run.console[end:]


@pytest.mark.qemu
@pytest.mark.slow
def test_static_ip_option_configures_address_route_hostname_and_dns(kit: GuestKit) -> None:
    extra = "ip=10.0.2.20::10.0.2.2:255.255.255.0:webhost::off:10.0.2.3"
    with GuestRun(kit, accel="tcg", cmdline_extra=extra) as run:
        ready = run.wait_for(READY_MARKER, timeout=60)
        prompt = run.wait_for("webhost:/# ", timeout=20, start=ready)
        output, _ = run_command(
            run, "ip -4 addr show dev eth0; ip route; cat /etc/resolv.conf", start=prompt
        )
        assert "inet 10.0.2.20/24" in output
        assert "default via 10.0.2.2 dev eth0" in output
        assert "nameserver 10.0.2.3" in output
        run.powerdown()
        assert run.wait_exit(timeout=30) == 0


@pytest.mark.qemu
@pytest.mark.slow
def test_panic_switch_panics_the_kernel(kit: GuestKit) -> None:
    with GuestRun(kit, accel="tcg", cmdline_extra="xenlite.panic=1") as run:
        ready = run.wait_for(READY_MARKER, timeout=60)
        announced = run.wait_for("xenlite-guest: panicking", timeout=20, start=ready)
        run.wait_for("Kernel panic - not syncing", timeout=20, start=announced)
        # panic=-1 reboots at once and -no-reboot turns that into QEMU exiting.
        assert run.wait_exit(timeout=30) == 0


@pytest.mark.qemu
@pytest.mark.slow
def test_reboot_switch_reboots_on_every_boot(kit: GuestKit) -> None:
    with GuestRun(kit, accel="tcg", cmdline_extra="xenlite.reboot=1", no_reboot=False) as run:
        first = run.wait_for("xenlite-guest: rebooting", timeout=60)
        again = run.wait_for(READY_MARKER, timeout=60, start=first)
        run.wait_for("xenlite-guest: rebooting", timeout=60, start=again)
        assert run.returncode is None  # without -no-reboot QEMU restarts the guest
        assert run.console.count("Linux version") >= 2
    assert run.returncode is not None  # leaving the block killed it


# -- the accelerator probe ---------------------------------------------------------------


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(accel.ACCEL_ENV, raising=False)
    return tmp_path / "xenlite"


@pytest.mark.qemu
@needs_qemu
def test_probe_payload_leaves_through_isa_debug_exit_under_tcg(tmp_path: Path) -> None:
    payload = tmp_path / "probe.mb"
    payload.write_bytes(probe_payload())
    argv = [
        "qemu-system-x86_64",
        "-accel", "tcg", "-machine", "pc", "-m", "128",
        "-nodefaults", "-display", "none", "-no-reboot", "-serial", "none", "-monitor", "none",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-kernel", str(payload),
    ]  # fmt: skip
    result = run_sync(argv, timeout=30, check=False)
    assert result.returncode == 3, result.stderr


def test_xenlite_accel_tcg_forces_tcg(private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(accel.ACCEL_ENV, "tcg")
    probe = probe_accel()
    assert probe.accel is Accel.TCG
    assert "XENLITE_ACCEL=tcg" in probe.reason


def test_unknown_xenlite_accel_value_is_an_error(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(accel.ACCEL_ENV, "hax")
    with pytest.raises(HostError, match="'hax' is not an accelerator") as caught:
        probe_accel()
    assert caught.value.fix is not None


@needs_qemu
def test_missing_kvm_device_falls_back_to_tcg_and_is_cached(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(accel, "KVM_DEVICE", tmp_path / "no-kvm")
    first = probe_accel()
    assert first.accel is Accel.TCG
    assert "does not exist" in first.reason
    assert not first.cached
    second = probe_accel()
    assert second.cached
    assert (second.accel, second.reason) == (first.accel, first.reason)
    assert (private_cache / "accel-probe.json").is_file()


@needs_qemu
def test_forced_kvm_that_does_not_work_is_an_error(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(accel, "KVM_DEVICE", tmp_path / "no-kvm")
    monkeypatch.setenv(accel.ACCEL_ENV, "kvm")
    with pytest.raises(Unsupported, match="KVM is not usable") as caught:
        probe_accel()
    assert caught.value.fix is not None
    assert "tcg" in caught.value.fix


@pytest.mark.qemu
@pytest.mark.slow
@needs_qemu
def test_real_probe_gives_an_answer_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(accel.ACCEL_ENV, raising=False)
    started = time.monotonic()
    probe = probe_accel(timeout=5.0)
    assert probe.accel in (Accel.KVM, Accel.TCG)
    assert probe.reason
    assert time.monotonic() - started < 30
    if not os.path.exists("/dev/kvm"):
        assert probe.accel is Accel.TCG
