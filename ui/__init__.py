"""PySide6 preview window."""
