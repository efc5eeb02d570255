"""/etc/xen-tools/xen-tools.conf as create-image's defaults: read as xen-tools reads it, the
command line over it, and every line it does not take said."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlite.base.errors import ProvisionError
from xenlite.cli.commands import images
from xenlite.provision import toolsconf
from xenlite.provision.request import DhcpNetwork, DirStorage, Dist, LvmStorage, StaticNetwork

# Lines as xen-tools 4.x ships and administrators edit them.
CONF = """\
##
#  /etc/xen-tools/xen-tools.conf
##
install-method = debootstrap
dir = /srv/xen
size   = 4Gb      # Disk image size.
memory = 128Mb    # Memory size
swap   = 128Mb    # Swap size
fs     = ext3     # use the EXT3 filesystem for the disk image.
dist   = `xt-guess-suite-and-mirror -s` # Default distribution to install.
image  = full
gateway   = 192.168.1.1
netmask   = 255.255.255.0
dhcp = 1
pygrub = 1
kernel = /boot/vmlinuz-`uname -r`
mirror = http://ftp.example.org/debian
mirror_trixie = http://trixie.example.org/debian
ext3_options   = noatime,nodiratime,errors=remount-ro
colour = blue
"""


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XENLITE_ROOT", str(tmp_path))
    path = tmp_path / "etc/xen-tools/xen-tools.conf"
    path.parent.mkdir(parents=True)
    path.write_text(CONF)
    return path


def test_the_file_is_read_as_xen_tools_reads_it(conf: Path) -> None:
    defaults = toolsconf.read_defaults(conf)
    assert defaults.pairs == [
        ("--dir", "/srv/xen"), ("--size", "4Gb"), ("--memory", "128Mb"), ("--swap", "128Mb"),
        ("--fs", "ext3"), ("--image", "full"), ("--gateway", "192.168.1.1"),
        ("--netmask", "255.255.255.0"), ("--dhcp", ""), ("--pygrub", ""),
        ("--mirror", "http://ftp.example.org/debian"),
    ]  # fmt: skip
    assert defaults.mirrors == {"trixie": "http://trixie.example.org/debian"}
    notes = "\n".join(defaults.notes)
    assert f"{conf}:4: install-method is not used by xenlite create-image" in notes
    assert f"{conf}:10: dist = `xt-guess-suite-and-mirror -s`: xenlite does not run" in notes
    assert f"{conf}:16: kernel = /boot/vmlinuz-`uname -r`: xenlite does not run" in notes
    assert f"{conf}:19: ext3_options is not used" in notes
    assert f"{conf}:20: colour is not a xen-tools setting" in notes
    assert toolsconf.read_defaults(conf.with_name("none.conf")).pairs == []


def test_the_command_line_goes_over_the_file(
    conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = [("--hostname", "web1"), ("--ip", "192.168.1.10"), ("--size", "2G")]
    request = images._request(images._with_tools_defaults(pairs))
    assert request.storage == DirStorage(Path("/srv/xen"))
    assert request.root_bytes == 2 << 30  # the command line's, not the file's 4Gb
    assert request.swap_bytes == 128 << 20
    assert request.memory_mib == 128
    assert request.filesystem.value == "ext3"
    assert not request.sparse
    assert request.pygrub
    # --ip given: the file's dhcp = 1 gives way; its gateway and netmask stay.
    assert request.network == StaticNetwork(("192.168.1.10",), "255.255.255.0", "192.168.1.1")
    assert request.dist is Dist.BUSYBOX  # the file's dist is a command, not taken
    assert request.mirror == "http://ftp.example.org/debian"
    assert "colour is not a xen-tools setting" in capsys.readouterr().err
    trixie = images._request(
        images._with_tools_defaults([("--hostname", "t1"), ("--dist", "trixie")])
    )
    assert trixie.mirror == "http://trixie.example.org/debian"
    assert isinstance(trixie.network, DhcpNetwork)
    lvm = images._request(images._with_tools_defaults([("--hostname", "v1"), ("--lvm", "vg0")]))
    assert lvm.storage == LvmStorage("vg0")  # --lvm over the file's dir


def test_a_file_that_sets_both_of_one_choice_is_refused(conf: Path) -> None:
    conf.write_text("dir = /srv/xen\nlvm = vg0\n")
    with pytest.raises(ProvisionError, match="sets both dir and lvm"):
        images._with_tools_defaults([("--hostname", "web1")])
    assert images._with_tools_defaults([("--hostname", "web1"), ("--dir", "/x")]) == [
        ("--hostname", "web1"),
        ("--dir", "/x"),
    ]
    conf.write_text("pygrub = maybe\n")
    with pytest.raises(ProvisionError, match="is not 1 or 0"):
        images._with_tools_defaults([("--hostname", "web1")])
