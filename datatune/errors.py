"""datatune's error types, for code that catches them (`from datatune.errors import DatatuneError`).

They are defined in the core layer (datatune/core/errors.py), which every module imports.
"""

from .core.errors import *  # noqa: F401,F403
from .core.errors import __all__  # noqa: F401
