"""Installs the pipeline's packages and the `mtl` command. Exact versions come from the lock of the stack
scripts/setup.sh picks (requirements/lock.txt: TFX 1.16; requirements/lock-tfx121.txt: TFX 1.21), the same
files CI and the Dockerfile install from; the ranges here admit both stacks."""

from setuptools import find_packages, setup

setup(
    name="mtl-pipeline",
    version="0.1.0",
    description="A TFX pipeline that trains, validates and ships a multi-task recommendation model",
    python_requires=">=3.10,<3.14",
    packages=find_packages(include=["config", "config.*", "pipeline", "pipeline.*", "components", "components.*",
                                    "models", "models.*", "data", "data.*"]),
    package_data={"config": ["*.yaml"]},
    install_requires=["tfx[kfp]>=1.16,<1.22", "kfp>=2.13,<2.17", "tensorflow>=2.16,<2.22", "tf-keras>=2.16,<2.22",
                      "tensorboard", "apache-beam[gcp]>=2.59,<2.78", "psutil", "pyyaml"],
    entry_points={"console_scripts": ["mtl=pipeline.cli.main:main"]},
)
