"""The pipeline definition and how it runs: ``definition`` (create_pipeline, the components in data-flow order),
``runners`` (LocalDagRunner here, KubeflowV2DagRunner compiled), ``guards`` (what is checked before and around a
run), ``metadata`` (the runs MLMD recorded). Above it, in sub-packages: ``reports`` and ``kubeflow``, then ``cli``.
"""

import config  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
