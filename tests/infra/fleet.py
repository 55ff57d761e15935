"""A fleet of inference hosts for tests: network namespaces, each with its own sshd and directories.

Usable with or without pytest (needs root and iproute2)::

    with Fleet(3, tmp_path / "fleet") as fleet:
        h1 = fleet["h1"]
        h1.address, h1.cache_dir, h1.repository    # 10.213.K.11, .../h1/cache, .../h1/models
        env = fleet.airflow_env()                  # AIRFLOW_CONN_OVCACHE_H1 (ovcache), ..._H1_SSH (ssh), ...
        fleet.inventory_toml()                     # a fleet inventory (airflow_ovcache.fleet.inventory)
        h1.run("ip -4 addr")                       # a command inside h1's namespace
        fleet["h3"].stop_sshd()                    # h3 is down (connections are refused)

Topology (one run, ``<id>`` a random 6-hex run id, ``K`` a free /24)::

    root namespace (the Airflow worker, pytest)
      bridge ovc-<id>-br  10.213.K.1/24
        |-- veth ovc-<id>-h1 <==> eth0 in namespace ovc-<id>-h1  10.213.K.11/24  sshd :22
        |-- veth ovc-<id>-h2 <==> eth0 in namespace ovc-<id>-h2  10.213.K.12/24  sshd :22
        ...

* The root namespace gets only the bridge (with its address, hence the connected
  route to 10.213.K.0/24) and the root ends of the veth pairs; ``K`` is chosen so
  that the /24 overlaps no route or address already there, under a lock so that
  parallel runs pick different ones.
* A host namespace has ``lo`` and ``eth0``, the single connected route of the
  test subnet and no default route: it can reach nothing but the subnet. Bridge
  ports are isolated (``isolate_hosts``), so a host reaches the root namespace
  but not its sibling hosts. IPv6 is off on every link the fleet creates.
* Each host's sshd listens only on its own address and sets ``OVCACHE_HOST`` to
  the host's name for every session, so an agent reports its inventory name
  the way a real host's configuration would make it.
* Namespaces share the filesystem: each host has its own directories under
  ``workdir/<name>`` (``cache``, ``models``, ``sshd``).

Teardown (``stop()``, the ``with`` block's exit, also on failure or Ctrl-C) stops
the sshds, ends whatever still runs inside the namespaces, and deletes the
namespaces, the veth pairs and the bridge. A run that was killed leaves them
behind; :func:`cleanup_stale` (called by every :meth:`Fleet.start`) removes
those of runs whose owning process is gone, and only names with this
project's prefix. A CLI helps benchmarks and debugging::

    python -m tests.infra.fleet up 8 /tmp/fleet   # until Ctrl-C / SIGTERM; writes fleet.toml, airflow.env
    python -m tests.infra.fleet list
    python -m tests.infra.fleet down [--all]
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from .sshd import SshServer, find_sshd

PREFIX = "ovc-"
SUBNET_FIRST_OCTETS = (10, 213)  # hosts live in 10.213.K.0/24, K chosen per run
FIRST_HOST_OCTET = 10  # h1 is .11, h2 .12, ...; the bridge (root namespace) is .1
MAX_HOSTS = 200
STATE_DIR = Path("/run/ovcache-fleet")  # owner records (pid) of live runs, and the lock
CONN_PREFIX = "ovcache"  # ovcache_h1, the inventory's default conn_id for host h1
AGENT_COMMAND = f"{shlex.quote(sys.executable)} -m airflow_ovcache.cli.main"
_IFNAMSIZ = 15


class FleetError(RuntimeError):
    pass


def fleet_prerequisites() -> str | None:
    """Why a fleet cannot run here (for ``require``), or None when it can."""
    if os.geteuid() != 0:
        return "fleet tests need root (network namespaces)"
    if shutil.which("ip") is None:
        return "fleet tests need iproute2 (apt-get install -y iproute2)"
    if find_sshd() is None:
        return "fleet tests need sshd (apt-get install -y openssh-server)"
    return None


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise FleetError(f"{shlex.join(argv)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run(["ip", *args], check=check)


def _names_pattern(prefix: str) -> re.Pattern[str]:
    """Namespaces and links of this project: ``<prefix><6 hex>-br`` and ``<prefix><6 hex>-h<N>``."""
    return re.compile(rf"^{re.escape(prefix)}(?P<run>[0-9a-f]{{6}})-(?:br|h\d{{1,3}})$")


def list_namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def list_links() -> list[str]:
    """Links of the root namespace (``/sys/class/net`` shows the caller's namespace)."""
    try:
        return sorted(os.listdir("/sys/class/net"))
    except OSError:
        return []


def _disable_ipv6(ifname: str, namespace: str | None = None) -> None:
    """Keep a link quiet: no link-local address, router solicitations or DAD (best effort)."""
    script = f"echo 1 > /proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"
    argv = ["sh", "-c", f"{script} 2>/dev/null; true"]
    if namespace:
        argv = ["ip", "netns", "exec", namespace, *argv]
    _run(argv, check=False)


# -- owner records: which process a run belongs to ------------------------------------------------
def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after "pid (comm)"


def _record_path(prefix: str, run_id: str) -> Path:
    return STATE_DIR / f"{prefix}{run_id}.json"


def _owner_alive(prefix: str, run_id: str) -> bool:
    try:
        record = json.loads(_record_path(prefix, run_id).read_text())
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return _start_time(pid) == record.get("start_time")


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One fleet at a time picks a subnet and creates its bridge (parallel runs, xdist)."""
    STATE_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(STATE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _kill_namespace_processes(namespace: str) -> None:
    """End what still runs inside a namespace of ours: TERM, then KILL what is left."""
    for sig, pause in ((signal.SIGTERM, 0.5), (signal.SIGKILL, 0.2)):
        pids = [int(p) for p in _ip("netns", "pids", namespace, check=False).stdout.split() if p.isdigit()]
        pids = [p for p in pids if p != os.getpid()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.02)


def _delete_run(prefix: str, run_id: str) -> list[str]:
    """Delete every namespace and link of one run (processes in the namespaces first)."""
    pattern = _names_pattern(prefix)
    removed: list[str] = []
    for namespace in list_namespaces():
        match = pattern.match(namespace)
        if match and match["run"] == run_id:
            _kill_namespace_processes(namespace)
            if _ip("netns", "delete", namespace, check=False).returncode == 0:
                removed.append(f"netns {namespace}")
    for link in list_links():
        match = pattern.match(link)
        if match and match["run"] == run_id and _ip("link", "delete", link, check=False).returncode == 0:
            removed.append(f"link {link}")
    _record_path(prefix, run_id).unlink(missing_ok=True)
    return removed


def runs(prefix: str = PREFIX) -> dict[str, bool]:
    """Run ids that have namespaces, links or an owner record with ``prefix``, and whether their owner lives."""
    pattern = _names_pattern(prefix)
    ids = {m["run"] for name in [*list_namespaces(), *list_links()] if (m := pattern.match(name))}
    if STATE_DIR.is_dir():
        record = re.compile(rf"^{re.escape(prefix)}(?P<run>[0-9a-f]{{6}})\.json$")
        ids |= {m["run"] for p in STATE_DIR.iterdir() if (m := record.match(p.name))}
    return {run_id: _owner_alive(prefix, run_id) for run_id in sorted(ids)}


def _cleanup(prefix: str, include_live: bool) -> list[str]:
    removed: list[str] = []
    for run_id, alive in runs(prefix).items():
        if include_live or not alive:
            removed += _delete_run(prefix, run_id)
    return removed


def cleanup_stale(prefix: str = PREFIX, *, include_live: bool = False) -> list[str]:
    """Remove what killed runs left behind: namespaces and links named ``<prefix><run id>-...``.

    Only runs whose owning process is gone are touched, unless ``include_live``;
    nothing without this project's naming pattern is. Returns what was removed.
    """
    with _locked():
        return _cleanup(prefix, include_live)


# -- the fleet ------------------------------------------------------------------------------------
class Host:
    """One host of a :class:`Fleet`: a network namespace with an address, an sshd and directories."""

    def __init__(self, fleet: Fleet, index: int) -> None:
        self.fleet = fleet
        self.index = index
        self.name = f"h{index}"
        self.address = ""  # set when the fleet has picked its subnet
        self.root = fleet.workdir / self.name
        self.cache_dir = self.root / "cache"
        self.repository = self.root / "models"
        self.conn_id = f"{fleet.conn_prefix}_{self.name}"
        self.ssh_conn_id = f"{self.conn_id}_ssh"
        self.sshd: SshServer | None = None

    @property
    def namespace(self) -> str:
        """The host's network namespace, ``ovc-<run id>-h1``."""
        return f"{self.fleet.name_prefix}{self.name}"

    @property
    def veth(self) -> str:
        """The root namespace's end of the host's veth pair (same name as the namespace); the host's end is eth0."""
        return self.namespace

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.namespace} {self.address or '-'}>"

    @property
    def server(self) -> SshServer:
        if self.sshd is None:
            raise FleetError(f"host {self.name}: the fleet is not started")
        return self.sshd

    # -- commands in the namespace --------------------------------------------------------------
    def run(
        self, command: str | Sequence[str], *, check: bool = False, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside this host's namespace (a string goes to ``sh -c``), as root, locally."""
        argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
        full = ["ip", "netns", "exec", self.namespace, *argv]
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
        if check and proc.returncode != 0:
            raise FleetError(f"host {self.name}: {shlex.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def ssh(self, command: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a command over SSH from the root namespace with the OpenSSH client (host key pinned)."""
        return self.server.run(command, timeout=timeout)

    # -- up and down ----------------------------------------------------------------------------
    def start_sshd(self, timeout: float = 10.0) -> None:
        """(Re)start the host's sshd; it keeps its keys, so pinned connections still work."""
        self.server.start(timeout=timeout)

    def stop_sshd(self) -> None:
        """The host is down for SSH: connections to its address are refused."""
        self.server.stop()

    @property
    def sshd_running(self) -> bool:
        return self.sshd is not None and self.sshd.running

    def disconnect(self) -> None:
        """Unplug the host's cable: its address stops answering at all (timeouts, not refusals)."""
        _ip("link", "set", self.veth, "down")

    def reconnect(self) -> None:
        _ip("link", "set", self.veth, "up")

    # -- files ----------------------------------------------------------------------------------
    def add_model(self, source: str | os.PathLike[str], model: str = "mlp", version: int = 1) -> Path:
        """Copy a model version folder (``model.xml`` + ``.bin``...) into this host's repository."""
        target = self.repository / model / str(version)
        shutil.copytree(source, target)
        return target

    def blobs(self) -> list[Path]:
        return sorted(self.cache_dir.glob("*.blob")) if self.cache_dir.is_dir() else []

    # -- Airflow connections --------------------------------------------------------------------
    def ssh_conn(self, **extra: Any) -> dict[str, Any]:
        """The Airflow SSH connection to this host: key login, host key pinned (``host_key`` extra)."""
        return self.server.airflow_connection(**extra)

    def ovcache_conn(self, *, host_name: bool = True, **extra: Any) -> dict[str, Any]:
        """The ``ovcache`` connection of this host: ssh transport through :attr:`ssh_conn_id`.

        ``host_name=False`` leaves the connection's host field empty, so the hook does
        not pass ``--host-name`` and the name reported is the one the host's side sets
        (``OVCACHE_HOST`` from its sshd). Keyword arguments add or override extra fields
        (``None`` drops one); retries are short by default, for tests.
        """
        fields: dict[str, Any] = {
            "transport": "ssh",
            "ssh_conn_id": self.ssh_conn_id,
            "cache_dir": str(self.cache_dir),
            "repository": str(self.repository),
            "devices": "CPU",
            "agent_command": self.fleet.agent_command,
            "connect_timeout": 5,
            "connect_retries": 1,
            "retry_backoff": 0.2,
        }
        fields.update(extra)
        body: dict[str, Any] = {"conn_type": "ovcache", "extra": {k: str(v) for k, v in fields.items() if v is not None}}
        if host_name:
            body["host"] = self.name
        return body

    def airflow_env(self, *, ssh_extra: Mapping[str, Any] | None = None, **ovcache_extra: Any) -> dict[str, str]:
        """``AIRFLOW_CONN_<ID>`` variables (JSON) for this host's ovcache and SSH connections."""
        return {
            f"AIRFLOW_CONN_{self.conn_id.upper()}": json.dumps(self.ovcache_conn(**ovcache_extra)),
            f"AIRFLOW_CONN_{self.ssh_conn_id.upper()}": json.dumps(self.ssh_conn(**dict(ssh_extra or {}))),
        }


class Fleet:
    """N hosts as network namespaces on a private bridge, each with its own sshd; see the module doc.

    :param n: number of hosts, named ``h1`` .. ``hN``.
    :param workdir: where the hosts' directories go (``workdir/h1/cache`` ...).
    :param prefix: name prefix of namespaces and links (at most 4 characters: Linux link names are short).
    :param conn_prefix: Airflow connection ids are ``<conn_prefix>_h1`` (ovcache) and ``<conn_prefix>_h1_ssh`` (ssh).
    :param agent_command: the agent's command line on the hosts (this interpreter's ``airflow_ovcache.cli.main``).
    :param isolate_hosts: hosts cannot reach each other, only the root namespace (bridge port isolation).
    :param clean_stale: remove leftovers of killed runs (dead owner process only) before starting.
    """

    def __init__(
        self,
        n: int,
        workdir: str | os.PathLike[str],
        *,
        prefix: str = PREFIX,
        conn_prefix: str = CONN_PREFIX,
        agent_command: str = AGENT_COMMAND,
        isolate_hosts: bool = True,
        clean_stale: bool = True,
        sshd_timeout: float = 10.0,
    ) -> None:
        if not 1 <= n <= MAX_HOSTS:
            raise FleetError(f"a fleet has 1 to {MAX_HOSTS} hosts, not {n}")
        self.run_id = secrets.token_hex(3)
        if len(f"{prefix}{self.run_id}-h{n}") > _IFNAMSIZ or not re.fullmatch(r"[a-z][a-z0-9-]*", prefix):
            raise FleetError(f"prefix {prefix!r} must be short lowercase letters, digits and dashes (link names are <= 15 chars)")
        self.n = n
        self.workdir = Path(workdir).resolve()
        self.prefix = prefix
        self.conn_prefix = conn_prefix
        self.agent_command = agent_command
        self.isolate_hosts = isolate_hosts
        self.clean_stale = clean_stale
        self.sshd_timeout = sshd_timeout
        self.subnet: ipaddress.IPv4Network | None = None
        self.gateway = ""  # the bridge's address: where the hosts see the root namespace
        self.hosts = [Host(self, i) for i in range(1, n + 1)]
        self.started = False

    @property
    def bridge(self) -> str:
        return f"{self.name_prefix}br"

    @property
    def name_prefix(self) -> str:
        """What every namespace and link of this run starts with (``ovc-1a2b3c-``)."""
        return f"{self.prefix}{self.run_id}-"

    def __repr__(self) -> str:
        return f"<Fleet {self.name_prefix} {self.n} hosts {self.subnet or '-'}>"

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def __getitem__(self, key: str | int) -> Host:
        """``fleet["h2"]`` by name, ``fleet[0]`` by position."""
        if isinstance(key, int):
            return self.hosts[key]
        for host in self.hosts:
            if host.name == key:
                return host
        raise KeyError(f"no host {key!r} in {[h.name for h in self.hosts]}")

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Fleet:
        reason = fleet_prerequisites()
        if reason:
            raise FleetError(reason)
        if self.started:
            return self
        self.started = True  # from here on stop() has something to undo
        try:
            self._create_network()
            for host in self.hosts:
                for folder in (host.cache_dir, host.repository):
                    folder.mkdir(parents=True, exist_ok=True)
                host.sshd = SshServer(
                    host.root / "sshd",
                    address=host.address,
                    port=22,
                    wrapper=["ip", "netns", "exec", host.namespace],
                    extra_config={"SetEnv": f"OVCACHE_HOST={host.name}"},
                )
                host.sshd.start(timeout=self.sshd_timeout)
        except BaseException:
            self.stop(raise_errors=False)
            raise
        return self

    def _create_network(self) -> None:
        with _locked():
            if self.clean_stale:
                _cleanup(self.prefix, include_live=False)
            while self.run_id in runs(self.prefix):  # never share names with another run, live or not
                self.run_id = secrets.token_hex(3)
            self.subnet = _free_subnet()
            addresses = list(self.subnet.hosts())
            self.gateway = str(addresses[0])
            for host in self.hosts:
                host.address = str(addresses[FIRST_HOST_OCTET + host.index - 1])
            record = {
                "pid": os.getpid(),
                "start_time": _start_time(os.getpid()),
                "workdir": str(self.workdir),
                "subnet": str(self.subnet),
                "hosts": self.n,
            }
            _record_path(self.prefix, self.run_id).write_text(json.dumps(record))
            # The bridge and its address, under the lock: the next run sees the route and picks another /24.
            _ip("link", "add", self.bridge, "type", "bridge")
            _disable_ipv6(self.bridge)
            _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        for host in self.hosts:
            self._create_host(host)

    def _create_host(self, host: Host) -> None:
        assert self.subnet is not None
        ns = host.namespace
        _ip("netns", "add", ns)
        # New links in the namespace (eth0, made next) come up without IPv6.
        host.run("echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6")
        _ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _disable_ipv6(host.veth)
        _ip("link", "set", host.veth, "master", self.bridge)
        if self.isolate_hosts:
            _ip("link", "set", host.veth, "type", "bridge_slave", "isolated", "on")
        _ip("link", "set", host.veth, "up")
        in_ns = ("netns", "exec", ns, "ip")
        _ip(*in_ns, "link", "set", "lo", "up")
        _ip(*in_ns, "addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip(*in_ns, "link", "set", "eth0", "up")

    def stop(self, raise_errors: bool = True) -> list[str]:
        """Tear everything down; every step is tried even if one fails. Returns the problems."""
        problems: list[str] = []
        for host in self.hosts:
            if host.sshd is not None:
                try:
                    host.sshd.stop()
                except Exception as exc:  # noqa: BLE001 - keep tearing down
                    problems.append(f"stop sshd of {host.name}: {exc}")
        if self.started:
            try:
                with _locked():
                    _delete_run(self.prefix, self.run_id)
            except Exception as exc:  # noqa: BLE001 - keep tearing down
                problems.append(f"delete {self.name_prefix}*: {exc}")
            left = self.leftovers()
            if left:
                problems.append(f"still present after teardown: {', '.join(left)}")
        self.started = False
        if problems and raise_errors:
            raise FleetError("fleet teardown: " + "; ".join(problems))
        return problems

    def leftovers(self) -> list[str]:
        """Namespaces and root-namespace links of this run that exist right now."""
        return [f"netns {n}" for n in list_namespaces() if n.startswith(self.name_prefix)] + [
            f"link {n}" for n in list_links() if n.startswith(self.name_prefix)
        ]

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # A failing teardown must not hide the test's own failure.
        problems = self.stop(raise_errors=exc is None)
        if problems:
            print(f"fleet teardown problems: {'; '.join(problems)}", file=sys.stderr)

    # -- what tests and DAGs consume ------------------------------------------------------------
    def airflow_env(self, *, ssh_extra: Mapping[str, Any] | None = None, **ovcache_extra: Any) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` (JSON) for every host's ovcache and SSH connection; see :meth:`Host.ovcache_conn`."""
        env: dict[str, str] = {}
        for host in self.hosts:
            env.update(host.airflow_env(ssh_extra=ssh_extra, **ovcache_extra))
        return env

    def inventory(self, *, labels: Sequence[str] = ("fleet-test",), **defaults: Any) -> dict[str, Any]:
        """The fleet inventory as data (``airflow_ovcache.fleet.inventory`` format); ``defaults`` go to ``[defaults]``.

        Each host names its ``ovcache`` connection (``conn_id``), which says how it is
        reached (ssh, through ``<conn_id>_ssh``) and which agent runs there.
        """
        return {
            "defaults": {"devices": ["CPU"], "retain": "latest:2", **defaults},
            "hosts": [
                {
                    "name": h.name,
                    "conn_id": h.conn_id,
                    "cache_dir": str(h.cache_dir),
                    "repository": str(h.repository),
                    "labels": list(labels),
                }
                for h in self.hosts
            ],
        }

    def inventory_toml(self, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Path:
        """Write :meth:`inventory` as TOML (default ``workdir/fleet.toml``) and return its path."""
        target = Path(path) if path is not None else self.workdir / "fleet.toml"
        data = self.inventory(**kwargs)
        lines = ["[defaults]", *(_toml_pair(k, v) for k, v in data["defaults"].items())]
        for host in data["hosts"]:
            lines += ["", "[[hosts]]", *(_toml_pair(k, v) for k, v in host.items())]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n")
        return target


def _toml_pair(key: str, value: Any) -> str:
    """One ``key = value`` line; JSON strings, numbers, booleans and lists of them are valid TOML."""
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(str(k))} = {json.dumps(v)}" for k, v in value.items())
        return f"{key} = {{ {inner} }}"
    return f"{key} = {json.dumps(value)}"


def _free_subnet(first_octets: tuple[int, int] = SUBNET_FIRST_OCTETS) -> ipaddress.IPv4Network:
    """A 10.213.K.0/24 (or ``first_octets``.K.0/24) that overlaps no IPv4 route (any table) or address of the root namespace.

    Call it under :func:`_locked` and create the link that takes the subnet before
    the lock is released: the next caller then sees its route (the Docker tier does too).
    """
    taken: list[ipaddress.IPv4Network] = []
    for argv in (("-4", "-j", "route", "show", "table", "all"), ("-4", "-j", "addr", "show")):
        data = json.loads(_ip(*argv).stdout or "[]")
        for entry in data:
            dsts = [entry.get("dst")]
            dsts += [f"{a['local']}/{a.get('prefixlen', 32)}" for a in entry.get("addr_info", []) if a.get("family") == "inet"]
            for dst in dsts:
                if not dst or dst == "default" or ":" in dst:
                    continue
                with contextlib.suppress(ValueError):
                    taken.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    a, b = first_octets
    candidates = list(range(256))
    start = secrets.randbelow(256)
    for k in candidates[start:] + candidates[:start]:
        net = ipaddress.IPv4Network(f"{a}.{b}.{k}.0/24")
        if not any(net.overlaps(t) for t in taken):
            return net
    raise FleetError(f"no free /24 in {a}.{b}.0.0/16: every one overlaps a route or address")


# -- CLI --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``python -m tests.infra.fleet up N DIR | down [--all] | list``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.infra.fleet", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prefix", default=PREFIX)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start N hosts and keep them until Ctrl-C or SIGTERM")
    up.add_argument("n", type=int)
    up.add_argument("workdir", type=Path)
    down = sub.add_parser("down", help="remove leftovers of runs whose owner process is gone")
    down.add_argument("--all", action="store_true", help="also fleets whose owner is alive (it loses them)")
    sub.add_parser("list", help="runs with this prefix and whether their owner lives")
    args = parser.parse_args(argv)

    if args.command == "list":
        for run_id, alive in runs(args.prefix).items():
            print(f"{args.prefix}{run_id}\t{'live' if alive else 'stale'}")
        return 0
    if args.command == "down":
        for item in cleanup_stale(args.prefix, include_live=args.all):
            print(f"removed {item}")
        return 0

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough; let the teardown run
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        with Fleet(args.n, args.workdir, prefix=args.prefix) as fleet:
            inventory = fleet.inventory_toml()
            env_file = fleet.workdir / "airflow.env"
            env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in fleet.airflow_env().items()))
            for host in fleet:
                print(f"{host.name}\t{host.namespace}\t{host.address}\t{host.root}")
            print(f"inventory: {inventory}")
            print(f"connections: . {env_file}")
            print(f"ready {fleet.name_prefix}", flush=True)
            while all(h.sshd_running for h in fleet):
                time.sleep(0.5)
            print("an sshd exited; tearing down", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
