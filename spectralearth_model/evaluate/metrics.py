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
