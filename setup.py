"""Packaging shim: ship the top-level `migrations/` folder inside the wheel as `lsdb._migrations`.

Everything else lives in pyproject.toml; setuptools cannot express this mapping there
together with package discovery.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["lsdb", "lsdb.*"]) + ["lsdb._migrations", "lsdb._migrations.versions"],
    package_dir={"lsdb._migrations": "migrations"},
)
