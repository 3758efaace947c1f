"""jaxml.search: architecture and hyper-parameter searches, pure and jittable.

- `driver`: the ask/tell protocol every search follows, and `run`, its tabular driver
  (`lax.scan` of ask -> table lookup -> tell, vmapped over seeds).
- `random_search.RandomSearch`, `regularized_evolution.RegularizedEvolution` (REA),
  `reinforce_search.ReinforceSearch`, `spos_evolution.SPOSEvolution`: ask/tell searches over any
  `jaxml.spaces.SearchSpace`, one per file.
- `hierarchical_evolution.HierarchicalEvolution`: EcoNAS's pools of networks trained E / 2E / 3E
  epochs, tournament parents, promotion and aging (driven by `jaxml.methods.econas_search`).
- `reinforce`: REINFORCE over a `Categorical` or `DiagonalGaussian` policy with per-copy
  sufficient statistics (OHL-Auto-Aug, AM-LFS, and the architecture REINFORCE above).
"""
