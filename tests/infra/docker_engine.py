"""A Docker engine for the tests, kept apart from the host's firewall and from any other engine.

Usable with or without pytest (needs root and Debian's ``docker.io``)::

    engine = Engine()
    engine.start()            # reuses a daemon already answering on its socket
    engine.docker("info")
    engine.stop()             # stops the daemon only if start() started it

The daemon is Debian's ``dockerd`` on a socket, pidfile, exec root and data root of its
own, so it never touches a system Docker and a system Docker never sees it:

* ``--iptables=false --ip6tables=false --ip-masq=false``: no firewall rules, no NAT, the
  FORWARD policy left as it is (Docker's defaults change it to DROP, which breaks the
  network-namespace tiers);
* ``--ip-forward=false``: the host's ``net.ipv4.ip_forward`` left as it is, so a container
  reaches nothing past the host (containers on one bridge still reach each other, and
  published ports still work, through docker-proxy);
* ``--bridge=none``: no ``docker0`` on a subnet Docker picks; the tests create their own
  networks on subnets chosen like the fleet tier's (``tests/infra/fleet.py``);
* ``--data-root /var/lib/ovcache-ci-docker``: persistent, so images and the build cache
  survive the daemon and later runs on the same machine build warm.

Builds reach the package registries through the host's network (``docker build
--network host``). The client must speak BuildKit: Debian's ``/usr/bin/docker`` (20.10)
does by itself; a newer client needs its ``buildx`` plugin.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

SOCKET = Path("/run/ovcache-ci-docker.sock")
PIDFILE = Path("/run/ovcache-ci-docker.pid")
EXEC_ROOT = Path("/run/ovcache-ci-docker")
DATA_ROOT = Path(os.environ.get("OVCACHE_DOCKER_DATA_ROOT", "/var/lib/ovcache-ci-docker"))
LOG = Path("/var/log/ovcache-ci-dockerd.log")
LOCK = Path("/run/ovcache-ci-docker.lock")
DOCKERD_FLAGS = (
    "--iptables=false",
    "--ip6tables=false",
    "--ip-masq=false",
    "--ip-forward=false",
    "--bridge=none",
)


class EngineError(RuntimeError):
    pass


def find_dockerd() -> str | None:
    return next((p for p in (shutil.which("dockerd"), "/usr/sbin/dockerd") if p and os.access(p, os.X_OK)), None)


def buildkit_client() -> str | None:
    """A ``docker`` client that builds with BuildKit: Debian's 20.10, or any with the buildx plugin."""
    candidates = ["/usr/bin/docker", shutil.which("docker")]
    for path in dict.fromkeys(p for p in candidates if p and os.access(p, os.X_OK)):
        version = subprocess.run([path, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True)
        major = version.stdout.strip().split(".")[0]
        if major.isdigit() and int(major) < 23:
            return path  # BuildKit is built into the 20.10/21/22 clients
        if subprocess.run([path, "buildx", "version"], capture_output=True).returncode == 0:
            return path
    return None


def engine_prerequisites() -> str | None:
    """Why the engine cannot run here (for ``require``), or None when it can."""
    if os.geteuid() != 0:
        return "the Docker tier needs root (dockerd)"
    if find_dockerd() is None:
        return "dockerd is not installed (apt-get install docker.io)"
    if buildkit_client() is None:
        return "no docker client that builds with BuildKit (apt-get install docker.io)"
    return None


@contextlib.contextmanager
def exclusive(timeout: float = 3600) -> Iterator[None]:
    """One user of the engine at a time (runs of the Docker tier on one machine wait for each other)."""
    EXEC_ROOT.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EngineError(f"another run holds {LOCK} for more than {timeout:.0f} s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Engine:
    """The tests' Docker daemon: started if none answers on :data:`SOCKET`, stopped only if started here."""

    def __init__(self, data_root: Path = DATA_ROOT) -> None:
        self.data_root = data_root
        self.host = f"unix://{SOCKET}"
        client = buildkit_client()
        if client is None:
            raise EngineError("no docker client that builds with BuildKit (apt-get install docker.io)")
        self.client = client
        self.started = False
        self._process: subprocess.Popen[bytes] | None = None

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for ``docker`` and compose: this daemon, BuildKit, compose building through the CLI."""
        return {
            **os.environ,
            "DOCKER_HOST": self.host,
            "DOCKER_BUILDKIT": "1",
            "COMPOSE_DOCKER_CLI_BUILD": "1",
            **(extra or {}),
        }

    def docker(
        self, *args: str, timeout: float = 120, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.client, *args], capture_output=True, text=True, timeout=timeout, env=self.env(), input=input)
        if check and proc.returncode != 0:
            raise EngineError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def answers(self) -> bool:
        if not SOCKET.is_socket():
            return False
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.docker("version", "--format", "{{.Server.Version}}", timeout=10, check=False).returncode == 0
        return False

    def start(self, timeout: float = 90) -> Engine:
        if self.answers():
            return self
        dockerd = find_dockerd()
        if dockerd is None:
            raise EngineError("dockerd is not installed (apt-get install docker.io)")
        for folder in (self.data_root, EXEC_ROOT):
            folder.mkdir(mode=0o711, parents=True, exist_ok=True)
        argv: Sequence[str] = [
            dockerd,
            *DOCKERD_FLAGS,
            f"--data-root={self.data_root}",
            f"--exec-root={EXEC_ROOT}",
            f"--pidfile={PIDFILE}",
            f"--host={self.host}",
        ]
        with open(LOG, "ab") as log:
            self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        self.started = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EngineError(f"dockerd exited with {self._process.returncode}; see {LOG}:\n{self._log_tail()}")
            if self.answers():
                return self
            time.sleep(0.5)
        self.stop()
        raise EngineError(f"dockerd did not answer on {SOCKET} within {timeout:.0f} s; see {LOG}:\n{self._log_tail()}")

    def stop(self, timeout: float = 60) -> None:
        """Stop the daemon if this object started it (its containers stop with it)."""
        process, self._process = self._process, None
        if not self.started or process is None:
            return
        self.started = False
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def remove_leftovers(self, project_prefix: str, network_label: str) -> list[str]:
        """Remove what killed runs left: the containers and volumes of compose projects named
        ``project_prefix...`` and the networks labelled ``network_label``. Hold :func:`exclusive` first.

        A run killed with its stack up leaves containers with ``restart: always``, which the
        daemon starts again with itself: they would load the next run's machine.
        """
        label = '{{.Label "com.docker.compose.project"}}'
        removed: list[str] = []
        for kind, listing, name in (("container", ("ps", "-a"), "{{.ID}}"), ("volume", ("volume", "ls"), "{{.Name}}")):
            rows = self.docker(*listing, "--filter", "label=com.docker.compose.project", "--format", f"{name} {label}").stdout
            stale = [
                row.split()[0] for row in rows.splitlines() if row.split()[1:2] and row.split()[1].startswith(project_prefix)
            ]
            if stale:
                self.docker(kind, "rm", "--force", *stale, timeout=300)
                removed += [f"{kind} {item}" for item in stale]
        networks = self.docker("network", "ls", "--quiet", "--filter", f"label={network_label}").stdout.split()
        for network in networks:
            if self.docker("network", "rm", network, check=False).returncode == 0:
                removed.append(f"network {network}")
        return removed

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(LOG.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
