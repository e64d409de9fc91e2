"""Training methods: each turns examples into batches and a batch into (loss, tokens)."""

from wattlm.train.methods.cpt import CptMethod
from wattlm.train.methods.sft import SftMethod

METHODS = {"cpt": CptMethod, "sft": SftMethod}
