"""OpenAI wire format as pydantic models, one module per endpoint family (as vLLM lays it out).

`common`: what every endpoint shares (sampling fields, usage, model cards, errors); `completions`,
`chat`, `embeddings` and `tokenizer` (vLLM's /tokenize, /detokenize, /tokenizer_info): their bodies.

Requests ignore fields they do not know, so newer clients keep working. A field we know but cannot
honour (best_of > 1, logit_bias, tools, ...) is rejected with a 400 instead: silently ignoring it would
hand the client a different answer from the one it asked for.
"""
