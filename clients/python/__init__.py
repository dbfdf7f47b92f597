"""Python client library for the LiveEdit sidecar (gRPC)."""
