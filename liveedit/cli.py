"""The `liveedit` command. Each sub-command lives in its own module under
`liveedit.commands` and exposes ``register(subparsers)``; this file only
discovers them, so adding a command never touches shared code."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from liveedit import __version__
from liveedit import commands
from liveedit.errors import LiveEditError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liveedit",
        description="Text-instructed streaming video editing (LiveEdit) for film editors.",
    )
    parser.add_argument("--version", action="version", version=f"liveedit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"liveedit.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except LiveEditError as exc:  # expected failures: a clear message, no traceback
        print(f"liveedit: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
