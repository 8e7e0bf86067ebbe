"""Fuzz the lines decoder: `python fuzz/fuzz_lines.py [libFuzzer options]` (see README.md)."""

import targets

if __name__ == "__main__":
    targets.main("lines")
