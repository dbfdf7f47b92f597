"""Local GPU sidecar: media, OTIO, jobs, weights on disk, gRPC server and HTTP bridge."""
