"""Zero-cost proxies: scores of an untrained network that rank architectures without training.

Definitions follow the reference implementations, so published correlations are comparable:

- `synflow` (Tanaka et al., NeurIPS 2020, eq. 2; as scored by Abdelfattah et al., "Zero-Cost
  Proxies for Lightweight NAS", ICLR 2021, `measures/synflow.py`): every parameter replaced by its
  absolute value, BatchNorm removed, an all-ones input of one image, in float64 as the reference;
  R = sum of the logits, score = sum over conv / dense kernels of |theta * dR/dtheta|.
- `snip` (Lee et al., ICLR 2019, eq. 6, as Abdelfattah et al.): cross-entropy of one batch in
  training mode; score = sum over kernels of |theta * dL/dtheta|.
- `grad_norm` (Abdelfattah et al.): same gradient; score = sum over kernels of ||dL/dW||_2.
- `naswot` (Mellor et al., "Neural Architecture Search without Training", ICML 2021, eq. 2):
  the binary activation pattern c_i of every ReLU for each image i of a batch gives the kernel
  K_ij = N_A - Hamming(c_i, c_j) = sum_u [c_iu c_ju + (1 - c_iu)(1 - c_ju)]; score = log|det K|.
- `params`, `flops`: the space's analytical parameter count and MACs per image.

K architectures are scored at once: each is initialised from its own key and scored through the
space's ARRAY build (`NB201Space.network()`, the encoding an array input), mapped over the K
encodings with `jax.lax.map` (one compile for any K; `chunk` > 1 vmaps that many per iteration).
The array build computes every candidate op; the scores see only the chosen ones: unselected
ops get no gradient (`jaxml.spaces.base.select`), so synflow / snip / grad_norm ignore them, and
NASWOT masks the ReLUs of unselected ops out of K. Tests check that the array build's scores
equal the fixed build's (only the chosen ops, same parameter names, so the same initial weights).

Which ReLUs NASWOT counts (`nb201_relu_sites`): every `ReLUConvBN` (NB201's ReLU -> conv -> BN
ops and the ResNet blocks' convs) applies its ReLU right before its conv, so the pattern is
"conv input > 0"; and the network's last BN-ReLU ("lastact"), "lastact_bn output > 0". These are
the `nn.ReLU` modules that the reference hooks in NB201's PyTorch network.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxml.data import pipeline
from jaxml.errors import ConfigError
from jaxml.population import accepted_cpu_options
from jaxml.spaces import NB201Space
from jaxml.spaces.ops import ReLUConvBN

MEASURES = ("synflow", "naswot", "snip", "grad_norm", "params", "flops")
TRAINING_FREE = ("synflow", "naswot", "snip", "grad_norm")
BUILDS = ("array", "fixed")  # `nb201_scores`: one program for all cells | one per cell

# A relu site says where a module's call exposes a ReLU's pattern: 'input' (the module is
# called on a ReLU's output) or 'output' (a ReLU follows it), or None.
ReluSites = Callable[[nn.Module], str | None]


def _kernels(tree) -> list:
  """The conv / dense kernels of a params tree (the weights the reference scores; BN and biases
  are not scored)."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return [leaf for path, leaf in flat if getattr(path[-1], "key", None) == "kernel"]


def synflow(apply_fn: Callable, params, input_shape) -> jax.Array:
  """Synaptic flow of `apply_fn(params, x) -> logits`, which must run without BatchNorm.

  Parameters become |theta| (the reference's sign linearisation), the input one all-ones image
  of `input_shape` (H, W, C)."""
  abs_params = jax.tree.map(jnp.abs, params)
  ones = jnp.ones((1, *input_shape), jax.tree.leaves(params)[0].dtype)
  grads = jax.grad(lambda p: jnp.sum(apply_fn(p, ones)))(abs_params)
  return sum(jnp.sum(jnp.abs(t * g)) for t, g in zip(_kernels(abs_params), _kernels(grads)))


def snip(params, grads) -> jax.Array:
  """SNIP saliency summed over kernels: sum |theta * g| (g: gradient of the batch loss)."""
  return sum(jnp.sum(jnp.abs(t * g)) for t, g in zip(_kernels(params), _kernels(grads)))


def grad_norm(grads) -> jax.Array:
  """Sum over kernels of the L2 norm of each kernel's loss gradient."""
  return sum(jnp.sqrt(jnp.sum(g * g)) for g in _kernels(grads))


def naswot(codes: list[tuple[jax.Array, jax.Array]]) -> jax.Array:
  """log|det K| of Mellor et al.'s kernel from [(pattern [B, U] in {0, 1}, weight)] per ReLU.

  `weight` (a scalar, 1 or 0) drops a ReLU that the architecture does not use (array build)."""
  k = None
  for c, w in codes:
    c = c.astype(jnp.float32)
    term = w * (c @ c.T + (1.0 - c) @ (1.0 - c).T)
    k = term if k is None else k + term
  return jnp.linalg.slogdet(k)[1]


def capture_relu_patterns(sites: ReluSites, weight_fn: Callable[[nn.Module], jax.Array]):
  """An `nn.intercept_methods` interceptor and the list it fills with (pattern, weight) pairs."""
  codes: list = []

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__":
      site = sites(context.module)
      if site is not None:
        x = args[0] if site == "input" else out
        codes.append(((x > 0).reshape(x.shape[0], -1), weight_fn(context.module)))
    return out

  return interceptor, codes


def without_batch_norm(next_fun, args, kwargs, context):
  """Interceptor that makes every `nn.BatchNorm` the identity (synflow scores the BN-free net)."""
  if isinstance(context.module, nn.BatchNorm) and context.method_name == "__call__":
    return args[0]
  return next_fun(*args, **kwargs)


def nb201_relu_sites(module: nn.Module) -> str | None:
  if isinstance(module, nn.Conv) and isinstance(module.parent, ReLUConvBN):
    return "input"
  if isinstance(module, nn.BatchNorm) and module.name == "lastact_bn":
    return "output"
  return None


_EDGE = re.compile(r"edge(\d+)_(\w+)")


def nb201_op_weight(encoding) -> Callable[[nn.Module], jax.Array]:
  """1.0 for a module of the network's chosen ops (or outside the cells), 0.0 for an unselected
  candidate op of the array build (its path holds `edge{k}_{op}` with op != encoding[k])."""
  ops = NB201Space.OPS

  def weight(module: nn.Module) -> jax.Array:
    for part in module.path:
      m = _EDGE.fullmatch(part)
      if m and encoding is not None:
        k, op = int(m.group(1)), ops.index(m.group(2))
        return (encoding[k] == op).astype(jnp.float32)
    return jnp.ones((), jnp.float32)

  return weight


def score_one(
  network: nn.Module,
  key,
  encoding,
  images,
  labels,
  input_shape,
  num_classes,
  measures=TRAINING_FREE,
):
  """The training-free scores `measures` of one freshly initialised network (array build when
  `encoding` is given, else a fixed build); only their passes are traced. `images` are
  normalised floats [B, H, W, 3]."""
  kw = {} if encoding is None else {"encoding": encoding}
  variables = network.init(key, jnp.zeros((1, *input_shape)), train=False, **kw)
  params, stats = variables["params"], variables.get("batch_stats", {})
  out = {}
  if "snip" in measures or "grad_norm" in measures:

    def loss(p):
      logits, _ = network.apply(
        {"params": p, "batch_stats": stats}, images, train=True, mutable=["batch_stats"], **kw
      )
      onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
      return jnp.mean(optax.softmax_cross_entropy(logits, onehot))

    grads = jax.grad(loss)(params)
    if "snip" in measures:
      out["snip"] = snip(params, grads)
    if "grad_norm" in measures:
      out["grad_norm"] = grad_norm(grads)
  if "synflow" in measures:

    def bn_free(p, x):
      with nn.intercept_methods(without_batch_norm):
        return network.apply({"params": p, "batch_stats": stats}, x, train=False, **kw)

    # In float64 when x64 is on (`nb201_scores`): the product of |weights| along the paths of
    # a C 16, N 5 network passes float32's 3.4e38 (about 10 per 3x3 conv, ~17 convs deep), as
    # the reference's `net.double()` avoids.
    params64 = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    out["synflow"] = synflow(bn_free, params64, input_shape)
  if "naswot" in measures:
    interceptor, codes = capture_relu_patterns(nb201_relu_sites, nb201_op_weight(encoding))
    with nn.intercept_methods(interceptor):
      network.apply(
        {"params": params, "batch_stats": stats}, images, train=True, mutable=["batch_stats"], **kw
      )
    out["naswot"] = naswot(codes)
  return out


def nb201_scores(
  space: NB201Space,
  encodings,
  images: np.ndarray,
  labels: np.ndarray,
  seed: int = 0,
  chunk: int = 1,
  fast_compile: bool = True,
  build: str = "array",
  measures=MEASURES,
) -> dict[str, np.ndarray]:
  """Every measure of `MEASURES` for K NB201 architectures, float64 [K] each.

  Args:
    space: the NB201 macro config (C, N, classes, input size) the networks are built at.
    encodings: int [K, 6].
    images, labels: one batch (uint8 [B, H, W, 3] CIFAR images, int labels [B]); resized to
      `space.input_size` and normalised as in training.
    seed: architecture k is initialised from fold_in(key(seed), k).
    chunk: architectures vmapped per `lax.map` iteration (memory vs speed).
    fast_compile: on a CPU, compile without XLA's optimisation passes
      (`population.FAST_COMPILE_CPU`): the scores run once, and the array build's compile
      dominates (minutes with the passes on a loaded 2-core CPU).
    build: 'array' (one program for all K through the array build) or 'fixed' (one program
      per architecture, only its ops: K compiles, each of a network a fifth the size). The
      same keys give the same scores. The array build of the full C 16, N 5, 32 px network
      ran past 20 min of compile on a loaded 2-core CPU; its fixed builds compile one by one.
    measures: the subset of `MEASURES` to compute (only their passes run: synflow alone costs a
      fraction of all four); the others are left out of the result.
  """
  encodings = np.asarray(encodings, np.int32)
  space.validate(encodings)
  if encodings.ndim != 2 or encodings.shape[0] < 1:
    raise ConfigError(f"nb201_scores takes encodings [K, 6], got shape {encodings.shape}")
  if len(images) < 2:
    raise ConfigError(f"NASWOT's kernel needs a batch of >= 2 images, got {len(images)}")
  if chunk < 1:
    raise ConfigError(f"chunk must be >= 1, got {chunk}")
  if build not in BUILDS:
    raise ConfigError(f"build={build!r}; valid: {', '.join(BUILDS)}")
  unknown = sorted(set(measures) - set(MEASURES))
  if unknown or not measures:
    raise ConfigError(f"measures {sorted(measures)}: name some of {', '.join(MEASURES)}")
  free = tuple(m for m in TRAINING_FREE if m in measures)
  h = space.input_size
  x = pipeline.normalize(jnp.asarray(images), jnp.float32, resolution=h)
  y = jnp.asarray(labels, jnp.int32)
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(
    jnp.arange(encodings.shape[0])
  )

  options = accepted_cpu_options() if fast_compile and jax.default_backend() == "cpu" else None
  scores = {}  # params / flops alone need no network
  with jax.enable_x64(True):  # synflow's float64 (score_one); the rest stays float32
    if free and build == "array":
      network = space.network()

      def one(args):
        key, enc = args
        return score_one(network, key, enc, x, y, (h, h, 3), space.num_classes, free)

      mapped = jax.jit(
        lambda k, e: jax.lax.map(one, (k, e), batch_size=chunk if chunk > 1 else None),
        compiler_options=options,
      )
      scores = jax.device_get(mapped(keys, encodings))
    elif free:
      per_cell = []
      for key, enc in zip(keys, encodings, strict=True):
        net = space.network(enc)  # the array build's parameter names: the same initial weights

        def score(k, net=net):
          return score_one(net, k, None, x, y, (h, h, 3), space.num_classes, free)

        per_cell.append(jax.device_get(jax.jit(score, compiler_options=options)(key)))
      scores = {name: np.stack([c[name] for c in per_cell]) for name in free}
  out = {name: np.asarray(v, np.float64) for name, v in scores.items()}
  if "params" in measures:
    out["params"] = np.asarray(space.params(encodings), np.float64)
  if "flops" in measures:
    out["flops"] = np.asarray(space.flops(encodings), np.float64)
  return out
