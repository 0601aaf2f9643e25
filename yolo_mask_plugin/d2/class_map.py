"""Map YOLO class indices to the dataset's class indices by name."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def build_class_map(
    yolo_names: Mapping[int, str] | Sequence[str],
    thing_classes: Sequence[str],
    explicit: Sequence[Sequence[str]] = (),
) -> torch.Tensor:
    """A tensor `m` with `m[yolo_class] = dataset_class`, or -1 for YOLO classes the dataset doesn't have.

    Without `explicit` pairs, every dataset class must be a YOLO class name (YOLO classes beyond the
    dataset's are dropped: a COCO-trained YOLO on a dataset of a few COCO classes). With `explicit`
    `[yolo_name, dataset_name]` pairs, exactly those classes are kept.

    Args:
        yolo_names: YOLO's class names, by index.
        thing_classes: the dataset's class names.
        explicit: [yolo_name, dataset_name] pairs (MODEL.YOLO.CLASS_MAPPING).

    Returns:
        The (num_yolo_classes,) int64 map.

    Raises:
        ValueError: a dataset class is no YOLO class, a pair names an unknown class, or is not a pair.
    """
    names = dict(yolo_names) if isinstance(yolo_names, Mapping) else dict(enumerate(yolo_names))
    num_yolo = max(names) + 1 if names else 0
    index_of_yolo = {name: i for i, name in names.items()}
    index_of_thing = {name: i for i, name in enumerate(thing_classes)}
    pairs = [tuple(p) for p in explicit] if explicit else [(c, c) for c in thing_classes]
    bad_pairs = [p for p in pairs if len(p) != 2]
    if bad_pairs:
        raise ValueError(f"MODEL.YOLO.CLASS_MAPPING needs [yolo_name, dataset_name] pairs, got {bad_pairs}")

    unknown_yolo = [y for y, _ in pairs if y not in index_of_yolo]
    unknown_thing = [t for _, t in pairs if t not in index_of_thing]
    if unknown_yolo or unknown_thing:
        raise ValueError(
            "YOLO class names do not match the dataset's thing_classes"
            + (f"; YOLO has no class {unknown_yolo}" if unknown_yolo else "")
            + (f"; dataset has no class {unknown_thing}" if unknown_thing else "")
            + f".\n  YOLO names: {[names[i] for i in sorted(names)]}\n  dataset thing_classes: {list(thing_classes)}\n"
            "Give MODEL.YOLO.CLASS_MAPPING as [[yolo_name, dataset_name], ...] to map them explicitly."
        )
    class_map = torch.full((num_yolo,), -1, dtype=torch.long)
    for yolo_name, thing_name in pairs:
        class_map[index_of_yolo[yolo_name]] = index_of_thing[thing_name]
    return class_map
