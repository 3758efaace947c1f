"""The configs of `jaxml.methods.darts`: its `config.darts` fields, the experiment variants
(the NB201 paper's DARTS setting and CPU / smoke sizes), their validation and the space they
search."""

import ml_collections

from jaxml import configs
from jaxml.nasbench import nb201
from jaxml.spaces import DARTSSpace, NB201Space

VARIANTS = ("smoke", "cpu", "second_order", "gdas", "darts_minus")
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
    # DARTS- (Chu et al., ICLR 2021): beta of the auxiliary skip beta * x on every edge, decayed
    # linearly to 0 over the search (`bilevel.aux_skip_at`); 0 = off, the paper uses 1.
    aux_skip=0.0,
    affine=False,  # BN scale/bias of the cell ops (DARTS searches without)
    dataset="cifar10",  # NB201 table column of the derived cells' true accuracy
    table_dir="",  # NB201 table root ('' = the data search order)
  )
  return ml_collections.ConfigDict({**defaults, **overrides})


def experiment(space: str, arg: str | None, name: str) -> ml_collections.ConfigDict:
  """The standard GPU search of `space` (50 epochs, batch 64, 25k/25k halves), or its variants:
  `cpu` (C 8, N 1 / 5 layers, 16x16, 6,400 + 6,400 images, 20 epochs, alpha lr 3e-3, 1 copy),
  `smoke` (CPU seconds),
  `second_order`, `gdas`, `darts_minus` (DARTS with the auxiliary skip, a cure of the collapse).
  """
  v = configs.parse_variants(arg, VARIANTS, name=name, exclusive=[("smoke", "cpu")])
  c = configs.training_config("darts", SPACES[space])
  c.darts = darts_config(space=space, order=2 if "second_order" in v else 1)
  if "gdas" in v:
    c.darts.sampling = "gumbel"
  if "darts_minus" in v:
    c.darts.aux_skip = 1.0
  c.optim.update(lr=0.025, momentum=0.9, nesterov=False, weight_decay=3e-4, grad_clip=5.0)
  c.data.update(val_size=25000)
  c.update(batch_size=64, eval_batch_size=500, num_epochs=50.0, log_every_steps=50)
  c.population.update(size=3, same_batch=False)
  if space == "darts":
    c.model.update(channels=16, layers=8)
  else:
    c.model.update(channels=16, cells_per_stage=5)
  if "cpu" in v:
    # One alpha step per weight step, as in the paper; 6,400 alpha images held out, 14.68 % of
    # the other 43,600 leaves ~6,400 for the weights: 100 steps of 64 per epoch, 2,000 in 20
    # epochs (~10 min per seed on one core of a 2-core CPU). The paper's 19,550 alpha steps at
    # 3e-4 let an alpha travel up to ~5.9 (Adam moves it at most ~lr per step); 10x the rate
    # over ~10x fewer steps keeps that reach (at 3e-4, 200 steps left alphas uniform: RESULTS.md).
    # One copy: seeds are separate runs (3 vmapped copies ran ~12x slower than one).
    c.data.update(sample_ratio=0.1468, val_size=6400, resolution=16)
    c.update(num_epochs=20.0, log_every_steps=50)
    c.darts.alpha_lr = 3e-3
    c.population.update(size=1, mapping="vmap")
    c.model.update(channels=8, **({"layers": 5} if space == "darts" else {"cells_per_stage": 1}))
  if "smoke" in v:
    c.data.update(sample_ratio=0.0065, val_size=320, resolution=16)
    c.update(batch_size=32, num_steps=-1, num_epochs=2.0, log_every_steps=5)
    c.model.update(channels=4, **({"layers": 3} if space == "darts" else {"cells_per_stage": 1}))
    c.population.update(size=2, mapping="vmap", fast_compile=True)
  return c


def validate_config(config) -> None:
  d = config.darts
  check = configs.check
  configs.check_space_model(config, "darts", SPACES, "searches the {} network")
  configs.validate_training_config(config)
  check(
    config.model.get("arch", "") == "",
    "darts searches the array build: model.arch must be '' (a fixed cell has no alphas)",
  )
  check(config.model.dtype == "float32", "darts: the space networks are float32 only")
  check(d.order in (1, 2), f"darts.order must be 1 or 2, got {d.order!r}")
  check(d.sampling in SAMPLINGS, f"darts.sampling={d.sampling!r}; valid: {', '.join(SAMPLINGS)}")
  check(d.alpha_lr > 0, f"darts.alpha_lr must be > 0, got {d.alpha_lr}")
  for b in ("alpha_b1", "alpha_b2"):  # Adam's moment decays: outside [0, 1) alpha's step diverges
    check(0 <= d[b] < 1, f"darts.{b} must be in [0, 1), got {d[b]}")
  check(d.alpha_weight_decay >= 0, "darts.alpha_weight_decay must be >= 0")
  check(d.alpha_init_std >= 0, "darts.alpha_init_std must be >= 0")
  check(d.aux_skip >= 0, f"darts.aux_skip must be >= 0, got {d.aux_skip}")
  if d.aux_skip > 0:  # beta * x is the skip op's output only where no edge changes resolution
    check(d.space == "nb201", "darts.aux_skip (DARTS-) is built for the nb201 space only")
    check(d.sampling == "softmax", "darts.aux_skip (DARTS-) adds to DARTS's softmax weights")
  check(
    0 <= d.lr_min < config.optim.lr,
    f"darts.lr_min must be in [0, optim.lr={config.optim.lr}), got {d.lr_min}",
  )
  check(
    0 < d.tau_min <= d.tau_max,
    f"darts: need 0 < tau_min <= tau_max, got tau_min={d.tau_min}, tau_max={d.tau_max}",
  )
  check(
    config.data.val_size > 0,
    "darts takes its alpha steps on the val split (the train split's other half): "
    "data.val_size > 0",
  )
  if d.space == "nb201":
    check(d.dataset in nb201.DATASETS, f"darts.dataset={d.dataset!r}; valid: {nb201.DATASETS}")


def build_space(config, num_classes: int):
  m = config.model
  if config.darts.space == "nb201":
    return NB201Space(m.channels, m.cells_per_stage, num_classes, config.data.resolution)
  return DARTSSpace(m.channels, m.layers, num_classes, config.data.resolution, m.stem_multiplier)
