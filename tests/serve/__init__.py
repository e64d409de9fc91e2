"""Tests of wattlm.serve (a package, so test module names cannot clash with other stages' tests)."""
