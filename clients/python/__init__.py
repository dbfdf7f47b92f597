"""Python client library for the LiveEdit sidecar (gRPC)."""

from liveedit.clients.python.client import (LiveEditClient, PreviewFrame, PreviewHandle, ServerError,
                                            ServerNotRunningError)

__all__ = ["LiveEditClient", "PreviewFrame", "PreviewHandle", "ServerError", "ServerNotRunningError"]
