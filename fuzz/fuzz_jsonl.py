"""Fuzz the jsonl decoder: `python fuzz/fuzz_jsonl.py [libFuzzer options]` (see README.md)."""

import targets

if __name__ == "__main__":
    targets.main("jsonl")
