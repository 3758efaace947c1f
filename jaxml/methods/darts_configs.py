"""The configs of `jaxml.methods.darts`: its `config.darts` fields and the experiment variants
(the NB201 paper's DARTS setting and CPU / smoke sizes)."""

import ml_collections

from jaxml import configs

VARIANTS = ("smoke", "cpu", "second_order", "gdas")
SPACES = {"nb201": "nb201", "darts": "darts_cells"}  # darts.space -> model.name
SAMPLINGS = ("softmax", "gumbel")


def darts_config(**overrides) -> ml_collections.ConfigDict:
  defaults = dict(
    space="nb201",  # nb201 | darts (model.name must be nb201 | darts_cells)
    order=1,  # 1: first order; 2: the unrolled step with the finite-difference HVP (eq. 7-8)
    sampling="softmax",  # softmax (DARTS) | gumbel (GDAS straight-through sample)
    alpha_lr=3e-4,
    alpha_b1=0.5,
    alpha_b2=0.999,
    alpha_weight_decay=1e-3,
    alpha_init_std=1e-3,
    lr_min=0.001,  # cosine floor of the weights' learning rate
    tau_max=10.0,  # GDAS temperature, annealed linearly over the epochs
    tau_min=0.1,
    affine=False,  # BN scale/bias of the cell ops (DARTS searches without)
    dataset="cifar10",  # NB201 table column of the derived cells' true accuracy
    table_dir="",  # NB201 table root ('' = the data search order)
  )
  return ml_collections.ConfigDict({**defaults, **overrides})


def experiment(space: str, arg: str | None, name: str) -> ml_collections.ConfigDict:
  """The standard GPU search of `space` (50 epochs, batch 64, 25k/25k halves), or its variants:
  `cpu` (C 8, N 1 / 5 layers, 16x16, 1,280 + 1,280 images, 10 epochs), `smoke` (CPU seconds),
  `second_order`, `gdas`.
  """
  v = configs.parse_variants(arg, VARIANTS, name=name, exclusive=[("smoke", "cpu")])
  c = configs.training_config("darts", SPACES[space])
  c.darts = darts_config(space=space, order=2 if "second_order" in v else 1)
  if "gdas" in v:
    c.darts.sampling = "gumbel"
  c.optim.update(lr=0.025, momentum=0.9, nesterov=False, weight_decay=3e-4, grad_clip=5.0)
  c.data.update(val_size=25000)
  c.update(batch_size=64, eval_batch_size=500, num_epochs=50.0, log_every_steps=50)
  c.population.update(size=3, same_batch=False)
  if space == "darts":
    c.model.update(channels=16, layers=8)
  else:
    c.model.update(channels=16, cells_per_stage=5)
  if "cpu" in v:
    # 1,280 alpha images held out; 2.63% of the other 48,720 leaves ~1,280 for the weights
    # (20 steps of 64 per epoch). `vmap`: one copy's graph to compile, not K (the `loop`
    # mapping's K unrolled second-order graphs took over 10 min to compile on a busy 2-core CPU).
    c.data.update(sample_ratio=0.02627, val_size=1280, resolution=16)
    c.update(num_epochs=10.0, log_every_steps=10)
    c.population.mapping = "vmap"
    c.model.update(channels=8, **({"layers": 5} if space == "darts" else {"cells_per_stage": 1}))
  if "smoke" in v:
    c.data.update(sample_ratio=0.0065, val_size=320, resolution=16)
    c.update(batch_size=32, num_steps=-1, num_epochs=2.0, log_every_steps=5)
    c.model.update(channels=4, **({"layers": 3} if space == "darts" else {"cells_per_stage": 1}))
    c.population.update(size=2, mapping="vmap", fast_compile=True)
  return c
