"""
Experiment tooling: the cost benchmark, sweeps and the aggregation of runs over seeds.

Nothing here is a component a config names, so `import allennlp_lpt` (which every `allennlp`
command runs through the plugin) does not import this package: the `lpt-*` subcommands in
`allennlp_lpt.commands` import their implementation here when they run. `configs` walks saved
and overridden configs; `tables` writes the mean ± std tables.
"""
