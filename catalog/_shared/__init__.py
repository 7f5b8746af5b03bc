"""Helpers the catalog's functions share, vendored into each function that uses them.

A catalog function is packed from its own folder and runs from its own package, on a machine
holding only the requirements its function.yaml lists: it cannot import this folder, nor
fnhub. So the one source lives here (`catalog/_shared/`), and every function folder that
imports a module of it holds a byte-identical copy in its `vendor/` folder (for example
`catalog/train/vendor/training.py`, imported as `from vendor.training import ...`), written by
`python -m catalog.vendoring` and checked in, so that packing stays a plain, deterministic
pack of the folder. A folder gets only the modules it imports, directly or through another
shared module (`from .tables import ...`), and each module imports no more than the
requirements of every function using it (checks: none; tables: pandas; models: scikit-learn
and skops; training: scikit-learn).

`vendor/` is a namespace package (no `__init__.py`) on purpose: a process that runs several
catalog functions in-process (`env="current"`) imports `vendor` once, and a namespace
package's path follows `sys.path`, so `vendor.training` is still found in train's folder after
clean-data (which vendors only `tables`) was loaded first. A module both vendor is shared,
which is safe because the copies are the same bytes.

Never edit a `vendor/` copy: edit the source here, run `python -m catalog.vendoring`, and bump
`metadata.version` of every function whose folder changed (the hub refuses changed content at
a published version). tests/catalog/test_vendored.py fails while a copy differs from its
source, a folder lacks a module it imports, or keeps one it no longer needs.
"""
