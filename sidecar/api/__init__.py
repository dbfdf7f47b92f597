"""What clients talk to: the gRPC server and its servicers, the HTTP/WebSocket bridge, and the
one conversion between their messages and the job model."""
