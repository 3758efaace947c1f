"""The configs of `jaxml.methods.econas_search`: its `config.econas` fields (the official
search/main.py settings), the base recipe, the smoke size, their validation and the search
(space and algorithm) a config describes."""

import ml_collections

from jaxml import configs
from jaxml.methods.proxy_study.configs import zero_cost_net
from jaxml.metrics import zero_cost
from jaxml.models import SPACE_MODELS
from jaxml.search.hierarchical_evolution import HierarchicalEvolution
from jaxml.spaces import DARTSSpace, EcoNASSpace, NB201Space


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
    # 'array': a cycle's K networks as one population of the space's array build (one compile);
    # 'fixed': each network alone through its fixed build (nb201; `fixed.py` says when it wins).
    build="array",
    # '' (random initial networks, as official) or a zero-cost measure ('synflow', 'naswot',
    # ...): the initial population is the best-scored of `warm_start_pool` random cells, scored
    # at the size `warm_start_net` (proxy_study's c<i>r<j>[n<cells>]) on `warm_start_batch`
    # train images (`warm_start.py`).
    warm_start="",
    warm_start_pool=256,
    warm_start_net="c0r2n1",
    warm_start_batch=32,
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


BUILDS = ("array", "fixed")
VARIANTS = ("smoke", "random")  # `random`: random children on the same schedule (the baseline)
STAGES = 3


def search_space(config):
  """The space of `config.model` at the proxy's macro (channels, cells, data.resolution)."""
  m, r = config.model, config.data.resolution
  if m.name == "nb201":
    return NB201Space(channels=m.channels, cells_per_stage=m.cells_per_stage, input_size=r)
  if m.name == "darts_cells":
    return DARTSSpace(
      channels=m.channels, layers=m.layers, stem_multiplier=m.stem_multiplier, input_size=r
    )
  return EcoNASSpace(
    channels=m.channels,
    cells_per_stage=m.cells_per_stage,
    num_nodes=m.num_nodes,
    stem_multiplier=m.stem_multiplier,
    input_size=r,
  )


def make_algorithm(config) -> HierarchicalEvolution:
  e = config.econas
  return HierarchicalEvolution(
    search_space(config),
    parents=tuple(int(x) for x in e.parents),
    promote=tuple(int(x) for x in e.promote),
    tournament_divisor=int(e.tournament_divisor),
    max_age=int(e.max_age),
    random_children=bool(e.random_children),
    initial_size=int(e.initial_size),
  )


def validate_config(config) -> None:
  configs.validate_training_config(config)
  check = configs.check
  e = config.econas
  check(
    config.model.name in SPACE_MODELS and config.model.arch == "",
    f"econas_search trains K different architectures as one population: model.name must be a "
    f"search space's array build ({', '.join(SPACE_MODELS)}) with model.arch='', got "
    f"{config.model.name!r} arch={config.model.get('arch', None)!r}",
  )
  check(e.cycles >= 1, f"econas.cycles must be >= 1, got {e.cycles}")
  check(
    config.data.val_size > 0,
    "econas_search ranks networks on a val split held out of the train set (never the test "
    "set): set data.val_size > 0",
  )
  check(
    config.num_steps <= 0 or config.num_steps % STAGES == 0,
    f"num_steps={config.num_steps} is the 3-stage schedule (3E): make it a multiple of 3",
  )
  check(e.build in BUILDS, f"econas.build={e.build!r}; valid: {', '.join(BUILDS)}")
  check(
    e.build == "array" or config.model.name == "nb201",
    f"econas.build='fixed' trains NAS-Bench-201 cells (model.name 'nb201'), got "
    f"{config.model.name!r}: use econas.build='array'",
  )
  if e.warm_start:
    check(
      config.model.name == "nb201" and e.warm_start in zero_cost.MEASURES,
      f"econas.warm_start={e.warm_start!r}: a zero-cost measure ({', '.join(zero_cost.MEASURES)}) "
      "of NAS-Bench-201 cells (model.name 'nb201'), or '' for random initial networks",
    )
    check(
      e.warm_start_pool >= e.initial_size,
      f"econas.warm_start_pool={e.warm_start_pool} must be >= econas.initial_size="
      f"{e.initial_size} (the picks come from the pool)",
    )
    check(e.warm_start_batch >= 2, "econas.warm_start_batch must be >= 2 (NASWOT's kernel)")
    zero_cost_net(e.warm_start_net)  # ConfigError for a bad size name
  algorithm = make_algorithm(config)  # ConfigError for bad parents / promote / divisor / age
  check(
    config.population.size == algorithm.ask_size,
    f"population.size={config.population.size} must equal sum(econas.parents) + "
    f"sum(econas.promote) = {algorithm.ask_size}: every cycle trains that many networks",
  )
