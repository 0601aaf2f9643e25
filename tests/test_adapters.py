"""YOLO as Detectron2's box source: loading YOLO (Ultralytics shell), class names and detections (Detectron2 shell)."""
from __future__ import annotations

import math

import pytest
import torch
from ultralytics.nn.tasks import SegmentationModel

from yolo_mask_plugin.yolo import load_yolo, split_yolo
from yolo_mask_plugin.d2.class_map import build_class_map
from yolo_mask_plugin.d2.detections import detections_to_instances
from yolo_mask_plugin.data import SHAPES_CLASSES


def test_checkpoint_written_by_ultralytics_loads_with_its_names(yolo_checkpoint):
    model = load_yolo(str(yolo_checkpoint))
    assert list(model.names.values()) == list(SHAPES_CLASSES)
    parts = split_yolo(model)
    assert {n: m.stride for n, m in parts.maps.items()} == {"p2": 4, "p3": 8, "p4": 16, "p5": 32}
    assert parts.head_maps == ["p3", "p4", "p5"]


def test_yaml_builds_an_untrained_model_with_the_dataset_classes():
    model = load_yolo("yolo11n.yaml", 4, list(SHAPES_CLASSES))
    assert model.yaml["nc"] == 4 and list(model.names.values()) == list(SHAPES_CLASSES)


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_yolo(str(tmp_path / "nope.pt"))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated zip"])
def test_corrupt_weights_file_is_named(tmp_path, content):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="corrupt.pt.*not a loadable Ultralytics checkpoint"):
        load_yolo(str(path))


def test_truncated_real_checkpoint_is_refused(tmp_path, yolo_checkpoint):
    data = yolo_checkpoint.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.pt"):
        load_yolo(str(path))


def test_unsupported_weights_suffix_and_empty_value():
    with pytest.raises(ValueError, match=r"\.pkl.*expected an Ultralytics \.pt"):
        load_yolo("model_final.pkl")
    with pytest.raises(ValueError, match="MODEL.YOLO.WEIGHTS is empty"):
        load_yolo("")


def test_segmentation_checkpoint_is_refused_with_the_head_type(tmp_path):
    model = SegmentationModel("yolo11n-seg.yaml", nc=2, verbose=False)
    path = tmp_path / "seg.pt"
    torch.save({"model": model, "train_args": {}}, path)
    with pytest.raises(ValueError, match="Segment head"):
        load_yolo(str(path))


def test_class_names_map_by_name_in_any_order():
    class_map = build_class_map({0: "star", 1: "circle", 2: "car", 3: "square"}, ["circle", "square", "star"])
    assert class_map.tolist() == [2, 0, -1, 1]  # car is not in the dataset: dropped


def test_class_name_mismatch_lists_both_lists():
    with pytest.raises(ValueError) as info:
        build_class_map({0: "person", 1: "car"}, ["circle", "square"])
    message = str(info.value)
    assert "YOLO has no class ['circle', 'square']" in message
    assert "YOLO names: ['person', 'car']" in message and "dataset thing_classes: ['circle', 'square']" in message


def test_explicit_mapping_wins_and_is_checked():
    class_map = build_class_map({0: "person", 1: "car"}, ["pedestrian"], [["person", "pedestrian"]])
    assert class_map.tolist() == [0, -1]
    with pytest.raises(ValueError, match="dataset has no class \\['truck'\\]"):
        build_class_map({0: "person", 1: "car"}, ["pedestrian"], [["car", "truck"]])
    with pytest.raises(ValueError, match="pairs"):
        build_class_map({0: "person"}, ["pedestrian"], [["person"]])


FIELDS = {"proposal_boxes", "objectness_logits", "pred_classes", "scores"}


def test_zero_detections_give_empty_instances_with_every_field():
    instances = detections_to_instances(torch.zeros(0, 6), (64, 80), torch.arange(4))
    assert len(instances) == 0 and set(instances.get_fields()) == FIELDS
    assert instances.proposal_boxes.tensor.shape == (0, 4)


def test_bad_boxes_are_clipped_or_dropped():
    nan = math.nan
    detections = torch.tensor(
        [
            [10.0, 10.0, 30.0, 40.0, 0.9, 0],  # fine
            [-15.0, -5.0, 200.0, 30.0, 0.8, 1],  # out of the image: clipped
            [20.0, 20.0, 20.0, 50.0, 0.7, 2],  # zero width: dropped
            [nan, 5.0, 20.0, 20.0, 0.6, 0],  # NaN coordinate: dropped
            [5.0, 5.0, 20.0, 20.0, nan, 0],  # NaN score: dropped
            [100.0, 70.0, 120.0, 90.0, 0.5, 1],  # entirely outside the 64x80 image: dropped
            [5.0, 5.0, 20.0, 20.0, 0.5, 7],  # YOLO class the dataset lacks: dropped
        ]
    )
    instances = detections_to_instances(detections, (64, 80), torch.tensor([0, 1, 2]))
    assert instances.proposal_boxes.tensor.tolist() == [[10.0, 10.0, 30.0, 40.0], [0.0, 0.0, 80.0, 30.0]]
    assert instances.pred_classes.tolist() == [0, 1]
    assert torch.allclose(instances.scores, torch.tensor([0.9, 0.8]))
    assert torch.isfinite(instances.objectness_logits).all()


def test_training_proposals_carry_only_the_fields_detectron2_concatenates_with_ground_truth():
    instances = detections_to_instances(torch.tensor([[1.0, 1.0, 9.0, 9.0, 0.5, 0]]), (16, 16), torch.arange(1), False)
    assert set(instances.get_fields()) == {"proposal_boxes", "objectness_logits"}


def test_malformed_detections_are_refused():
    with pytest.raises(ValueError, match="x1 y1 x2 y2 score class"):
        detections_to_instances(torch.zeros(3, 4), (16, 16), torch.arange(1))


def test_one_detectron2_build_reads_the_yolo_once_and_owns_its_parts(shapes_root, yolo_checkpoint, tmp_path,
                                                                     monkeypatch):
    """Backbone and proposal generator of one build share one load of the file (a spy counts the reads), each
    owning its part; two builds share no tensor."""
    from detectron2.modeling import build_model

    from tests.conftest import small_cfg
    from yolo_mask_plugin.d2 import yolo_source

    reads = []
    real_load = yolo_source.load_yolo
    monkeypatch.setattr(yolo_source, "load_yolo", lambda *args: reads.append(args) or real_load(*args))
    yolo_source._loaded.cache_clear()
    cfg = small_cfg("shapes/yolo_mask_single_pass.yaml", shapes_root, tmp_path, "MODEL.YOLO.WEIGHTS", str(yolo_checkpoint))
    first, second = build_model(cfg), build_model(cfg)
    assert len(reads) == 1
    yolo = real_load(str(yolo_checkpoint))
    head = len(yolo.model) - 1
    for name, value in yolo.model.state_dict().items():
        index, rest = name.split(".", 1)
        built = (first.proposal_generator.head if int(index) == head else first.backbone.layers[int(index)])
        torch.testing.assert_close(built.state_dict()[rest], value, rtol=0, atol=0)
    assert first.proposal_generator.body is None  # single pass: the backbone owns YOLO's body
    assert not {id(p) for p in first.parameters()} & {id(p) for p in second.parameters()}
