"""The CPU budget of the shapes configs: 600 iterations, LR steps at 400 and 530, 50 warm-up iterations
(the yacs configs' SOLVER block), Detectron2's SGD and `common/train.py` defaults otherwise."""
import torch
from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

MAX_ITER = 600

optimizer = model_zoo.get_config("common/optim.py").SGD
optimizer.lr = 0.02
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.1, 0.01], milestones=[400, 530], num_updates=MAX_ITER),
    warmup_length=50 / MAX_ITER,
    warmup_method="linear",
    warmup_factor=0.001,
)
train = model_zoo.get_config("common/train.py").train
train.max_iter = MAX_ITER
train.checkpointer.period = 200
train.eval_period = 0  # COCOEvaluator runs once, after the last iteration
train.device = "cuda" if torch.cuda.is_available() else "cpu"
