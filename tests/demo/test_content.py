"""What is inside the demo files: QA, cross-sensor spectral consistency, EMIT swath/GLT, determinism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5netcdf
import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from shapely.geometry import Point, Polygon

from spectralearth_data.catalog import catalog_root, load_sensor
from spectralearth_data.demo import make_demo_scenes
from spectralearth_data.demo.scenes import demo_key
from spectralearth_data.demo.stac_items import collection_id
from spectralearth_data.engine import qa as qamod
from spectralearth_data.masks import MaskFlag


def _items(demo_items, name):
    return demo_items[collection_id(load_sensor(name))]


def _asset(item, key) -> Path:
    return Path(item["_path"]).parent / item["assets"][key]["href"]


def _read(item, key):
    with rasterio.open(_asset(item, key)) as ds:
        return ds.read(1), ds.transform


def _qa_layers(item, spec) -> dict[str, np.ndarray]:
    """An HSI item's quality layers by catalog layer name: one COG per layer (EnMAP), or the
    bands of the one QA COG (DESIS QL_QUALITY-2 layout)."""
    if spec.qa.banded:
        with rasterio.open(_asset(item, demo_key(spec, spec.qa.asset))) as ds:
            return {e.layer: ds.read(e.band) for e in spec.qa.entries}
    return {e.layer: _read(item, demo_key(spec, e.layer))[0] for e in spec.qa.entries}


def _bits_of(entry) -> int:
    """Every flag bit a QA layer entry can set (its ``flags``, or any of its ``classes``)."""
    bits = entry.mask_bits
    for b in entry.class_bits().values():
        bits |= b
    return bits


def _bad_values(sensor_name: str, flags: set[str]) -> set[int]:
    qa = load_sensor(sensor_name).qa
    return {e.value for e in qa.entries if set(e.flags) & flags}


def _s2_refl(item, band):
    s = load_sensor("s2")
    b = next(x for x in s.bands if x.name == band)
    dn, tr = _read(item, b.asset)
    return dn * b.scale + b.offset, tr


def test_s2_qa_has_clouds_shadows_and_nodata_and_clouds_are_bright(demo_items):
    item = next(it for it in _items(demo_items, "s2") if it["id"].startswith("S2A_MSIL2A_20240802"))
    scl, _ = _read(item, "SCL")
    cloud, shadow = _bad_values("s2", {"cloud"}), _bad_values("s2", {"cloud_shadow"})
    nodata = _bad_values("s2", {"nodata"})
    is_cloud, is_shadow = np.isin(scl, list(cloud)), np.isin(scl, list(shadow))
    assert is_cloud.mean() > 0.05 and is_shadow.mean() > 0.01 and np.isin(scl, list(nodata)).mean() > 0.02
    red, _ = _s2_refl(item, "B04")  # 10 m, SCL at 10 m here
    clear = ~(is_cloud | is_shadow | np.isin(scl, list(nodata)))
    assert red[is_cloud].mean() > 2.5 * red[clear].mean()
    assert red[is_shadow].mean() < red[clear].mean()


def test_landsat_qa_pixel_bits_and_lst_clouds_are_cold(demo_items):
    item = _items(demo_items, "landsat")[1]
    qa, _ = _read(item, "qa_pixel")
    bits = {e.bit: set(e.flags) for e in load_sensor("landsat").qa.entries}
    fill = next(b for b, f in bits.items() if "nodata" in f)
    cloud = next(b for b, f in bits.items() if f == {"cloud"} and b != 1)
    is_fill, is_cloud = (qa >> fill) & 1 == 1, (qa >> cloud) & 1 == 1
    assert is_fill.mean() > 0.05 and is_cloud.mean() > 0.05
    lst = load_sensor("lst").bands[0]
    t_dn, _ = _read(item, "lwir11")
    t = t_dn * lst.scale + lst.offset
    assert (t_dn[is_fill] == lst.nodata).all()
    clear = ~is_fill & ~is_cloud
    assert 285 < t[clear].mean() < 320 and t[is_cloud].mean() < t[clear].mean() - 10


def test_hsi_quality_layers_flag_clouds_and_nodata(demo_items):
    for name in ("enmap", "desis"):
        s = load_sensor(name)
        item = max(_items(demo_items, name), key=lambda it: it["properties"]["eo:cloud_cover"])
        layer = {e.layer: set(e.flags) for e in s.qa.entries}
        cloud_keys = [k for k, f in layer.items() if f == {"cloud"}]
        assert max(_qa_layers(item, s)[k].mean() for k in cloud_keys) > 0.02
        # layers that can say nodata: EnMAP QL_PIXELMASK (255) and QL_QUALITY_CLASSES (3), decoded
        # as the pipeline does; DESIS QL_QUALITY-2 has no fill layer: nodata is the cube's fill
        nodata_entries = [e for e in s.qa.entries if _bits_of(e) & MaskFlag.NODATA]
        if name == "enmap":
            assert {e.layer for e in nodata_entries} == {"quality_pixelmask", "quality_classes"}
        if not nodata_entries:
            continue
        other = next(it for it in _items(demo_items, name) if it is not item)
        seen_nodata = False
        for it in (item, other):
            layers = _qa_layers(it, s)
            with rasterio.open(_asset(it, s.data_asset)) as ds:
                cube_nodata = ds.read(1) == ds.nodata
            seen_nodata |= bool(cube_nodata.any())
            for e in nodata_entries:
                got = (qamod.layer_bits(e, layers[e.layer]) & MaskFlag.NODATA) != 0
                assert np.array_equal(got, cube_nodata), e.layer
        assert seen_nodata


def test_desis_quality_is_one_raster_in_the_ql_quality_2_band_order(demo_items):
    """The demo writes DESIS QA as DLR does: one multi-band QL_QUALITY-2-like COG, with the
    catalog's layers at their bands (cloud over land and over water are bands 6 and 7)."""
    s = load_sensor("desis")
    item = max(_items(demo_items, "desis"), key=lambda it: it["properties"]["eo:cloud_cover"])
    assert not {e.layer for e in s.qa.entries} & set(item["assets"])
    with rasterio.open(_asset(item, demo_key(s, s.qa.asset))) as ds:
        assert ds.count == max(e.band for e in s.qa.entries) == 10
        assert list(ds.descriptions[:8]) == ["shadow", "land", "snow", "haze_land", "haze_water",
                                             "cloud_land", "cloud_water", "water"]
        assert ds.read(6).mean() > 0.02 and ds.read(1).max() == 1


def _clear_s2_mean(item, band, box):
    refl, tr = _s2_refl(item, band)
    scl, tr_scl = _read(item, "SCL")
    assert tr == tr_scl
    bad = _bad_values("s2", {"cloud", "cloud_shadow", "nodata", "saturated"})
    return refl, ~np.isin(scl, list(bad)), tr


def _srf(filename: str, column: str):
    rows = [ln.split("\t") for ln in (catalog_root() / "srf" / filename).read_text().splitlines()]
    head = [h.strip() for h in rows[0]]
    data = np.array([[float(v) for v in r] for r in rows[1:]])
    return data[:, 0], data[:, head.index(column)]


def _convolve(wl, spectrum, srf_wl, srf):
    """Hyperspectral reflectance (band centres ``wl``) weighted by a 1 nm SRF."""
    w = np.where((srf_wl >= wl[0]) & (srf_wl <= wl[-1]), srf, 0.0)
    return float(np.sum(w * np.interp(srf_wl, wl, spectrum)) / np.sum(w))


@pytest.mark.parametrize("band,column", [("B04", "B4"), ("B08", "B8")])
def test_s2_agrees_with_desis_convolved_to_the_s2_srf(demo_items, band, column):
    """Same pixels (DESIS 30 m = 3x3 S2 10 m, both clear): S2 mean vs DESIS through the S2A SRF."""
    s2_item = next(it for it in _items(demo_items, "s2") if it["id"].startswith("S2A_MSIL2A_20240610"))
    desis = load_sensor("desis")
    d_item = min(_items(demo_items, "desis"), key=lambda it: it["properties"]["eo:cloud_cover"])
    refl, clear, tr = _clear_s2_mean(s2_item, band, None)
    with rasterio.open(_asset(d_item, desis.data_asset)) as ds:
        cube = ds.read().astype(float)
        dtr = ds.transform
    layer = {e.layer: set(e.flags) for e in desis.qa.entries}
    qa = _qa_layers(d_item, desis)
    d_bad = sum(qa[k] for k, f in layer.items() if f & {"nodata", "cloud", "cloud_shadow"}) > 0
    d_bad |= cube[0] == desis.bands[0].nodata  # DESIS QL_QUALITY-2 has no fill layer
    # S2 pixel block under each DESIS pixel (grids nested: DESIS origin is a multiple of 30 m).
    c0 = round((dtr.c - tr.c) / 10.0)
    r0 = round((tr.f - dtr.f) / 10.0)
    rows, cols = np.nonzero(~d_bad)
    sel = (r0 + 3 * rows >= 0) & (c0 + 3 * cols >= 0) & (r0 + 3 * rows + 3 <= refl.shape[0]) & (
        c0 + 3 * cols + 3 <= refl.shape[1])
    rows, cols = rows[sel], cols[sel]
    s2_vals, d_idx = [], []
    for r, c in zip(rows, cols):
        rr, cc = r0 + 3 * r, c0 + 3 * c
        if clear[rr:rr + 3, cc:cc + 3].all():
            s2_vals.append(refl[rr:rr + 3, cc:cc + 3].mean())
            d_idx.append((r, c))
    assert len(d_idx) > 1000
    ri, ci = np.array(d_idx).T
    spectrum = cube[:, ri, ci].mean(axis=1) * desis.bands[0].scale
    wl = np.array([b.wavelength_nm for b in desis.bands])
    expected = _convolve(wl, spectrum, *_srf("Sentinel_2A_Spectral_Response.tsv", column))
    assert np.mean(s2_vals) == pytest.approx(expected, rel=0.02, abs=0.002)


@pytest.mark.parametrize("band,column", [("red", "Red"), ("nir08", "NIR"), ("swir16", "SWIR1")])
def test_landsat_agrees_with_enmap_convolved_to_the_oli_srf(demo_items, band, column):
    """Both on 30 m grids with x0 mod 30 = 15: same pixels, clear in both."""
    enmap, landsat = load_sensor("enmap"), load_sensor("landsat")
    e_item = min(_items(demo_items, "enmap"), key=lambda it: it["properties"]["eo:cloud_cover"])
    l_item = next(it for it in _items(demo_items, "landsat") if it["properties"]["platform"] == "landsat-8")
    b = next(x for x in landsat.bands if x.name == band)
    dn, ltr = _read(l_item, b.asset)
    qa, _ = _read(l_item, "qa_pixel")
    bad_bits = sum(1 << e.bit for e in landsat.qa.entries if set(e.flags) & {"nodata", "cloud", "cloud_shadow"})
    l_ok = (qa & bad_bits) == 0
    with rasterio.open(_asset(e_item, enmap.data_asset)) as ds:
        cube = ds.read().astype(float)
        etr = ds.transform
    bad = MaskFlag.NODATA | MaskFlag.CLOUD | MaskFlag.CLOUD_SHADOW
    e_bad = np.zeros(cube.shape[1:], bool)
    for e in enmap.qa.entries:
        if _bits_of(e) & bad:
            e_bad |= (qamod.layer_bits(e, _read(e_item, demo_key(enmap, e.layer))[0]) & bad) != 0
    dc, dr = round((etr.c - ltr.c) / 30), round((ltr.f - etr.f) / 30)
    h = min(cube.shape[1], dn.shape[0] - dr)
    w = min(cube.shape[2], dn.shape[1] - dc)
    assert dc >= 0 and dr >= 0 and h > 50 and w > 50
    ok = ~e_bad[:h, :w] & l_ok[dr:dr + h, dc:dc + w]
    assert ok.sum() > 1000
    good = np.array([x.usable for x in enmap.bands])
    spectrum = cube[:, :h, :w][:, ok].mean(axis=1)[good] * enmap.bands[0].scale
    wl = np.array([x.wavelength_nm for x in enmap.bands])[good]
    expected = _convolve(wl, spectrum, *_srf("Landsat_8_Spectral_Response.tsv", column))
    got = (dn[dr:dr + h, dc:dc + w][ok] * b.scale + b.offset).mean()
    assert got == pytest.approx(expected, rel=0.02, abs=0.002)


def test_emit_netcdf_layout_and_glt(demo_items):
    emit = load_sensor("emit")
    item = _items(demo_items, "emit")[0]
    assert "proj:epsg" not in item["properties"]
    with h5netcdf.File(_asset(item, emit.data_asset), "r") as f:
        refl = f["reflectance"]
        assert refl.dimensions == ("downtrack", "crosstrack", "bands")
        assert refl.dtype == np.float32 and refl.attrs["_FillValue"] == -9999
        assert refl.shape[2] == len(emit.bands)
        sbp = f["sensor_band_parameters"]
        assert np.allclose(sbp["wavelengths"][:], [b.wavelength_nm for b in emit.bands], atol=0.01)
        assert np.allclose(sbp["fwhm"][:], [b.fwhm_nm for b in emit.bands], atol=0.01)
        assert sbp["good_wavelengths"][:].sum() == sum(b.usable for b in emit.bands)
        lat, lon = f["location/lat"][:], f["location/lon"][:]
        assert f["location/lat"].dimensions == ("downtrack", "crosstrack")
        gx, gy = f["location/glt_x"][:], f["location/glt_y"][:]
        assert f["location/glt_x"].dimensions == ("ortho_y", "ortho_x") and gx.dtype == np.int32
        gt = np.asarray(f.attrs["geotransform"])
        assert "WGS 84" in str(f.attrs["spatial_ref"])
        data = refl[:]
    ny, nx = lat.shape
    # swath rotated ~10 degrees from north: the downtrack direction in metres
    tr = Transformer.from_crs(4326, 32633, always_xy=True)
    x, y = tr.transform(lon, lat)
    heading = np.degrees(np.arctan2(x[-1, nx // 2] - x[0, nx // 2], -(y[-1, nx // 2] - y[0, nx // 2])))
    assert 5.0 < abs(heading) < 15.0
    # every ortho pixel that the GLT maps lands on a swath pixel within ~1 ortho pixel
    oy, ox = np.nonzero(gx > 0)
    assert gx.max() <= nx and gy.max() <= ny and ((gx > 0) == (gy > 0)).all()
    clon, clat = gt[0] + (ox + 0.5) * gt[1], gt[3] + (oy + 0.5) * gt[5]
    slon, slat = lon[gy[oy, ox] - 1, gx[oy, ox] - 1], lat[gy[oy, ox] - 1, gx[oy, ox] - 1]
    assert np.max(np.abs(slon - clon)) <= 1.2 * gt[1] and np.max(np.abs(slat - clat)) <= 1.2 * abs(gt[5])
    # every ortho pixel centred well inside the swath is mapped
    corners = [(lon[0, 0], lat[0, 0]), (lon[0, -1], lat[0, -1]), (lon[-1, -1], lat[-1, -1]), (lon[-1, 0], lat[-1, 0])]
    inner = Polygon(corners).buffer(-abs(gt[5]))
    yy, xx = np.mgrid[0:gx.shape[0], 0:gx.shape[1]]
    centres = zip(gt[0] + (xx.ravel() + 0.5) * gt[1], gt[3] + (yy.ravel() + 0.5) * gt[5])
    inside = np.array([inner.contains(Point(p)) for p in centres]).reshape(gx.shape)
    assert inside.sum() > 1000 and (gx[inside] > 0).all()
    # all usable reflectance is finite and plausible where not fill
    valid = data[..., 0] != -9999
    assert valid.mean() > 0.7 and np.all(np.abs(data[valid]) < 1.5)


def test_emit_mask_has_named_layers_and_clouds(demo_items):
    emit = load_sensor("emit")
    item = max(_items(demo_items, "emit"), key=lambda it: it["properties"]["eo:cloud_cover"])
    with h5netcdf.File(_asset(item, demo_key(emit, emit.qa.asset)), "r") as f:  # CMR-STAC key data2
        names = [n.decode() if isinstance(n, bytes) else n for n in f["sensor_band_parameters/mask_bands"][:]]
        mask = f["mask"][:]
    assert names == [e.layer for e in emit.qa.entries]
    cloud = mask[..., names.index(next(e.layer for e in emit.qa.entries if e.flags == ("cloud",)))]
    assert ((cloud == 1) | (cloud == 0) | (cloud == -9999)).all() and (cloud == 1).mean() > 0.02


def _array_hashes(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*.tif")):
        with rasterio.open(p) as ds:
            out[str(p.relative_to(root))] = hashlib.sha256(ds.read().tobytes()).hexdigest()
    for p in sorted(root.rglob("*.nc")):
        with h5netcdf.File(p, "r") as f:
            var = f["reflectance"] if "reflectance" in f.variables else f["mask"]
            h = hashlib.sha256(var[:].tobytes())
            if "location" in f.groups:
                h.update(f["location/glt_x"][:].tobytes())
                h.update(f["location/lat"][:].tobytes())
            out[str(p.relative_to(root))] = h.hexdigest()
    return out


def test_same_seed_gives_identical_arrays_and_items(demo_dir, tmp_path):
    again = make_demo_scenes(tmp_path / "again", seed=0)
    assert _array_hashes(demo_dir) == _array_hashes(again.out_dir)
    for p in sorted(demo_dir.rglob("*.json")):
        assert p.read_text() == (again.out_dir / p.relative_to(demo_dir)).read_text()
    assert again.bytes < 150e6


def test_other_seed_gives_another_surface():
    from spectralearth_data.demo.surface import make_surface

    a = make_surface((13.0, 52.38, 13.06, 52.42), 32633, 6, seed=0)
    b = make_surface((13.0, 52.38, 13.06, 52.42), 32633, 6, seed=1)
    assert a.labels.shape == b.labels.shape and (a.labels != b.labels).mean() > 0.3
    assert len(np.unique(a.labels)) == 6
