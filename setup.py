"""Installs the pipeline's packages and the `mtl` command. Exact versions come from requirements/lock.txt,
the same file CI and the Dockerfile install from (scripts/setup.sh)."""

from setuptools import find_packages, setup

setup(
    name="mtl-pipeline",
    version="0.1.0",
    description="A TFX pipeline that trains, validates and ships a multi-task recommendation model",
    python_requires=">=3.10",
    packages=find_packages(include=["config", "config.*", "pipeline", "pipeline.*", "components", "components.*",
                                    "models", "models.*", "data", "data.*"]),
    package_data={"config": ["*.yaml"]},
    install_requires=["tfx[kfp]==1.16.0", "tensorflow==2.16.2", "tf-keras==2.16.0", "apache-beam[gcp]==2.59.0",
                      "psutil", "pyyaml"],
    entry_points={"console_scripts": ["mtl=pipeline.cli:main"]},
)
