"""Continuous batching over llama.cpp: many requests decode together on one context.

`engine` (the `Engine` interface) -> `scheduler` (the thread that owns the llama.cpp context) ->
`sequence` (per-request state), `sampler` (per-request sampling through llama.cpp's sampler chain), `model` (weights + vocab).
"""
