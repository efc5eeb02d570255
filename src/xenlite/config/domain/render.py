"""DomainConfig -> xl.cfg text, for the subset of keys that round-trips through the builder.

Writes xl.cfg(5) syntax ("Syntax": quoted strings, lists) for the "General Options" and
"Direct Kernel Boot" keys and the on_* event actions.
"""

from __future__ import annotations

from xenlite.config.domain.model import DomainConfig


def _quote(text: str) -> str:
    esc = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + esc.replace("\r", "\\r").replace("\t", "\\t") + '"'


def render_domain_config(cfg: DomainConfig) -> str:
    """xl.cfg text for the part of ``cfg`` that xl.cfg keys can express.

    Covers type, name, uuid, memory/maxmem, vcpus/maxvcpus, cpus, cpu_weight/cap, pool,
    kernel/ramdisk/cmdline, bootloader(_args) and the on_* actions. Building the rendered
    text gives back ``cfg`` for configs in that subset.

    :raise ValueError: for memory not a whole number of MiB, which xl.cfg cannot express.
    """
    c, b = cfg.c_info, cfg.b_info
    lines: list[str] = []

    def emit(key: str, value: str) -> None:
        lines.append(f"{key} = {value}")

    if c.type is not None:
        emit("type", _quote(c.type.value))
    if c.name is not None:
        emit("name", _quote(c.name))
    if c.uuid is not None:
        emit("uuid", _quote(c.uuid))
    if c.pool_name is not None:
        emit("pool", _quote(c.pool_name))
    for key, kb in (("memory", b.target_memkb), ("maxmem", b.max_memkb)):
        if kb is not None:
            if kb % 1024:
                raise ValueError(f"{key} of {kb} KiB is not a whole number of MiB")
            emit(key, str(kb // 1024))
    if b.avail_vcpus:
        emit("vcpus", str(len(b.avail_vcpus)))
    if b.max_vcpus:
        emit("maxvcpus", str(b.max_vcpus))
    if b.vcpu_hard_affinity:
        items = ", ".join(_quote(_cpulist(bits)) for bits in b.vcpu_hard_affinity)
        emit("cpus", f"[ {items} ]")
    if b.sched_params.weight != -1:
        emit("cpu_weight", str(b.sched_params.weight))
    if b.sched_params.cap != -1:
        emit("cap", str(b.sched_params.cap))
    for key in ("kernel", "ramdisk", "cmdline", "bootloader"):
        value = getattr(b, key)
        if value is not None:
            emit(key, _quote(value))
    if b.bootloader_args:
        emit("bootloader_args", "[ " + ", ".join(_quote(a) for a in b.bootloader_args) + " ]")
    for key in ("on_poweroff", "on_reboot", "on_watchdog", "on_crash", "on_soft_reset"):
        emit(key, _quote(getattr(cfg, key).xl_name))
    return "\n".join(lines) + "\n"


def _cpulist(bits: frozenset[int]) -> str:
    return ",".join(str(i) for i in sorted(bits)) if bits else ""
