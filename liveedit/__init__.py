"""LiveEdit sidecar: streaming text-instructed video editing for NLEs.

The code lives in sibling folders mapped into this namespace:
``liveedit.engine`` (engine/), ``liveedit.sidecar`` (sidecar/), ``liveedit.protos``
(protos/), ``liveedit.clients`` (clients/), ``liveedit.ui`` (ui/).
"""

__version__ = "0.1.0"
