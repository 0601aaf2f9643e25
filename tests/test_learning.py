"""The mask head learns: trained on ground-truth boxes, it segments validation objects given their boxes.

The features come from the seed's two-branch design (a ResNet-18-FPN with GN, learning from scratch with
the mask head): a YOLO trained within a test's budget has no useful features yet. Mask quality is measured
apart from the detector: the validation ground-truth boxes go in through
Detectron2's own `GeneralizedRCNN.inference(detected_instances=...)`, masks come out pasted into the
image, and each is compared with its ground-truth mask.
"""
from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_utils
import torch
from detectron2.data import DatasetCatalog
from detectron2.data.detection_utils import read_image
from detectron2.structures import Boxes, BoxMode, Instances

from tests.conftest import small_cfg
from yolo_mask_plugin.apps.train_net import Trainer

TRAIN_ITERS = 300
MIN_MEAN_MASK_IOU = 0.7


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
            truth = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(annotation["segmentation"], h, w)))
            ious.append(float((mask & (truth > 0)).sum() / max((mask | (truth > 0)).sum(), 1)))
    return ious


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
