"""The LiveEdit model and its streaming loop. Pure torch: no gRPC, no files, no editors."""
