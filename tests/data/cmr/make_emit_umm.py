"""Build the CMR UMM-JSON replay records from the real recorded EMIT CMR-STAC item.

Source: tests/data/fixtures/emit/emit_cmr_stac_L1BRAD_L2ARFL_20240201T174151_2403212_032.geojson
(real CMR-STAC items of one EMIT scene; see tests/data/fixtures/MANIFEST.md section 3 for origin
and licence). CMR serves the same granules as UMM-G JSON; this script rewrites each recorded item
into that shape (GranuleUR, TemporalExtent, GPolygons, CloudCover, RelatedUrls, CollectionReference)
keeping every value from the recording. Run: python tests/data/cmr/make_emit_umm.py
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "fixtures/emit/emit_cmr_stac_L1BRAD_L2ARFL_20240201T174151_2403212_032.geojson"
SHORT_NAMES = {"C2408750690-LPCLOUD": "EMITL2ARFL", "C2408009906-LPCLOUD": "EMITL1BRAD"}


def to_umm(item: dict) -> dict:
    data = [a for k, a in sorted(item["assets"].items()) if k.startswith("data")]
    granule_ur = data[0]["href"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    props = item["properties"]
    ring = item["geometry"]["coordinates"][0]
    urls = [{"URL": a["href"], "Type": "GET DATA", "Description": a.get("title", "")} for a in data]
    if "browse" in item["assets"]:
        urls.append({"URL": item["assets"]["browse"]["href"], "Type": "GET RELATED VISUALIZATION"})
    if "opendap" in item["assets"]:
        urls.append({"URL": item["assets"]["opendap"]["href"], "Type": "USE SERVICE API", "Subtype": "OPENDAP DATA"})
    return {
        "meta": {"concept-type": "granule", "concept-id": item["id"], "revision-id": 1,
                 "native-id": granule_ur, "provider-id": "LPCLOUD", "format": "application/echo10+xml"},
        "umm": {
            "GranuleUR": granule_ur,
            "TemporalExtent": {"RangeDateTime": {"BeginningDateTime": props["start_datetime"],
                                                 "EndingDateTime": props["end_datetime"]}},
            "SpatialExtent": {"HorizontalSpatialDomain": {"Geometry": {"GPolygons": [
                {"Boundary": {"Points": [{"Longitude": x, "Latitude": y} for x, y in ring]}}]}}},
            "CloudCover": props["eo:cloud_cover"],
            "RelatedUrls": urls,
            "CollectionReference": {"ShortName": SHORT_NAMES[item["collection"]], "Version": "001"},
        },
    }


if __name__ == "__main__":
    fc = json.loads(FIXTURE.read_text())
    records = [to_umm(f) for f in fc["features"]]
    (HERE / "emit_granules.umm.json").write_text(json.dumps(records, indent=1) + "\n")
    print(f"wrote {len(records)} records")
