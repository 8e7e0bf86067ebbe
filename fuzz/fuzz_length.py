"""Fuzz the length decoder: `python fuzz/fuzz_length.py [libFuzzer options]` (see README.md)."""

import targets

if __name__ == "__main__":
    targets.main("length")
