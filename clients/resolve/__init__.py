"""DaVinci Resolve integration: menu scripts that run inside Resolve's own Python.

Every module in this package except ``install`` uses the standard library only: the
installer copies them into a folder the menu scripts put on ``sys.path`` (as the package
``liveedit_resolve``), where ``liveedit`` itself is not importable. Relative imports keep
them working under both names.
"""
