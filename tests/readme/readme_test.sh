#!/usr/bin/env bash
# Bazel entry point of readme_test.py (see there).
exec python3 tests/readme/readme_test.py README.md "$1" sim/examples
