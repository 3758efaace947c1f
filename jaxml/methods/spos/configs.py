"""The `spos` config block, the experiment settings and their validation (Guo et al., ECCV 2020,
Single Path One-Shot NAS; the method: `jaxml.methods.spos`)."""

import ml_collections

from jaxml import configs
from jaxml.nasbench import nb201
from jaxml.spaces import NB201Space

SPACES = {"nb201": "nb201", "shufflenet": "shufflenet_spos"}  # spos.space -> model.name
SAMPLINGS = ("uniform", "unique", "flops_bins")
VARIANTS = ("smoke", "cpu", "unique", "flops_bins", "affine", "fewshot")
SHUFFLENET_VARIANTS = ("smoke", "cpu", "flops_bins", "affine")  # isomorphism, split: NB201 only


def spos_config(**overrides) -> ml_collections.ConfigDict:
  defaults = dict(
    space="nb201",  # nb201 | shufflenet (model.name nb201 | shufflenet_spos)
    sampling="uniform",  # uniform | unique (NB201) | flops_bins
    unique_pick="first",  # unique: train each class's representative (first) or a random member
    flops_bins=7,  # flops_bins: equal-width bins between the space's min and max FLOPs
    flops_tries=500,  # flops_bins: uniform draws tried per path before falling back
    sub_batches=1,  # paths per train step (the batch cut in equal parts)
    affine=False,  # BN scale/bias of the searchable ops in the supernet
    # Few-shot NAS (Zhao et al., ICML 2021): the K = 5 copies are the sub-supernets of NB201
    # edge `split_edge` (0-5, arch-string order; -1 = off), copy k holding op k there; cells are
    # scored on the sub-supernet of their op (`jaxml.methods.spos.fewshot`).
    split_edge=-1,
    # Start every copy from copy `init_copy` of the last checkpoint of the SPOS run in this
    # directory (few-shot: the trained one-shot supernet; '' = fresh weights).
    init_from="",
    init_copy=0,
    trunk_epochs=1.0,
    trunk_steps=0,
    calib_batches=200,  # BN recalibration per path: batches x batch size of training images
    calib_batch_size=128,
    score_val_size=0,  # val images a path is scored on (0: the whole val split)
    paths_per_call=0,  # paths per compiled call (0: population_size); more are scored in chunks
    rank_random=200,  # ranking study: random cells (0: no study)
    rank_top=50,  # ... plus the table's best cells
    dataset="cifar10",  # NB201 table column of the true accuracies
    table_dir="",  # NB201 table root ('' = the data search order)
    population_size=50,  # evolution: P, generations, TopK, per-gene mutation probability
    generations=20,
    topk=10,
    mutation_prob=0.1,
    max_tries=10,
    max_flops=0.0,  # MACs per example (0: no limit)
    max_params=0.0,
  )
  return ml_collections.ConfigDict({**defaults, **overrides})


def experiment(space: str, arg: str | None, name: str) -> ml_collections.ConfigDict:
  """The GPU-size setting of `space`, or its variants (see the experiment files)."""
  valid = VARIANTS if space == "nb201" else SHUFFLENET_VARIANTS
  v = configs.parse_variants(arg, valid, name=name, exclusive=[("smoke", "cpu")])
  c = configs.training_config("spos", SPACES[space])
  c.spos = spos_config(space=space)
  c.spos.sampling = "unique" if "unique" in v else "flops_bins" if "flops_bins" in v else "uniform"
  configs.check(not {"unique", "flops_bins"} <= v, f"{name}: unique and flops_bins exclude")
  c.spos.affine = "affine" in v
  if "fewshot" in v:  # edge 1<-0 (which edge the release splits is not recorded)
    configs.check("unique" not in v and "flops_bins" not in v, f"{name}: fewshot samples uniformly")
    c.spos.split_edge = 0
  # FewShot's ONE-SHOT-SUPERNET config (REFERENCES.md 7a): SGD Nesterov, lr 0.025 cosine, wd
  # 1e-4, batch 48 (64 here), C 16, N 5; 600 epochs there, 250 here (Ning et al.: P@topK
  # converges by ~250 epochs).
  c.optim.update(lr=0.025, momentum=0.9, nesterov=True, weight_decay=1e-4, grad_clip=5.0)
  c.data.update(val_size=5000)
  c.update(batch_size=64, eval_batch_size=500, num_epochs=250.0, log_every_steps=100)
  if "fewshot" in v:  # after the one-shot supernet (`spos.init_from`), each of 5 sub-supernets
    c.num_epochs = 50.0  # trains a fifth of its epochs: as many images again
  # few-shot: one copy per op of the split edge, split from one supernet (the same weights)
  c.population.update(size=5 if "fewshot" in v else 1, same_init="fewshot" in v)
  if space == "nb201":
    c.model.update(channels=16, cells_per_stage=5)
  else:
    c.model.update(stem="cifar", width=1.0)
    c.spos.update(rank_random=0, max_flops=0.0)
  if "cpu" in v:
    c.data.update(sample_ratio=0.25, val_size=1000, resolution=16)
    c.update(batch_size=64, eval_batch_size=500, num_epochs=30.0, log_every_steps=50)
    if "fewshot" in v:  # 5 x 2 epochs: a third of SPOS's 30 again, split among the sub-supernets
      c.num_epochs = 2.0
    c.spos.update(calib_batches=8, calib_batch_size=64, score_val_size=0)
    c.spos.update(population_size=20, generations=5, topk=5)
    c.population.update(mapping="vmap")
    if space == "nb201":
      c.model.update(channels=8, cells_per_stage=1)
    else:
      c.model.update(width=0.25, stage_blocks=(1, 1, 2, 1))
    if "fewshot" in v:  # `loop`: 5 copies on different paths (vmap computes every op of an edge)
      c.population.mapping = "loop"
  if "smoke" in v:
    c.data.update(sample_ratio=0.0065, val_size=100, resolution=16)
    c.update(batch_size=32, eval_batch_size=50, num_epochs=2.0, log_every_steps=5)
    c.spos.update(calib_batches=2, calib_batch_size=16, score_val_size=50)
    c.spos.update(population_size=6, generations=2, topk=3, max_tries=5)
    c.population.update(size=5 if "fewshot" in v else 2, mapping="vmap", fast_compile=True)
    if space == "nb201":
      c.model.update(channels=4, cells_per_stage=1)
      c.spos.update(rank_random=12, rank_top=4)
    else:
      c.model.update(width=0.125, stage_blocks=(1, 1, 1, 1))
  return c


def validate_config(config) -> None:
  s, check = config.spos, configs.check
  configs.check_space_model(config, "spos", SPACES, "trains the {} supernet")
  configs.validate_training_config(config)
  check(config.model.get("arch", "") == "", "spos trains the array build: model.arch must be ''")
  check(config.model.dtype == "float32", "spos: the space networks are float32 only")
  check(s.sampling in SAMPLINGS, f"spos.sampling={s.sampling!r}; valid: {', '.join(SAMPLINGS)}")
  check(
    s.sampling != "unique" or s.space == "nb201",
    "spos.sampling='unique' needs the NB201 table's isomorphism classes (spos.space='nb201')",
  )
  check(s.unique_pick in ("first", "random"), "spos.unique_pick must be 'first' or 'random'")
  check(s.flops_bins >= 1 and s.flops_tries >= 1, "spos.flops_bins and flops_tries must be >= 1")
  check(s.sub_batches >= 1, f"spos.sub_batches must be >= 1, got {s.sub_batches}")
  check(
    config.batch_size % s.sub_batches == 0,
    f"batch_size={config.batch_size} must split into spos.sub_batches={s.sub_batches} parts",
  )
  if s.split_edge != -1:
    from jaxml.spaces import nb201_encoding as enc201

    check(
      s.space == "nb201" and 0 <= s.split_edge < enc201.NUM_EDGES,
      f"spos.split_edge={s.split_edge}: an NB201 edge 0-5 (spos.space='nb201'), or -1 (off)",
    )
    check(s.sampling == "uniform", "spos.split_edge (few-shot) trains uniform paths")
    check(
      config.population.size == enc201.NUM_OPS,
      f"spos.split_edge: population.size must be {enc201.NUM_OPS}, one copy per op of the edge",
    )
  if s.init_from:
    from jaxml.methods.spos import fewshot

    fewshot.check_source(config)
  check(s.trunk_steps > 0 or s.trunk_epochs > 0, "set spos.trunk_epochs or spos.trunk_steps > 0")
  check(s.calib_batches >= 0 and s.calib_batch_size >= 1, "spos.calib_batches must be >= 0")
  check(s.score_val_size >= 0 and s.paths_per_call >= 0, "spos.score_val_size >= 0, paths >= 0")
  check(config.data.val_size > 0, "spos scores paths on the val split: data.val_size > 0")
  check(s.rank_random >= 0 and s.rank_top >= 0, "spos.rank_random and rank_top must be >= 0")
  check(
    s.rank_random == 0 or s.space == "nb201",
    "the ranking study needs ground truth: spos.rank_random > 0 only with spos.space='nb201'",
  )
  check(
    s.rank_random == 0 or s.rank_random >= 10,
    f"spos.rank_random must be 0 or >= 10 (correlations of fewer mean little), got {s.rank_random}",
  )
  check(
    s.rank_random + s.rank_top <= 15625,
    "spos.rank_random + rank_top must be at most the 15,625 NB201 cells",
  )
  check(s.flops_bins <= 1000 and s.flops_tries <= 10_000, "spos.flops_bins <= 1000, tries <= 1e4")
  check(s.max_tries <= 100, f"spos.max_tries must be <= 100, got {s.max_tries}")
  check(
    s.calib_batches * s.calib_batch_size <= 1_000_000,
    "spos.calib_batches x calib_batch_size must be at most 1,000,000 images",
  )
  check(s.generations >= 0, f"spos.generations must be >= 0, got {s.generations}")
  check(
    s.population_size * s.generations <= 1_000_000,
    "spos.population_size x generations must be at most 1,000,000 candidates",
  )
  check(s.max_flops >= 0 and s.max_params >= 0, "spos.max_flops / max_params must be >= 0")
  check(s.dataset in nb201.DATASETS, f"spos.dataset={s.dataset!r}; valid: {nb201.DATASETS}")
  if s.generations:
    from jaxml.search.spos_evolution import SPOSEvolution

    p = s.population_size
    SPOSEvolution(NB201Space(), p, s.topk, s.mutation_prob, s.max_tries, p * s.generations)
