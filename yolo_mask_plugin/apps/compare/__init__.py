"""Side-by-side comparison on one dataset: Mask R-CNN, YOLO-mask (two designs) and YOLO-seg, one evaluator."""
from .dataset import CocoSplit, prepare_dataset
from .run import MODEL_LABELS, CompareBudget, run_compare

__all__ = ["MODEL_LABELS", "CocoSplit", "CompareBudget", "prepare_dataset", "run_compare"]
