"""The models one server answers for: engines keyed by the id clients send, plus their cards."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wattlm.errors import NotFound, WattError
from wattlm.serve.engine import Engine
from wattlm.serve.protocol import ModelCard, now


class ServedModels:
    """Look up an engine by model id; describe every served model for /v1/models."""

    def __init__(self, engines: Mapping[str, Engine], model_cards: Sequence[Mapping[str, Any]] = ()) -> None:
        if not engines:
            raise WattError("serve needs at least one model")
        self._engines = dict(engines)
        started = now()
        extra_by_id = {}
        for card in model_cards:
            model_id = card.get("id")
            if model_id not in self._engines:
                # A card without an engine is a wiring mistake; listing it would invite 404s.
                raise WattError(f"model card '{model_id}' names no served model; served: {self._names()}")
            extra_by_id[model_id] = dict(card)
        self._cards = {
            model_id: ModelCard(**{"id": model_id, "created": started, **extra_by_id.get(model_id, {})})
            for model_id in self._engines
        }

    def engine(self, model_id: str) -> Engine:
        try:
            return self._engines[model_id]
        except KeyError:
            raise NotFound(f"model '{model_id}' is not served here; served: {self._names()}") from None

    def engines(self) -> dict[str, Engine]:
        return dict(self._engines)

    def card(self, model_id: str) -> ModelCard:
        self.engine(model_id)  # same 404 as a generation request
        return self._cards[model_id]

    def cards(self) -> list[ModelCard]:
        return list(self._cards.values())

    def _names(self) -> str:
        return ", ".join(sorted(self._engines))
