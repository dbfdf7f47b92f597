"""The gRPC contract (package liveedit.v1) and its generated Python modules."""
