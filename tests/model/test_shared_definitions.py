"""One definition each, used by training and evaluation alike: device resolution, the weights
digest, the sensor facts (the catalog's one cache) and the invalid mask bits."""

from __future__ import annotations

import copy

import pytest
import torch

import spectralearth_data.catalog as catalog
from spectralearth_data.masks import INVALID, MaskFlag
from spectralearth_model import train
from spectralearth_model.config import ModelConfig, sensor_input
from spectralearth_model.evaluate import harness
from spectralearth_model.runtime import resolve_device, weights_digest


@pytest.mark.parametrize("cuda", [False, True])
def test_auto_is_cuda_when_present_and_other_names_pass_through(monkeypatch, cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    want = "cuda" if cuda else "cpu"
    assert resolve_device("auto") == resolve_device(None) == want
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:1") == "cuda:1"
    assert train._device_kind("auto") == want  # the trainer resolves through it, then checks


def test_the_trainer_refuses_devices_it_cannot_run_on(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(train.TrainError, match="no CUDA device is available"):
        train._device_kind("cuda")
    with pytest.raises(train.TrainError, match="device must be auto, cpu or cuda"):
        train._device_kind("cuda:1")


def test_training_and_evaluation_use_the_one_device_and_digest_functions():
    assert train.resolve_device is harness.resolve_device is resolve_device
    assert train.weights_digest is harness.weights_digest is weights_digest


def test_weights_digest_follows_every_parameter_and_buffer():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))  # 0-d buffer too
    same = copy.deepcopy(net)
    digest = weights_digest(net)
    assert len(digest) == 64 and weights_digest(same) == digest
    with torch.no_grad():
        same[0].weight[0, 0] += 1e-3
    assert weights_digest(same) != digest
    other = copy.deepcopy(net)
    other[1].num_batches_tracked += 1
    assert weights_digest(other) != digest


def test_sensor_facts_come_from_the_catalog_cache(monkeypatch):
    asked = []
    real = catalog.sensor_spec

    def spy(name, root=None):
        asked.append(name)
        return real(name, root)

    monkeypatch.setattr(catalog, "sensor_spec", spy)
    s = sensor_input("s2")
    assert asked == ["s2"] and s.n_bands == len(real("s2").usable_bands)


def test_invalid_mask_bits_are_the_masks_invalid_flags_plus_clouds_and_shadows(tiny_cfg):
    """The model drops what the masks call invalid and, beyond that, clouds and their shadows
    (they are not the surface, issue 17)."""
    want = int(INVALID | MaskFlag.CLOUD | MaskFlag.CLOUD_SHADOW)
    assert tiny_cfg.invalid_mask_bits == want
    assert ModelConfig.from_dict(tiny_cfg.to_dict()).invalid_mask_bits == want
