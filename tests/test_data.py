"""The data package: embedded shapes dataset, COCO <-> YOLO-seg conversion, Detectron2 registration."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
from pycocotools.coco import COCO

from yolo_mask_plugin.d2.datasets import SHAPES_TRAIN, SHAPES_VAL, register_shapes_dataset
from yolo_mask_plugin.data.shapes import default_shapes_root
from yolo_mask_plugin.data.convert import coco_to_yolo_seg, yolo_seg_to_coco
from yolo_mask_plugin.data.shapes import SHAPES_CLASSES, generate_shapes_dataset

NUM_TRAIN, NUM_VAL, SIZE = 16, 6, 192


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory) -> Path:
    return generate_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", NUM_TRAIN, NUM_VAL, SIZE)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _polygon_rle(segmentation: list[list[float]], h: int, w: int) -> dict:
    return mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))


def _rle(segmentation: list | dict, h: int, w: int) -> dict:
    """A COCO segmentation, polygons or RLE, as compressed RLE (what COCOeval compares)."""
    if isinstance(segmentation, list):
        return _polygon_rle(segmentation, h, w)
    if isinstance(segmentation["counts"], list):  # uncompressed
        return mask_utils.frPyObjects(segmentation, h, w)
    return {"size": segmentation["size"], "counts": segmentation["counts"].encode()}


def _coco(path: Path) -> dict:
    return json.loads(path.read_text())


def test_generation_is_deterministic(tmp_path):
    a = _files(generate_shapes_dataset(tmp_path / "a", 4, 2, 128, seed=3))
    b = _files(generate_shapes_dataset(tmp_path / "b", 4, 2, 128, seed=3))
    c = _files(generate_shapes_dataset(tmp_path / "c", 4, 2, 128, seed=4))
    for files in (a, b, c):
        files.pop("shapes-seg.yaml")  # holds the absolute root
    assert a == b
    assert len(a) == 2 * 6 + 2 + 1  # images + labels, two jsons, marker
    assert a["annotations/instances_train.json"] != c["annotations/instances_train.json"]
    assert a["images/train/000000.png"] != c["images/train/000000.png"]


def test_marker_reuses_complete_folder_and_regenerates_otherwise(tmp_path):
    root = generate_shapes_dataset(tmp_path / "s", 3, 1, 96)
    stamp = (root / "images/train/000000.png").stat().st_mtime_ns
    assert generate_shapes_dataset(root, 3, 1, 96) == root
    assert (root / "images/train/000000.png").stat().st_mtime_ns == stamp

    generate_shapes_dataset(root, 2, 1, 96)  # other parameters: stale files must go
    assert sorted(p.name for p in (root / "images/train").iterdir()) == ["000000.png", "000001.png"]
    assert sorted(p.name for p in (root / "labels/train").iterdir()) == ["000000.txt", "000001.txt"]

    (root / ".complete.json").unlink()  # interrupted run
    (root / "images/val/000000.png").write_bytes(b"half-written")
    generate_shapes_dataset(root, 2, 1, 96)
    assert cv2.imread(str(root / "images/val/000000.png")).shape == (96, 96, 3)


def test_coco_json_is_valid(shapes_root):
    for split, num_images in (("train", NUM_TRAIN), ("val", NUM_VAL)):
        coco = COCO(str(shapes_root / f"annotations/instances_{split}.json"))
        assert coco.loadCats(coco.getCatIds()) == [{"id": i + 1, "name": n} for i, n in enumerate(SHAPES_CLASSES)]
        assert len(coco.imgs) == num_images
        for img in coco.imgs.values():
            assert (shapes_root / "images" / split / img["file_name"]).is_file()
            assert (img["width"], img["height"]) == (SIZE, SIZE)
        anns = coco.loadAnns(coco.getAnnIds())
        assert 2 * num_images <= len(anns) <= 7 * num_images
        for ann in anns:
            x, y, w, h = ann["bbox"]
            assert ann["area"] >= 80 and ann["iscrowd"] == 0 and 1 <= ann["category_id"] <= 4
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= SIZE and y + h <= SIZE
            assert all(len(p) >= 6 and len(p) % 2 == 0 for p in ann["segmentation"])
            rle = _polygon_rle(ann["segmentation"], SIZE, SIZE)  # polygons reproduce the visible mask exactly
            assert mask_utils.area(rle) == ann["area"] and mask_utils.toBbox(rle).tolist() == ann["bbox"]


def test_shapes_overlap(shapes_root):
    anns = _coco(shapes_root / "annotations/instances_train.json")["annotations"]
    rles = {a["id"]: _polygon_rle(a["segmentation"], SIZE, SIZE) for a in anns}
    overlapping_boxes = 0
    for image_id in {a["image_id"] for a in anns}:
        same = [a for a in anns if a["image_id"] == image_id]
        boxes = [a["bbox"] for a in same]
        ious = mask_utils.iou(boxes, boxes, [0] * len(boxes))
        overlapping_boxes += int((np.triu(ious, 1) > 0).sum())
        masks = [rles[a["id"]] for a in same]
        assert np.triu(mask_utils.iou(masks, masks, [0] * len(masks)), 1).max() == 0  # visible masks are disjoint
    assert overlapping_boxes > 0


def test_generated_yolo_labels_match_coco(shapes_root):
    coco = _coco(shapes_root / "annotations/instances_val.json")
    for img in coco["images"]:
        lines = (shapes_root / "labels/val" / img["file_name"].replace(".png", ".txt")).read_text().splitlines()
        anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
        assert [int(line.split()[0]) for line in lines] == [a["category_id"] - 1 for a in anns]
        coords = np.array([float(v) for line in lines for v in line.split()[1:]])
        assert coords.min() >= 0 and coords.max() <= 1


def test_round_trip_coco_yolo_coco(shapes_root, tmp_path):
    src = shapes_root / "annotations/instances_train.json"
    info = coco_to_yolo_seg(src, shapes_root / "images/train", tmp_path, split="train")
    original = _coco(src)
    assert info == {"names": list(SHAPES_CLASSES), "num_images": NUM_TRAIN,
                    "num_instances": len(original["annotations"]), "num_crowd_skipped": 0}
    assert (tmp_path / "images/train/000000.png").is_symlink()

    back_json = yolo_seg_to_coco(tmp_path / "images/train", tmp_path / "labels/train", SHAPES_CLASSES, tmp_path / "b.json")
    back = _coco(back_json)
    assert len(back["annotations"]) == len(original["annotations"])
    assert back["categories"] == original["categories"]
    multi_part = 0
    for a, b in zip(original["annotations"], back["annotations"]):
        assert (a["image_id"], a["category_id"]) == (b["image_id"], b["category_id"])
        iou = mask_utils.iou([_rle(a["segmentation"], SIZE, SIZE)], [_rle(b["segmentation"], SIZE, SIZE)], [0])[0, 0]
        assert iou == 1.0, (a["id"], iou)  # split (occluded) shapes too: their parts come back without bridges
        multi_part += len(a["segmentation"]) > 1
    assert multi_part > 0


def _toy_masks() -> tuple[np.ndarray, np.ndarray]:
    disk, box = np.zeros((48, 64), np.uint8), np.zeros((48, 64), np.uint8)
    cv2.circle(disk, (20, 20), 12, 1, -1)
    box[30:45, 35:60] = 1
    return disk, box


def _toy_coco(tmp_path: Path, annotations: list[dict]) -> Path:
    """One 64x48 image and two categories listed out of id order."""
    (tmp_path / "src").mkdir()
    cv2.imwrite(str(tmp_path / "src/img.jpg"), np.full((48, 64, 3), 127, np.uint8))
    coco = {
        "images": [{"id": 5, "file_name": "img.jpg", "width": 64, "height": 48}],
        "annotations": annotations,
        "categories": [{"id": 7, "name": "b"}, {"id": 3, "name": "a"}],
    }
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(coco))
    return path


def test_rle_and_multipart_inputs_convert(tmp_path):
    disk, box = _toy_masks()
    compressed = mask_utils.encode(np.asfortranarray(disk))
    compressed["counts"] = compressed["counts"].decode()  # as stored in json
    flat = box.ravel(order="F")  # uncompressed RLE: column-major run lengths, starting with a run of zeros
    runs = np.diff(np.r_[0, np.flatnonzero(np.diff(flat)) + 1, flat.size]).tolist()
    uncompressed = {"size": [48, 64], "counts": runs if flat[0] == 0 else [0, *runs]}
    anns = [
        {"id": 1, "image_id": 5, "category_id": 7, "segmentation": compressed, "iscrowd": 0},
        {"id": 2, "image_id": 5, "category_id": 3, "segmentation": uncompressed, "iscrowd": 0},
        {"id": 3, "image_id": 5, "category_id": 3, "iscrowd": 0,
         "segmentation": [[2, 2, 10, 2, 10, 10, 2, 10], [50, 2, 60, 2, 60, 12]]},
        {"id": 4, "image_id": 5, "category_id": 7, "segmentation": compressed, "iscrowd": 1},
    ]
    path = _toy_coco(tmp_path, anns)
    info = coco_to_yolo_seg(path, tmp_path / "src", tmp_path / "out", split="val", copy_images=True)
    assert info == {"names": ["a", "b"], "num_images": 1, "num_instances": 3, "num_crowd_skipped": 1}
    assert not (tmp_path / "out/images/val/img.jpg").is_symlink()
    lines = (tmp_path / "out/labels/val/img.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["1", "0", "0"]

    back = _coco(yolo_seg_to_coco(tmp_path / "out/images/val", tmp_path / "out/labels/val", info["names"],
                                  tmp_path / "back.json"))
    two_parts = mask_utils.decode(_polygon_rle(anns[2]["segmentation"], 48, 64))
    for ann, mask in zip(back["annotations"], (disk, box, two_parts)):
        rle = _rle(ann["segmentation"], 48, 64)
        assert mask_utils.iou([rle], [mask_utils.encode(np.asfortranarray(mask))], [0])[0, 0] == 1.0
    assert isinstance(back["annotations"][2]["segmentation"], dict)  # two parts: RLE, not a bridged polygon


def test_image_without_annotations_gets_empty_label(tmp_path):
    path = _toy_coco(tmp_path, [])
    info = coco_to_yolo_seg(path, tmp_path / "src", tmp_path / "out")
    assert info["num_instances"] == 0
    assert (tmp_path / "out/labels/train/img.txt").read_text() == ""


def test_annotation_without_segmentation_is_rejected(tmp_path):
    path = _toy_coco(tmp_path, [{"id": 42, "image_id": 5, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": 0}])
    with pytest.raises(ValueError, match=r"toy\.json: annotation id 42 .*masks are required"):
        coco_to_yolo_seg(path, tmp_path / "src", tmp_path / "out")


@pytest.mark.parametrize(
    "bad_line, problem",
    [
        ("0 0.1 0.1 0.5 0.1 0.5", "odd number"),
        ("4 0.1 0.1 0.5 0.1 0.5 0.5", "out of range"),
        ("0 0.5 0.5 0.2 0.2", "3 points"),
        ("cat 0.1 0.1 0.5 0.1 0.5 0.5", "integer class"),
    ],
)
def test_bad_label_line_is_rejected(tmp_path, bad_line, problem):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    cv2.imwrite(str(tmp_path / "images/x.png"), np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "labels/x.txt").write_text(f"1 0.1 0.1 0.5 0.1 0.5 0.5\n{bad_line}\n")
    with pytest.raises(ValueError, match=rf"x\.txt, line 2: .*{problem}"):
        yolo_seg_to_coco(tmp_path / "images", tmp_path / "labels", SHAPES_CLASSES, tmp_path / "out.json")


def test_default_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("YOLO_MASK_DATASETS", str(tmp_path))
    assert default_shapes_root() == tmp_path / "shapes"
    monkeypatch.delenv("YOLO_MASK_DATASETS")
    assert default_shapes_root() == Path("datasets/shapes")


def test_register_and_load_in_detectron2(shapes_root, tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    register_shapes_dataset(shapes_root)
    register_shapes_dataset(shapes_root)  # idempotent
    dicts = DatasetCatalog.get(SHAPES_VAL)
    assert len(dicts) == NUM_VAL
    anns = [a for d in dicts for a in d["annotations"]]
    assert {a["category_id"] for a in anns} <= {0, 1, 2, 3}
    assert all(isinstance(a["segmentation"], list) and isinstance(a["segmentation"][0], list) for a in anns)
    assert Path(dicts[0]["file_name"]).is_file()
    meta = MetadataCatalog.get(SHAPES_VAL)
    assert meta.thing_classes == list(SHAPES_CLASSES)
    assert meta.yolo_data_yaml == str(shapes_root / "shapes-seg.yaml")

    register_shapes_dataset(tmp_path / "missing")  # another root replaces the registration, reading nothing
    with pytest.raises(FileNotFoundError, match="yolo-mask data"):
        DatasetCatalog.get(SHAPES_TRAIN)
    register_shapes_dataset(shapes_root)
    assert len(DatasetCatalog.get(SHAPES_TRAIN)) == NUM_TRAIN


def test_ultralytics_reads_the_generated_dataset(shapes_root):
    import ultralytics.data.utils
    from ultralytics.data.dataset import YOLODataset

    data = ultralytics.data.utils.check_det_dataset(str(shapes_root / "shapes-seg.yaml"), autodownload=False)
    assert data["nc"] == 4 and data["names"] == dict(enumerate(SHAPES_CLASSES))
    dataset = YOLODataset(img_path=data["val"], data=data, task="segment", imgsz=SIZE, augment=False)
    num_annotations = len(_coco(shapes_root / "annotations/instances_val.json")["annotations"])
    assert len(dataset.labels) == NUM_VAL
    assert sum(len(label["segments"]) for label in dataset.labels) == num_annotations
