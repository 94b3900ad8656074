"""JSON written whole or not at all: curation's one atomic writer."""

from ._curation import write_json

__all__ = ["write_json"]
