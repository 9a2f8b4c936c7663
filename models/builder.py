"""The Trainer's model builder: the one place where the config is mapped to the model's parts.

``build_model`` picks the encoder, the architecture (one registry, keyed by ``config.Architecture``), a tower
per task, the tasks and the balancer (one registry, keyed by ``config.Balancing``) and composes them into a
compiled MultiTaskModel. ``check_model_config`` holds the rules that depend on task types; create_pipeline calls
it, so a bad combination fails before any component runs.
"""

import tf_keras

from config import (
    Architecture,
    Balancing,
    ConfigError,
    FeatureConfig,
    IdUpdates,
    ModelConfig,
    PipelineConfig,
    TextSharing,
)
from models import features, text
from models.balancing import Balancer, FixedWeights, GradNorm, PCGrad, UncertaintyWeighting
from models.layers import MLP, FactorInteraction, FeatureEncoder
from models.multitask_model import MultiTaskModel
from models.row_optimizer import RowAdam
from models.tasks import Task, make_tasks
from models.text_layers import TextFeatureEncoder
from models.zoo import PLE, MMoE, SharedBottom

ARCHITECTURES = {
    Architecture.SHARED_BOTTOM: lambda m, names: SharedBottom(names, list(m.shared_layers)),
    Architecture.MMOE: lambda m, names: MMoE(names, m.experts, list(m.expert_layers)),
    Architecture.PLE: lambda m, names: PLE(names, m.experts, m.task_experts, m.levels, list(m.expert_layers)),
}

BALANCERS = {
    Balancing.FIXED: lambda m, weights: FixedWeights(weights, name="balancer"),
    Balancing.UNCERTAINTY: lambda m, weights: UncertaintyWeighting(weights, name="balancer"),
    Balancing.GRADNORM: lambda m, weights: GradNorm(weights, alpha=m.gradnorm_alpha, name="balancer"),
    Balancing.PCGRAD: lambda m, weights: PCGrad(weights, name="balancer"),
}

# The optimizer of the id tables of a built model (None: the dense weights' Adam steps them too).
ID_OPTIMIZERS = {
    IdUpdates.WHOLE_TABLE: lambda m, model: None,
    IdUpdates.ROWS: lambda m, model: RowAdam(m.learning_rate, l2=model.id_table_l2),
}


def make_architecture(model: ModelConfig, task_names: list[str]) -> tf_keras.layers.Layer:
    """The architecture layer ``model.architecture`` names, sized by the model config."""
    return ARCHITECTURES[model.architecture](model, task_names)


def make_balancer(model: ModelConfig, loss_weights: dict[str, float]) -> Balancer:
    """The balancer ``model.balancing`` names, over the tasks' configured ``loss_weights``."""
    return BALANCERS[model.balancing](model, loss_weights)


def check_model_config(config: PipelineConfig) -> None:
    """Raises ConfigError for the rules that depend on task types and feature kinds: what each task type needs
    (``Task.check_config``), fusion takes heads with one score per example, ESMM takes binary heads, and the
    interactions and task embeddings take categorical features. Called by preflight, create_pipeline and
    build_model."""
    tasks = {t.name: t for t in make_tasks(config.tasks)}
    _check_categorical(config)
    for name in config.model.fusion:
        if not tasks[name].scalar:
            raise ConfigError(f"model.fusion: task '{name}' ({tasks[name].config.type}) gives "
                              f"{tasks[name].units} scores per example; fusion takes heads with one score "
                              "(binary, regression)")
    for name in config.model.esmm_tasks:
        if not tasks[name].probability:
            raise ConfigError(f"model.esmm_tasks: task '{name}' is {tasks[name].config.type}; ESMM needs tasks that "
                              "give one probability per example (binary)")


def _check_categorical(config: PipelineConfig) -> None:
    model = config.model
    dims = {f.name: f.embedding_dim for f in config.features if features.is_categorical(f)}
    for task, names in model.task_embeddings.items():
        if not names or not set(names) <= set(dims):
            raise ConfigError(f"model.task_embeddings.{task}: expected categorical features to embed for that task "
                              f"alone, got {list(names)}")
    names = model.factorization
    if names and not (len(names) == 2 and set(names) <= set(dims) and names[0] != names[1]):
        raise ConfigError("model.factorization names two different categorical features (e.g. [user_id, item_id]), "
                          f"got {list(names)}")
    names = model.dot_interaction
    if not names:
        return
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError("model.dot_interaction needs at least two distinct features")
    for name in names:
        if name not in dims:
            raise ConfigError(f"model.dot_interaction: '{name}' is not a categorical feature")
    chosen = {name: dims[name] for name in names}
    if len(set(chosen.values())) != 1:
        raise ConfigError(f"model.dot_interaction needs equal embedding_dim, got {chosen}")


def build_model(config: PipelineConfig, cardinalities: dict[str, int],
                id_layers_from: MultiTaskModel | None = None) -> MultiTaskModel:
    """The compiled, untrained model for ``config``; ``cardinalities`` ({categorical feature: number of ids},
    ``models.features.cardinalities``) sizes the embeddings. With ``id_layers_from`` (a model of the same config)
    the new model shares that model's layers that hold the id tables (encoder, task encoders, factor interaction,
    text encoders) and has architecture, towers and heads of its own: a head copy of models.head_selection. Called
    by run_fn, the benchmarks and the tests."""
    check_model_config(config)
    model_config = config.model
    tasks = make_tasks(config.tasks)
    categorical = [f for f in config.features if features.is_categorical(f)]
    dims = {f.name: f.embedding_dim for f in categorical}
    by_optimizer = model_config.id_updates == IdUpdates.ROWS
    encoder = FeatureEncoder(
        {f.name: cardinalities[f.name] for f in categorical},
        dims,
        [f.name for f in config.features if features.is_numeric(f)],
        embedding_l2=model_config.embedding_l2, dot_interaction=list(model_config.dot_interaction),
        l2_by_optimizer=by_optimizer)
    task_encoders = {task: FeatureEncoder({name: cardinalities[name] for name in names},
                                          {name: dims[name] for name in names}, [],
                                          embedding_l2=model_config.task_embedding_l2, l2_by_optimizer=by_optimizer,
                                          name=f"{task}_feature_encoder")
                     for task, names in model_config.task_embeddings.items()}
    text_encoders = {
        f.name: TextFeatureEncoder(f.name, cardinalities[f.name], f.embedding_dim, f.encoder, units=f.encoder_units,
                                   num_layers=f.encoder_layers, max_tokens=f.max_tokens, dropout=f.encoder_dropout,
                                   readers=_text_readers(f, tasks),
                                   char_ngram_buckets=f.char_ngram_buckets,
                                   char_ngrams_per_token=f.char_ngrams_per_token, token_dropout=f.token_dropout,
                                   oov_ids=text.oov_ids(f), name=f"{f.name}_text_encoder")
        for f in config.features if features.is_text(f)}
    towers = {}
    for task in tasks:
        tower = task.config
        towers[task.name] = MLP(list(tower.tower), dropout=tower.dropout, batch_norm=tower.batch_norm, l2=tower.l2,
                                name=f"{task.name}_tower")
    parts = dict(
        encoder=encoder,
        architecture=make_architecture(model_config, [t.name for t in tasks]),
        towers=towers,
        task_encoders=task_encoders,
        text_encoders=text_encoders,
        tasks=tasks,
        balancer=make_balancer(model_config, {t.name: t.config.loss_weight for t in tasks}),
        loss_normalization=model_config.loss_normalization,
        esmm_tasks=model_config.esmm_tasks,
        fusion=model_config.fusion,
        clip_norm=model_config.clip_norm,
        interaction=FactorInteraction({name: cardinalities[name] for name in model_config.factorization},
                                      model_config.factor_dim, model_config.factor_l2, l2_by_optimizer=by_optimizer,
                                      name="factor_interaction")
        if model_config.factorization else None,
        interaction_tasks=model_config.factor_tasks)
    if id_layers_from is not None:
        parts["encoder"], parts["task_encoders"] = id_layers_from.encoder, id_layers_from.task_encoders
        parts["interaction"], parts["text_encoders"] = id_layers_from.interaction, id_layers_from.text_encoders
    model = MultiTaskModel(**parts)
    model.compile(optimizer=tf_keras.optimizers.Adam(model_config.learning_rate),
                  id_optimizer=ID_OPTIMIZERS[model_config.id_updates](model_config, model),
                  jit_compile=model_config.jit_compile)
    return model


def _text_readers(feature: FeatureConfig, tasks: list[Task]) -> list[str]:
    """Who gets a sequence encoder of text feature ``feature`` (TextFeatureEncoder's ``readers``; "" is the encoder
    the other heads share): none of its own under hard sharing, every head under soft, each head that tags the
    feature's tokens under by_level."""
    if feature.sharing == TextSharing.SOFT:
        return [t.name for t in tasks]
    if feature.sharing == TextSharing.BY_LEVEL:
        return ["", *(t.name for t in tasks if t.per_token and t.config.text_feature == feature.name)]
    return []
