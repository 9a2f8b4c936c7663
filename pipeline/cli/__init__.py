"""The `mtl` command line: the sub-commands (``main``), their options (``parser``), the console's one line per
component (``console``, ``resource_watch``) and `mtl predict` (``predict``)."""
