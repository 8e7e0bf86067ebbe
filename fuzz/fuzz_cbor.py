"""Fuzz the cbor decoder: `python fuzz/fuzz_cbor.py [libFuzzer options]` (see README.md)."""

import targets

if __name__ == "__main__":
    targets.main("cbor")
