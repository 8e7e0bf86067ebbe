"""Fuzz the bytes decoder: `python fuzz/fuzz_bytes.py [libFuzzer options]` (see README.md)."""

import targets

if __name__ == "__main__":
    targets.main("bytes")
