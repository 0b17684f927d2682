"""Packaging shim for what pyproject.toml cannot express together with package discovery:

- the top-level `migrations/` folder ships inside the wheel as `lsdb._migrations`;
- the analysis families under `plugins/lsdb_*` ship as top-level packages (lsdb's default
  plugins). Stand-alone third-party examples under `plugins/` have their own pyproject.toml.
"""

from setuptools import find_packages, setup

plugin_packages = find_packages(where="plugins", include=["lsdb_*", "lsdb_*.*"])
package_dir = {"lsdb._migrations": "migrations"}
package_dir.update({pkg: "plugins/" + pkg.replace(".", "/") for pkg in plugin_packages})

setup(
    packages=find_packages(include=["lsdb", "lsdb.*"]) + ["lsdb._migrations", "lsdb._migrations.versions"]
    + plugin_packages,
    package_dir=package_dir,
)
