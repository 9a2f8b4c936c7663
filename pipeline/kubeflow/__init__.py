"""A Kubeflow Pipelines server through the pinned ``kfp.Client``: upload a compiled spec, start a run or a
recurring run (``client``); cron lines in KFP's six-field format (``cron``)."""
