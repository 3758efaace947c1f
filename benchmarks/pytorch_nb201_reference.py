"""PyTorch CPU reference: train img/s of NAS-Bench-201 networks, one cell at a time.

What it measures: for each cell (an NB201 architecture string), the steady-state training
throughput of NAS-Bench-201's macro skeleton built with that cell, in plain PyTorch eager mode on
the CPU, so that jaxml's per-cell img/s (e.g. `benchmarks/proxy_study_throughput.py`) can be set
beside it. PyTorch is not a jaxml dependency; install the CPU wheel by hand:
`pip install torch --index-url https://download.pytorch.org/whl/cpu`.

The network (Dong & Yang, ICLR 2020, the NAS-Bench-201 skeleton): stem conv3x3 (3 -> C, no bias)
+ BN; N cells at C; a ResNet basic block C -> 2C, stride 2 (ReLU-conv3x3-BN stride 2,
ReLU-conv3x3-BN; shortcut avgpool 2x2 stride 2 + conv1x1 no bias); N cells at 2C; the same block
to 4C; N cells at 4C; BN + ReLU; global average pool; linear to 10 classes. A cell has 4 nodes,
node i = sum over j < i of op_{j->i}(node j), output node 3; ops: none (x * 0, as the official
code computes it), skip_connect (identity), nor_conv_1x1 / nor_conv_3x3 (ReLU -> conv no bias,
same padding -> BN affine), avg_pool_3x3 (stride 1, padding 1, count_include_pad=False).

The timed step: model.train(), forward, cross-entropy, backward, SGD (lr 0.1, momentum 0.9,
Nesterov, weight decay 5e-4); one fixed synthetic batch of random float images [B, 3, H, W]
(channels-last memory format by default) and random labels, no data loading;
`torch.set_num_threads(--threads)`. Per cell: `--warmup` steps, then `--windows` windows of
`--steps` steps; img/s = batch * steps / median window time (the median, so a burst of load from
other processes on a shared machine moves it less). Run it on an otherwise idle machine: when
other processes hold the cores, `--threads` > 1 can make the eager steps many times slower (the
worker threads wait on each other), so the JSON keeps the load average before and after.

Defaults: C 8, N 1, 16 px, batch 128, 2 threads, 30 steps x 3 windows after 5 warm-up steps.
The cells: `--cells_json` (a JSON list of arch strings), else `--cells` (arch strings joined by
commas; they hold none), else jaxml's 24 stratified study cells
(`jaxml.nasbench.nb201.select_archs` of the NAS-Bench-201 table, seed 0, CIFAR-10; needs jaxml
importable and the table, e.g. JAXML_DATA_DIR=/work/shared/data).

  python benchmarks/pytorch_nb201_reference.py --cells_json /tmp/cells.json \
    --out /tmp/bench/pytorch_nb201.json
  JAXML_DATA_DIR=/work/shared/data python benchmarks/pytorch_nb201_reference.py \
    --out /tmp/bench/pytorch_nb201.json
  python benchmarks/pytorch_nb201_reference.py --quick   # seconds: tiny sizes, 2 cells
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import sys
import time

import torch
from torch import nn

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_CLASSES = 10
NUM_NODES = 4


def parse_args(argv=None) -> argparse.Namespace:
  """Command-line options; `--quick` shrinks everything to a seconds-long smoke test."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--cells_json", default="", help="JSON file: a list of NB201 arch strings")
  parser.add_argument("--cells", default="", help="NB201 arch strings joined by commas")
  parser.add_argument("--k", type=int, default=24, help="jaxml study cells when none are given")
  parser.add_argument("--seed", type=int, default=0, help="study-cell selection and torch seed")
  parser.add_argument("--table_dir", default="", help="NAS-Bench-201 table dir ('' = search)")
  parser.add_argument("--limit", type=int, default=0, help="time only the first N cells (0: all)")
  parser.add_argument("--channels", type=int, default=8, help="C, the first stage's width")
  parser.add_argument("--cells_per_stage", type=int, default=1, help="N, cells per stage")
  parser.add_argument("--image", type=int, default=16, help="image height = width (px)")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
  parser.add_argument("--steps", type=int, default=30, help="train steps per timed window")
  parser.add_argument("--warmup", type=int, default=5, help="untimed steps before the windows")
  parser.add_argument("--windows", type=int, default=3, help="timed windows (median taken)")
  parser.add_argument(
    "--channels_last",
    action=argparse.BooleanOptionalAction,
    default=True,
    help="channels-last memory format for the model and the inputs",
  )
  parser.add_argument("--out", default=None, help="write the records as JSON here")
  parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
  args = parser.parse_args(argv)
  if args.quick:
    args.channels, args.image, args.batch = 2, 8, 8
    args.steps, args.warmup, args.windows, args.limit = 2, 2, 1, 2
  if min(args.channels, args.cells_per_stage, args.image, args.batch, args.threads) < 1:
    parser.error("--channels, --cells_per_stage, --image, --batch and --threads must be >= 1")
  if args.steps < 1 or args.windows < 1 or args.warmup < 0 or args.limit < 0:
    parser.error("need --steps >= 1, --windows >= 1, --warmup >= 0 and --limit >= 0")
  return args


def parse_arch(arch: str) -> list[list[tuple[str, int]]]:
  """NB201 arch string -> per node 1..3 its [(op, input node)], in the string's order.

  '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|': node i's edges come from nodes 0..i-1, in order."""
  nodes = arch.strip().split("+")
  if len(nodes) != NUM_NODES - 1:
    raise ValueError(f"an NB201 arch string has {NUM_NODES - 1} nodes joined by '+': {arch!r}")
  parsed = []
  for i, node in enumerate(nodes, start=1):
    if not (node.startswith("|") and node.endswith("|")):
      raise ValueError(f"node {i} of {arch!r} must be written '|op~j|...|'")
    edges = []
    for j, edge in enumerate(node[1:-1].split("|")):
      op, _, src = edge.partition("~")
      if op not in OPS or src != str(j):
        raise ValueError(f"edge {edge!r} of node {i} in {arch!r}: want one of {OPS} then ~{j}")
      edges.append((op, j))
    if len(edges) != i:
      raise ValueError(f"node {i} of {arch!r} needs {i} edges, got {len(edges)}")
    parsed.append(edges)
  return parsed


class Zero(nn.Module):
  """The 'none' op: zeros of the input's shape (computed as x * 0, as the official code does)."""

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return x.mul(0.0)


def relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
  """ReLU -> conv (no bias, padding kernel // 2) -> BatchNorm (affine)."""
  return nn.Sequential(
    nn.ReLU(inplace=False),
    nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
    nn.BatchNorm2d(c_out, affine=True),
  )


def make_op(name: str, channels: int) -> nn.Module:
  """One cell edge's op at `channels` in and out, stride 1."""
  if name == "none":
    return Zero()
  if name == "skip_connect":
    return nn.Identity()
  if name == "nor_conv_1x1":
    return relu_conv_bn(channels, channels, 1)
  if name == "nor_conv_3x3":
    return relu_conv_bn(channels, channels, 3)
  if name == "avg_pool_3x3":
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
  raise ValueError(f"unknown NB201 op {name!r}")


class Cell(nn.Module):
  """The NB201 cell: node i = sum over j < i of op_{j->i}(node j); the output is node 3."""

  def __init__(self, arch: str, channels: int):
    super().__init__()
    nodes = parse_arch(arch)
    self.sources = [[src for _, src in node] for node in nodes]
    self.edges = nn.ModuleList(
      nn.ModuleList(make_op(op, channels) for op, _ in node) for node in nodes
    )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    nodes = [x]
    for ops, sources in zip(self.edges, self.sources):
      out = ops[0](nodes[sources[0]])
      for op, src in zip(ops[1:], sources[1:]):
        out = out + op(nodes[src])
      nodes.append(out)
    return nodes[-1]


class ResNetReduction(nn.Module):
  """The skeleton's reduction: ResNet basic block c -> 2c, stride 2, avgpool + 1x1 shortcut."""

  def __init__(self, c_in: int, c_out: int):
    super().__init__()
    self.conv_a = relu_conv_bn(c_in, c_out, 3, stride=2)
    self.conv_b = relu_conv_bn(c_out, c_out, 3)
    self.shortcut = nn.Sequential(
      nn.AvgPool2d(2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, bias=False)
    )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
  """NAS-Bench-201's macro skeleton with one cell repeated: stem, 3 stages of N cells at C, 2C,
  4C joined by two reductions, BN + ReLU, global average pool, linear classifier."""

  def __init__(self, arch: str, channels: int, cells_per_stage: int, num_classes: int):
    super().__init__()
    c = channels
    self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
    layers = []
    for stage, width in enumerate((c, 2 * c, 4 * c)):
      if stage:
        layers.append(ResNetReduction(width // 2, width))
      layers.extend(Cell(arch, width) for _ in range(cells_per_stage))
    self.layers = nn.Sequential(*layers)
    self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=True))
    self.pool = nn.AdaptiveAvgPool2d(1)
    self.classifier = nn.Linear(4 * c, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    out = self.lastact(self.layers(self.stem(x)))
    return self.classifier(torch.flatten(self.pool(out), 1))


def study_cells(k: int, seed: int, table_dir: str) -> list[str]:
  """jaxml's stratified study cells (`select_archs` of the NB201 table) as arch strings."""
  sys.path.insert(0, str(REPO_ROOT))
  try:
    from jaxml.errors import DataError
    from jaxml.nasbench import nb201
    from jaxml.spaces import nb201_encoding as enc201
  except ImportError as e:
    raise SystemExit(f"no cells given and jaxml is not importable ({e}); pass --cells_json") from e
  try:
    table = nb201.load(table_dir or None)
  except DataError as e:
    raise SystemExit(
      f"no cells given and the NAS-Bench-201 table was not found ({e}); set "
      "JAXML_DATA_DIR=/work/shared/data or pass --table_dir or --cells_json"
    ) from e
  encs, _ = nb201.select_archs(table, k, seed, "cifar10")
  return [enc201.to_string(enc) for enc in encs]


def load_cells(args: argparse.Namespace) -> tuple[list[str], str]:
  """(arch strings, where they came from): --cells_json, else --cells, else jaxml's study."""
  if args.cells_json:
    cells = json.loads(pathlib.Path(args.cells_json).read_text())
    if not isinstance(cells, list) or not all(isinstance(c, str) for c in cells):
      raise SystemExit(f"{args.cells_json} must hold a JSON list of arch strings")
    source = f"--cells_json {args.cells_json}"
  elif args.cells:
    cells, source = [c.strip() for c in args.cells.split(",") if c.strip()], "--cells"
  else:
    cells = study_cells(args.k, args.seed, args.table_dir)
    source = f"jaxml select_archs (NB201 table, k {args.k}, seed {args.seed}, cifar10)"
  for cell in cells:
    parse_arch(cell)  # fail before any timing on a malformed string
  if not cells:
    raise SystemExit("no cells to time")
  return (cells[: args.limit] if args.limit else cells), source


def make_step(arch: str, args: argparse.Namespace):
  """A closure running one SGD train step on a fixed synthetic batch."""
  fmt = torch.channels_last if args.channels_last else torch.contiguous_format
  model = NB201Network(arch, args.channels, args.cells_per_stage, NUM_CLASSES)
  model = model.to(memory_format=fmt).train()
  x = torch.rand(args.batch, 3, args.image, args.image).contiguous(memory_format=fmt)
  y = torch.randint(0, NUM_CLASSES, (args.batch,))
  opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
  loss_fn = nn.CrossEntropyLoss()

  def step() -> None:
    opt.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    opt.step()

  return step


def time_cell(arch: str, args: argparse.Namespace) -> dict:
  """Warm-up, then `windows` timed windows of `steps` steps: {arch, img_per_s, window_s}."""
  step = make_step(arch, args)
  for _ in range(args.warmup):
    step()
  windows = []
  for _ in range(args.windows):
    t0 = time.perf_counter()
    for _ in range(args.steps):
      step()  # eager CPU ops are synchronous: the clock sees the finished step
    windows.append(time.perf_counter() - t0)
  rate = args.batch * args.steps / statistics.median(windows)
  return {
    "arch": arch,
    "img_per_s": round(rate, 1),
    "window_s": [round(w, 4) for w in windows],
  }


def environment() -> dict:
  """Versions, threads, CPU count, UTC date and load average: the context of the numbers."""
  return {
    "torch_version": torch.__version__,
    "python_version": platform.python_version(),
    "platform": platform.platform(),
    "processor": platform.processor() or platform.machine(),
    "threads": torch.get_num_threads(),
    "interop_threads": torch.get_num_interop_threads(),
    "mkldnn": torch.backends.mkldnn.is_available(),
    "cpu_count": os.cpu_count(),
    "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "load_avg_before": [round(v, 2) for v in os.getloadavg()],
  }


def settings(args: argparse.Namespace) -> dict:
  """The sizes and timing options the numbers were measured with."""
  keys = ("channels", "cells_per_stage", "image", "batch", "threads", "steps", "warmup",
          "windows", "channels_last", "quick", "seed")  # fmt: skip
  out = {key: getattr(args, key) for key in keys}
  out["optimizer"] = "SGD lr 0.1 momentum 0.9 nesterov weight_decay 5e-4"
  out["data"] = "fixed synthetic batch: torch.rand images, random labels"
  return out


def main(argv=None) -> dict:
  args = parse_args(argv)
  torch.set_num_threads(args.threads)
  torch.manual_seed(args.seed)
  cells, source = load_cells(args)
  env = environment()
  t_start = time.perf_counter()
  print(
    f"torch {env['torch_version']}, {env['threads']} threads, {env['cpu_count']} CPUs, "
    f"{env['date_utc']}, load {env['load_avg_before']}"
  )
  print(
    f"C {args.channels}, N {args.cells_per_stage}, {args.image} px, batch {args.batch}, "
    f"channels_last {args.channels_last}; {len(cells)} cells from {source}",
    flush=True,
  )
  records = []
  for i, arch in enumerate(cells):
    records.append({"index": i, **time_cell(arch, args)})
    print(f"{i:3d}  {arch}  {records[-1]['img_per_s']:,.0f} img/s", flush=True)
  rates = [r["img_per_s"] for r in records]
  summary = {
    "mean_img_per_s": round(statistics.fmean(rates), 1),
    "min_img_per_s": min(rates),
    "max_img_per_s": max(rates),
    "cells": len(rates),
  }
  env["load_avg_after"] = [round(v, 2) for v in os.getloadavg()]
  wall = time.perf_counter() - t_start
  print(
    f"img/s over {len(rates)} cells: mean {summary['mean_img_per_s']:,.0f}, "
    f"min {summary['min_img_per_s']:,.0f}, max {summary['max_img_per_s']:,.0f}"
  )
  print(f"load avg before / after: {env['load_avg_before']} / {env['load_avg_after']}")
  print(f"wall time {wall:.1f} s")
  payload = {
    "benchmark": "pytorch_nb201_reference",
    "argv": sys.argv[1:] if argv is None else list(argv),
    "environment": env,
    "settings": settings(args),
    "cell_source": source,
    "summary": summary,
    "records": records,
    "wall_s": round(wall, 1),
  }
  if args.out:
    sys.path.insert(0, str(REPO_ROOT))
    from benchmarks import common  # the benchmarks' one JSON writer (it imports jax)

    common.write_json(args.out, payload)
  return payload


if __name__ == "__main__":
  main()
