"""The durable record of each domain, and the domid high-water mark, under the host root.

Not a Xen man page: ../shared/DESIGN.md "crash-only": everything xenlited needs to rebuild its
view after ``kill -9`` is in XenStore, in these records and in the QEMU processes it re-attaches
to. One JSON file per domain in /var/lib/xenlite/domains/<domid>.json, written atomically
(temporary file, fsync, rename, fsync of the directory), so a reader sees the old or the new
record, never half of one. ``next-domid`` keeps the highest domid handed out, so ids keep
increasing across daemon restarts as they do across a Xen host's uptime.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Self

from xenlite.base.errors import HostError
from xenlite.base.files import fsync_directory, write_atomic
from xenlite.base.paths import under_root
from xenlite.domain.state import DomainState
from xenlite.rpc.contract import ShutdownReason

log = logging.getLogger(__name__)

RECORD_DIR = "/var/lib/xenlite/domains"
HIGH_WATER_FILE = "next-domid"
RESTART_DIR = "restarts"
RECORD_FORMAT = 1
# xen/include/public/xen.h: DOMID_FIRST_RESERVED; domids 1..0x7FEF are for domains.
DOMID_FIRST_RESERVED = 0x7FF0


@dataclass(frozen=True, slots=True)
class DomainRecord:
    """What survives a daemon restart about one domain."""

    domid: int
    name: str
    uuid: str
    config_json: str  # libxl JSON of the domain config (with its uuid)
    config_text: str  # the xl.cfg text it came from ("" when created from JSON alone)
    source: str  # where it came from (the config file's path)
    start_time: float  # unix time of creation
    state: DomainState
    run_dir: str  # QMP and serial sockets, pid file
    log_file: str  # QEMU's own stdout/stderr
    console_log: str  # every byte of the guest's serial console
    shutdown_reason: ShutdownReason | None = None
    # JSON of what the bootloader chose at the last boot ("" without a bootloader).
    bootloader: str = ""
    # This QEMU had a vCPU unplugged (saved before the device_del): under TCG it must not
    # plug one again (see DomainResources.vcpu_set).
    vcpu_unplugged: bool = False

    def with_state(self, state: DomainState, reason: ShutdownReason | None = None) -> Self:
        return replace(self, state=state, shutdown_reason=reason)

    def to_json(self) -> str:
        obj = {
            "format": RECORD_FORMAT,
            "domid": self.domid,
            "name": self.name,
            "uuid": self.uuid,
            "config": json.loads(self.config_json),
            "config_text": self.config_text,
            "source": self.source,
            "start_time": self.start_time,
            "state": str(self.state),
            "shutdown_reason": None if self.shutdown_reason is None else str(self.shutdown_reason),
            "run_dir": self.run_dir,
            "log_file": self.log_file,
            "console_log": self.console_log,
            "bootloader": json.loads(self.bootloader) if self.bootloader else None,
            "vcpu_unplugged": self.vcpu_unplugged,
        }
        return json.dumps(obj, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str) -> Self:
        """:raise HostError: when ``text`` is not a record this xenlite wrote"""
        try:
            obj = json.loads(text)
            if obj.get("format") != RECORD_FORMAT:
                raise ValueError(f"format {obj.get('format')!r}, expected {RECORD_FORMAT}")
            reason = obj.get("shutdown_reason")
            return cls(
                domid=int(obj["domid"]),
                name=str(obj["name"]),
                uuid=str(obj["uuid"]),
                config_json=json.dumps(obj["config"]),
                config_text=str(obj.get("config_text", "")),
                source=str(obj.get("source", "")),
                start_time=float(obj["start_time"]),
                state=DomainState(obj["state"]),
                run_dir=str(obj["run_dir"]),
                log_file=str(obj["log_file"]),
                console_log=str(obj["console_log"]),
                shutdown_reason=None if reason is None else ShutdownReason(reason),
                bootloader=json.dumps(obj["bootloader"]) if obj.get("bootloader") else "",
                vcpu_unplugged=bool(obj.get("vcpu_unplugged", False)),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HostError(
                f"domain record {source}",
                f"cannot be read: {exc}",
                "move the file away; the domain it described is then forgotten",
            ) from None


class RecordStore:
    """The records directory of one host root."""

    def __init__(self, root: Path | None = None) -> None:
        self.directory = under_root(RECORD_DIR, root)

    def path_of(self, domid: int) -> Path:
        return self.directory / f"{domid}.json"

    def save(self, record: DomainRecord) -> None:
        """Write ``record`` atomically (replacing the previous one of that domid).

        :raise HostError: when the directory is not writable
        """
        write_atomic(self.path_of(record.domid), record.to_json().encode())

    def delete(self, domid: int) -> None:
        """Forget a domain's record (idempotent)."""
        with contextlib.suppress(FileNotFoundError):
            self.path_of(domid).unlink()
        fsync_directory(self.directory)

    def load_all(self) -> list[DomainRecord]:
        """Every readable record, by domid; an unreadable one is logged and skipped."""
        records: list[DomainRecord] = []
        if not self.directory.is_dir():
            return records
        for path in sorted(self.directory.glob("*.json")):
            try:
                records.append(DomainRecord.from_json(path.read_text(), source=os.fspath(path)))
            except (HostError, OSError) as exc:
                log.error("skipping domain record %s: %s", path, exc)
        return sorted(records, key=lambda r: r.domid)

    # -- restart intents: an on_* restart between the old domain's teardown and the new
    # domain's record exists only here, so a daemon killed in between still restarts it.

    def save_restart(self, record: DomainRecord) -> None:
        """Note that ``record``'s domain is to be built again (before its teardown)."""
        write_atomic(
            self.directory / RESTART_DIR / f"{record.domid}.json", record.to_json().encode()
        )

    def delete_restart(self, domid: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / RESTART_DIR / f"{domid}.json").unlink()
        fsync_directory(self.directory / RESTART_DIR)

    def load_restarts(self) -> list[DomainRecord]:
        """The restarts noted and not yet done, by domid of the old domain."""
        directory = self.directory / RESTART_DIR
        found: list[DomainRecord] = []
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            try:
                found.append(DomainRecord.from_json(path.read_text(), source=os.fspath(path)))
            except (HostError, OSError) as exc:
                log.error("skipping restart note %s: %s", path, exc)
        return sorted(found, key=lambda r: r.domid)

    def high_water(self) -> int:
        """The highest domid ever handed out on this host root (0 when none)."""
        try:
            return int((self.directory / HIGH_WATER_FILE).read_text().strip() or "0")
        except (OSError, ValueError):
            return 0

    def allocate_domid(self, in_use: set[int]) -> int:
        """The next domid, as Xen hands them out: one more than the last, wrapping below
        DOMID_FIRST_RESERVED and skipping ids in use; persisted before it is returned.

        :raise HostError: when every domid is in use or the mark cannot be written
        """
        candidate = self.high_water()
        for _ in range(DOMID_FIRST_RESERVED):
            candidate += 1
            if candidate >= DOMID_FIRST_RESERVED:
                candidate = 1
            if candidate not in in_use:
                write_atomic(self.directory / HIGH_WATER_FILE, f"{candidate}\n".encode())
                return candidate
        raise HostError(
            "domain ids", f"all {DOMID_FIRST_RESERVED - 1} are in use", "destroy some domains"
        )
