"""BlessingGate: the blessing that counts, from the Evaluator's output, with each head's change against the baseline
called a regression only when the test events support it (``models.evaluation.verdict``).

The Evaluator's own blessing judges a change on its point estimate; this gate keeps every other failure TFMA found
(bounds, missing slices) and sets aside a change beyond its tolerance that its 95% paired interval does not show to
be worse at all (a one-sided test at the 5% level), for each head whose ``blessing.evidence`` is ``interval``. The
ServingCheck, the Pusher and the baseline resolver read the gate's blessing, not the Evaluator's.

Output: a ModelBlessing as the Evaluator writes one (custom properties ``blessed``, ``current_model``,
``current_model_id`` and, with a baseline, ``baseline_model`` and ``baseline_model_id``; a ``BLESSED`` or
``NOT_BLESSED`` file), with ``reason`` (the first failure, or how many changes were within noise) and the verdict
(``models.evaluation.verdict.VERDICT_FILE``: every head's change and interval, the failures that stand, the changes
within noise).
"""

import json
import logging
import os

import tensorflow as tf
from tfx import v1 as tfx

from config import from_custom_config
from models.evaluation.verdict import judge
from models.tasks import make_tasks

PROGRESS = logging.getLogger("mtl.progress")


@tfx.dsl.components.component
def BlessingGate(
    evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    evaluator_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    pipeline_config: tfx.dsl.components.Parameter[str],
):
    """Blesses the Evaluator's candidate, or not, by each head's rule (see the module docstring)."""
    config = from_custom_config(json.loads(pipeline_config))
    verdict = judge(evaluation.uri, make_tasks(config.tasks))
    for name, value in evaluator_blessing.mlmd_artifact.custom_properties.items():  # which models were judged
        if name != "blessed":
            blessing.mlmd_artifact.custom_properties[name].CopyFrom(value)
    verdict.write(blessing.uri)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, "BLESSED" if verdict.blessed else "NOT_BLESSED"), "w"):
        pass
    blessing.set_int_custom_property("blessed", int(verdict.blessed))
    if verdict.failures:
        reason = verdict.failures[0]
    else:
        reason = f"{len(verdict.within_noise)} change(s) beyond tolerance within noise" if verdict.within_noise \
            else "every head passed"
    blessing.set_string_custom_property("reason", reason)
    for line in verdict.within_noise:
        PROGRESS.info(f"BlessingGate: within noise: {line}")
    PROGRESS.info(f"BlessingGate: {'BLESSED' if verdict.blessed else 'NOT BLESSED'}: {reason}")
