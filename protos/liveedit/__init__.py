"""Generated modules of the liveedit.v1 gRPC contract live in liveedit.protos.liveedit.v1."""
