"""Parameter counts per component of SpectralEarth-FM (for ``spectralearth model-info``)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .config import ModelConfig


@dataclass(frozen=True)
class ComponentParams:
    component: str
    parameters: int


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_table(cfg: ModelConfig) -> list[ComponentParams]:
    """Trainable parameters of every component of the JEPA model built from ``cfg``.

    Rows: spectral tokenizer, one row per non-HSI patch embedding, sensor/GSD embeddings, fusion,
    each encoder stage (with the pooling that opens it), the predictor, and the encoder total.
    The EMA target encoder is a copy of the encoder and is not counted again.
    """
    from .jepa import JEPA

    model = JEPA(cfg)
    enc = model.encoder
    emb = enc.embedder
    rows = [ComponentParams("spectral tokenizer (HSI)", _count(emb.tokenizer))]
    rows += [ComponentParams(f"patch embed {name}", _count(m)) for name, m in emb.patch_embed.items()]
    rows.append(ComponentParams("sensor + GSD embeddings", emb.sensor_embed.numel() + _count(emb.gsd_embed)))
    rows.append(ComponentParams("cross-sensor fusion", _count(enc.fusion)))
    for i, (pool, stage, norm) in enumerate(zip(enc.encoder.pools, enc.encoder.stages, enc.encoder.norms)):
        rows.append(
            ComponentParams(
                f"encoder stage {i + 1} (dim {cfg.dims[i]}, depth {cfg.depths[i]})",
                _count(pool) + _count(stage) + _count(norm),
            )
        )
    rows.append(ComponentParams("JEPA predictor", _count(model.predictor)))
    rows.append(ComponentParams("encoder total", _count(enc)))
    rows.append(ComponentParams("trainable total (encoder + predictor)", _count(enc) + _count(model.predictor)))
    return rows
