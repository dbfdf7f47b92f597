"""Sub-commands of `liveedit`; each module defines register(subparsers)."""
