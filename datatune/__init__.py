"""datatune: build fine-tuning datasets from existing public datasets."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("datatune-builder")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+local"
