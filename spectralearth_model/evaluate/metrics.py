"""Metrics of the PANGAEA-style protocol, from a confusion matrix so they can be accumulated.

All class metrics ignore classes that occur neither in the reference nor in the prediction (the
same convention as ``sklearn.metrics.f1_score(average="macro")`` without ``labels``), so a test
split that lacks a rare class is not scored as if that class had IoU 0.
"""

from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, ignore: int = -1) -> np.ndarray:
    """(K, K) int64 confusion matrix, rows = reference, columns = prediction; ``ignore`` skipped."""
    t = np.asarray(y_true).ravel()
    p = np.asarray(y_pred).ravel()
    keep = t != ignore
    t, p = t[keep].astype(np.int64), p[keep].astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >= n_classes or p.min() < 0 or p.max() >= n_classes):
        raise ValueError(f"labels outside 0..{n_classes - 1}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _seen(cm: np.ndarray) -> np.ndarray:
    return (cm.sum(0) + cm.sum(1)) > 0


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU_k = TP / (TP + FP + FN); NaN for classes never seen."""
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(_seen(cm), tp / denom, np.nan)


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    """F1_k = 2 TP / (2 TP + FP + FN); NaN for classes never seen."""
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(_seen(cm), 2 * tp / denom, np.nan)


def mean_iou(cm: np.ndarray) -> float:
    return float(np.nanmean(iou_per_class(cm))) if _seen(cm).any() else float("nan")


def overall_accuracy(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def macro_f1(cm: np.ndarray) -> float:
    return float(np.nanmean(f1_per_class(cm))) if _seen(cm).any() else float("nan")


def class_metrics(cm: np.ndarray) -> dict[str, float]:
    """mIoU, overall accuracy and macro F1 of a confusion matrix."""
    return {"miou": mean_iou(cm), "oa": overall_accuracy(cm), "macro_f1": macro_f1(cm)}


def multilabel_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Macro and micro F1 over labels, and the exact-match (subset) accuracy, for (N, K) 0/1 arrays."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "oa": float(accuracy_score(y_true, y_pred)),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² averaged over targets, for (N, K) arrays."""
    from sklearn.metrics import mean_absolute_error, r2_score

    rmse = float(np.sqrt(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2)))
    return {"rmse": rmse, "mae": float(mean_absolute_error(y_true, y_pred)), "r2": float(r2_score(y_true, y_pred))}


#: The metric each task kind is ranked and plotted by.
PRIMARY = {"segmentation": "miou", "classification": "oa", "multilabel": "macro_f1", "regression": "r2"}


# -- bootstrap intervals -------------------------------------------------------------------------

#: Coverage of the reported intervals.
CI_LEVEL = 0.95


def _batch_class_metrics(cms: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`class_metrics` of a stack of confusion matrices (R, K, K), vectorised over R."""
    cms = cms.astype(float)
    tp = np.diagonal(cms, axis1=1, axis2=2)
    ref, pred = cms.sum(2), cms.sum(1)
    seen = (ref + pred) > 0
    total = cms.sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(seen, tp / (ref + pred - tp), np.nan)
        f1 = np.where(seen, 2 * tp / (ref + pred), np.nan)
        oa = np.where(total > 0, tp.sum(1) / total, np.nan)
    n_seen = seen.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        miou = np.where(n_seen > 0, np.nansum(iou, 1) / n_seen, np.nan)
        mf1 = np.where(n_seen > 0, np.nansum(f1, 1) / n_seen, np.nan)
    return {"miou": miou, "oa": oa, "macro_f1": mf1}


def _percentiles(draws: dict[str, np.ndarray], level: float) -> dict[str, tuple[float, float]]:
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    out = {}
    for k, v in draws.items():
        v = np.asarray(v, float)
        v = v[np.isfinite(v)]
        out[k] = (float("nan"), float("nan")) if v.size == 0 else tuple(float(x) for x in np.percentile(v, q))
    return out


def bootstrap_confusion(
    cms: np.ndarray, unit: str, n_boot: int = 1000, seed: int = 0, level: float = CI_LEVEL
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of mIoU / OA / macro F1 from per-unit confusion matrices.

    Args:
        cms: (S, K, K) confusion matrices, one per test sample (tile or image).
        unit: ``"pixel"``: resample the test pixels with replacement (drawing N pixels with
            replacement from the pooled matrix is one multinomial draw over its cells, so this is
            exact and cheap); ``"sample"``: resample whole samples (tiles, images) and sum their
            matrices, for splits made by sample, whose pixels are not independent.
        n_boot: bootstrap replicates.

    Returns:
        ``{metric: (low, high)}`` at ``level`` (0.95: the 2.5 and 97.5 percentiles).
    """
    cms = np.asarray(cms, np.int64)
    if cms.ndim == 2:
        cms = cms[None]
    rng = np.random.default_rng(seed)
    k = cms.shape[-1]
    if unit == "pixel":
        total = cms.sum(0).ravel()
        n = int(total.sum())
        if n == 0:
            return _percentiles({"miou": [], "oa": [], "macro_f1": []}, level)
        draws = rng.multinomial(n, total / n, size=n_boot).reshape(n_boot, k, k)
    elif unit == "sample":
        # how often each sample is drawn in each replicate, times its matrix: (n_boot, K*K)
        n = len(cms)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
        draws = (counts @ cms.reshape(n, k * k)).reshape(n_boot, k, k)
    else:
        raise ValueError(f"bootstrap unit must be 'pixel' or 'sample', not {unit!r}")
    return _percentiles(_batch_class_metrics(draws), level)


def bootstrap_rows(
    score, y_true: np.ndarray, y_pred: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = CI_LEVEL
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of ``score(y_true, y_pred) -> {metric: value}`` over test rows
    (images), for the multilabel and regression metrics."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        for key, v in score(y_true[i], y_pred[i]).items():
            draws.setdefault(key, []).append(v)
    return _percentiles({k: np.asarray(v) for k, v in draws.items()}, level)
