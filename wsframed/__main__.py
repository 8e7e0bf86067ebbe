"""``python -m wsframed``: the ``wsframed`` command (see ``wsframed.cli``)."""

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
