"""The ``deepfinder-unsup`` command: parse (``options``), run one subcommand (``commands``), and turn what
happened into one line and an exit status (here).

Subcommands: simulate, simulate-tomogram, train, embed, cluster, average, adapt, demo, info. Errors in the user's
input print one line (``error: <file>: <problem>``) and exit with status 1 (usage errors: 2).
"""

from __future__ import annotations

import os
import shlex
import signal
import sys

from .commands import COMMANDS
from .options import build_parsers, refuse_a_file_without_its_option, refuse_options_that_do_nothing


def _plain_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) asked the command to stop (a KeyboardInterrupt: no `except Exception` swallows it)."""


_MAIN_PID = os.getpid()


def _stop_on_signal(signum, frame):
    if os.getpid() != _MAIN_PID:  # a forked worker (simulation pool, Keras data loader): die as it would
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise Interrupted(signal.Signals(signum).name)


EXIT_GUARD_S = 30.0  # the program ends this long after its command did, whatever its exit waits for


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Exit status: 0 done, 1 bad input (one line on stderr naming the file and the
    problem), 2 bad usage (argparse), 3 an internal error, 4 a run stopped because its worker processes died
    (``train``'s watchdog), 130 / 143 interrupted (SIGINT / SIGTERM).

    Run as the program (``argv`` None: the console script, ``python -m``), the process then ends within
    :data:`EXIT_GUARD_S` with that status even if an exit handler hangs (:func:`watchdog.exit_within`)."""
    status = _run_command(argv)
    if argv is None:
        from ..watchdog import exit_within

        exit_within(EXIT_GUARD_S, status)
    return status


def _run_command(argv: list[str] | None) -> int:
    import warnings

    parser, subcommands = build_parsers()
    refuse_a_file_without_its_option(subcommands, sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    refuse_options_that_do_nothing(args)
    args.command_line = "deepfinder-unsup " + shlex.join(sys.argv[1:] if argv is None else argv)  # for the records
    if not args.verbose:
        warnings.formatwarning = _plain_warning
    global _MAIN_PID
    _MAIN_PID = os.getpid()
    previous = signal.signal(signal.SIGTERM, _stop_on_signal) if _in_main_thread() else None
    try:
        configure_logging(verbose=args.verbose, quiet=args.quiet)
        return COMMANDS[args.command](args)
    except (_input_error(), OSError) as exc:
        if args.debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Interrupted) as exc:
        if args.debug:
            raise
        name = "SIGTERM" if isinstance(exc, Interrupted) and str(exc) == "SIGTERM" else "SIGINT"
        print(f"interrupted ({name}): outputs not completed were removed", file=sys.stderr)
        return 143 if name == "SIGTERM" else 130
    except Exception as exc:  # a bug, not the user's fault: say so in one line
        if args.debug:
            raise
        print(
            f"internal error: {type(exc).__name__}: {_one_line(exc)} (run again with --debug for the "
            f"traceback, and please report it)",
            file=sys.stderr,
        )
        return 3
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _input_error() -> type[Exception]:
    from ..io.files import InputError

    return InputError


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """The package's messages on stderr: INFO by default, DEBUG with --verbose, WARNING with --quiet."""
    import logging

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("deepfinder_unsup")
    logger.setLevel(level)
    if not any(getattr(h, "_deepfinder_unsup", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._deepfinder_unsup = True  # type: ignore[attr-defined]  # marks our handler: added once
        logger.addHandler(handler)
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"
