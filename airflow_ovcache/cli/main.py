"""``ovcache``: the host agent's command line; ``main`` parses and dispatches to :mod:`.commands`.

People get tables; programs (the Airflow hook) pass ``--json`` and get the
versioned envelope from :mod:`.output`. Exit codes (:class:`~airflow_ovcache.protocol.ExitCode`):
0 ok, 1 problems found, 2 error. Errors are one line on stderr naming host, model, version and device.
Progress lines go to stderr so they reach a task log live while stdout stays
parseable.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..core.encryption import read_stdin_key
from ..core.errors import OvcacheError, UsageError
from ..protocol import Command, ErrorCode, ExitCode
from .commands import MODULES, command
from .output import Envelope
from .parser import ArgumentError, build_parser


def _usage_failure(exc: ArgumentError, argv: list[str]) -> int:
    """A bad command line: argparse's usage and message on stderr, and with ``--json`` an envelope saying so.

    The error code tells the Airflow side what it means: ``unknown-command`` and
    ``unknown-option`` are what an agent older than the provider answers (it does
    not know what it was asked for); ``usage`` is a value this agent refuses,
    reported with its own message.
    """
    message = exc.message
    name = next((a for a in argv if a in MODULES), None)
    if "invalid choice" in message and message.startswith("argument COMMAND"):
        code = ErrorCode.UNKNOWN_COMMAND
    elif message.startswith("unrecognized arguments"):
        code = ErrorCode.UNKNOWN_OPTION
    else:
        code = ErrorCode.USAGE
    parser = exc.parser
    sub_parser = getattr(parser, "commands", {}).get(name)
    if sub_parser is not None:
        parser = sub_parser  # the command's own usage, not the list of every command
    prog = parser.prog
    hint = f"see '{prog} --help'"
    if code == ErrorCode.UNKNOWN_OPTION:
        suggestions = _suggest(message, parser)
        if suggestions:
            hint = f"did you mean {' or '.join(suggestions)}? {hint}"
    sys.stderr.write(parser.format_usage())
    err = UsageError(f"{prog}: {message}", hint=hint)
    err.code = code
    print(f"ovcache: error: {err.one_line()}", file=sys.stderr)
    if "--json" in argv:
        env = Envelope(name or Command.OVCACHE, error=err, exit_code=ExitCode.ERROR)
        print(env.dumps(), flush=True)
    return ExitCode.ERROR


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
    """Parse the command line, run its command, and print the envelope with ``--json``.

    :param argv: the arguments after ``ovcache`` (default ``sys.argv[1:]``).
    :return: the exit code (:class:`~airflow_ovcache.protocol.ExitCode`; 130 when interrupted).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
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
        code: int = command(args.command)(args, env)
    except OvcacheError as exc:
        env.error, code = exc, ExitCode.ERROR
        print(f"ovcache: error: {exc.one_line()}", file=sys.stderr)
    except OSError as exc:
        from ..core.fsutil import os_error

        err = os_error(exc, getattr(exc, "filename", None) and f"{exc.filename}" or args.command)
        env.error, code = err, ExitCode.ERROR
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
