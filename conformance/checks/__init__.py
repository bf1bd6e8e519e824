"""The suite's checks. Importing this package registers every one of them
in :data:`conformance.registry.REGISTRY`.

Every module of the package is imported, in name order (which is the run
order of checks of the same step): a new check module is found, never
listed, so adding one costs one file.
"""

import importlib
import pkgutil

for _module in sorted(module.name for module in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
