"""Synthesized, structured location batches for tests and benchmarks (NOT real data).

A location is a mixture of a few fixed random *endmember* materials. Each endmember has a smooth
random reflectance spectrum on 350-2550 nm, a surface temperature and a SAR backscatter; each
location has smooth random abundance fields on a 10 m grid. Every optical sensor sees the same
scene through Gaussian spectral response functions built from its catalog wavelength/FWHM and
area-averaged to its GSD, so sensors agree with each other the way real co-located products do --
which is what makes cross-sensor prediction learnable. Everything here says it is synthetic.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import ModelConfig, SensorInput

_WL = torch.arange(350.0, 2551.0, 5.0)  # spectral sampling of the synthetic spectra (nm)


class SyntheticScenes:
    """A fixed set of endmembers (seeded) from which location batches are drawn.

    Args:
        cfg: model configuration (sensors, token size).
        n_endmembers: number of materials.
        seed: seed of the endmembers (batches use the generator passed to :meth:`batch`).
    """

    def __init__(self, cfg: ModelConfig, n_endmembers: int = 6, seed: int = 0) -> None:
        self.cfg = cfg
        g = torch.Generator().manual_seed(seed)
        # smooth spectra: low-frequency cosine series around a random level, in [0.02, 0.8]
        k = torch.arange(1, 7, dtype=torch.float32)
        coef = torch.randn(n_endmembers, 6, generator=g) / k
        u = (_WL - 350.0) / 2200.0
        shape = (coef[:, :, None] * torch.cos(math.pi * k[None, :, None] * u[None, None, :])).sum(1)
        level = torch.rand(n_endmembers, 1, generator=g) * 0.4 + 0.1
        self.spectra = (level + 0.08 * shape).clamp(0.02, 0.8)  # (E, L)
        self.temperature = 280.0 + 25.0 * torch.rand(n_endmembers, generator=g)  # K
        self.backscatter = 10 ** (-(5.0 + 20.0 * torch.rand(n_endmembers, 2, generator=g)) / 10)  # linear

    def _bands(self, s: SensorInput) -> torch.Tensor:
        """Endmember values in the sensor's bands: (E, C)."""
        if s.kind in ("hsi", "multispectral"):
            wl = torch.tensor(s.wavelength_nm)
            sigma = torch.tensor(s.fwhm_nm) / (2 * math.sqrt(2 * math.log(2)))
            srf = torch.exp(-0.5 * ((_WL[None] - wl[:, None]) / sigma[:, None].clamp(min=2.5)) ** 2)  # (C, L)
            srf = srf / srf.sum(1, keepdim=True).clamp(min=1e-8)
            out = self.spectra @ srf.T
            return torch.where(wl[None] > 2550.0, 0.1, out)  # bands outside the synthetic range
        if s.kind == "thermal":
            return self.temperature[:, None].expand(-1, s.n_bands)
        return self.backscatter[:, : s.n_bands]

    def batch(self, batch_size: int, cell_m: float, generator: torch.Generator | None = None,
              present: torch.Tensor | None = None) -> dict:
        """A collated batch of ``batch_size`` synthetic locations of ``cell_m`` metres.

        ``present`` (B, S) bool selects which sensors each location has (default: all). Absent
        sensors' data are zeros and their masks nodata, as in the collated batch contract.
        """
        return self.labelled_batch(batch_size, cell_m, generator, present)[0]

    def labelled_batch(self, batch_size: int, cell_m: float, generator: torch.Generator | None = None,
                       present: torch.Tensor | None = None) -> tuple[dict, torch.Tensor]:
        """:meth:`batch` plus its per-token ground truth: (B, h, w) long, the endmember with the
        largest mean abundance inside each ``cfg.token_m`` token (the synthesizer's land cover)."""
        cfg = self.cfg
        g = generator or torch.Generator().manual_seed(0)
        n10 = round(cell_m / 10.0)
        E = self.spectra.shape[0]
        logits = torch.randn(batch_size, E, n10 // 8, n10 // 8, generator=g) * 2.5
        logits = F.interpolate(logits, size=(n10, n10), mode="bicubic", align_corners=False)
        abundance = logits.softmax(dim=1)  # (B, E, n10, n10)
        if present is None:
            present = torch.ones(batch_size, len(cfg.sensors), dtype=torch.bool)
        sensors = {}
        for i, s in enumerate(cfg.sensors):
            f = round(s.gsd_m / 10.0)
            a = F.avg_pool2d(abundance, f)  # (B, E, H, W)
            data = torch.einsum("behw,ec->bchw", a, self._bands(s))
            data = data * (1 + 0.01 * torch.randn(data.shape, generator=g))
            keep = present[:, i].view(-1, 1, 1, 1)
            H, W = data.shape[-2:]
            sensors[s.name] = {
                "data": torch.where(keep, data, 0.0).float(),
                "mask": torch.where(keep[:, 0], 0, 1).expand(-1, H, W).to(torch.uint8).contiguous(),
                "wavelength": torch.tensor(s.wavelength_nm or [0.0] * s.n_bands, dtype=torch.float32),
                "fwhm": torch.tensor(s.fwhm_nm or [0.0] * s.n_bands, dtype=torch.float32),
                "gsd": s.gsd_m,
            }
        t = round(cfg.token_m / 10.0)
        labels = F.avg_pool2d(abundance, t).argmax(dim=1)  # (B, h, w)
        return {"present": present.clone(), "sensors": sensors}, labels


class SyntheticStream(torch.utils.data.IterableDataset):
    """An endless stream of SYNTHESIZED collated batches (training without a release).

    The batch at stream position ``p`` (counted in batches over all ranks) is a pure function of
    ``(seed, p)``: rank ``r`` of ``world_size`` reads positions ``start + r, start + r + world_size,
    ...``, so a resume restarts at the number of batches consumed and reads what the interrupted
    run would have. Every batch carries ``view_seed`` (B,) int64, one seed per sample, from which
    the JEPA draws that sample's views.

    Args:
        cfg: model configuration.
        batch_size: locations per batch.
        cell_m: location size (m).
        seed: stream seed (the endmembers are fixed by ``scene_seed``).
        scene_seed: seed of :class:`SyntheticScenes` (shared with the probe monitor's held-out set).
    """

    def __init__(self, cfg: ModelConfig, batch_size: int, cell_m: float, seed: int = 0, rank: int = 0,
                 world_size: int = 1, start: int = 0, scene_seed: int = 0) -> None:
        super().__init__()
        self.scenes = SyntheticScenes(cfg, seed=scene_seed)
        self.batch_size, self.cell_m, self.seed = batch_size, cell_m, seed
        self.rank, self.world_size, self.start = rank, world_size, start

    def at(self, pos: int) -> dict:
        """The batch at global stream position ``pos``."""
        from .data import idx_seed

        s = idx_seed(pos, self.seed)
        batch = self.scenes.batch(self.batch_size, self.cell_m, torch.Generator().manual_seed(s))
        batch["view_seed"] = torch.tensor([idx_seed(pos * self.batch_size + i, s) for i in range(self.batch_size)])
        return batch

    def __iter__(self):
        pos = self.start + self.rank
        while True:
            yield self.at(pos)
            pos += self.world_size
