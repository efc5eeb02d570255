"""Legacy /etc/xen/xend-config.sxp: read it, and translate it to xl.conf for xl users.

Implements the xend configuration file as xend read it (tools/python/xen/xend/sxp.py for the
S-expression syntax, XendOptions.py for the settings and their defaults), and its mapping to
xl.conf(5) "OPTIONS" plus pointers to where the settings without an xl.conf equivalent live
now. Values are the shared :class:`~xenlite.config.xlcfg.values.Atom`/``ListValue`` tree.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from xenlite.base.errors import ConfigError
from xenlite.config.hostconf.cursor import TextCursor
from xenlite.config.hostconf.xlconf import FIELD_OF_KEY, Autoballoon, XlConf, render_value
from xenlite.config.xlcfg.values import Atom, ListValue, Pos, Value

DEFAULT_XEND_CONFIG_PATH = "/etc/xen/xend-config.sxp"

# sxp.py: a backslash escape inside a quoted string.
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "t": "\t",
    "n": "\n",
    "v": "\v",
    "f": "\f",
    "r": "\r",
    "\\": "\\",
    "'": "'",
    '"': '"',
}
# sxp.py is_separator(): these end a bare atom.
_SEPARATORS = frozenset("{}()<>[];")
_SPACE = frozenset(" \t\n\v\f\r")


class _SxpReader(TextCursor):
    """sxp.py's Parser, with every token located (1-based line and column)."""

    def read_all(self) -> list[Value]:
        values: list[Value] = []
        while True:
            value = self.read_value(top=True)
            if value is None:
                return values
            values.append(value)

    def skip_blank(self) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in _SPACE:
                self.advance()
            elif char == "#":
                while self.pos < len(self.text) and self.text[self.pos] != "\n":
                    self.advance()
            else:
                return

    def read_value(self, *, top: bool) -> Value | None:
        """The next value; None at the end of input (top level) or at ')' (in a list)."""
        self.skip_blank()
        if self.pos >= len(self.text):
            return None
        pos = self.here()
        char = self.text[self.pos]
        if char == ")":
            if top:
                raise pos.error(
                    "unexpected ')' with no list open",
                    fix="remove the ')' or add the '(' it closes",
                )
            return None
        if char == "(":
            return self.read_list(pos)
        if char in "'\"":
            return Atom(self.read_string(pos), pos, quoted=True)
        self.check_printable(char, pos)
        start = self.pos
        self.advance()
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in _SEPARATORS or char in _SPACE or char == "#":
                break
            self.check_printable(char, self.here())
            self.advance()
        return Atom(self.text[start : self.pos], pos, quoted=False)

    def check_printable(self, char: str, pos: Pos) -> None:
        if not char.isprintable():
            raise pos.error(
                f"invalid character (code {ord(char)})",
                fix="remove the control character, or put it in a quoted string",
            )

    def read_list(self, pos: Pos) -> ListValue:
        self.advance()
        items: list[Value] = []
        while True:
            item = self.read_value(top=False)
            if item is None:
                if self.pos >= len(self.text):
                    raise pos.error(
                        "this '(' is never closed",
                        fix="add the matching ')' (a value may not span past the end of file)",
                    )
                self.advance()  # the ')'
                return ListValue(tuple(items), pos)
            items.append(item)

    def read_string(self, pos: Pos) -> str:
        delim = self.advance()
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise pos.error(
                    f"this {delim} string is never closed", fix=f"add the closing {delim}"
                )
            escape_pos = self.here()
            char = self.advance()
            if char == delim:
                return "".join(out)
            if char != "\\":
                out.append(char)
                continue
            if self.pos >= len(self.text):
                raise pos.error(
                    f"this {delim} string is never closed", fix=f"add the closing {delim}"
                )
            code = self.text[self.pos]
            if code in _ESCAPES:
                self.advance()
                out.append(_ESCAPES[code])
            elif code == "x":
                self.advance()
                digits = re.match(r"[0-9a-fA-F]{1,2}", self.text[self.pos : self.pos + 2])
                if digits is None:
                    raise escape_pos.error(
                        "\\x must be followed by hex digits", fix="write \\xHH, e.g. \\x41"
                    )
                for _ in digits.group():
                    self.advance()
                out.append(chr(int(digits.group(), 16)))
            elif code in "01234567":
                digits = re.match(r"[0-7]{1,3}", self.text[self.pos : self.pos + 3])
                assert digits is not None
                if int(digits.group(), 8) > 0xFF:
                    raise escape_pos.error(
                        f"octal escape \\{digits.group()} is above \\377",
                        fix="use an octal escape between \\0 and \\377",
                    )
                for _ in digits.group():
                    self.advance()
                out.append(chr(int(digits.group(), 8)))
            else:
                # sxp.py keeps an unknown escape as written.
                out.append("\\")


def parse_sxp(text: str, path: str = "<sxp>") -> list[Value]:
    """Every top-level S-expression of ``text``, located.

    :raise ConfigError: for an unbalanced parenthesis, an unterminated string, a bad escape
        or a control character, at its line:col.
    """
    return _SxpReader(text, path).read_all()


def render_sxp(value: Value) -> str:
    """One value back in sxp syntax (quoted when the atom needs it, as sxp.show does)."""
    if isinstance(value, ListValue):
        return "(" + " ".join(render_sxp(item) for item in value.items) + ")"
    if value.text and re.fullmatch(r"[A-Za-z0-9.\-_:/~@]+", value.text):
        return value.text
    escaped = value.text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


# --- the typed model -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class XendEntry:
    """One ``(name value...)`` form of the file."""

    name: str
    args: tuple[Value, ...]
    pos: Pos

    @property
    def value(self) -> Value | None:
        """The first argument, which is what xend reads (sxp.child_value)."""
        return self.args[0] if self.args else None


@dataclass(frozen=True, slots=True)
class XenApiListener:
    """One ``xen-api-server`` entry: where it listens and who may connect."""

    endpoint: str  # "unix", a TCP port, or address:port
    auth: str = "pam"  # "none" or "pam"; missing or empty means pam
    hosts_allow: tuple[str, ...] = ()  # regular expressions; empty allows every host
    ssl_key_file: str | None = None
    ssl_cert_file: str | None = None

    @property
    def is_unix(self) -> bool:
        """Whether this is the local unix-socket listener."""
        return self.endpoint == "unix"

    @property
    def port(self) -> int | None:
        """The TCP port, or None for the unix socket."""
        if self.is_unix:
            return None
        return int(self.endpoint.rpartition(":")[2])

    @property
    def address(self) -> str:
        """The address to bind; "" means every interface."""
        return self.endpoint.rpartition(":")[0] if ":" in self.endpoint else ""


@dataclass(frozen=True, slots=True)
class XendConfig:
    """xend-config.sxp; ``XendConfig()`` is xend's defaults (XendOptions.py).

    ``entries`` keeps every form in file order; when a setting is repeated xend reads the
    first one, and so do these fields.
    """

    path: str = DEFAULT_XEND_CONFIG_PATH
    entries: tuple[XendEntry, ...] = ()
    logfile: str = "/var/log/xen/xend.log"
    loglevel: str = "DEBUG"
    xen_api_server: tuple[XenApiListener, ...] = (XenApiListener("unix"),)
    xend_http_server: bool = False
    xend_unix_server: bool = False
    xend_tcp_xmlrpc_server: bool = False
    xend_unix_xmlrpc_server: bool = True
    xend_port: int = 8000
    xend_address: str = ""
    xend_unix_path: str = "/var/lib/xend/xend-socket"
    xend_relocation_server: bool = False
    xend_relocation_ssl_server: bool = False
    xend_relocation_port: int = 8002
    xend_relocation_ssl_port: int = 8003
    xend_relocation_address: str = ""
    xend_relocation_hosts_allow: tuple[str, ...] = ()
    xend_relocation_ssl: bool = False
    network_script: str | None = None
    vif_script: str = "vif-bridge"
    dom0_min_mem: int = 0  # MiB
    enable_dom0_ballooning: bool = False  # xend: on by default only when dom0-min-mem > 0
    dom0_cpus: int = 0  # 0: all CPUs
    total_available_memory: int = 0  # GiB kept for 32-bit PV guests
    console_limit: int = 1024  # KiB
    enable_dump: bool = False
    vnc_listen: str = "127.0.0.1"
    vncpasswd: str | None = None
    keymap: str | None = None

    def find(self, name: str) -> XendEntry | None:
        """The entry xend reads for ``name`` (the first one), or None."""
        for entry in self.entries:
            if entry.name == name:
                return entry
        return None

    @property
    def others(self) -> tuple[XendEntry, ...]:
        """Entries this model has no typed field for, kept raw."""
        return tuple(e for e in self.entries if e.name not in _TYPED_KEYS)

    def to_json(self) -> dict[str, object]:
        """The typed settings plus every other entry rendered as sxp text."""
        return {
            "path": self.path,
            "logfile": self.logfile,
            "loglevel": self.loglevel,
            "xen-api-server": [
                {
                    "endpoint": listener.endpoint,
                    "auth": listener.auth,
                    "hosts_allow": list(listener.hosts_allow),
                    "ssl_key_file": listener.ssl_key_file,
                    "ssl_cert_file": listener.ssl_cert_file,
                }
                for listener in self.xen_api_server
            ],
            "xend-http-server": self.xend_http_server,
            "xend-unix-server": self.xend_unix_server,
            "xend-tcp-xmlrpc-server": self.xend_tcp_xmlrpc_server,
            "xend-unix-xmlrpc-server": self.xend_unix_xmlrpc_server,
            "xend-port": self.xend_port,
            "xend-address": self.xend_address,
            "xend-unix-path": self.xend_unix_path,
            "xend-relocation-server": self.xend_relocation_server,
            "xend-relocation-ssl-server": self.xend_relocation_ssl_server,
            "xend-relocation-port": self.xend_relocation_port,
            "xend-relocation-ssl-port": self.xend_relocation_ssl_port,
            "xend-relocation-address": self.xend_relocation_address,
            "xend-relocation-hosts-allow": list(self.xend_relocation_hosts_allow),
            "xend-relocation-ssl": self.xend_relocation_ssl,
            "network-script": self.network_script,
            "vif-script": self.vif_script,
            "dom0-min-mem": self.dom0_min_mem,
            "enable-dom0-ballooning": self.enable_dom0_ballooning,
            "dom0-cpus": self.dom0_cpus,
            "total_available_memory": self.total_available_memory,
            "console-limit": self.console_limit,
            "enable-dump": self.enable_dump,
            "vnc-listen": self.vnc_listen,
            "vncpasswd": self.vncpasswd,
            "keymap": self.keymap,
            "other": {e.name: " ".join(render_sxp(a) for a in e.args) for e in self.others},
        }


# XendOptions.get_config_bool(): compared lower-cased.
_TRUE = frozenset({"yes", "y", "1", "on", "true", "t"})
_FALSE = frozenset({"no", "n", "0", "off", "false", "f"})

_BOOL_KEYS = {
    "xend-http-server": "xend_http_server",
    "xend-unix-server": "xend_unix_server",
    "xend-tcp-xmlrpc-server": "xend_tcp_xmlrpc_server",
    "xend-unix-xmlrpc-server": "xend_unix_xmlrpc_server",
    "xend-relocation-server": "xend_relocation_server",
    "xend-relocation-ssl-server": "xend_relocation_ssl_server",
    "xend-relocation-ssl": "xend_relocation_ssl",
    "enable-dump": "enable_dump",
}
_INT_KEYS = {
    "xend-port": "xend_port",
    "xend-relocation-port": "xend_relocation_port",
    "xend-relocation-ssl-port": "xend_relocation_ssl_port",
    "dom0-min-mem": "dom0_min_mem",
    "dom0-cpus": "dom0_cpus",
    "total_available_memory": "total_available_memory",
    "console-limit": "console_limit",
}
_STRING_KEYS = {
    "logfile": "logfile",
    "loglevel": "loglevel",
    "xend-address": "xend_address",
    "xend-unix-path": "xend_unix_path",
    "xend-relocation-address": "xend_relocation_address",
    "network-script": "network_script",
    "vif-script": "vif_script",
    "vnc-listen": "vnc_listen",
    "vncpasswd": "vncpasswd",
    "keymap": "keymap",
}
_TYPED_KEYS = frozenset(
    {*_BOOL_KEYS, *_INT_KEYS, *_STRING_KEYS}
    | {"xen-api-server", "xend-relocation-hosts-allow", "enable-dom0-ballooning"}
)


def _atom_of(entry: XendEntry, kind: str) -> Atom:
    value = entry.value
    if isinstance(value, Atom):
        return value
    pos = entry.pos if value is None else value.pos
    raise pos.error(
        "needs a value" if value is None else "is a list but should be a single value",
        key=entry.name,
        fix=f"write ({entry.name} <{kind}>)",
    )


def _read_bool(entry: XendEntry) -> bool:
    atom = _atom_of(entry, "yes|no")
    text = atom.text.lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise atom.pos.error(
        f"expected a boolean, got {atom.text!r}",
        key=entry.name,
        fix="use yes, y, 1, on, true, t or no, n, 0, off, false, f",
    )


def _read_int(entry: XendEntry) -> int:
    atom = _atom_of(entry, "number")
    # Python's int() as xend used it: optional sign and surrounding blanks.
    if re.fullmatch(r"\s*[+-]?[0-9]+\s*", atom.text) is None:
        raise atom.pos.error(
            f"expected a whole number, got {atom.text!r}",
            key=entry.name,
            fix=f"write ({entry.name} <number>), e.g. ({entry.name} 256)",
        )
    return int(atom.text)


def _read_listener(item: Value, key: str) -> XenApiListener:
    fix = "write each listener as (unix|PORT|ADDRESS:PORT [none|pam] ['HOST-REGEXPS'] [KEY CERT])"
    if not isinstance(item, ListValue) or not item.items:
        raise item.pos.error("expected a listener list", key=key, fix=fix)
    texts: list[str] = []
    for part in item.items:
        if not isinstance(part, Atom):
            raise part.pos.error("listener fields must be single values", key=key, fix=fix)
        texts.append(part.text)
    endpoint = texts[0]
    if endpoint != "unix" and re.fullmatch(r"(?:[^\s]*:)?[0-9]{1,5}", endpoint) is None:
        raise item.items[0].pos.error(
            f"invalid listener {endpoint!r}: expected unix, a port or address:port",
            key=key,
            fix=fix,
        )
    if endpoint != "unix" and not 0 < int(endpoint.rpartition(":")[2]) < 65536:
        raise item.items[0].pos.error(f"port of {endpoint!r} is out of range", key=key, fix=fix)
    auth = texts[1] if len(texts) > 1 and texts[1] else "pam"
    if auth not in ("none", "pam"):
        raise item.items[1].pos.error(
            f"invalid authentication {auth!r}", key=key, fix="use none or pam"
        )
    hosts = tuple(texts[2].split()) if len(texts) > 2 else ()
    return XenApiListener(
        endpoint=endpoint,
        auth=auth,
        hosts_allow=hosts,
        ssl_key_file=texts[3] if len(texts) > 3 else None,
        ssl_cert_file=texts[4] if len(texts) > 4 else None,
    )


def parse_xend_config(text: str, path: str = DEFAULT_XEND_CONFIG_PATH) -> XendConfig:
    """Parse xend-config.sxp text.

    :raise ConfigError: for malformed S-expressions or a value xend would reject
        ("expected bool", "expected int"), at its line:col.
    """
    entries: list[XendEntry] = []
    for value in parse_sxp(text, path):
        if not isinstance(value, ListValue) or not value.items:
            raise value.pos.error(
                "expected a (name value) setting",
                fix="write every setting as (name value), e.g. (dom0-min-mem 256)",
            )
        head = value.items[0]
        if not isinstance(head, Atom):
            raise head.pos.error(
                "a setting must start with its name",
                fix="write every setting as (name value), e.g. (dom0-min-mem 256)",
            )
        entries.append(XendEntry(head.text, value.items[1:], value.pos))

    config = XendConfig(path=path, entries=tuple(entries))
    changes: dict[str, object] = {}
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            continue  # xend reads the first occurrence only
        seen.add(entry.name)
        if entry.name in _BOOL_KEYS:
            changes[_BOOL_KEYS[entry.name]] = _read_bool(entry)
        elif entry.name in _INT_KEYS:
            changes[_INT_KEYS[entry.name]] = _read_int(entry)
        elif entry.name in _STRING_KEYS:
            if entry.value is None:
                continue  # (keymap) with no value: xend's default applies
            changes[_STRING_KEYS[entry.name]] = _atom_of(entry, "string").text
        elif entry.name == "xend-relocation-hosts-allow":
            if entry.value is not None:
                changes["xend_relocation_hosts_allow"] = tuple(
                    _atom_of(entry, "'regexp ...'").text.split()
                )
        elif entry.name == "xen-api-server":
            listeners = entry.value
            if not isinstance(listeners, ListValue):
                raise (entry.pos if listeners is None else listeners.pos).error(
                    "expected a list of listeners",
                    key=entry.name,
                    fix="write (xen-api-server ((9363 none) (unix none)))",
                )
            changes["xen_api_server"] = tuple(
                _read_listener(item, entry.name) for item in listeners.items
            )
    # XendOptions.get_enable_dom0_ballooning(): the default follows dom0-min-mem.
    dom0_min_mem = changes.get("dom0_min_mem", config.dom0_min_mem)
    ballooning_entry = config.find("enable-dom0-ballooning")
    if ballooning_entry is not None:
        changes["enable_dom0_ballooning"] = _read_bool(ballooning_entry)
    else:
        changes["enable_dom0_ballooning"] = dom0_min_mem != 0
    return replace(config, **changes)  # type: ignore[arg-type]  # values match field types


def load_xend_config(path: str | os.PathLike[str] = DEFAULT_XEND_CONFIG_PATH) -> XendConfig:
    """Read and parse a xend-config.sxp file.

    :raise ConfigError: when the file is missing or unreadable, or does not parse.
    """
    name = os.fspath(path)
    try:
        data = Path(name).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "xend config file not found",
            path=name,
            fix="give the path of the old host's xend-config.sxp",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read xend config: {exc.strerror or exc}",
            path=name,
            fix="make the file readable",
        ) from None
    # xend read the file as bytes; Latin-1 keeps every byte of non-UTF-8 files.
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_xend_config(text, name)


# --- translation to xl.conf ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Translated:
    """What one xend setting becomes: xl.conf assignments and/or an explanation."""

    settings: tuple[tuple[str, str], ...]  # (xl.conf key, value)
    note: str


def _script_words(script: str) -> tuple[str, dict[str, str]]:
    words = script.split()
    name = os.path.basename(words[0]) if words else ""
    args = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    return name, args


def _translate(x: XendConfig, entry: XendEntry) -> _Translated:
    name = entry.name
    value_text = " ".join(render_sxp(a) for a in entry.args)
    if name == "vif-script":
        script, args = _script_words(x.vif_script)
        settings: list[tuple[str, str]] = [("vif.default.script", script)]
        note = f"xl runs {script} for every vif unless its vif spec says script=..."
        if "bridge" in args:
            settings.append(("vif.default.bridge", args["bridge"]))
            note += "; its bridge= argument became vif.default.bridge"
        return _Translated(tuple(settings), note)
    if name in ("dom0-min-mem", "enable-dom0-ballooning"):
        state = "on" if x.enable_dom0_ballooning else "off"
        if name == "dom0-min-mem":
            return _Translated(
                (),
                f"no xl.conf equivalent: the floor dom0 balloons down to ({x.dom0_min_mem} MiB)"
                " is read by xenlited from /etc/xen/xend-config.sxp itself when that file is"
                f' kept; xl.conf only has autoballoon, which is "{state}" here because of'
                " xend's ballooning rule",
            )
        return _Translated(
            (("autoballoon", state),),
            "xl balloons dom0 down to make room for new domains only when autoballoon is on",
        )
    if name == "network-script":
        if x.network_script is None:
            return _Translated((), "no network script: nothing to do")
        script, args = _script_words(x.network_script)
        bridge: tuple[tuple[str, str], ...] = ()
        note = (
            "no xl.conf equivalent: xl never sets up host networking; create it once at host"
            f" start with `xenlite {script} start{''.join(f' {k}={v}' for k, v in args.items())}`"
            " (or your distribution's network configuration)"
        )
        if "bridge" in args:
            bridge = (("vif.default.bridge", args["bridge"]),)
            note += "; its bridge= argument became vif.default.bridge"
        elif script == "network-bridge":
            netdev = args.get("netdev", "eth0")
            note += (
                f"; xend's network-bridge named the bridge {netdev}, while xl's default"
                " bridge is xenbr0: set vif.default.bridge if guests must join that bridge"
            )
        return _Translated(bridge, note)
    if name == "dom0-cpus":
        if x.dom0_cpus == 0:
            return _Translated((), "dom0 uses every CPU, as xl does by default")
        return _Translated(
            (),
            "no xl.conf equivalent: limit dom0's vCPUs on the Xen command line in the xenlite"
            f" host config: dom0_max_vcpus={x.dom0_cpus}",
        )
    if name == "xen-api-server":
        where = ", ".join(
            "unix socket" if listener.is_unix else f"TCP {listener.endpoint}"
            for listener in x.xen_api_server
        )
        return _Translated(
            (),
            f"no xl.conf equivalent: the XenAPI endpoint ({where}) is served by xenlite's"
            " XenAPI XML-RPC server, configured in the xenlite host config",
        )
    if name.startswith("xend-relocation"):
        return _Translated(
            (),
            "no xl.conf equivalent: xl has no relocation server; `xl migrate DOMAIN HOST`"
            " reaches the target over ssh",
        )
    if name in (
        "xend-http-server",
        "xend-unix-server",
        "xend-tcp-xmlrpc-server",
        "xend-unix-xmlrpc-server",
        "xend-port",
        "xend-address",
        "xend-unix-path",
    ) or name.startswith("xend-tcp-xmlrpc-server"):
        return _Translated(
            (),
            "no xl.conf equivalent: xend's own HTTP/XML-RPC interfaces are gone; xl talks to"
            " xenlited over its local socket, and XenAPI clients use the XenAPI endpoint",
        )
    if name in ("vnc-listen", "vncpasswd", "keymap"):
        key = {"vnc-listen": "vnclisten", "vncpasswd": "vncpasswd", "keymap": "keymap"}[name]
        return _Translated(
            (),
            f"no xl.conf equivalent: set {key}= in each domain's xl.cfg (xl.cfg(5)); the"
            f" value was {value_text or 'empty'}",
        )
    if name == "enable-dump":
        return _Translated(
            (),
            'no xl.conf equivalent: set on_crash="coredump-destroy" (or coredump-restart) in'
            " each domain's xl.cfg",
        )
    if name in ("logfile", "loglevel"):
        return _Translated(
            (),
            "no xl.conf equivalent: xl reports to stderr (more with xl -v) and xenlited"
            " keeps its own log",
        )
    if name == "xend-domains-path":
        return _Translated(
            (),
            "no xl.conf equivalent: xl keeps no managed domains; put the domains' xl.cfg"
            " files in /etc/xen/auto to start them at boot (xendomains)",
        )
    if name == "total_available_memory":
        return _Translated(
            (),
            "no xl.conf equivalent: reserve memory with dom0_mem on the Xen command line"
            " in the xenlite host config",
        )
    return _Translated((), "no xl.conf equivalent; this xend setting is not carried over")


def _plan(x: XendConfig) -> tuple[list[tuple[XendEntry, _Translated]], list[str]]:
    plan: list[tuple[XendEntry, _Translated]] = []
    notes: list[str] = []
    seen: set[str] = set()
    for entry in x.entries:
        where = f"{entry.pos.path}:{entry.pos.line}:{entry.pos.col}"
        if entry.name in seen:
            notes.append(f"{where}: {entry.name}: repeated; xend used the first one, so does this")
            continue
        seen.add(entry.name)
        translated = _translate(x, entry)
        plan.append((entry, translated))
        # Partly translated settings (network-script's bridge=) still need their note.
        if not translated.settings or translated.note.startswith("no xl.conf equivalent"):
            notes.append(f"{where}: {entry.name}: {translated.note}")
    return plan, notes


def xend_to_xlconf(x: XendConfig) -> tuple[XlConf, list[str]]:
    """The xl.conf equivalent of a xend config, and a note per setting with no (or only a
    partial) xl.conf equivalent, each located in the xend file.

    Ballooning is always carried over, with xend's rule: on when enable-dom0-ballooning
    says so, or by default when dom0-min-mem is not 0.
    """
    plan, notes = _plan(x)
    fields: dict[str, object] = {
        "autoballoon": Autoballoon.ON if x.enable_dom0_ballooning else Autoballoon.OFF
    }
    for _entry, translated in plan:
        for key, value in translated.settings:
            field_name = FIELD_OF_KEY[key]
            if key == "autoballoon":
                continue  # already the effective value above
            # The first setting wins, as in the text rendering.
            fields.setdefault(field_name, value)
    return replace(XlConf(), **fields), notes  # type: ignore[arg-type]  # str fields only


def xend_to_xlconf_text(x: XendConfig) -> str:
    """xl.conf text equivalent to ``x``: each xend setting as a comment naming where it came
    from, followed by its xl.conf line or by where that setting lives now."""
    conf, _notes = xend_to_xlconf(x)
    lines = [
        f"# xl.conf translated by xenlite from {x.path}",
        "# Every xend setting is listed with its xl.conf equivalent or where it lives now.",
        "",
    ]
    written: set[str] = set()
    plan, _ = _plan(x)
    for entry, translated in plan:
        origin = f"({entry.name}{''.join(' ' + render_sxp(a) for a in entry.args)})"
        lines.append(f"# {origin} at {entry.pos.path}:{entry.pos.line}")
        lines.extend(_comment(translated.note))
        for key, value in translated.settings:
            if key in written:
                lines.append(f"# ({key} is already set above; the first setting wins)")
                continue
            written.add(key)
            lines.append(f"{key}={render_value(value)}")
        lines.append("")
    if "autoballoon" not in written:
        lines.extend(
            _comment(
                "xend balloons dom0 only when enable-dom0-ballooning is yes or, when that is"
                " not set, when dom0-min-mem is not 0"
            )
        )
        lines.append(f"autoballoon={render_value(str(conf.autoballoon))}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _comment(text: str, width: int = 96) -> list[str]:
    lines: list[str] = []
    current = "#"
    for word in text.split():
        if len(current) + 1 + len(word) > width and current != "#":
            lines.append(current)
            current = "#"
        current += " " + word
    lines.append(current)
    return lines
