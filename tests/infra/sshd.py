"""A real OpenSSH ``sshd`` for tests: loopback address, own host key, own client key, pinned.

Usable with or without pytest::

    with SshServer(tmp_path / "sshd") as server:
        server.host_key_line        # "ssh-ed25519 AAAA..." to pin in a connection
        server.client_key_path      # the private key the server accepts
        server.airflow_connection() # an Airflow SSH connection as a dict

Everything the server needs lives under ``root``: its config, host key, pid
file, log, and the client key pair whose public half is its only authorized
key. Password and keyboard-interactive logins are off. ``wrapper`` prefixes
the sshd command line (``["ip", "netns", "exec", "h1"]`` runs it inside a
network namespace); readiness is then checked from the caller's namespace, so
the address must be reachable from it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def find_sshd() -> str | None:
    """Absolute path of ``sshd`` (it refuses to re-exec from a relative one), or None."""
    for candidate in (shutil.which("sshd"), "/usr/sbin/sshd", "/usr/local/sbin/sshd"):
        if candidate and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    return None


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def generate_key_pair(path: Path, key_type: str = "ed25519", comment: str = "ovcache-test") -> tuple[Path, str]:
    """``ssh-keygen`` a key pair without passphrase; returns (private key path, public key line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    path.chmod(0o600)
    return path, path.with_name(path.name + ".pub").read_text().strip()


class SshServerError(RuntimeError):
    pass


class SshServer:
    """One ``sshd -D`` process with its own keys, for one test or a whole fleet of them."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        address: str = "127.0.0.1",
        port: int | None = None,
        user: str | None = None,
        sshd: str | None = None,
        key_type: str = "ed25519",
        wrapper: Sequence[str] = (),
        extra_config: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.address = address
        self.port = port or free_port(address if address.startswith("127.") else "127.0.0.1")
        self.user = user or getpass.getuser()
        self.sshd = sshd or find_sshd()
        self.key_type = key_type
        self.wrapper = list(wrapper)
        self.extra_config = dict(extra_config or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.host_key_path = self.root / f"ssh_host_{key_type}_key"
        self.client_key_path = self.root / "client_key"
        self.authorized_keys_path = self.root / "authorized_keys"
        self.config_path = self.root / "sshd_config"
        self.log_path = self.root / "sshd.log"
        self.known_hosts_path = self.root / "known_hosts"
        self.host_key_line = ""
        self.client_public_line = ""

    # -- keys and config ----------------------------------------------------------------------
    def _prepare(self) -> None:
        # Keys are made on the first start only: a restarted server (a host that went down and
        # came back) keeps its host key, client key and authorized keys, so pinned connections
        # made before the restart still work.
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.host_key_line or not self.host_key_path.exists():
            _, host_public = generate_key_pair(self.host_key_path, self.key_type, "ovcache-test-host")
            self.host_key_line = " ".join(host_public.split()[:2])
        if not self.client_public_line or not self.client_key_path.exists():
            _, self.client_public_line = generate_key_pair(self.client_key_path, self.key_type, "ovcache-test-client")
            self.authorize(self.client_public_line, replace=True)
        self.known_hosts_path.write_text(f"{self.known_hosts_entry()}\n")
        self.config_path.write_text(self._config())
        if os.geteuid() == 0:
            # sshd running as root insists on its privilege separation directory.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    def _config(self) -> str:
        settings = {
            "Port": str(self.port),
            "ListenAddress": self.address,
            "HostKey": str(self.host_key_path),
            "PidFile": str(self.root / "sshd.pid"),
            "AuthorizedKeysFile": str(self.authorized_keys_path),
            "PubkeyAuthentication": "yes",
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "PermitRootLogin": "prohibit-password",
            "AllowUsers": self.user,
            # Test folders under /tmp are not owned the way StrictModes wants.
            "StrictModes": "no",
            "UsePAM": "no",
            "PrintMotd": "no",
            "LogLevel": "VERBOSE",
            "MaxStartups": "64:30:128",
            "MaxSessions": "64",
            # As on a stock host (Debian's sshd_config has it): the relayed blob store copies over SFTP.
            "Subsystem": "sftp internal-sftp",
            **self.extra_config,
        }
        return "".join(f"{key} {value}\n" for key, value in settings.items())

    def authorize(self, public_line: str, replace: bool = False) -> None:
        """Accept logins with this public key (``replace`` drops the others)."""
        existing = "" if replace or not self.authorized_keys_path.exists() else self.authorized_keys_path.read_text()
        self.authorized_keys_path.write_text(existing + public_line.strip() + "\n")
        self.authorized_keys_path.chmod(0o600)

    def new_client_key(self, name: str) -> tuple[Path, str]:
        """Another key pair under ``root``, not authorized unless you :meth:`authorize` it."""
        return generate_key_pair(self.root / name, self.key_type, f"ovcache-test-{name}")

    def known_hosts_entry(self) -> str:
        host = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{host} {self.host_key_line}"

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> SshServer:
        if self.sshd is None:
            raise SshServerError("sshd is not installed (Debian: apt-get install -y openssh-server)")
        if self.process is not None:
            return self
        self._prepare()
        check = subprocess.run([self.sshd, "-t", "-f", str(self.config_path)], capture_output=True, text=True)
        if check.returncode != 0:
            raise SshServerError(f"sshd rejects its config {self.config_path}: {check.stderr.strip()}")
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        try:
            self.process = subprocess.Popen(
                [*self.wrapper, self.sshd, "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SshServerError(f"sshd exited with {self.process.returncode}: {self.log_text()[-2000:]}")
            if self._banner():
                return self
            time.sleep(0.05)
        self.stop()
        raise SshServerError(f"sshd did not answer on {self.address}:{self.port} within {timeout:g}s: {self.log_text()[-2000:]}")

    def _banner(self) -> bool:
        try:
            with socket.create_connection((self.address, self.port), timeout=0.5) as sock:
                return sock.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def __enter__(self) -> SshServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- clients ------------------------------------------------------------------------------
    def ssh_command(self, command: str, key: Path | None = None) -> list[str]:
        """An OpenSSH client command line that runs ``command`` on this server, host key pinned."""
        return [
            "ssh",
            "-p",
            str(self.port),
            "-i",
            str(key or self.client_key_path),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts_path}",
            f"{self.user}@{self.address}",
            command,
        ]

    def run(self, command: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.ssh_command(command), capture_output=True, text=True, timeout=timeout)

    def airflow_connection(self, **extra: Any) -> dict[str, Any]:
        """An Airflow SSH connection to this server: key login, host key pinned, no other keys tried."""
        fields: dict[str, Any] = {
            "key_file": str(self.client_key_path),
            "host_key": self.host_key_line,
            "look_for_keys": "false",
            "conn_timeout": "5",
        }
        fields.update(extra)
        return {
            "conn_type": "ssh",
            "host": self.address,
            "port": self.port,
            "login": self.user,
            "extra": {k: v for k, v in fields.items() if v is not None},
        }

    def airflow_connection_json(self, **extra: Any) -> str:
        """The same, as the JSON an ``AIRFLOW_CONN_<ID>`` environment variable takes."""
        return json.dumps(self.airflow_connection(**extra))


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.infra.sshd DIR``: run a server until Ctrl-C and print how to reach it."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough; let the cleanup run
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # so that the server is stopped on kill too
    with SshServer(args.root, address=args.address, port=args.port) as server:
        print(" ".join(server.ssh_command("true")[:-1]))
        print(f"AIRFLOW_CONN_SSH_TEST='{server.airflow_connection_json()}'", flush=True)
        try:
            while server.running:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
