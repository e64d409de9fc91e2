"""Tests of wattlm.data (a package, so test module names cannot clash with other stages' tests)."""
