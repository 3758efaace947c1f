"""The configs of `jaxml.methods.econas_search`: its `config.econas` fields (the official
search/main.py settings), the base recipe and the smoke size."""

import ml_collections

from jaxml import configs


def econas_config(**overrides) -> ml_collections.ConfigDict:
  """The `config.econas` block; defaults are the official search/main.py settings."""
  defaults = dict(
    cycles=100,  # cycles after the initial population
    initial_size=16,  # random networks of cycle 0 (official search/main.py `range(16)`)
    parents=(6, 5, 5),  # children's parents from P_E, P_2E, P_3E
    promote=(8, 4),  # promoted from P_E, P_2E
    tournament_divisor=4,  # tournament size floor(n / divisor) + 1
    max_age=10,  # cycles without training before a network leaves the pools
    random_children=False,  # True: the random-search baseline on the same schedule
    table_dir="",  # NAS-Bench-201 table ('' = the data search order); nb201 only
  )
  return ml_collections.ConfigDict({**defaults, **overrides})


def base_config(model: str) -> ml_collections.ConfigDict:
  """The official search/train.py recipe on `model`'s array build, official pools."""
  c = configs.training_config("econas_search", model)
  c.optim.update(lr=0.1, momentum=0.9, nesterov=False, weight_decay=3e-4, grad_clip=5.0)
  c.econas = econas_config()
  c.population.size = 28
  c.population.mapping = "auto"
  c.batch_size = 384
  c.eval_batch_size = 1000
  c.data.val_size = 5000
  c.data.resolution = 8
  c.num_epochs = 60.0  # 3 stages of E = 20
  c.log_every_steps = 100
  c.progress = False
  return c


def shrink_for_smoke(c: ml_collections.ConfigDict) -> None:
  """K 4 (1 + 1 + 0 parents, 1 + 1 promotions), 3 initial networks (one inactive slot in cycle
  0), 3 cycles of 2 steps, vmap (one compile)."""
  c.econas.update(cycles=3, initial_size=3, parents=(1, 1, 0), promote=(1, 1), max_age=3)
  c.population.update(size=4, mapping="vmap", fast_compile=True)
  c.data.update(val_size=500, sample_ratio=0.02)
  c.update(batch_size=32, eval_batch_size=500, num_steps=6)
