"""PLE (Tang et al., RecSys 2020): stacked extraction levels of shared and task-specific experts; 1 level is CGC."""

import tf_keras

from models.zoo.mmoe import make_experts, make_gate, mix


@tf_keras.utils.register_keras_serializable(package="mtl")
class ExtractionLevel(tf_keras.layers.Layer):
    """One level: ``experts`` shared and ``task_experts`` per-task experts.

    Each task's gate (on the task's input) mixes its own and the shared experts; with ``shared_gate``, a gate on
    the shared input mixes all experts into the next level's shared input. Call it with ({task: input},
    shared input); it returns ({task: mixture}, shared mixture or None).
    """

    def __init__(self, task_names: list[str], experts: int, task_experts: int, expert_layers: list[int],
                 shared_gate: bool, **kwargs):
        super().__init__(**kwargs)
        self.task_names = list(task_names)
        self.experts, self.task_experts = experts, task_experts
        self.expert_layers = list(expert_layers)
        self.shared_gate = shared_gate
        self.shared_experts = make_experts(experts, self.expert_layers, "shared_expert")
        self.task_expert_nets = {name: make_experts(task_experts, self.expert_layers, f"{name}_expert")
                                 for name in self.task_names}
        self.task_gates = {name: make_gate(task_experts + experts, f"{name}_gate") for name in self.task_names}
        self.shared_gate_layer = (make_gate(len(self.task_names) * task_experts + experts, "shared_gate")
                                  if shared_gate else None)

    def call(self, task_inputs, shared_input, training=False):
        shared = [expert(shared_input, training=training) for expert in self.shared_experts]
        own = {name: [expert(task_inputs[name], training=training) for expert in self.task_expert_nets[name]]
               for name in self.task_names}
        task_outputs = {name: mix(self.task_gates[name](task_inputs[name]), own[name] + shared)
                        for name in self.task_names}
        if self.shared_gate_layer is None:
            return task_outputs, None
        everything = [output for name in self.task_names for output in own[name]] + shared
        return task_outputs, mix(self.shared_gate_layer(shared_input), everything)

    def get_config(self):
        return {**super().get_config(), "task_names": self.task_names, "experts": self.experts,
                "task_experts": self.task_experts, "expert_layers": self.expert_layers,
                "shared_gate": self.shared_gate}


@tf_keras.utils.register_keras_serializable(package="mtl")
class PLE(tf_keras.layers.Layer):
    """Returns, for every task name, its mixture from the last of ``levels`` extraction levels."""

    def __init__(self, task_names: list[str], experts: int, task_experts: int, levels: int,
                 expert_layers: list[int], **kwargs):
        super().__init__(**kwargs)
        self.task_names = list(task_names)
        self.experts, self.task_experts, self.levels = experts, task_experts, levels
        self.expert_layers = list(expert_layers)
        self.extraction = [ExtractionLevel(self.task_names, experts, task_experts, self.expert_layers,
                                           shared_gate=level < levels - 1, name=f"level_{level}")
                           for level in range(levels)]


    def call(self, x, training=False):
        task_inputs, shared_input = {name: x for name in self.task_names}, x
        for level in self.extraction:
            task_inputs, shared_input = level(task_inputs, shared_input, training=training)
        return task_inputs

    def get_config(self):
        return {**super().get_config(), "task_names": self.task_names, "experts": self.experts,
                "task_experts": self.task_experts, "levels": self.levels, "expert_layers": self.expert_layers}
