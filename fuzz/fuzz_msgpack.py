"""Fuzz the msgpack decoder: `python fuzz/fuzz_msgpack.py [libFuzzer options]` (see README.md)."""

import targets

if __name__ == "__main__":
    targets.main("msgpack")
