"""How a head is judged: the TFMA EvalConfig derived from the tasks (``eval_config``), the vectorised TFMA metrics
the Evaluator computes (``head_metrics``) and the exact scores on arrays that benchmarks and limits read
(``scores``)."""
