"""DARTS (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019), first
and second order, and its Gumbel-sampling variant GDAS (Dong & Yang, CVPR 2019), on the
NAS-Bench-201 and DARTS cell spaces, as a population on the trunk loop.

Each copy is one search: the space's relaxed network (`jaxml.spaces.relaxation`; every edge
the mixed op sum_o w_o o(x)) plus its own architecture parameters alpha float32[E, O], a leaf of
the copy's params, so several seeds (or settings) run as one population. Every step is the
bilevel step of `jaxml.search.bilevel` (Alg. 1): an alpha step on a batch of the split's second
half (`data.val_size` images held out of train, NB201's 25k/25k `cifar10-valid` protocol), then
a weight step on the first half. Optimisers (the paper's): SGD momentum 0.9 with cosine decay to
`darts.lr_min` and global-norm clip 5 on the weights; Adam 3e-4, betas (0.5, 0.999), coupled
weight decay 1e-3 on alpha, initialised at 1e-3 N(0, 1).

A trunk is one epoch. At its end the controller reads the copies' alphas (the step leaves them
in `aux`), derives the discrete cell (argmax excluding `none`; DARTS space: top-2 inputs per
node) and, on NB201, its ground-truth 200-epoch test accuracy from the NAS-Bench-201 table:
metrics.jsonl rows, trunks.npz (`weights` = softmax(alpha), `derived`, `true_acc` per epoch),
plots/alphas.png and summary.json. The trunk loop's val / test accuracies are the supernet's.

GDAS (`darts.sampling='gumbel'`): each forward pass uses one straight-through Gumbel sample of
the op per edge with temperature tau annealed linearly from `tau_max` = 10 to `tau_min` = 0.1
over the epochs (GDAS §3.2); the sampled architecture is what the forward pass computes, but the
array build still evaluates every op (see `jaxml.search.bilevel`). The NAS-Bench-201 paper
reports DARTS collapsing there to an all-skip cell (54.30 CIFAR-10 test for both orders) and
GDAS at 93.61 +- 0.09.

DARTS- (`darts.aux_skip` = beta_0 > 0, NB201 only; Chu et al., ICLR 2021): an auxiliary skip
beta * x on every edge, beta decayed linearly from beta_0 to 0 over the epochs, so that the skip
op does not have to win alpha to carry the gradient: the paper's cure of the collapse (NB201
CIFAR-10 test 93.80 +- 0.40 in its table; not yet in REFERENCES.md). The controller logs per
epoch the share of the derived cell's edges that are parameter-free ops (`param_free_share`),
the collapse's signature.
"""

from jaxml.experiment import PopulationRun
from jaxml.methods.darts.configs import (  # noqa: F401  (the method's public names)
  SAMPLINGS,
  SPACES,
  VARIANTS,
  build_space,
  darts_config,
  experiment,
  validate_config,
)
from jaxml.methods.darts.controller import (  # noqa: F401
  DartsController,
  alpha_aux,
  param_free_share,
)
from jaxml.nasbench import nb201
from jaxml.search import bilevel
from jaxml.spaces import relaxation
from jaxml.trunks import run_trunks


def run(config, workdir: str) -> dict:
  d = config.darts
  # The table loads (or fails with a DataError) before the run writes anything.
  table = nb201.load(d.table_dir or None) if d.space == "nb201" else None
  run = PopulationRun(config, workdir)
  space = build_space(config, run.data.num_classes)
  net = space.network().clone(affine=bool(d.affine))
  model = bilevel.Supernet(
    net, relaxation.weights_shape(space), float(d.alpha_init_std), d.sampling == "gumbel"
  )
  w_tx, a_tx, schedule = bilevel.optimizers(config, run.total_steps)
  val = run.data.val
  step = bilevel.make_bilevel_step(
    model,
    w_tx,
    a_tx,
    schedule,
    order=int(d.order),
    sampling=d.sampling,
    batch_size=config.batch_size,
    num_classes=run.data.num_classes,
    augment=config.data.augment,
    resolution=config.data.resolution,
    data_axis=run.pop.data_axis,
    aux_skip_index=space.OPS.index("skip_connect") if d.aux_skip > 0 else None,
  )
  epochs = -(-run.total_steps // run.engine.steps_per_epoch)
  controller = DartsController(config, space, table, epochs, int(val.labels.shape[0]))
  # The run's engine, rebuilt around the supernet: every step is the bilevel step, whose train
  # split is the weights' half and whose extra argument is the alpha half.
  engine = run.use_model(
    model,
    bilevel.split_optimizer(w_tx, a_tx),
    schedule=schedule,
    train_step=step,
    step_args=((val.images, val.labels),),
    aux_init=controller.aux_init,
  )
  return run_trunks(run, controller, engine.steps_per_epoch).summary
