"""Where a request or a failure is: host, model, version and device.

One type for both sides of the process boundary. The agent fills in the
coordinates as it learns them (:meth:`Location.merged`); the hook names what
it asked about and takes the host name the agent answered with
(:meth:`Location.with_host`). Both render it the same way, as the start of a
one-line error (``host infer-03, model resnet, version 2, device GPU``), which
people and tests grep for: keep :meth:`Location.label`'s format stable.

Standard library only (plus the package's own text escaping), so that the
agent, the serving helper and the provider can all import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.text import printable


def this_host() -> str:
    """Name this host the way errors and results report it.

    ``OVCACHE_HOST`` wins so that a fleet inventory name (``infer-03``) can be used
    instead of whatever the machine calls itself (a container id, say).
    """
    import os
    import socket  # here, not at the top: the serving helper imports this module on every server start

    return os.environ.get("OVCACHE_HOST") or socket.gethostname()


@dataclass(frozen=True)
class Location:
    """The coordinates of a request or a failure; any of them may be unknown.

    :param host: the host's name; ``None`` means this host (:func:`this_host`) when labelled.
    :param model: the model's name, or a set of them as a request names it (``"mlp, tiny"``).
    :param version: the model version: a number on the agent side, a label such as
        ``"latest:1"`` or ``"1, 2"`` for a request.
    :param device: the OpenVINO device (``CPU``, ``GPU.1``), or a list as a request names it.
    """

    host: str | None = None
    model: str | None = None
    version: int | str | None = None
    device: str | None = None

    def merged(self, other: Location | None) -> Location:
        """These coordinates, with the ones still unknown taken from ``other``.

        :param other: coordinates known further out (the request an error was raised in), or ``None``.
        """
        if other is None:
            return self
        return Location(
            host=self.host or other.host,
            model=self.model or other.model,
            version=self.version if self.version is not None else other.version,
            device=self.device or other.device,
        )

    def with_host(self, host: str | None) -> Location:
        """The same coordinates on another host name (the one the agent answered with).

        :param host: the host's name; ``None`` or empty keeps the current one.
        """
        if not host or host == self.host:
            return self
        return Location(host, self.model, self.version, self.device)

    def label(self) -> str:
        """``host H, model M, version V, device D``, leaving out what is unknown; always one line."""
        # Names come from input (a folder, a flag, an operator argument, agent output): escaped,
        # so one error stays one line.
        parts = [f"host {printable(self.host or this_host())}"]
        if self.model:
            parts.append(f"model {printable(self.model)}")
        if self.version is not None and self.version != "":
            parts.append(f"version {printable(self.version)}")
        if self.device:
            parts.append(f"device {printable(self.device)}")
        return ", ".join(parts)
