"""The `liveedit` command. Each sub-command lives in its own module under
`liveedit.commands` and exposes ``register(subparsers)``; this file only
discovers them, so adding a command never touches shared code.

Shared by every sub-command, and handled here:
- `-v/--verbose` and `-q/--quiet` before or after the sub-command's name;
- an option with an optional value (``--sidecar [ADDRESS]``) never swallows the file
  argument after it: a sub-command marks such an option with ``looks_like_value``
  (a predicate on the next word), and a next word that is not its value is left alone;
- SIGTERM is handled like Ctrl-C, so the writers' clean-up runs and no partial file stays.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import pkgutil
import signal
import sys
import threading

from liveedit import __version__
from liveedit import commands
from liveedit.errors import LiveEditError


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwinds like Ctrl-C, so every `finally` and writer abort runs."""


class _Parser(argparse.ArgumentParser):
    def parse_known_args(self, args=None, namespace=None):
        if getattr(self, "_is_root", False):
            args = _keep_positionals(self, list(sys.argv[1:] if args is None else args))
        return super().parse_known_args(args, namespace)


def _optional_value_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every sub-command's options with an optional value that say what their value looks like."""
    found: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.update(_optional_value_options(sub))
        elif action.nargs == "?" and callable(getattr(action, "looks_like_value", None)):
            found.update({option: action for option in action.option_strings})
    return found


def _keep_positionals(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--sidecar clip.mov -p x`` means the default sidecar and the input clip.mov: an
    optional-value option followed by a word that is not its value moves to the end, where it
    takes no value."""
    options = _optional_value_options(parser)
    moved: list[str] = []
    out: list[str] = []
    for i, word in enumerate(argv):
        if word == "--":
            out += argv[i:]
            break
        action = options.get(word)
        following = argv[i + 1] if i + 1 < len(argv) else None
        if action is not None and following is not None and not following.startswith("-") \
                and not action.looks_like_value(following):
            moved.append(word)
            continue
        out.append(word)
    if "--" in out:
        at = out.index("--")
        return out[:at] + moved + out[at:]
    return out + moved


def _add_verbosity(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Sub-commands default to SUPPRESS so that `-v status` is not reset by the sub-parser.
    default = False if top else argparse.SUPPRESS
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")
    group.add_argument("-q", "--quiet", action="store_true", default=default, help="warnings and errors only")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="liveedit",
        description="Text-instructed streaming video editing (LiveEdit) for film editors.",
    )
    parser._is_root = True
    parser.add_argument("--version", action="version", version=f"liveedit {__version__}")
    _add_verbosity(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"liveedit.commands.{info.name}")
        module.register(sub)
    for command in sub.choices.values():
        _add_verbosity(command, top=False)
    return parser


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises Terminated in the main thread for the duration (a command that sets
    its own handler, like `serve`, replaces it); the previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose or args.quiet:  # also when logging was configured before (tests, embedding)
        logging.getLogger().setLevel(level)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with _sigterm_as_interrupt():
            return int(args.func(args) or 0)
    except Terminated:
        print("liveedit: terminated (SIGTERM); nothing half-written was kept", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except LiveEditError as exc:  # expected failures: a clear message, no traceback
        print(f"liveedit: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
