"""Package list for setuptools (everything else is in pyproject.toml).

The sensor catalog lives at the top of the checkout (``catalogs/``, fixed by the design) and ships
inside the wheel as ``spectralearth_data/catalogs``, where :func:`spectralearth_data.catalog.catalog_root`
finds it through ``importlib.resources``.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["spectralearth_data*", "spectralearth_model*", "flows*"]),
              "spectralearth_data.catalogs"],
    package_dir={"spectralearth_data.catalogs": "catalogs"},
)
