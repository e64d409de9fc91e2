"""A trainable quality classifier: hashed character n-grams + logistic regression (scikit-learn).

Yuan 1.0 (Wu et al. 2021) filtered its Chinese web corpus with a classifier trained on labelled
high-quality, low-quality and advertisement text; heuristics catch broken text, a classifier catches
text that is well formed but not what the corpus is for (ads, SEO pages, forum chatter). This module
fits such a model from labelled examples (`watt data train-quality`), saves it, and scores documents.

Features: Chinese has no spaces, so hanzi runs give character 1-3-grams; Latin words give the word and
its character 3-grams; digits give only their length (an 11-digit run smells of a phone number, the
digits themselves say nothing); punctuation and symbols are features of their own (！！, ￥, ☆ are
strong advertisement signals). They are hashed (HashingVectorizer): no vocabulary to store, the model
file has a fixed size, and a word never seen in training costs nothing.

The model is saved as numbers, not as a pickle: an .npz of the coefficients, intercepts and class names
plus the vectorizer settings as JSON, loaded with `allow_pickle=False`. A recipe names the model file,
and a pickle (joblib) runs code when it is loaded, so an old joblib model loads only when the operator
sets WATT_ALLOW_PICKLE=1 in the environment (a recipe cannot set it); otherwise it is refused with a
message saying how to retrain.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from wattlm.errors import NotFound, WattError

FORMAT_VERSION = 1  # the joblib payload of earlier versions (read with WATT_ALLOW_PICKLE=1 only)
NPZ_FORMAT = "wattlm-quality-npz/1"
ALLOW_PICKLE_ENV = "WATT_ALLOW_PICKLE"
N_FEATURES = 2**18  # 262k hashed features: 2 MB of float64 weights per class
MAX_FEATURE_CHARS = 20_000  # the start of a long document says enough about its kind
POSITIVE_LABELS = ("high", "good")  # the label whose probability is the quality score
_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\W\d_]+|\d+|[^\w\s]")


def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def text_features(text: str) -> list[str]:
    """The n-gram features of one text (the HashingVectorizer analyzer); see the module docstring."""
    grams: list[str] = []
    for run in _RUNS.findall(text[:MAX_FEATURE_CHARS].casefold()):
        if _is_han(run[0]):
            for n in (1, 2, 3):
                grams += [run[i : i + n] for i in range(len(run) - n + 1)]
        elif run[0].isdigit():
            grams.append(f"<digits:{min(len(run), 12)}>")
        elif run[0].isalpha():
            padded = f" {run} "
            grams.append(padded)
            grams += [padded[i : i + 3] for i in range(len(padded) - 2)]
        else:
            grams.append(run)
    return grams


def build_pipeline(seed: int = 0, alpha: float = 1e-4) -> Any:
    """An unfitted sklearn Pipeline: hashed features -> logistic regression fitted by SGD."""
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import Pipeline

    # SGD on the log loss, not lbfgs: with 262k hashed dimensions lbfgs took 4 s on 75 examples (its
    # dense steps dominate), SGD 0.1 s with the same held-out scores. class_weight="balanced": labelled
    # sets are rarely balanced (ads are easy to collect in bulk).
    return Pipeline([
        ("features", hashing_vectorizer()),
        ("model", SGDClassifier(loss="log_loss", alpha=alpha, max_iter=100, tol=1e-4, class_weight="balanced",
                                random_state=seed)),
    ])


def hashing_vectorizer() -> Any:
    """The feature hasher (stateless: nothing of it is fitted or saved but these settings)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    # alternate_sign=False: counts stay non-negative, so the l2 norm behaves like tf on a vocabulary.
    return HashingVectorizer(analyzer=text_features, n_features=N_FEATURES, alternate_sign=False)


VECTORIZER_SETTINGS = {"analyzer": "wattlm.text_features/1", "n_features": N_FEATURES, "alternate_sign": False,
                       "norm": "l2"}


@dataclass
class QualityModel:
    """A linear model over hashed features plus which label means "keep"; `scores` are P(positive label),
    computed as sklearn's SGDClassifier(loss="log_loss").predict_proba does (sigmoid per class, then
    normalised over classes; two classes: one decision column)."""

    classes: list[str]
    coef: Any  # float64 (1 or n_classes, N_FEATURES)
    intercept: Any  # float64 (1 or n_classes,)
    positive: str

    @classmethod
    def from_pipeline(cls, pipeline: Any, positive: str) -> QualityModel:
        model = pipeline.named_steps["model"]
        return cls([str(c) for c in model.classes_], model.coef_, model.intercept_, positive)

    def scores(self, texts: Sequence[str]) -> list[float]:
        import numpy as np
        from scipy.special import expit

        if not texts:
            return []
        decision = hashing_vectorizer().transform(list(texts)) @ self.coef.T + self.intercept  # (n, 1 or k)
        prob = expit(np.asarray(decision))
        if prob.shape[1] == 1:
            prob = np.hstack([1 - prob, prob])
        else:
            prob = prob / prob.sum(axis=1, keepdims=True)
        return [float(p) for p in prob[:, self.classes.index(self.positive)]]


def positive_label(labels: Sequence[str]) -> str:
    present = sorted(set(labels))
    for label in POSITIVE_LABELS:
        if label in present:
            return label
    raise WattError(f"labels {present} have no positive class: label good text 'high' or 'good'")


def evaluate(texts: Sequence[str], labels: Sequence[str], positive: str, seed: int = 0,
             heldout: float = 0.2) -> dict[str, Any]:
    """Fit on a stratified (1 - heldout) share, report precision/recall per label and for the keep
    decision at 0.5 on the rest."""
    from sklearn.metrics import precision_recall_fscore_support
    from sklearn.model_selection import train_test_split

    train_x, test_x, train_y, test_y = train_test_split(
        list(texts), list(labels), test_size=heldout, random_state=seed, stratify=list(labels))
    pipeline = build_pipeline(seed).fit(train_x, train_y)
    predicted = list(pipeline.predict(test_x))
    classes = sorted(set(labels))
    precision, recall, f1, support = precision_recall_fscore_support(
        test_y, predicted, labels=classes, zero_division=0)
    per_label = {label: {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4),
                         "support": int(s)}
                 for label, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)}
    keep_scores = QualityModel.from_pipeline(pipeline, positive).scores(test_x)
    kept = [score >= 0.5 for score in keep_scores]
    good = [label == positive for label in test_y]
    true_keep = sum(k and g for k, g in zip(kept, good, strict=True))
    keep = {"precision": round(true_keep / max(1, sum(kept)), 4), "recall": round(true_keep / max(1, sum(good)), 4),
            "threshold": 0.5}
    return {"heldout_examples": len(test_y), "per_label": per_label, "keep": keep,
            "accuracy": round(sum(p == t for p, t in zip(predicted, test_y, strict=True)) / len(test_y), 4)}


def train_quality_model(texts: Sequence[str], labels: Sequence[str], out: Path, seed: int = 0,
                        heldout: float = 0.2) -> dict[str, Any]:
    """Evaluate on a held-out share, refit on every example, save `out` (.npz, whatever its name) and
    `out`.json (the card: labels, counts, held-out metrics). Returns the card."""
    import sklearn

    counts = Counter(labels)
    if len(counts) < 2:
        raise WattError(f"need examples of at least two labels, got {dict(counts)}")
    rare = sorted(label for label, n in counts.items() if n < 5)
    if rare:
        raise WattError(f"need at least 5 examples per label for a held-out check; too few: {rare} ({dict(counts)})")
    positive = positive_label(labels)
    metrics = evaluate(texts, labels, positive, seed, heldout)
    # The saved model is refit on all examples: with a few hundred labels, 20 % more data matters
    # more than having the exact model the metrics came from.
    pipeline = build_pipeline(seed).fit(list(texts), list(labels))
    save_quality_model(QualityModel.from_pipeline(pipeline, positive), out)
    card = {"format": FORMAT_VERSION, "positive_label": positive, "labels": dict(sorted(counts.items())),
            "examples": len(texts), "features": f"hashed char n-grams ({N_FEATURES} buckets)",
            "model": "logistic regression by SGD (balanced classes), refit on all examples", "seed": seed,
            "sklearn": sklearn.__version__, "heldout": metrics, "sha256": file_sha256(out)}
    from wattlm.shared.records import atomic_write_text

    atomic_write_text(card_path(out), json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return card


def card_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def save_quality_model(model: QualityModel, out: Path) -> None:
    """An .npz of plain arrays (temp file + rename); a file handle, so numpy adds no .npz suffix."""
    import numpy as np

    from wattlm.shared.records import atomic_path

    meta = {"format": NPZ_FORMAT, "positive": model.positive, "vectorizer": VECTORIZER_SETTINGS}
    with atomic_path(out) as tmp_name, open(tmp_name, "wb") as handle:
        np.savez_compressed(handle, coef=np.asarray(model.coef, dtype=np.float64),
                            intercept=np.asarray(model.intercept, dtype=np.float64),
                            classes=np.array(model.classes, dtype=str), meta=np.array(json.dumps(meta)))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_quality_model(path: Path) -> QualityModel:
    """The model saved at `path` (cached per process: every shard of a run would load it again)."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"quality model not found: {path} (field quality_model; make one with watt data train-quality)")
    stat = path.stat()
    return _load_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int) -> QualityModel:
    del mtime_ns, size  # cache key only: a rewritten model file is loaded again
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic == b"PK\x03\x04":  # a zip: the .npz format
        return _load_npz(path)
    if os.environ.get(ALLOW_PICKLE_ENV) != "1":
        raise WattError(f"cannot load quality model {path}: it is not a wattlm .npz model but a pickle (joblib), "
                        f"which runs code when loaded; retrain it with watt data train-quality, or set "
                        f"{ALLOW_PICKLE_ENV}=1 if you made this file yourself")
    return _load_pickle(path)


def _load_npz(path: str) -> QualityModel:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as arrays:
            meta = json.loads(str(arrays["meta"]))
            coef, intercept = arrays["coef"], arrays["intercept"]
            classes = [str(c) for c in arrays["classes"]]
    except Exception as err:  # a damaged zip, a missing array, an object array (refused, not unpickled)
        raise WattError(f"cannot load quality model {path}: {type(err).__name__}: {str(err)[:200]}") from None
    if not isinstance(meta, dict) or meta.get("format") != NPZ_FORMAT or meta.get("vectorizer") != VECTORIZER_SETTINGS:
        raise WattError(f"cannot load quality model {path}: not a {NPZ_FORMAT} model with these features; retrain it")
    rows = 1 if len(classes) == 2 else len(classes)
    if coef.shape != (rows, N_FEATURES) or intercept.shape != (rows,) or meta.get("positive") not in classes:
        raise WattError(f"cannot load quality model {path}: arrays do not fit {len(classes)} classes; retrain it")
    return QualityModel(classes, coef, intercept, meta["positive"])


def _load_pickle(path: str) -> QualityModel:
    """An earlier joblib model (opt-in only, see the module docstring)."""
    import joblib

    # A pickle names the module of `text_features` (the vectorizer's analyzer); models trained before
    # this module was renamed from quality_model.py name the old one, so it is an alias of this one.
    sys.modules.setdefault(f"{__package__}.quality_model", sys.modules[__name__])
    try:
        payload = joblib.load(path)
    except Exception as err:  # a pickle can fail in many ways; the user needs the file name, once
        raise WattError(f"cannot load quality model {path}: {type(err).__name__}: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise WattError(f"{path} is not a wattlm quality model (format {FORMAT_VERSION}); retrain it")
    return QualityModel.from_pipeline(payload["pipeline"], payload["positive"])
