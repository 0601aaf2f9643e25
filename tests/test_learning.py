"""The mask head learns: trained, it segments validation objects given their ground-truth boxes, in both shells.

Mask quality is measured apart from the detector: the validation ground-truth boxes go in, masks come out pasted
into the image, and each is compared with its ground-truth mask.
  * Detectron2: the seed's two-branch design (a ResNet-18-FPN with GN, learning from scratch with the mask head),
    boxes through Detectron2's own `GeneralizedRCNN.inference(detected_instances=...)`.
  * Ultralytics: `YOLOMask("yolo11n.yaml").train(...)`, the head users get (YOLO from scratch, P2-P5 pooled), boxes
    through the trained model's `mask_probs` on its own maps, pasted by the core's `paste_masks`.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import torch
from detectron2.data import DatasetCatalog
from detectron2.data.detection_utils import read_image
from detectron2.structures import Boxes, BoxMode, Instances

from tests.conftest import TEST_IMAGE_SIZE, TRAIN_ARGS, small_cfg
from yolo_mask_plugin.adapters import YOLOMask
from yolo_mask_plugin.adapters.training import train_ultralytics
from yolo_mask_plugin.apps.train_net import Trainer
from yolo_mask_plugin.core.paste import paste_masks
from yolo_mask_plugin.data import generate_shapes_dataset

TRAIN_ITERS = 300
MIN_MEAN_MASK_IOU = 0.7
# Ultralytics: 48 images x 30 epochs in batches of 4, one optimizer step per batch (nbs=4: Ultralytics would
# otherwise accumulate to 64 images, 23 steps in all), mask gain 7.5: the cheapest budget tried that cleared 0.7
# with a margin (the test prints its mean IoU and that of the boxes themselves).
ULTRALYTICS_TRAIN = {"epochs": 30, "batch": 4, "nbs": 4, "mask": 7.5, "optimizer": "AdamW", "lr0": 0.005,
                     "warmup_epochs": 1, "mosaic": 0.0, "val": False}


def _ground_truth_mask(annotation: dict, h: int, w: int) -> np.ndarray:
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(annotation["segmentation"], h, w))) > 0


def _mask_iou_on_ground_truth_boxes(model, cfg, dataset: str) -> list[float]:
    ious = []
    model.eval()
    for record in DatasetCatalog.get(dataset):
        h, w = record["height"], record["width"]
        image = read_image(record["file_name"], format=cfg.INPUT.FORMAT)
        boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in record["annotations"]]
        given = Instances(
            (h, w),  # test images are not resized (MIN_SIZE_TEST == their size), so this is the model's frame
            pred_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32)),
            pred_classes=torch.tensor([a["category_id"] for a in record["annotations"]]),
            scores=torch.ones(len(boxes)),
        )
        inputs = {"image": torch.as_tensor(image.transpose(2, 0, 1).copy()), "height": h, "width": w}
        with torch.no_grad():
            predicted = model.inference([inputs], detected_instances=[given])[0]["instances"]
        for mask, annotation in zip(predicted.pred_masks.numpy(), record["annotations"]):
            ious.append(_iou(mask, _ground_truth_mask(annotation, h, w)))
    return ious


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_mask_head_reaches_mask_iou_on_validation_ground_truth_boxes(shapes_root, yolo_checkpoint, tmp_path):
    cfg = small_cfg(
        "shapes/yolo_mask_two_branch_R_50_FPN.yaml", shapes_root, tmp_path,
        "MODEL.YOLO.WEIGHTS", str(yolo_checkpoint), "SEED", "0",
        "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64", "MODEL.FPN.OUT_CHANNELS", "32",
        "MODEL.ROI_MASK_HEAD.CONV_DIM", "32", "MODEL.ROI_MASK_HEAD.NORM", "GN",
        "MODEL.YOLO.CONF_THRESH_TRAIN", "1.0",  # no YOLO boxes: the head learns from ground-truth boxes only
        "SOLVER.MAX_ITER", str(TRAIN_ITERS), "SOLVER.IMS_PER_BATCH", "4", "SOLVER.BASE_LR", "0.05",
        "SOLVER.WARMUP_ITERS", "20", "SOLVER.STEPS", f"({TRAIN_ITERS * 3 // 4},)",
        "DATASETS.TEST", "()",  # evaluated below on ground-truth boxes, not by the trainer's COCOEvaluator
    )
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    untrained = _mask_iou_on_ground_truth_boxes(trainer.model, cfg, "shapes_val")
    trainer.model.train()
    trainer.train()
    trained = _mask_iou_on_ground_truth_boxes(trainer.model, cfg, "shapes_val")

    print(f"mask IoU on validation ground-truth boxes: {np.mean(untrained):.3f} -> {np.mean(trained):.3f}")
    assert len(trained) > 20
    assert np.mean(trained) >= MIN_MEAN_MASK_IOU
    assert np.mean(trained) > np.mean(untrained) + 0.1


def test_ultralytics_trained_mask_head_reaches_mask_iou_on_validation_ground_truth_boxes(tmp_path):
    root = generate_shapes_dataset(tmp_path / "shapes", 48, 24, TEST_IMAGE_SIZE)
    best = train_ultralytics(YOLOMask("yolo11n.yaml"), root / "shapes-seg.yaml", tmp_path, "train",
                             **{**TRAIN_ARGS, **ULTRALYTICS_TRAIN})
    trained = YOLOMask(str(best))
    assert trained.model.mask_head.spec["pool_p2"] and float(trained.ckpt["train_args"]["mask"]) == 7.5
    model = trained.model.float().eval()

    coco = json.loads((root / "annotations" / "instances_val.json").read_text())
    class_index = {c["id"]: i for i, c in enumerate(coco["categories"])}  # the YOLO labels' order
    ious, box_ious = [], []
    for image in coco["images"]:
        annotations = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        h, w = image["height"], image["width"]
        assert (h, w) == (TEST_IMAGE_SIZE, TEST_IMAGE_SIZE)  # the model's input frame: no letterbox to undo
        bgr = cv2.imread(str(root / "images" / "val" / image["file_name"]))
        pixels = torch.from_numpy(bgr[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255  # as Ultralytics feeds
        boxes = torch.tensor([[x, y, x + bw, y + bh] for x, y, bw, bh in (a["bbox"] for a in annotations)])
        classes = torch.tensor([class_index[a["category_id"]] for a in annotations])
        with torch.no_grad():
            _, maps = model(pixels)
            probs = model.mask_probs(maps, [boxes], [classes])[0]
        for mask, box, annotation in zip(paste_masks(probs, boxes, (h, w)).numpy(), boxes.round().int(), annotations):
            truth = _ground_truth_mask(annotation, h, w)
            ious.append(_iou(mask, truth))
            filled = np.zeros_like(truth)
            filled[box[1] : box[3], box[0] : box[2]] = True
            box_ious.append(_iou(filled, truth))

    print(f"mask IoU on validation ground-truth boxes: {np.mean(ious):.3f} (the box itself: {np.mean(box_ious):.3f})")
    assert len(ious) > 60
    assert np.mean(ious) >= MIN_MEAN_MASK_IOU
    assert np.mean(ious) > np.mean(box_ious) + 0.1  # shapes, not boxes: what a head that fills its box would score
