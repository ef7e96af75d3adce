"""The top-level resources/ folder travels inside the wheel as the package ldm_studio._resources.

ldm_studio.paths.resources_dir() finds it there, or beside the package in a source checkout.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["ldm_studio", "ldm_studio.*"]), "ldm_studio._resources"],
    package_dir={"ldm_studio._resources": "resources"},
    package_data={"ldm_studio._resources": ["**/*"]},
    include_package_data=False,
)
