"""cpuid= in both of xl.cfg(5)'s syntaxes: the policy libxl builds (checked against Debian's
real xl where the oracle is there), and the QEMU -cpu switches that give it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from xenlite.config.domain.cpuid import (
    ALIASES,
    BY_NAME,
    FEATURES,
    CpuidError,
    CpuidLeaf,
    parse_libxl,
    parse_xend,
    qemu_cpu_options,
)

X32 = "x" * 32


def bits(**forced: str) -> str:
    """A register with bit N set to forced["bN"]."""
    chars = list(X32)
    for key, char in forced.items():
        chars[31 - int(key[1:])] = char
    return "".join(chars)


def test_the_manuals_libxl_example() -> None:
    leaves = parse_libxl("host,tm=0,sse3=0,aes=1,family=6")
    assert leaves == (
        CpuidLeaf(1, None, eax="xxxx00000000xxxxxxxx0110xxxxxxxx", ecx=bits(b0="0", b25="1"),
                  edx=bits(b29="0")),
    )  # fmt: skip
    assert qemu_cpu_options(leaves) == ["family=6", "+aes", "-pni", "-tm"]


def test_the_manuals_xend_example() -> None:
    leaves = parse_xend(
        ["1:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx0,edx=xx0xxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]
    )
    assert leaves == (CpuidLeaf(1, None, ecx=bits(b0="0"), edx=bits(b29="0")),)
    assert qemu_cpu_options(leaves) == ["-pni", "-tm"]


def test_subleaves_and_kept_bits() -> None:
    leaves = parse_xend(
        ["7,0:ebx=sxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx0", "0x80000001:ecx=" + bits(b0="1")]
    )
    assert leaves[0] == CpuidLeaf(7, 0, ebx="s" + "x" * 30 + "0")
    assert qemu_cpu_options(leaves) == ["-fsgsbase", "+lahf-lm"]
    assert parse_libxl("host,aes=k")[0].ecx == bits(b25="k")
    assert qemu_cpu_options(parse_libxl("host,aes=k,tm=s")) == []


def test_family_model_stepping() -> None:
    assert qemu_cpu_options(parse_libxl("host,family=25,model=0x21,stepping=2")) == [
        "stepping=2",
        "model=33",
        "family=25",
    ]


def test_what_qemu_cannot_express_is_named() -> None:
    with pytest.raises(CpuidError, match=r"osxsave \(leaf 0x1 ecx bit 27\)"):
        qemu_cpu_options(parse_libxl("host,osxsave=1"))
    with pytest.raises(CpuidError, match=r"leaf 0x6 eax bit 0"):
        qemu_cpu_options(parse_xend(["6:eax=" + bits(b0="1")]))
    with pytest.raises(CpuidError, match="brandid"):
        qemu_cpu_options(parse_libxl("host,brandid=3"))


@pytest.mark.parametrize(
    "text", ["aes=1", "host,bogus=1", "host,aes=2", "host,aes", "host,family=x"]
)
def test_bad_libxl_forms(text: str) -> None:
    with pytest.raises(CpuidError):
        parse_libxl(text)


@pytest.mark.parametrize("item", ["1ecx=" + X32, "1:eqx=" + X32, "1:ecx=xx", "z:ecx=" + X32,
                                  "1:ecx=" + "y" * 32])  # fmt: skip
def test_bad_xend_forms(item: str) -> None:
    with pytest.raises(CpuidError):
        parse_xend([item])


def test_qemu_knows_every_flag_the_table_gives_it() -> None:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    listing = subprocess.run([qemu, "-cpu", "help"], capture_output=True, text=True, check=True)
    flags = set(listing.stdout.split("Recognized CPUID flags:")[1].split())
    assert {f.qemu for f in FEATURES if f.qemu} - flags == set()


def test_names_are_where_xens_xl_puts_them(
    shared_dir: Path, xen_oracle_root: Path, tmp_path: Path
) -> None:
    # Debian's real xl (xl create -n) places a spread of the table's names and each alias
    # (the whole table was checked so when it was written); one config per name.
    oracle = shared_dir / "tools/xen-oracles/xlcfg_oracle.py"
    env = {**os.environ, "XEN_ORACLE_CACHE": os.fspath(xen_oracle_root.parent)}
    names = sorted(set(BY_NAME) - set(ALIASES))[::7] + sorted(ALIASES)  # a spread, and all aliases
    for name in names:
        config = tmp_path / f"{name}.cfg"
        config.write_text(f'name="c"\ntype="hvm"\ncpuid="host,{name}=1"\n')
        ran = subprocess.run(["python3", oracle, config], capture_output=True, text=True,
                             env=env, check=True)  # fmt: skip
        theirs = json.loads(ran.stdout)["xl_dryrun"]["config"]["b_info"]["cpuid"]["cpuid"]
        ours = parse_libxl(f"host,{name}=1")
        assert [
            {k: v for k, v in vars_of(leaf).items() if v is not None} for leaf in ours
        ] == theirs, name


def vars_of(leaf: CpuidLeaf) -> dict[str, object]:
    return {"leaf": leaf.leaf, "subleaf": leaf.subleaf, "eax": leaf.eax, "ebx": leaf.ebx,
            "ecx": leaf.ecx, "edx": leaf.edx}  # fmt: skip


def test_cpuid_reaches_qemus_cpu_option() -> None:
    from xenlite.base.errors import Unsupported
    from xenlite.config.domain.build import build_domain_config
    from xenlite.config.xlcfg.grammar import parse_with_overrides
    from xenlite.qemu.argv import _cpuid

    def b_info(line: str):  # type: ignore[no-untyped-def]
        text = f'name="c"\nkernel="/k"\n{line}\n'
        return build_domain_config(parse_with_overrides(text, "c.cfg", [])).config.b_info

    assert _cpuid(b_info('cpuid="host,aes=0,avx=1"')) == ["+avx", "-aes", "enforce"]
    assert _cpuid(b_info("")) == []
    with pytest.raises(Unsupported, match="osxsave"):
        _cpuid(b_info('cpuid="host,osxsave=0"'))
