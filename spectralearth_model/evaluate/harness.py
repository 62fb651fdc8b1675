"""The frozen-encoder evaluation harness (PANGAEA-style), device-agnostic.

``evaluate(checkpoint, tasks, head, out)`` runs, on every task and in the same run, four methods:

* ``checkpoint``: the trained encoder, frozen (eval mode, ``requires_grad=False``, ``no_grad``);
* ``random-init``: an encoder of the same configuration with freshly initialised weights (seeded);
* ``pca-token`` (segmentation): raw bands average-pooled (valid pixels only) to the encoder's
  token grid, standardised, PCA, then the *same* head as the encoders: the "no deep features"
  floor at the encoders' own resolution (120 m tokens for a 30 m EnMAP task);
* ``pca-pixel``: raw spectra per pixel (segmentation; the mean valid spectrum per image
  otherwise), standardised, PCA, then a linear probe: the floor at the label resolution.

Segmentation heads on token maps: ``linear`` / ``knn`` per pixel on the stages upsampled
(bilinear) to the label grid; ``upernet``, a light UPerNet decoder; and ``subtoken``, a learned
pixel-shuffle from token to label resolution (each token predicts its ``r x r`` pixels). Every
segmentation run adds the ``subtoken`` rows next to the head asked for, so an encoder is also
compared at the label resolution by a head that can resolve inside a token. Image-level tasks
use the pooled ``forward_features`` (pooling tokens of raw bands equals the mean spectrum, so
``pca-pixel`` is already at the encoders' resolution there and ``pca-token`` is not run).

Every metric comes with a percentile-bootstrap 95 % interval over the test set: resampling
labelled pixels when the split is by pixel, whole tiles/images when it is by tile/image.
Only heads are fitted; the encoders never receive a gradient, and a sha256 of their weights
taken before and after the run proves it. Everything is seeded; the device is CUDA when present,
else CPU (``EvalOptions.device``). A task whose sensor the model lacks but which is hyperspectral
goes through the model's hyperspectral input closest in GSD (the tokenizer reads the task's own
wavelengths/FWHM).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from spectralearth_data.errors import SpectralEarthError

from ..runtime import resolve_device, weights_digest
from . import heads as H
from . import metrics as M
from .tasks import IGNORE, Sample, TaskAdapter, TaskError, describe, load_task

#: The methods of a run, in report order (``pca-token`` on segmentation tasks only).
METHODS = ("checkpoint", "random-init", "pca-token", "pca-pixel")
ENCODER_METHODS = ("checkpoint", "random-init")


class EvaluationError(SpectralEarthError):
    """A checkpoint, head or option the evaluation cannot use."""


@dataclass(frozen=True)
class EvalOptions:
    """Knobs of one evaluation run (all have protocol defaults)."""

    seed: int = 0
    batch_size: int = 8
    #: Training pixels kept (seeded sample) for the pixel-wise linear / k-NN probes.
    max_train_pixels: int = 20000
    #: PCA components of the raw-spectra baseline.
    pca_components: int = 16
    upernet_steps: int = 200
    #: Training steps of the sub-token (pixel-shuffle) head.
    subtoken_steps: int = 300
    #: Add the sub-token head rows on segmentation tasks (besides the head asked for).
    subtoken_rows: bool = True
    #: Bootstrap replicates of the 95 % intervals (0: no intervals).
    bootstrap: int = 1000
    device: str | None = None
    #: Raise if the checkpoint is not of this preset (None: accept any).
    expect_preset: str | None = None
    #: CPU threads for torch and BLAS during the run (None: leave the libraries' defaults).
    #: On a shared or small CPU, 1 is often several times faster than oversubscribed threads.
    threads: int | None = None


@dataclass
class MethodResult:
    """One (task, method, head) row of the report."""

    task: str
    method: str
    head: str
    metrics: dict[str, float]
    data: str
    n_train: int
    n_test: int
    seconds: float
    per_class: list[float] = field(default_factory=list)
    #: What the head was fed, with its resolution (e.g. "encoder tokens, 120 m").
    features: str = ""
    #: ``{metric: (low, high)}``, percentile bootstrap at 95 %; empty if not computed.
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: What the bootstrap resampled: ``pixel``, ``tile`` or ``image``.
    ci_unit: str = ""
    #: Scored test units: labelled pixels (segmentation) or images.
    n_test_pixels: int = 0


# -- checkpoint ----------------------------------------------------------------------------------


def load_checkpoint(path: Path, expect_preset: str | None = None):
    """Load a ``save_encoder`` file -> (encoder, cfg); one-line errors for a wrong file or preset."""
    from spectralearth_model import checkpoint as ckpt

    path = Path(path)
    try:
        encoder, cfg = ckpt.load_encoder(path)
    except SpectralEarthError:
        raise
    except (TypeError, KeyError, ValueError) as e:  # e.g. a config from another code version
        raise EvaluationError(f"checkpoint {path}: cannot load the encoder ({type(e).__name__}: {e})") from None
    if expect_preset is not None and cfg.name != expect_preset:
        raise EvaluationError(
            f"checkpoint {path}: holds a {cfg.name!r} model, not the {expect_preset!r} preset asked for"
        )
    return encoder, cfg


def freeze(encoder: torch.nn.Module) -> torch.nn.Module:
    """Eval mode and no gradients: the protocol never updates the encoder."""
    encoder.eval()
    encoder.requires_grad_(False)
    return encoder


# -- batches -------------------------------------------------------------------------------------


def _round_up(n: int, unit: int) -> int:
    return int(math.ceil(n / unit) * unit)


class Batcher:
    """Turns task samples into model batches (DESIGN "Model inputs") of one present sensor."""

    def __init__(self, task: TaskAdapter, cfg, device: torch.device) -> None:
        info = task.info
        self.info, self.cfg, self.device = info, cfg, device
        self.sensor = input_sensor(info, cfg)
        self.unit = cfg.patch_px(self.sensor) * cfg.grid_unit
        self.wavelength = torch.tensor(info.wavelength_nm, dtype=torch.float32, device=device)
        self.fwhm = torch.tensor(info.fwhm_nm, dtype=torch.float32, device=device)
        self.size: int | None = None  # image-level tasks: one fixed input size

    def __call__(self, samples: list[Sample]) -> dict[str, Any]:
        if self.info.kind == "segmentation":
            data, mask = self._padded(samples)
        else:
            data, mask = self._resized(samples)
        present = torch.zeros(len(samples), len(self.cfg.sensor_names), dtype=torch.bool, device=self.device)
        present[:, self.cfg.sensor_names.index(self.sensor)] = True
        return {
            "present": present,
            "sensors": {
                self.sensor: {
                    "data": data, "mask": mask, "wavelength": self.wavelength, "fwhm": self.fwhm,
                    "gsd": float(self.info.gsd_m),
                }
            },
        }

    def _padded(self, samples: list[Sample]) -> tuple[torch.Tensor, torch.Tensor]:
        """Segmentation: stack, then pad bottom/right to the token grid with nodata."""
        shapes = sorted({s.image.shape for s in samples})
        if len(shapes) > 1:
            raise TaskError(f"task {self.info.name!r}: images of one batch differ in shape {shapes}; "
                            "segmentation tiles must share one size and band count")
        data = torch.from_numpy(np.stack([s.image for s in samples])).to(self.device)
        mask = torch.from_numpy(np.stack([s.nodata for s in samples]).astype(np.uint8)).to(self.device)
        h, w = data.shape[-2:]
        ph, pw = _round_up(h, self.unit) - h, _round_up(w, self.unit) - w
        return F.pad(data, (0, pw, 0, ph)), F.pad(mask, (0, pw, 0, ph), value=1)

    def _resized(self, samples: list[Sample]) -> tuple[torch.Tensor, torch.Tensor]:
        """Image-level tasks: every image resized to one square size (fixed by the first image)."""
        if self.size is None:
            self.size = _round_up(max(samples[0].image.shape[-2:]), self.unit)
        size = (self.size, self.size)
        data, mask = [], []
        for s in samples:
            img = torch.from_numpy(s.image).to(self.device)[None]
            nod = torch.from_numpy(s.nodata.astype(np.float32)).to(self.device)[None, None]
            data.append(F.interpolate(img, size=size, mode="bilinear", align_corners=False))
            mask.append(F.interpolate(nod, size=size, mode="nearest")[:, 0].to(torch.uint8))
        return torch.cat(data), torch.cat(mask)


def input_sensor(info, cfg) -> str:
    """The model input a task's images go through: the task's sensor, or (hyperspectral tasks of
    a sensor the model lacks) the model's hyperspectral input closest in GSD.

    Any hyperspectral input works because the spectral tokenizer is conditioned on the task's own
    wavelengths and FWHM; only the token size in pixels comes from the chosen input's GSD.
    """
    if info.sensor in cfg.sensor_names:
        spec = cfg.sensor(info.sensor)
        if spec.kind != "hsi" and spec.n_bands != info.n_bands:
            raise TaskError(
                f"task {info.name!r} has {info.n_bands} bands; the model's {info.sensor!r} input takes its "
                f"{spec.n_bands} catalog bands ({', '.join(spec.band_names)}), in that order"
            )
        return info.sensor
    hsi = [s for s in cfg.sensors if s.kind == "hsi"]
    if not hsi or not info.wavelength_nm:
        raise TaskError(
            f"task {info.name!r} feeds sensor {info.sensor!r}, which the checkpoint's model does not have "
            f"(it has: {', '.join(cfg.sensor_names)}); set 'sensor:' in the task's task.yaml"
        )
    return min(hsi, key=lambda s: abs(math.log(s.gsd_m / info.gsd_m))).name


def iter_samples(task: TaskAdapter, split: str, batch_size: int) -> Iterator[list[Sample]]:
    ids = task.ids(split)
    for i in range(0, len(ids), batch_size):
        yield [task.read(split, sid) for sid in ids[i : i + batch_size]]


# -- feature extractors --------------------------------------------------------------------------


def dense_maps(encoder, batch: dict, hw: tuple[int, int]) -> list[torch.Tensor]:
    """Multi-scale maps cropped to the unpadded image extent (finest first)."""
    with torch.no_grad():
        maps = encoder.forward_intermediates(batch)
    h, w = hw
    H_pad = next(iter(batch["sensors"].values()))["data"].shape[-2]
    out = []
    for m in maps:
        f = m.shape[-2] / H_pad  # map cells per input pixel
        out.append(m[..., : max(1, math.ceil(h * f)), : max(1, math.ceil(w * f))].float())
    return out


def pixel_features(maps: list[torch.Tensor], hw: tuple[int, int]) -> torch.Tensor:
    """Each stage upsampled (bilinear) to the label grid and concatenated -> (B, sum D_i, H, W)."""
    return torch.cat([F.interpolate(m, size=hw, mode="bilinear", align_corners=False) for m in maps], 1)


def mean_spectrum(s: Sample) -> np.ndarray:
    """Mean spectrum over valid pixels (zeros if none): the raw-spectra image-level feature."""
    valid = ~s.nodata
    return s.image[:, valid].mean(1) if valid.any() else np.zeros(len(s.image), np.float32)


class EncoderMaps:
    """A frozen encoder as a map source: samples -> its multi-scale token maps (finest first)."""

    def __init__(self, encoder: torch.nn.Module, batcher: Batcher) -> None:
        self.encoder, self.batcher = encoder, batcher

    def __call__(self, samples: list[Sample]) -> list[torch.Tensor]:
        return dense_maps(self.encoder, self.batcher(samples), samples[0].image.shape[-2:])


def pool_to_tokens(samples: list[Sample], patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw bands averaged over the valid pixels of each ``patch x patch`` token cell.

    Returns ``(B, C, ceil(H/patch), ceil(W/patch))`` means (0 where a cell has no valid pixel)
    and the ``(B, h, w)`` mask of cells with at least one valid pixel; the grid is the encoder's
    token grid over the same image (``dense_maps`` crops to the same ``ceil``).
    """
    img = torch.from_numpy(np.stack([s.image for s in samples]))
    valid = torch.from_numpy(~np.stack([s.nodata for s in samples]))[:, None].float()
    h, w = img.shape[-2:]
    pad = (0, _round_up(w, patch) - w, 0, _round_up(h, patch) - h)
    total = F.avg_pool2d(F.pad(img * valid, pad), patch)
    count = F.avg_pool2d(F.pad(valid, pad), patch)
    return total / count.clamp_min(1e-12), count[:, 0] > 0


class TokenPCA:
    """Raw bands pooled to the encoder's token grid, standardised, PCA: a map source like an encoder.

    Args:
        patch: image pixels per token side (``cfg.patch_px`` of the model input the task uses).
        n_components: PCA components (at most the bands and the training tokens).
    """

    def __init__(self, patch: int, n_components: int, seed: int = 0) -> None:
        self.patch, self.n_components, self.seed = patch, n_components, seed
        self.pipeline = None

    def fit(self, task: TaskAdapter, batch_size: int) -> TokenPCA:
        """Fit the standardisation and PCA on the valid tokens of the train split."""
        from sklearn.decomposition import PCA
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        rows = []
        for samples in iter_samples(task, "train", batch_size):
            mean, ok = pool_to_tokens(samples, self.patch)
            rows.append(mean.permute(0, 2, 3, 1)[ok].numpy())
        x = np.concatenate(rows)
        if len(x) == 0:
            raise TaskError(f"task {task.info.name!r}: the train split has no valid pixels")
        n = min(self.n_components, *x.shape)
        self.pipeline = make_pipeline(StandardScaler(), PCA(n, random_state=self.seed))
        with H.single_thread():
            self.pipeline.fit(x)
        return self

    def __call__(self, samples: list[Sample]) -> list[torch.Tensor]:
        mean, _ = pool_to_tokens(samples, self.patch)
        b, c, h, w = mean.shape
        with H.single_thread():
            z = self.pipeline.transform(mean.permute(0, 2, 3, 1).reshape(-1, c).numpy())
        return [torch.from_numpy(z.astype(np.float32)).reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()]


MapSource = Callable[[list[Sample]], list[torch.Tensor]]


# -- one method on one task ----------------------------------------------------------------------


FitFn = Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]


def _vector_fitter(head: str, kind: str, seed: int, pca: int | None) -> FitFn:
    def fit(x: np.ndarray, y: np.ndarray):
        if kind == "segmentation" and len(np.unique(y)) == 1:
            const = y[0]
            return lambda z: np.full(len(z), const)
        est = H.make_vector_head(head, kind, len(x), seed)
        if pca is not None:
            from sklearn.decomposition import PCA

            est.steps.insert(1, ("pca", PCA(min(pca, x.shape[1], len(x)), random_state=seed)))
        with H.single_thread():
            est.fit(x, y)

        def predict(z: np.ndarray) -> np.ndarray:
            with H.single_thread():
                return est.predict(z)

        return predict

    return fit


@dataclass
class Scores:
    """What one method scored on a task: the metrics, per-class scores and the bootstrap inputs."""

    metrics: dict[str, float]
    per_class: list[float]
    ci: dict[str, tuple[float, float]]
    n_scored: int


def _segmentation_scores(cms: list[np.ndarray], k: int, unit: str, opts: EvalOptions) -> Scores:
    """Pooled metrics of per-test-sample confusion matrices, and their bootstrap intervals."""
    stack = np.stack(cms) if cms else np.zeros((1, k, k), np.int64)
    cm = stack.sum(0)
    ci = {}
    if opts.bootstrap > 0:
        ci = M.bootstrap_confusion(stack, "pixel" if unit == "pixel" else "sample", opts.bootstrap, opts.seed)
    return Scores(M.class_metrics(cm), M.iou_per_class(cm).tolist(), ci, int(cm.sum()))


def _segmentation(task, source: MapSource | None, batcher, head, opts, rng) -> Scores:
    """Per-pixel probes (linear / k-NN) or a map head (UPerNet, sub-token) on one segmentation task.

    ``source`` gives token maps (an encoder, or :class:`TokenPCA`); ``None`` is the per-pixel
    raw-spectra baseline (standardise, PCA, linear).
    """
    k = len(task.info.classes)
    device = batcher.device
    cms: list[np.ndarray] = []
    if head in H.MAP_HEADS:
        if source is None:
            raise EvaluationError(f"head {head!r} decodes token maps; the per-pixel baseline has none")
        cache, targets = [], []
        for samples in iter_samples(task, "train", opts.batch_size):
            cache.append([m.cpu() for m in source(samples)])
            targets.append(torch.from_numpy(np.stack([s.target for s in samples])))
        if head == "upernet":
            dec = H.train_upernet(cache, targets, k, steps=opts.upernet_steps, seed=opts.seed, device=device)
        else:
            factor = batcher.cfg.patch_px(batcher.sensor)
            dec = H.train_subtoken(cache, targets, k, factor, steps=opts.subtoken_steps, seed=opts.seed,
                                   device=device)
        for samples in iter_samples(task, "test", opts.batch_size):
            hw = samples[0].target.shape
            with torch.no_grad():
                pred = dec([m.to(device) for m in source(samples)], hw).argmax(1).cpu().numpy()
            cms += [M.confusion(s.target, p, k, IGNORE) for s, p in zip(samples, pred)]
        return _segmentation_scores(cms, k, task.info.split_unit, opts)

    def features(samples: list[Sample]) -> torch.Tensor:
        hw = samples[0].target.shape
        if source is None:  # raw spectra
            return torch.from_numpy(np.stack([s.image for s in samples]))
        return pixel_features([m.to(device) for m in source(samples)], hw).cpu()

    # at most ~max_train_pixels feature vectors are ever held: a seeded per-image quota
    quota = max(1, math.ceil(opts.max_train_pixels / max(1, len(task.ids("train")))))
    xs, ys = [], []
    for samples in iter_samples(task, "train", opts.batch_size):
        f = features(samples).permute(0, 2, 3, 1).numpy()  # (B, H, W, F)
        for fi, s in zip(f, samples):
            idx = np.flatnonzero(s.target.ravel() != IGNORE)
            if len(idx) > quota:
                idx = np.sort(rng.choice(idx, quota, replace=False))
            xs.append(fi.reshape(-1, fi.shape[-1])[idx])
            ys.append(s.target.ravel()[idx])
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(x) == 0:
        raise TaskError(f"task {task.info.name!r}: the train split has no labelled pixels")
    if len(x) > opts.max_train_pixels:
        keep = rng.choice(len(x), opts.max_train_pixels, replace=False)
        x, y = x[keep], y[keep]
    pca = opts.pca_components if source is None else None
    predict = _vector_fitter("linear" if source is None else head, "segmentation", opts.seed, pca)(x, y)
    for samples in iter_samples(task, "test", opts.batch_size):
        f = features(samples).permute(0, 2, 3, 1).numpy()
        for fi, s in zip(f, samples):
            sel = s.target != IGNORE
            pred = predict(fi[sel]) if sel.any() else np.zeros(0, np.int64)
            cms.append(M.confusion(s.target[sel], pred, k, IGNORE))
    return _segmentation_scores(cms, k, task.info.split_unit, opts)


def _image_level(task, encoder, batcher, head, opts) -> Scores:
    """Pooled-embedding probes on classification / multilabel / regression tasks."""
    kind = task.info.kind

    def collect(split: str) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for samples in iter_samples(task, split, opts.batch_size):
            if encoder is None:
                xs.append(np.stack([mean_spectrum(s) for s in samples]))
            else:
                with torch.no_grad():
                    xs.append(encoder.forward_features(batcher(samples)).float().cpu().numpy())
            ys.append(np.stack([s.target for s in samples]))
        return np.concatenate(xs), np.concatenate(ys)

    x_tr, y_tr = collect("train")
    x_te, y_te = collect("test")
    if encoder is None:
        from sklearn.decomposition import PCA
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        pca = make_pipeline(StandardScaler(), PCA(min(opts.pca_components, *x_tr.shape), random_state=opts.seed))
        x_tr, x_te = pca.fit_transform(x_tr), pca.transform(x_te)
    pred = H.fit_predict("linear" if encoder is None else head, kind, x_tr, y_tr, x_te, opts.seed)
    n_boot, seed = opts.bootstrap, opts.seed
    if kind == "classification":
        k = max(len(task.info.classes), int(max(y_tr.max(), y_te.max(), pred.max())) + 1)
        cms = np.stack([M.confusion(t[None], p[None], k) for t, p in zip(y_te, pred)])
        cm = cms.sum(0)
        ci = M.bootstrap_confusion(cms, "sample", n_boot, seed) if n_boot > 0 else {}
        return Scores(M.class_metrics(cm), M.f1_per_class(cm).tolist(), ci, len(y_te))
    score = M.multilabel_metrics if kind == "multilabel" else M.regression_metrics
    ci = M.bootstrap_rows(score, y_te, pred, n_boot, seed) if n_boot > 0 else {}
    return Scores(score(y_te, pred), [], ci, len(y_te))


def run_method(task, method: str, source, batcher, head: str, opts: EvalOptions, data: str = "") -> MethodResult:
    """Evaluate one method on one task with one head.

    Args:
        source: a frozen encoder (``torch.nn.Module``), a fitted :class:`TokenPCA` (segmentation),
            or ``None`` for the per-pixel / mean-spectrum raw baseline (always a linear probe).
        data: what the method's features came from (printed in the report).
    """
    t0 = time.perf_counter()
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    info = task.info
    if info.kind == "segmentation":
        maps = EncoderMaps(source, batcher) if isinstance(source, torch.nn.Module) else source
        scores = _segmentation(task, maps, batcher, head, opts, rng)
    else:
        if source is not None and not isinstance(source, torch.nn.Module):
            raise EvaluationError(f"task {info.name!r}: token-grid baselines are for segmentation tasks")
        scores = _image_level(task, source, batcher, head, opts)
    d = describe(task)
    return MethodResult(
        task=info.name, method=method, head=head if source is not None else "linear",
        metrics=scores.metrics, data=data or d["data_source"], n_train=d["n_train"], n_test=d["n_test"],
        seconds=time.perf_counter() - t0, per_class=scores.per_class,
        features=feature_note(method, info, batcher, opts.pca_components), ci=scores.ci,
        ci_unit=info.split_unit if scores.ci else "", n_test_pixels=scores.n_scored,
    )


def token_m(info, batcher) -> float:
    """Metres per token side for this task's images (pixels per token x the task's GSD)."""
    return batcher.cfg.patch_px(batcher.sensor) * float(info.gsd_m)


def feature_note(method: str, info, batcher, pca: int) -> str:
    """What a method's head is fed, and at what resolution (the report's ``features`` column)."""
    seg = info.kind == "segmentation"
    if method in ENCODER_METHODS:
        return f"encoder tokens, {token_m(info, batcher):g} m" if seg else "encoder, pooled embedding"
    if method == "pca-token":
        return f"raw bands pooled to tokens, {token_m(info, batcher):g} m, PCA{pca}"
    return f"raw bands per pixel, {info.gsd_m:g} m, PCA{pca}" if seg else f"mean spectrum per image, PCA{pca}"


def plan_rows(kind: str, head: str, subtoken_rows: bool = True) -> list[tuple[str, str]]:
    """The (method, head) rows of a task, grouped by head: encoders and the token-grid PCA share
    each head; the per-pixel PCA (linear) closes the first group."""
    if kind != "segmentation":
        return [("checkpoint", head), ("random-init", head), ("pca-pixel", "linear")]
    heads = [head] + (["subtoken"] if subtoken_rows and head != "subtoken" else [])
    rows = []
    for i, h in enumerate(heads):
        rows += [("checkpoint", h), ("random-init", h), ("pca-token", h)]
        if i == 0:
            rows.append(("pca-pixel", "linear"))
    return rows


def method_data(method: str, task: TaskAdapter, sensor: str, pretraining: str, seed: int) -> str:
    """One line on what a method's features were computed from (the report's ``data`` column)."""
    info = task.info
    via = f"{info.name} images ({info.n_bands} bands) through the model's {sensor!r} input"
    if method == "checkpoint":
        return f"{via}; weights pretrained on {pretraining}"
    if method == "random-init":
        return f"{via}; weights never trained (random init, seed {seed})"
    if method == "pca-token":
        return f"raw {info.name} spectra ({info.n_bands} bands) pooled to the token grid, no encoder, no pretraining data"
    return f"raw {info.name} spectra ({info.n_bands} bands), no encoder, no pretraining data"


def pretraining_note(checkpoint: Path) -> str:
    """What the checkpoint was trained on, from the training run's config.json next to it."""
    import json

    cfg_path = Path(checkpoint).parent / "config.json"
    try:
        train = json.loads(cfg_path.read_text())["train"]
        return f"release {train['release']} ({train['steps']} steps, preset {train['preset']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown data (no training-run config.json next to the checkpoint)"


@contextmanager
def cpu_threads(n: int | None):
    """Limit torch and BLAS CPU threads inside the block (``None``: no change)."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


# -- entry point ---------------------------------------------------------------------------------


def evaluate(
    checkpoint: Path,
    tasks: list[str],
    head: str = "linear",
    out: Path = Path("evaluation"),
    options: EvalOptions | None = None,
) -> Path:
    """Evaluate a frozen encoder checkpoint on ``tasks`` with ``head``; write the report.

    Args:
        checkpoint: an encoder file written by ``checkpoint.save_encoder``.
        tasks: built-in task names (``--list-tasks``) or paths to task folders.
        head: ``linear`` | ``knn`` (classification and per-pixel segmentation probes),
            ``upernet`` or ``subtoken`` (segmentation tasks only). Segmentation tasks also get
            ``subtoken`` rows (``options.subtoken_rows``).
        out: report folder (created); holds report.md, results.csv, results.json, results.png.
        options: seed, device, threads, probe sizes (protocol defaults if None).

    Returns:
        The path of ``report.md``.
    """
    opts = options or EvalOptions()
    if head not in H.HEADS:
        raise EvaluationError(f"unknown head {head!r}; choose one of: {', '.join(H.HEADS)}")
    if not tasks:
        raise EvaluationError("no task given; see --list-tasks")
    loaded = [load_task(t) for t in tasks]  # fail on a bad task before any heavy work
    if head in H.MAP_HEADS:
        bad = [t.info.name for t in loaded if t.info.kind != "segmentation"]
        if bad:
            raise EvaluationError(f"head {head!r} is for segmentation tasks; not for {', '.join(bad)}")
    with cpu_threads(opts.threads):
        return _evaluate(Path(checkpoint), loaded, head, Path(out), opts)


def _evaluate(checkpoint: Path, loaded: list[TaskAdapter], head: str, out: Path, opts: EvalOptions) -> Path:
    from spectralearth_model.model import build_encoder

    from .report import write_report

    device = torch.device(resolve_device(opts.device))
    trained, cfg = load_checkpoint(checkpoint, opts.expect_preset)
    batchers = [Batcher(task, cfg, device) for task in loaded]  # a task the model cannot take fails here
    torch.manual_seed(opts.seed)
    random_init = build_encoder(cfg)
    encoders = {"checkpoint": freeze(trained.to(device)), "random-init": freeze(random_init.to(device))}
    digests = {m: weights_digest(e) for m, e in encoders.items()}
    pretraining = pretraining_note(checkpoint)
    results: list[MethodResult] = []
    sizes: dict[str, int] = {}
    for task, batcher in zip(loaded, batchers):
        sources: dict[str, Any] = {**encoders, "pca-pixel": None}
        if task.info.kind == "segmentation":
            patch = cfg.patch_px(batcher.sensor)
            sources["pca-token"] = TokenPCA(patch, opts.pca_components, opts.seed).fit(task, opts.batch_size)
        for method, h in plan_rows(task.info.kind, head, opts.subtoken_rows):
            data = method_data(method, task, batcher.sensor, pretraining, opts.seed)
            results.append(run_method(task, method, sources[method], batcher, h, opts, data))
        sizes[task.info.name] = results[-1].n_test_pixels
    changed = [m for m, e in encoders.items() if weights_digest(e) != digests[m]]
    if changed:  # a bug, never a user error: the protocol must not touch the encoder
        raise RuntimeError(f"encoder weights changed during evaluation: {', '.join(changed)}")
    meta = {
        "checkpoint": str(checkpoint), "preset": cfg.name, "head": head, "device": str(device),
        "seed": opts.seed, "pretraining": pretraining, "bootstrap": opts.bootstrap,
        "tasks": [{**describe(t), "n_test_scored": sizes[t.info.name],
                   "token_m": token_m(t.info, b), "label_m": float(t.info.gsd_m)} for t, b in zip(loaded, batchers)],
        "weights_sha256": digests["checkpoint"][:16],
        "inputs": {t.info.name: b.sensor for t, b in zip(loaded, batchers)},
    }
    return write_report(out, results, meta)
