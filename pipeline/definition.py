"""create_pipeline: the TFX components wired in data-flow order. Runners only differ in how they execute it."""

import json
import os

import tensorflow_data_validation as tfdv
from tfx import v1 as tfx

from components.anomaly_gate import AnomalyGate
from components.atomic_pusher import AtomicPusher
from components.blessing_gate import BlessingGate
from components.schema_curation import CurateSchema
from components.serving_check import ServingCheck
from config import SPLITS, TEST, TRAIN, VALIDATION, DataConfig, PipelineConfig, ValueCounts, to_custom_config
from models.builder import check_model_config
from models.evaluation.eval_config import make_eval_config

PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.training.run_fn"
BLESSING_GATE = "BlessingGate"  # the component id whose blessings the baseline resolver reads


def create_pipeline(config: PipelineConfig, *, pipeline_root: str, serving_dir: str, accepted_schema: str | None = None,
                    metadata_connection_config=None, beam_pipeline_args=None) -> tfx.dsl.Pipeline:
    """The whole pipeline for ``config``; the runners (run_local, compile_kubeflow) call it. User code is
    referenced by module path, importable in any runner. New spans are judged against ``data.schema_path``, else
    ``accepted_schema`` (a schema file an earlier run accepted), else the schema inferred from the span itself.
    Raises ConfigError before any component runs when the model config does not fit the tasks."""
    check_model_config(config)
    custom_config = to_custom_config(config)

    # Ingest one span of TFRecord logs and split it, so every run trains on a known, versioned slice of data.
    example_gen = tfx.components.ImportExampleGen(
        input_base=_local_or_uri(config.data.log_root),
        input_config=_input_config(config.data),
        output_config=None if config.data.presplit else _hash_split(config.data),
        range_config=_range_config(config.data))

    # The statistics of the last span that passed validation in an earlier run: the drift baseline.
    previous_statistics = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
        statistics=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ExampleStatistics,
                                   producer_component_id="AnomalyGate"),
    ).with_id("previous_statistics_resolver")

    # Describe the data: statistics are what the schema is inferred from and what the validator checks. Sketches
    # keep their cost per event flat at millions of distinct ids (validation.value_counts).
    sketch = config.validation.value_counts == ValueCounts.SKETCH
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"],
        stats_options=tfdv.StatsOptions(use_sketch_based_topk_uniques=True) if sketch else None)
    statistics_gen.add_upstream_node(previous_statistics)

    # Infer a schema from this span: the first run's is accepted, and `mtl schema accept` takes a later one.
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)

    # Judge the span by the accepted (or curated) schema when there is one, plus what the config knows: label
    # domains and presence, finite numbers, environments, drift thresholds.
    schema_path = config.data.schema_path or accepted_schema
    import_schema = (tfx.components.ImportSchemaGen(schema_file=_local_or_uri(schema_path)) if schema_path
                     else None)
    curate_schema = CurateSchema(schema=(import_schema or schema_gen).outputs["schema"],
                                 pipeline_config=json.dumps(custom_config))

    # Check every split against that schema and the previous span; the gate fails the run before Transform.
    example_validator = tfx.components.ExampleValidator(statistics=statistics_gen.outputs["statistics"],
                                                        schema=curate_schema.outputs["curated_schema"])
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs["anomalies"],
                               statistics=statistics_gen.outputs["statistics"],
                               schema=curate_schema.outputs["curated_schema"],
                               labels=json.dumps({t.label_key: None if t.text_labels else t.missing_value
                                                  for t in config.tasks}),
                               baseline_statistics=previous_statistics.outputs["statistics"])
    schema = curate_schema.outputs["curated_schema"]

    # Train on the newest `train_spans` ingested spans; statistics and validation look at the new span alone.
    span_window = _span_window(example_gen, config.data.train_spans) if config.data.train_spans > 1 else None

    # Features and (label, weight) pairs from the config; the same graph is baked into the serving model. Analyzed on
    # train; the test split is not transformed, so the Trainer cannot read it. Its own statistics of the raw and the
    # transformed splits only when asked for (validation.transform_statistics): the gate above judged the raw span.
    transform = tfx.components.Transform(
        examples=span_window.outputs["examples"] if span_window else example_gen.outputs["examples"],
        schema=schema,
        splits_config=tfx.proto.SplitsConfig(analyze=[TRAIN], transform=[TRAIN, VALIDATION]),
        preprocessing_fn=PREPROCESSING_FN, custom_config=custom_config,
        disable_statistics=not config.validation.transform_statistics)
    transform.add_upstream_node(anomaly_gate)

    # The latest model the blessing gate blessed: the Trainer's starting point with model.warm_start, and the
    # Evaluator's baseline, against which no head may regress.
    baseline_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing,
                                       producer_component_id=BLESSING_GATE),
    ).with_id("latest_blessed_model_resolver")

    # Train the multi-task model on the transformed examples and export both signatures: here, or as a Vertex AI
    # custom job on several workers (vertex_training).
    trainer_component, trainer_config = tfx.components.Trainer, custom_config
    if config.vertex_training:
        trainer_component = tfx.extensions.google_cloud_ai_platform.Trainer
        trainer_config = {**custom_config, **_vertex_training_args(config)}
    trainer = trainer_component(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        train_args=tfx.proto.TrainArgs(splits=[TRAIN], num_steps=config.model.train_steps),
        eval_args=tfx.proto.EvalArgs(splits=[VALIDATION], num_steps=config.model.eval_steps),
        base_model=baseline_resolver.outputs["model"] if config.model.warm_start else None,
        custom_config=trainer_config)

    # Per-head, per-slice metrics on the test split, which neither training nor selection saw, each with its 95%
    # interval and its change against the baseline, paired on the same events; TFMA judges every threshold.
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        example_splits=[TEST],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=make_eval_config(config))

    # The blessing that counts: TFMA's verdict, but a head's change beyond its tolerance refuses the model only when
    # its paired interval shows it worse at all (blessing.evidence), so test-sample noise alone refuses nothing.
    blessing_gate = BlessingGate(
        evaluation=evaluator.outputs["evaluation"],
        evaluator_blessing=evaluator.outputs["blessing"],
        pipeline_config=json.dumps(custom_config)).with_id(BLESSING_GATE)

    # Load a blessed model in a fresh process and send it test events through both signatures before it may ship:
    # it answers, its scores are finite and agree, its batch-1 p99 is within the SLO; also the warm-up records and
    # the TFLite files that keep each head's metric.
    serving_check = ServingCheck(
        model=trainer.outputs["model"],
        model_blessing=blessing_gate.outputs["blessing"],
        examples=example_gen.outputs["examples"],
        pipeline_config=json.dumps(custom_config))

    # Ship only a blessed, checked model, as a new version directory in TF Serving's layout that appears only when
    # complete, labelled in the TF Serving model config beside the versions.
    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=blessing_gate.outputs["blessing"],
        infra_blessing=serving_check.outputs["infra_blessing"],
        model_evaluation=evaluator.outputs["evaluation"],
        base_directory=os.path.join(_local_or_uri(serving_dir), config.name),
        pipeline_config=json.dumps(custom_config)).with_id("Pusher")

    return tfx.dsl.Pipeline(
        pipeline_name=config.name,
        pipeline_root=pipeline_root,
        components=[example_gen, previous_statistics, statistics_gen, schema_gen,
                    *([import_schema] if import_schema else []), curate_schema, example_validator, anomaly_gate,
                    *([span_window] if span_window else []), transform, baseline_resolver, trainer, evaluator,
                    blessing_gate, serving_check, pusher],
        enable_cache=False,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [])


def _vertex_training_args(config: PipelineConfig) -> dict:
    """The Trainer's custom_config keys that make TFX's Vertex AI Trainer run ``run_fn`` as a custom job: one
    chief pool and, for more than one worker, a pool of the others, all on the same machine type and image."""
    vertex = config.vertex_training
    pool = {"machine_spec": {"machine_type": vertex.machine_type}, "container_spec": {"image_uri": vertex.image}}
    pools = [{**pool, "replica_count": 1}] + ([{**pool, "replica_count": vertex.workers - 1}]
                                              if vertex.workers > 1 else [])
    extension = tfx.extensions.google_cloud_ai_platform
    return {extension.ENABLE_VERTEX_KEY: True, extension.VERTEX_REGION_KEY: vertex.region,
            extension.TRAINING_ARGS_KEY: {"project": vertex.project, "job_spec": {"worker_pool_specs": pools}}}


def _span_window(example_gen, num_spans: int) -> tfx.dsl.Resolver:
    """The Examples of the newest ``num_spans`` spans that ExampleGen has ingested, this run's included."""
    resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.SpanRangeStrategy,
        config={"range_config": tfx.proto.RangeConfig(rolling_range=tfx.proto.RollingRange(num_spans=num_spans))},
        examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples, producer_component_id=example_gen.id),
    ).with_id("span_window_resolver")
    resolver.add_upstream_node(example_gen)
    return resolver


def _input_config(data: DataConfig) -> tfx.proto.Input:
    splits = list(SPLITS) if data.presplit else []
    return tfx.proto.Input(splits=[tfx.proto.Input.Split(name=name, pattern=f"span-{{SPAN}}/{name}/*")
                                   for name in splits]
                           or [tfx.proto.Input.Split(name="single_split", pattern="span-{SPAN}/*.tfrecord*")])


def _hash_split(data: DataConfig) -> tfx.proto.Output:
    return tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
        tfx.proto.SplitConfig.Split(name=name, hash_buckets=getattr(data, f"{name}_buckets")) for name in SPLITS]))


def _range_config(data: DataConfig):
    if data.span == "latest":
        return None
    span = int(data.span)
    return tfx.proto.RangeConfig(static_range=tfx.proto.StaticRange(start_span_number=span, end_span_number=span))


def _local_or_uri(path: str) -> str:
    """Absolute local paths, so runs do not depend on the working directory; URIs (gs://...) unchanged."""
    return path if "://" in path else os.path.abspath(path)
