#!/usr/bin/env python
"""Regenerates the gRPC Python modules from protos/liveedit/v1/*.proto (see protos/generate.py)."""

import sys

from liveedit.protos.generate import main

if __name__ == "__main__":
    sys.exit(main())
