"""``python -m wsframed.bridge``: the ``wsframed bridge`` command."""

from .command import _main

if __name__ == "__main__":
    raise SystemExit(_main())
