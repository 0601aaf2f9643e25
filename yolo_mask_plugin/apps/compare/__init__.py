"""Side-by-side comparison on one dataset: Mask R-CNN, YOLO-mask (three ways) and YOLO-seg, one evaluator."""
from .dataset import CocoSplit, prepare_dataset
from .models import MODEL_LABELS, CompareBudget, ModelChoice
from .run import run_compare

__all__ = ["MODEL_LABELS", "CocoSplit", "CompareBudget", "ModelChoice", "prepare_dataset", "run_compare"]
