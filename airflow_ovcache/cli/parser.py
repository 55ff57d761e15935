"""The ``ovcache`` command line's grammar: every command, its flags and their strict value readers.

Built fresh per run and nothing else: no command runs here. A usage error is
raised as :class:`ArgumentError` (not printed and exited on) so that ``main``
can still answer ``--json`` with an envelope.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from .. import __version__
from ..core import profile_options, values
from ..core.permissions import UNSAFE_POLICIES
from ..protocol import ExitCode

EXIT_CODES = f"Exit codes: {ExitCode.OK:d} ok, {ExitCode.PROBLEMS:d} problems found, {ExitCode.ERROR:d} error."


def _flag_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` from a strict value reader: its ValueError becomes argparse's one-line usage error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


parse_size = _flag_type(values.parse_size)
seconds = _flag_type(values.parse_seconds)
version_number = _flag_type(lambda text: values.parse_count(text, minimum=1, maximum=10**18 - 1))


def _megabytes(text: str) -> float:
    size = values.parse_size(f"{text}M") if text.replace(".", "", 1).isdigit() else None
    if not size or size > 64 << 30:
        raise ValueError(f"{text!r} is not a model size in MB between 0 and 65536")
    return size / (1 << 20)


megabytes = _flag_type(_megabytes)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is raised, not printed and exited on, so ``--json`` still gets an envelope.

    The Airflow hook reads the envelope; without one it could only guess from
    stderr whether the agent is too old or was given a bad value.
    """

    def error(self, message: str) -> NoReturn:
        raise ArgumentError(message, self)


class ArgumentError(Exception):
    """A command line argparse refused, with the (sub)parser that refused it.

    :param message: argparse's message ("unrecognized arguments: --cache-dri").
    :param parser: the parser that raised it, for its usage line and its flags.
    """

    def __init__(self, message: str, parser: argparse.ArgumentParser) -> None:
        super().__init__(message)
        self.message = message
        self.parser = parser


def _selection(what: Any, verb: str) -> None:
    """The flags choosing model versions from a repository, as ``warm`` and ``install`` share them."""
    what.add_argument("--repository", required=True, type=Path, help="model repository root (<model>/<version>/)")
    what.add_argument("--model", action="append", dest="models", help=f"model to {verb} (repeatable; default every model)")
    what.add_argument("--versions", default=None, help="version policy: latest[:N], specific:V1,V2, all (default latest:1)")
    what.add_argument(
        "--version-number",
        type=version_number,
        action="append",
        dest="version_numbers",
        help=f"{verb} exactly this version (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``ovcache`` parser; ``parser.commands`` maps each command name to its own subparser."""
    common = _Parser(add_help=False)
    output = common.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print the versioned JSON envelope instead of tables")
    output.add_argument("--host-name", help="name this host in results and errors (default: $OVCACHE_HOST or the hostname)")
    output.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")

    cache = _Parser(add_help=False)
    where = cache.add_argument_group("the cache directory, and safety")
    where.add_argument("--cache-dir", required=True, type=Path, help="OpenVINO's cache_dir on this host")
    where.add_argument(
        "--lock-timeout",
        type=seconds,
        default=None,
        help="seconds to wait for another ovcache on the same cache (default 1800)",
    )
    where.add_argument(
        "--group",
        help="serving group that may read the cache (dirs 2750, manifest 0640, blobs 0440); default $OVCACHE_GROUP, else private (0700/0600/0400)",
    )
    where.add_argument(
        "--unsafe-cache-dir",
        choices=UNSAFE_POLICIES,
        help="refuse (default: refuse a cache others can write, warn about another owner), strict (refuse both) or warn; default $OVCACHE_UNSAFE_CACHE_DIR",
    )

    key = _Parser(add_help=False)
    key.add_argument_group("encryption").add_argument(
        "--encryption-key-stdin",
        action="store_true",
        help="read the cache encryption key (64 hex characters) from standard input; entries warmed this way need it again",
    )

    spec_parser = _Parser(add_help=False)
    spec = spec_parser.add_argument_group("how the server compiles (the cache spec and serving profile)")
    spec.add_argument("--config", type=Path, help="serving config (TOML or JSON) with per-model cache specs")
    spec.add_argument("--device", action="append", dest="devices", help="device to warm for (repeatable; default CPU)")
    spec.add_argument(
        "--property",
        action="append",
        dest="properties",
        default=[],
        metavar="KEY=VALUE",
        help="compile property the server sets (repeatable)",
    )
    spec.add_argument(
        "--compile-mode", choices=("path", "model"), help="the server compiles by path (default) or from a read model object"
    )
    spec.add_argument(
        "--cache-mode",
        choices=("OPTIMIZE_SPEED", "OPTIMIZE_SIZE"),
        type=str.upper,
        help="OPTIMIZE_SPEED (default) or OPTIMIZE_SIZE (weightless blobs, IR only), as the server sets CACHE_MODE",
    )
    spec.add_argument("--model-file", help="the file in each version folder the server loads, if there are several")
    spec.add_argument(
        "--encryption-key-file", help="host-local AES-256 key file (mode 0600 or 0640) for CACHE_ENCRYPTION_CALLBACKS"
    )
    spec.add_argument(
        "--profile",
        choices=profile_options.NAMED_PROFILES,
        help="how the server compiles: openvino (compile_model by path or model, default), python (its own loader), "
        "optimum (optimum-intel's from_pretrained) or genai (OpenVINO GenAI's LLMPipeline); "
        "for OpenVINO Model Server give --ovms-config",
    )
    spec.add_argument(
        "--loader", metavar="PACKAGE.MODULE:FUNCTION", help="the python profile's loader: fn(model_dir, device, properties)"
    )
    spec.add_argument("--loader-path", metavar="DIR", help="a folder to import the loader from (prepended to sys.path)")
    spec.add_argument(
        "--model-class", metavar="OVMODELFORXXX", help="the optimum profile's model class, e.g. OVModelForFeatureExtraction"
    )
    spec.add_argument("--pipeline", metavar="KIND", help="the genai profile's pipeline kind: LLMPipeline (the default)")

    ovms_parser = _Parser(add_help=False)
    ovms = ovms_parser.add_argument_group("OpenVINO Model Server")
    ovms.add_argument(
        "--ovms-config",
        type=Path,
        help="OpenVINO Model Server's config.json: warm its models as OVMS prepares them, keep what its version policies serve",
    )
    ovms.add_argument(
        "--ovms-path-map",
        action="append",
        default=[],
        metavar="SERVER=AGENT",
        help="where the agent finds a base_path OVMS sees under another mount point (repeatable)",
    )

    parser = _Parser(
        prog="ovcache",
        description="Warm, verify and invalidate OpenVINO model caches on this host.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"ovcache {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    commands: dict[str, argparse.ArgumentParser] = {}

    def command(name: str, parents: list[_Parser], help: str, example: str) -> argparse.ArgumentParser:
        sub_parser = sub.add_parser(
            name,
            parents=parents,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            epilog=f"example:\n  {example}\n\n{EXIT_CODES}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        commands[name] = sub_parser
        return sub_parser

    p = command(
        "warm",
        [common, cache, spec_parser, ovms_parser, key],
        "compile model versions into the cache as the server would",
        "ovcache warm --repository /models --cache-dir /var/cache/ov --versions latest:2 --device CPU --confirm",
    )
    _selection(p.add_argument_group("what to warm"), "warm")
    safety = p.add_argument_group("checks")
    safety.add_argument(
        "--no-cache-device", choices=("fail", "skip"), default="fail", help="what to do when a device cannot cache (default fail)"
    )
    safety.add_argument(
        "--confirm",
        action="store_true",
        help="after publishing, check in a fresh process that a compile following the profile loads it from cache",
    )
    safety.add_argument("--force", action="store_true", help="recompile even when the blob is up to date")

    p = command(
        "verify",
        [common, cache, key],
        "check each managed blob would serve the deployed model",
        "ovcache verify --cache-dir /var/cache/ov --load-check",
    )
    what = p.add_argument_group("what to verify")
    what.add_argument("--model", help="only this model")
    what.add_argument("--version", type=version_number, dest="version_number", help="only this version")
    what.add_argument("--device", help="only this device")
    how = p.add_argument_group("how hard to look")
    how.add_argument(
        "--load-check",
        action="store_true",
        help="also load each blob in a fresh process following its profile (LOADED_FROM_CACHE, load time; not proof the server does)",
    )
    how.add_argument(
        "--infer-check", action="store_true", help="also compare cached outputs with a fresh compile (implies --load-check)"
    )
    how.add_argument(
        "--checksum",
        choices=("changed", "always"),
        default="changed",
        help="re-hash blobs only when their stat changed (default) or always",
    )
    how.add_argument("--no-device-check", action="store_true", help="do not check that the device is present and can cache")

    p = command(
        "invalidate",
        [common, cache, ovms_parser, key],
        "remove blobs of retired versions, stale and foreign blobs",
        "ovcache invalidate --cache-dir /var/cache/ov --versions latest:1 --dry-run",
    )
    what = p.add_argument_group("what to remove")
    what.add_argument("--model", action="append", dest="models", help="limit to this model (repeatable)")
    what.add_argument("--versions", default=None, help="retention policy over recorded versions (default: keep all versions)")
    what.add_argument("--no-stale", action="store_true", help="keep blobs whose model files changed or vanished")
    what.add_argument("--no-foreign", action="store_true", help="keep blobs of another runtime build or CPU")
    what.add_argument("--orphans", action="store_true", help="also remove blobs no entry accounts for")
    what.add_argument(
        "--orphan-min-age", type=seconds, default=600.0, help="seconds an orphan must be old before it is removed (default 600)"
    )
    what.add_argument("--max-bytes", type=parse_size, help="evict older retained versions until the cache fits (e.g. 20G)")
    what.add_argument("--dry-run", action="store_true", help="print the plan and the bytes it would free; remove nothing")

    command(
        "status",
        [common, cache],
        "list managed blobs, orphans and sizes (fast: no hashing)",
        "ovcache status --cache-dir /var/cache/ov",
    )
    p = command("devices", [common], "devices, their capabilities and whether they can cache", "ovcache devices --device GPU")
    p.add_argument("--device", action="append", dest="devices", help="only this device (repeatable; default every device)")
    p.add_argument(
        "--cache-dir", type=Path, help="read and record the CPU's instruction set in this cache's host facts (default: probe it)"
    )

    p = command(
        "models",
        [common],
        "models and versions in a repository, and what a policy selects",
        "ovcache models --repository /models --versions latest:2",
    )
    p.add_argument("--repository", required=True, type=Path, help="model repository root (<model>/<version>/)")
    p.add_argument("--model", action="append", dest="models", help="only this model (repeatable)")
    p.add_argument("--versions", default="all", help="the version policy to show the selection of (default all)")

    p = command(
        "rewarm",
        [common, cache, key],
        "verify, rebuild what a warm can fix (missing, corrupt, stale, foreign), report the rest",
        "ovcache rewarm --cache-dir /var/cache/ov --load-check",
    )
    p.add_argument(
        "--load-check",
        action="store_true",
        help="verify with load checks, so blobs a compile following their profile would not load are rebuilt too",
    )
    p.add_argument("--no-confirm", action="store_true", help="do not load each rebuilt blob in a fresh process")

    p = command(
        "release",
        [common, cache, spec_parser, ovms_parser, key],
        "release one model version on this host in one process: check the version folder and the devices, warm "
        "(confirmed), verify with a load check, invalidate what --retain no longer keeps; stops at the first failing step",
        "ovcache release --repository /models --cache-dir /var/cache/ov --model resnet --version 3 --retain latest:2 --json",
    )
    what = p.add_argument_group("what to release")
    what.add_argument("--repository", required=True, type=Path, help="model repository root (<model>/<version>/)")
    what.add_argument("--model", required=True, help="the model released")
    what.add_argument("--version", required=True, type=version_number, dest="version_number", help="the version released")
    what.add_argument(
        "--retain",
        default=None,
        help="version policy the invalidate step keeps (e.g. latest:2); default: the OVMS config's policies, else every version",
    )
    what.add_argument(
        "--wait",
        type=seconds,
        default=0.0,
        help="seconds to wait for the version folder to appear (default 0: look once; long waits belong to a sensor)",
    )
    what.add_argument("--force", action="store_true", help="recompile even when the blob is up to date")
    what.add_argument(
        "--store",
        help="a blob store (a directory that must exist): the warm step then puts what it compiled there, filed under "
        "this host's hardware class (a builder); a failed put is a warning",
    )
    what.add_argument(
        "--from-store",
        action="store_true",
        help="with --store: the warm step installs this host's class's set from the store instead of compiling "
        "(checked, published, proven by a load); compiles where a check fails or the store cannot be reached",
    )

    store_help = "the blob store: a directory (on a builder, or a shared mount) that must exist"
    p = command(
        "store-put",
        [common, cache],
        "put verified managed entries (their blob sets) into a blob store, filed under this host's hardware class",
        "ovcache store-put --cache-dir /var/cache/ov --store /mnt/ovstore --model resnet --version 3",
    )
    p.add_argument("--store", required=True, help=store_help)
    what = p.add_argument_group("what to put (default every entry)")
    what.add_argument("--model", help="only this model")
    what.add_argument("--version", type=version_number, dest="version_number", help="only this version")
    what.add_argument("--device", help="only this device")

    p = command(
        "install",
        [common, cache, spec_parser, ovms_parser, key],
        "install model versions from a blob store as a warm would publish them (this host's class), proven by a load "
        "from cache; compile locally where a check fails",
        "ovcache install --store /mnt/ovstore --repository /models --cache-dir /var/cache/ov --model resnet --version-number 3",
    )
    p.add_argument("--store", required=True, help=store_help)
    _selection(p.add_argument_group("what to install"), "install")
    p.add_argument(
        "--compile-if-unreachable",
        action="store_true",
        help="a store that cannot be reached is each item's fallback (compiled here, saying why) instead of an error",
    )

    p = command(
        "store-prune",
        [common],
        "remove the blob store's sets of versions a version policy no longer keeps, and unreferenced objects",
        "ovcache store-prune --store /mnt/ovstore --keep latest:2 --dry-run",
    )
    p.add_argument("--store", required=True, help=store_help)
    p.add_argument("--keep", required=True, help="version policy whose versions stay, per model: latest[:N], specific:V1,V2, all")
    p.add_argument("--model", help="only this model")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")

    command(
        "repair-manifest",
        [common, cache],
        "set a corrupt manifest aside and start a new one (blobs are kept)",
        "ovcache repair-manifest --cache-dir /var/cache/ov",
    )

    p = command(
        "sample-repository",
        [common],
        "build a small model repository (for the demo and trials)",
        "ovcache sample-repository /tmp/models --model classifier:2 --kind transformer",
    )
    p.add_argument("path", type=Path, help="where to build it")
    p.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME[:VERSIONS]",
        help="model and its number of versions (default classifier:2 detector:1)",
    )
    p.add_argument("--size-mb", type=megabytes, default=1.0, help="weights per model, in MB (default 1)")
    p.add_argument(
        "--kind",
        choices=("mlp", "transformer"),
        default="mlp",
        help="transformer compiles slower than it loads, like real models",
    )

    command("version", [common], "agent, schema and OpenVINO versions (what the Airflow side checks)", "ovcache version --json")
    parser.commands = commands  # type: ignore[attr-defined]
    return parser
