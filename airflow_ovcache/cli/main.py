"""``ovcache``: the host agent's command line.

People get tables; programs (the Airflow hook) pass ``--json`` and get the
versioned envelope from :mod:`.output`. Exit codes: 0 ok, 1 problems found,
2 error. Errors are one line on stderr naming host, model, version and device.
Progress lines go to stderr so they reach a task log live while stdout stays
parseable.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from .. import __version__
from ..core import values
from ..core.encryption import STDIN, read_stdin_key
from ..core.errors import OvcacheError, UsageError
from ..core.permissions import UNSAFE_POLICIES
from ..core.text import printable
from ..protocol.location import Location
from .output import EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, Envelope


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
    def __init__(self, message: str, parser: argparse.ArgumentParser) -> None:
        super().__init__(message)
        self.message = message
        self.parser = parser


def _parser() -> argparse.ArgumentParser:
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
        choices=("openvino", "python"),
        help="how the server compiles: openvino (compile_model by path or model, default) or python (its own loader); "
        "for OpenVINO Model Server give --ovms-config",
    )
    spec.add_argument(
        "--loader", metavar="PACKAGE.MODULE:FUNCTION", help="the python profile's loader: fn(model_dir, device, properties)"
    )
    spec.add_argument("--loader-path", metavar="DIR", help="a folder to import the loader from (prepended to sys.path)")

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
        epilog="Exit codes: 0 ok, 1 problems found, 2 error.",
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
            epilog=f"example:\n  {example}\n\nExit codes: 0 ok, 1 problems found, 2 error.",
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
    what = p.add_argument_group("what to warm")
    what.add_argument("--repository", required=True, type=Path, help="model repository root (<model>/<version>/)")
    what.add_argument("--model", action="append", dest="models", help="model to warm (repeatable; default every model)")
    what.add_argument("--versions", default=None, help="version policy: latest[:N], specific:V1,V2, all (default latest:1)")
    what.add_argument(
        "--version-number",
        type=version_number,
        action="append",
        dest="version_numbers",
        help="warm exactly this version (repeatable)",
    )
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


# -- commands -----------------------------------------------------------------------------


def _progress(args: argparse.Namespace) -> Callable[[str], None]:
    def emit(line: str) -> None:
        if not args.quiet:
            try:
                print(line, file=sys.stderr, flush=True)
            except OSError:
                # The client went away (an SSH session dropped): finish the work, it is whole either way.
                pass

    return emit


def _cache(args: argparse.Namespace, create: bool, writable: bool) -> Any:
    from ..core.cachedir import CacheDir
    from ..core.permissions import AccessPolicy

    policy = AccessPolicy.make(args.group, args.unsafe_cache_dir)
    cache = CacheDir(args.cache_dir, Location(), args.lock_timeout, policy).check(create=create, writable=writable)
    for warning in cache.warnings:
        print(f"ovcache: warning: {warning}", file=sys.stderr)
    return cache


def _warnings(cache: Any) -> list[str]:
    warnings = sorted(set(cache.warnings))
    cache.warnings.clear()
    return warnings


def cmd_warm(args: argparse.Namespace, env: Envelope) -> int:
    from ..core.policy import VersionPolicy
    from ..core.repository import ModelRepository
    from ..core.spec import ServingConfig, parse_property
    from ..core.warm import Warmer, plan_warm, refuse_cache_inside, warm_many

    repo = ModelRepository(args.repository)
    refuse_cache_inside(Path(os.path.abspath(args.cache_dir)), repo.root)
    config = ServingConfig.load(args.config) if args.config else ServingConfig()
    overrides: dict[str, Any] = {
        "devices": args.devices,
        "properties": dict(parse_property(p) for p in args.properties),
        "compile_mode": args.compile_mode,
        "cache_mode": args.cache_mode,
        "model_file": args.model_file,
        "encryption_key_file": STDIN if args.encryption_key_stdin else args.encryption_key_file,
    }
    if args.encryption_key_stdin and args.encryption_key_file:
        raise UsageError("give either --encryption-key-file or --encryption-key-stdin, not both")
    if args.version_numbers and args.versions:
        raise UsageError("give either --versions or --version-number, not both")
    warnings: list[str] = []
    if args.ovms_config:
        items, warnings = _ovms_items(args, repo)
    else:
        overrides["profile"] = args.profile
        if args.profile == "python" or args.loader:
            from ..core.pyloader import check_loader

            if args.profile != "python" or not args.loader:
                raise UsageError("the python profile takes a loader: give --profile python --loader package.module:function")
            overrides["profile_options"] = {"loader": check_loader(args.loader)}
            if args.loader_path:
                overrides["profile_options"]["python_path"] = os.path.abspath(args.loader_path)
        policy = VersionPolicy.parse(args.versions or "latest:1")
        models = args.models or repo.models()
        if not models:
            raise UsageError(f"repository {repo.root} holds no models")
        items = plan_warm(repo, config, models, policy, args.version_numbers, overrides)
    cache = _cache(args, create=True, writable=True)
    warmer = Warmer(cache, repository_root=repo.root, force=args.force, on_no_cache=args.no_cache_device, confirm=args.confirm)
    say = _progress(args)
    total = len(items)
    done = 0

    def progress(res: Any) -> None:
        nonlocal done
        done += 1
        timing = f" ({res.seconds:.2f} s for this item)" if res.status != "unchanged" else ""
        # A failure's reason is printed once, on its "ovcache: error:" line, not here too.
        say(
            printable(
                f"[{done}/{total}] {res.model}@{res.version if res.version is not None else '-'} {res.device}: {res.status}{timing}"
            )
        )

    say(f"warming {total} item(s) into {cache.root}")
    if sys.stderr.isatty() and not args.quiet and total > 1:
        # A person at a terminal gets a live bar; logs and the Airflow hook get one line per item.
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
        ) as bar:
            task = bar.add_task("warming", total=total)

            def advance(res: Any) -> None:
                progress(res)
                bar.update(task, advance=1)

            def starting(label: str) -> None:
                bar.update(task, description=printable(f"compiling {label}"))

            results = warm_many(warmer, items, advance, starting)
    else:
        results = warm_many(warmer, items, progress)
    summary = {s: sum(1 for r in results if r.status == s) for s in ("warmed", "unchanged", "skipped", "failed")}
    env.result = {
        "cache_dir": str(cache.root),
        "repository": str(repo.root),
        "items": [r.to_json() for r in results],
        "summary": summary,
        "warnings": sorted({w for r in results for w in r.warnings} | set(repo.problems) | set(warnings)),
    }
    for r in results:
        if r.status == "failed":
            print(f"ovcache: error: {r.reason}", file=sys.stderr)
    if not args.json:
        from .render import warm_table

        warm_table(env.result["items"], summary)
    return EXIT_ERROR if summary["failed"] else EXIT_OK


def _ovms_items(args: argparse.Namespace, repo: Any) -> tuple[list[Any], list[str]]:
    """Warm items from OVMS's config.json; the compile settings are the server's, so flags for them are refused."""
    from ..core.ovms_plan import ovms_warm_items, parse_path_map
    from ..core.policy import VersionPolicy

    given = [
        flag
        for flag, value in (
            ("--device", args.devices),
            ("--property", args.properties),
            ("--compile-mode", args.compile_mode),
            ("--cache-mode", args.cache_mode),
            ("--model-file", args.model_file),
            ("--config", args.config),
            ("--profile", args.profile),
            ("--loader", args.loader),
            ("--encryption-key-file", args.encryption_key_file),
            ("--encryption-key-stdin", args.encryption_key_stdin),
        )
        if value
    ]
    if given:
        raise UsageError(
            f"{', '.join(given)} cannot be combined with --ovms-config: the server's config.json says how it compiles",
            hint="change target_device, plugin_config, shape, batch_size or layout in config.json instead",
        )
    policy = VersionPolicy.parse(args.versions) if args.versions else None
    return ovms_warm_items(args.ovms_config, repo, parse_path_map(args.ovms_path_map), args.models, policy, args.version_numbers)


def cmd_verify(args: argparse.Namespace, env: Envelope) -> int:
    from ..core.verify import Verifier, summarize

    cache = _cache(args, create=False, writable=False)
    verifier = Verifier(
        cache,
        checksum=args.checksum,
        load_check=args.load_check,
        infer_check=args.infer_check,
        check_devices=not args.no_device_check,
    )
    results = verifier.verify(args.model, args.version_number, args.device)
    summary = summarize(results)
    problems = [r for r in results if not r.ok]
    env.result = {
        "cache_dir": str(cache.root),
        "entries": [r.to_json() for r in results],
        "summary": summary,
        "problems": len(problems),
        "warnings": _warnings(cache),
    }
    if not args.json:
        from .render import verify_table

        verify_table(env.result["entries"], summary)
    return EXIT_PROBLEMS if problems else EXIT_OK


def cmd_invalidate(args: argparse.Namespace, env: Envelope) -> int:
    from ..core.invalidate import apply_plan, plan_invalidation
    from ..core.policy import VersionPolicy

    cache = _cache(args, create=False, writable=not args.dry_run)
    policy = VersionPolicy.parse(args.versions) if args.versions else None
    policies = None
    if args.ovms_config and policy is None:
        from ..core.ovms_plan import ovms_retention, parse_path_map

        # Keep what the server serves: each model's own model_version_policy.
        policies = ovms_retention(args.ovms_config, parse_path_map(args.ovms_path_map))
    plan = plan_invalidation(
        cache,
        policy=policy,
        policies=policies,
        models=args.models,
        stale=not args.no_stale,
        foreign=not args.no_foreign,
        orphans=args.orphans,
        orphan_min_age=args.orphan_min_age,
        max_bytes=args.max_bytes,
    )
    applied = None if args.dry_run else apply_plan(cache, plan)
    env.result = {
        "cache_dir": str(cache.root),
        "dry_run": bool(args.dry_run),
        "policy": str(policy) if policy else ("OVMS config model_version_policy" if policies else "all"),
        "plan": plan.to_json(),
        "applied": applied.to_json() if applied else None,
        "warnings": _warnings(cache),
    }
    if not args.json:
        from .render import invalidate_table

        invalidate_table(env.result["plan"], env.result["applied"], args.dry_run)
    return EXIT_OK if plan.budget_met else EXIT_PROBLEMS


def cmd_status(args: argparse.Namespace, env: Envelope) -> int:
    from ..core.status import cache_status

    cache = _cache(args, create=False, writable=False)
    status = cache_status(cache)
    env.result = {**status.to_json(), "warnings": _warnings(cache)}
    if not args.json:
        from .render import status_table

        status_table(env.result)
    return EXIT_PROBLEMS if status.missing else EXIT_OK


def cmd_devices(args: argparse.Namespace, env: Envelope) -> int:
    import openvino as ov

    from ..core import devices as dev
    from ..core.hostfacts import host_summary, runtime_build

    core = ov.Core()
    infos = [dev.describe(name, core) for name in args.devices] if args.devices else dev.describe_all(core)
    env.result = {"runtime": runtime_build(), "host": host_summary(), "devices": [i.to_json() for i in infos]}
    if not args.json:
        from .render import devices_table

        devices_table(env.result["devices"])
    return EXIT_OK if all(i.can_cache for i in infos) else EXIT_PROBLEMS


def cmd_models(args: argparse.Namespace, env: Envelope) -> int:
    from ..core.policy import VersionPolicy
    from ..core.repository import ModelRepository

    repo = ModelRepository(args.repository)
    policy = VersionPolicy.parse(args.versions)
    rows = []
    for model in args.models or repo.models():
        versions = repo.versions(model)
        rows.append(
            {"name": model, "versions": versions, "selected": policy.select(versions), "latest": max(versions, default=None)}
        )
    env.result = {"repository": str(repo.root), "policy": str(policy), "models": rows, "problems": repo.problems}
    if not args.json:
        from .render import models_table

        models_table(env.result)
    return EXIT_OK


def cmd_rewarm(args: argparse.Namespace, env: Envelope) -> int:
    from ..core.rewarm import rewarm

    cache = _cache(args, create=False, writable=True)
    say = _progress(args)

    def progress(res: Any) -> None:
        say(
            printable(f"rewarm {res.model}@{res.version} {res.device}: {res.status}")
            + (f" - {res.reason}" if res.status == "failed" else "")
        )

    report = rewarm(cache, load_check=args.load_check, confirm=not args.no_confirm, progress=progress)
    env.result = {"cache_dir": str(cache.root), **report.to_json(), "warnings": _warnings(cache)}
    for res in report.unrepaired:
        print(
            printable(
                f"ovcache: unrepaired: host {env_host()}, model {res.model}, version {res.version}, device {res.device}: {res.status}: {res.reason}"
            ),
            file=sys.stderr,
        )
    if not args.json:
        from .render import verify_table, warm_table

        if report.warmed:
            warm_table(env.result["rewarmed"], {s: sum(1 for w in report.warmed if w.status == s) for s in ("warmed", "failed")})
        verify_table(env.result["after"], env.result["after_summary"])
    return EXIT_PROBLEMS if report.unrepaired else EXIT_OK


def env_host() -> str:
    from ..core.errors import this_host

    return this_host()


def cmd_repair_manifest(args: argparse.Namespace, env: Envelope) -> int:
    from ..core.errors import ManifestCorrupt

    cache = _cache(args, create=False, writable=True)
    with cache.manifest_lock():
        try:
            manifest = cache.read_manifest()
            env.result = {"cache_dir": str(cache.root), "repaired": False, "entries": len(manifest.entries), "set_aside": None}
            message = f"manifest is sound ({len(manifest.entries)} entries); nothing to do"
        except ManifestCorrupt as exc:
            aside = cache.set_aside_manifest()
            env.result = {
                "cache_dir": str(cache.root),
                "repaired": True,
                "entries": 0,
                "set_aside": str(aside),
                "was": exc.message,
            }
            message = f"set the corrupt manifest aside as {aside}; blobs are untouched and become managed again on the next warm"
    if not args.json:
        print(message)
    return EXIT_OK


def cmd_sample_repository(args: argparse.Namespace, env: Envelope) -> int:
    from ..samples import build_sample_repository

    models: dict[str, int] | None = None
    if args.models:
        models = {}
        for spec in args.models:
            name, _, count = spec.partition(":")
            try:
                models[name] = values.parse_count(count or "1", minimum=1, maximum=100)
            except ValueError as exc:
                raise UsageError(f"--model {spec!r}: the number of versions {exc}", hint="write NAME or NAME:VERSIONS") from None
    root = build_sample_repository(args.path, models, size_mb=args.size_mb, kind=args.kind)
    env.result = {"repository": str(root.resolve())}
    if not args.json:
        print(f"sample repository at {root}")
    return EXIT_OK


def cmd_version(args: argparse.Namespace, env: Envelope) -> int:
    import platform

    from ..core.hostfacts import runtime_dist_version
    from .output import SCHEMA, SCHEMA_VERSION

    env.result = {
        "agent_version": __version__,
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "openvino": runtime_dist_version(),
        "python": platform.python_version(),
        "executable": sys.executable,
    }
    if not args.json:
        print(
            f"ovcache {__version__} (schema {SCHEMA_VERSION}, openvino {env.result['openvino']}, python {env.result['python']})"
        )
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, Envelope], int]] = {
    "warm": cmd_warm,
    "verify": cmd_verify,
    "invalidate": cmd_invalidate,
    "status": cmd_status,
    "devices": cmd_devices,
    "models": cmd_models,
    "rewarm": cmd_rewarm,
    "repair-manifest": cmd_repair_manifest,
    "sample-repository": cmd_sample_repository,
    "version": cmd_version,
}


def _usage_failure(exc: ArgumentError, argv: list[str]) -> int:
    """A bad command line: argparse's usage and message on stderr, and with ``--json`` an envelope saying so.

    The error code tells the Airflow side what it means: ``unknown-command`` and
    ``unknown-option`` are what an agent older than the provider answers (it does
    not know what it was asked for); ``usage`` is a value this agent refuses,
    reported with its own message.
    """
    message = exc.message
    command = next((a for a in argv if a in COMMANDS), None)
    if "invalid choice" in message and message.startswith("argument COMMAND"):
        code = "unknown-command"
    elif message.startswith("unrecognized arguments"):
        code = "unknown-option"
    else:
        code = "usage"
    parser = exc.parser
    sub_parser = getattr(parser, "commands", {}).get(command)
    if sub_parser is not None:
        parser = sub_parser  # the command's own usage, not the list of every command
    prog = parser.prog
    hint = f"see '{prog} --help'"
    if code == "unknown-option":
        suggestions = _suggest(message, parser)
        if suggestions:
            hint = f"did you mean {' or '.join(suggestions)}? {hint}"
    sys.stderr.write(parser.format_usage())
    err = UsageError(f"{prog}: {message}", hint=hint)
    err.code = code
    print(f"ovcache: error: {err.one_line()}", file=sys.stderr)
    if "--json" in argv:
        env = Envelope(command or "ovcache", error=err, exit_code=EXIT_ERROR)
        print(env.dumps(), flush=True)
    return EXIT_ERROR


def _suggest(message: str, parser: argparse.ArgumentParser) -> list[str]:
    """Close matches among the command's own flags for each unrecognized one ("--cache-dri" -> "--cache-dir")."""
    import difflib

    known = [flag for action in parser._actions for flag in action.option_strings]
    unknown = [word.split("=", 1)[0] for word in message.partition(":")[2].split() if word.startswith("-")]
    found: list[str] = []
    for word in unknown:
        for match in difflib.get_close_matches(word, known, n=1, cutoff=0.6):
            if match not in found:
                found.append(match)
    return found


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except ArgumentError as exc:
        return _usage_failure(exc, argv)
    if args.host_name:
        os.environ["OVCACHE_HOST"] = args.host_name
    logging.basicConfig(level=logging.WARNING, format="ovcache: %(levelname)s: %(message)s")
    env = Envelope(args.command)
    try:
        if getattr(args, "encryption_key_stdin", False):
            # Read before anything else; the key is never echoed, logged or put in a result.
            read_stdin_key(sys.stdin.buffer)
        code = COMMANDS[args.command](args, env)
    except OvcacheError as exc:
        env.error, code = exc, EXIT_ERROR
        print(f"ovcache: error: {exc.one_line()}", file=sys.stderr)
    except OSError as exc:
        from ..core.fsutil import os_error

        err = os_error(exc, getattr(exc, "filename", None) and f"{exc.filename}" or args.command)
        env.error, code = err, EXIT_ERROR
        print(f"ovcache: error: {err.one_line()}", file=sys.stderr)
    except KeyboardInterrupt:
        print("ovcache: interrupted", file=sys.stderr)
        return 130
    env.exit_code = code
    if args.json:
        try:
            print(env.dumps(), flush=True)
        except BrokenPipeError:
            # Nobody is reading any more; what the command did is recorded in the manifest.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


if __name__ == "__main__":
    raise SystemExit(main())
