"""wattlm: raw documents + a general model -> an evaluated, compressed, served industry model."""

__version__ = "0.1.0"
