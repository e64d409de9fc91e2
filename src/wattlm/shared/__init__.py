"""The shared layer: what several stages use (records I/O, LM math, text utilities, the QA wording,
report charts, validation-error messages). It imports only `wattlm.errors` and third-party libraries,
so every other layer may import it."""
