"""Plain supervised training of K copies at once (K seeds for error bars; K = 1 is a baseline).

SGD + Nesterov with weight decay, cosine or step schedule with linear warm-up, label smoothing,
optional bf16 compute. It is the trunk loop (`jaxml.trunks`) without a controller: a trunk is
the evaluation interval (`eval_every_*`, default one epoch), where every copy is evaluated on the
held-out val split; checkpoints every `checkpoint_every_*` (default one epoch) and at every
trunk end; val + test of every copy at the end. Re-running resumes.
"""

from jaxml import configs
from jaxml.experiment import PopulationRun
from jaxml.trunks import run_trunks


def validate_config(config) -> None:
  configs.validate_training_config(config)


def run(config, workdir: str) -> dict:
  run = PopulationRun(config, workdir)
  spe = run.engine.steps_per_epoch
  trunk = configs.steps("eval_every", config, spe, default=spe)
  return run_trunks(run, None, trunk).summary
