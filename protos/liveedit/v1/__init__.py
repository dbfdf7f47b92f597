"""The liveedit.v1 gRPC contract: *.proto sources and their generated modules
(regenerate with `python scripts/gen_protos.py`)."""
