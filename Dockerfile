# The image Kubeflow Pipelines runs (`mtl compile-kubeflow --image ...`): the pinned stack and this project,
# installed by the same script and lock file as CI, so user code is importable by module path
# (models.preprocessing.preprocessing_fn, models.training.run_fn, components.anomaly_gate).
FROM python:3.11-slim
WORKDIR /pipeline
COPY . /pipeline
RUN bash scripts/setup.sh /opt/venv && rm -rf /root/.cache
ENV PATH=/opt/venv/bin:$PATH \
    TF_USE_LEGACY_KERAS=1 \
    PYTHONPATH=/pipeline
