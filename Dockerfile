# The image Kubeflow Pipelines runs (`mtl compile-kubeflow --image ...`): the pinned stack and this project,
# installed by the same script and lock files as CI, so user code is importable by module path
# (models.preprocessing.preprocessing_fn, models.training.run_fn, components.anomaly_gate).
# Debian 13 with Python 3.13 (glibc 2.41): scripts/setup.sh picks the TFX 1.21 stack (requirements/lock-tfx121.txt),
# the one CI tests in a Debian 13 chroot. g++ builds pyfarmhash, which has no Python 3.13 wheel.
# The compiled spec hands Beam /pipeline/setup.py (pipeline/runners.py IMAGE_SETUP_FILE): move both together.
FROM python:3.13-slim-trixie
WORKDIR /pipeline
COPY . /pipeline
RUN apt-get update && apt-get install -y --no-install-recommends g++ \
    && bash scripts/setup.sh /opt/venv \
    && apt-get purge -y --auto-remove g++ && rm -rf /var/lib/apt/lists/* /root/.cache
ENV PATH=/opt/venv/bin:$PATH \
    TF_USE_LEGACY_KERAS=1 \
    PYTHONPATH=/pipeline
