"""The one evaluator, and the two cross-checks it is held against.

Every model's predictions (Detectron2 `Instances` at the original image size) become COCO-format results
with Detectron2's `instances_to_coco_json` (pycocotools RLE) and are scored by pycocotools' COCOeval, bbox
and segm, against the val json. The same predictions then go through Detectron2's COCOEvaluator and through
Ultralytics' AP (its `match_predictions` + `ap_per_class`) to show how far the three agree.
"""
from __future__ import annotations

import contextlib
import copy
import io
import math
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import torch
from detectron2.evaluation import COCOEvaluator
from detectron2.structures import Instances
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from ultralytics.engine.validator import BaseValidator
from ultralytics.utils.metrics import ap_per_class, box_iou, mask_iou

from yolo_mask_plugin.core.threads import kept_torch_threads

IOU_TYPES = ("bbox", "segm")
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")  # COCOeval.stats[:6], in percent as Detectron2 prints


# our key -> the key of Ultralytics' SegmentationValidator `results_dict`
ULTRALYTICS_VAL_METRICS = {"segm_mAP50_95": "metrics/mAP50-95(M)", "segm_mAP50": "metrics/mAP50(M)",
                           "bbox_mAP50_95": "metrics/mAP50-95(B)", "bbox_mAP50": "metrics/mAP50(B)"}


def ultralytics_val_metrics(model, data_yaml: str | Path, imgsz: int, output_dir: str | Path, name: str,
                            **val_args) -> dict[str, float]:
    """Ultralytics' own validator on its own predictions, masks compared at the input resolution.

    `save_txt=True` switches Ultralytics' segmentation validator to its native-resolution mask path (a plain
    `.val()` compares masks at 1/4 of it); torch's thread count is kept (Ultralytics' CPU validation would leave
    cpu_count - 1 threads).

    Args:
        model (ultralytics.YOLO): a YOLO-seg or YOLO-mask model (`YOLO(...)`, `YOLOMask(...)`).
        data_yaml (str | Path): the dataset yaml it validates on.
        imgsz (int): input size.
        output_dir (str | Path): Ultralytics' `project` folder; the run goes into `output_dir/name`.
        name (str): the validation run's folder name.
        **val_args: further `model.val` arguments (conf, max_det, device, ...); batch 8 on the CPU by default.

    Returns:
        (dict[str, float]): segm_mAP50_95, segm_mAP50, bbox_mAP50_95, bbox_mAP50 as fractions (0-1).
    """
    args = {"batch": 8, "device": "cpu", **val_args}
    with kept_torch_threads():
        metrics = model.val(data=str(data_yaml), imgsz=imgsz, plots=False, save_txt=True, project=str(output_dir),
                            name=name, exist_ok=True, verbose=False, **args)
    return {ours: float(metrics.results_dict[theirs]) for ours, theirs in ULTRALYTICS_VAL_METRICS.items()}


def load_ground_truth(json_file: str) -> COCO:
    """pycocotools' COCO of the val json, without its progress prints.

    Args:
        json_file (str): a COCO instances json.

    Returns:
        (COCO): the loaded ground truth.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(json_file)


def _scores_without_predictions(gt, cat_ids: list[int] | None = None) -> dict[str, float | None]:
    """What COCOeval would say if it took an empty result list (pycocotools' `loadRes` cannot): 0 where an area
    range has non-crowd ground truth (of `cat_ids`), None where it has nothing to average, as with predictions."""
    anns = [a for a in gt.loadAnns(gt.getAnnIds(catIds=cat_ids or [])) if not a.get("iscrowd", 0)]
    area_ranges = dict(zip(("all", "small", "medium", "large"), COCOeval(iouType="segm").params.areaRng))
    has_gt = {r: any(lo <= a["area"] <= hi for a in anns) for r, (lo, hi) in area_ranges.items()}
    ranges = {"AP": "all", "AP50": "all", "AP75": "all", "APs": "small", "APm": "medium", "APl": "large"}
    return {m: (0.0 if has_gt[ranges[m]] else None) for m in METRICS}


def coco_metrics(gt: COCO, results: list[dict]) -> dict[str, dict[str, float | None]]:
    """COCOeval bbox and segm of COCO results: the one evaluator every model is scored by.

    No predictions at all score 0 where there is ground truth.

    Args:
        gt (COCO): the ground truth (`load_ground_truth`).
        results (list[dict]): COCO results (`apps.predict.coco_results`).

    Returns:
        (dict[str, dict[str, float | None]]): "bbox" and "segm" -> AP, AP50, AP75, APs, APm, APl in percent; None
            where COCOeval has nothing to average (an area range without ground truth).
    """
    metrics = {}
    for iou_type in IOU_TYPES:
        if not results:
            metrics[iou_type] = _scores_without_predictions(gt)
            continue
        dets = copy.deepcopy(results)
        if iou_type == "segm":  # without a box, pycocotools takes area and box from the mask, as for COCO
            for d in dets:
                d.pop("bbox", None)
        with contextlib.redirect_stdout(io.StringIO()):
            evaluation = COCOeval(gt, gt.loadRes(dets), iou_type)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        metrics[iou_type] = {m: (float(s) * 100 if s >= 0 else None) for m, s in zip(METRICS, evaluation.stats)}
    return metrics


def detectron2_coco_evaluator(dataset_name: str, image_ids: list[int], predictions: list[Instances]) -> dict:
    """Detectron2's COCOEvaluator on the same predictions (its pycocotools path: `_C` may not be built).

    Args:
        dataset_name (str): the registered Detectron2 dataset of the ground truth.
        image_ids (list[int]): image ids, in the order of `predictions`.
        predictions (list[Instances]): one `Instances` per image.

    Returns:
        (dict): "bbox" and "segm" -> `METRICS` in percent, None for Detectron2's NaN.
    """
    evaluator = COCOEvaluator(dataset_name, tasks=IOU_TYPES, distributed=False, use_fast_impl=False)
    evaluator.reset()
    for image_id, instances in zip(image_ids, predictions):
        evaluator.process([{"image_id": image_id}], [{"instances": instances}])
    with contextlib.redirect_stdout(io.StringIO()):
        results = evaluator.evaluate()
    return {
        t: {m: (None if math.isnan(results[t][m]) else float(results[t][m])) for m in METRICS}
        for t in IOU_TYPES if t in results
    }


def ultralytics_ap(gt: COCO, image_ids: list[int], predictions: list[Instances], category_ids: tuple[int, ...]) -> dict:
    """Ultralytics' AP math on the same predictions and ground truth (crowd instances dropped, as its
    datasets do): `match_predictions` at IoU 0.50:0.95, then `ap_per_class`.

    Args:
        gt (COCO): the ground truth.
        image_ids (list[int]): image ids, in the order of `predictions`.
        predictions (list[Instances]): one `Instances` per image.
        category_ids (tuple[int, ...]): contiguous class index -> the json's category id.

    Returns:
        (dict): "bbox" and "segm" -> {"mAP50_95", "mAP50"} in percent.
    """
    contiguous = {cat: i for i, cat in enumerate(category_ids)}
    matcher = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))
    stats = {t: {"tp": [], "conf": [], "pred_cls": []} for t in IOU_TYPES}
    target_cls = []
    for image_id, instances in zip(image_ids, predictions):
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=[image_id])) if not a.get("iscrowd", 0)]
        gt_cls = torch.tensor([contiguous[a["category_id"]] for a in anns], dtype=torch.long)
        gt_boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]).reshape(-1, 4)
        target_cls.append(gt_cls.numpy())
        pred_cls = instances.pred_classes
        ious = {"bbox": box_iou(gt_boxes.float(), instances.pred_boxes.tensor.float())}
        if len(anns) and len(instances):
            gt_masks = torch.from_numpy(np.stack([gt.annToMask(a) for a in anns])).flatten(1).float()
            ious["segm"] = mask_iou(gt_masks, instances.pred_masks.flatten(1).float())
        else:
            ious["segm"] = torch.zeros((len(anns), len(instances)))
        for t in IOU_TYPES:
            tp = BaseValidator.match_predictions(matcher, pred_cls, gt_cls, ious[t])
            stats[t]["tp"].append(np.asarray(tp))
            stats[t]["conf"].append(instances.scores.numpy())
            stats[t]["pred_cls"].append(pred_cls.numpy())
    target = np.concatenate(target_cls)
    out = {}
    for t in IOU_TYPES:
        s = {k: np.concatenate(v) for k, v in stats[t].items()}
        ap = ap_per_class(s["tp"], s["conf"], s["pred_cls"], target)[5]  # (classes with ground truth, 10)
        if not ap.size:  # no ground truth of any class
            out[t] = {"mAP50_95": 0.0, "mAP50": 0.0}
            continue
        out[t] = {"mAP50_95": float(ap.mean()) * 100, "mAP50": float(ap[:, 0].mean()) * 100}
    return out


BOUNDARY_DILATION_RATIO = 0.02  # Cheng et al., "Boundary IoU", CVPR 2021: the band is 2% of the image diagonal


def boundary_metrics(json_file: str, results: list[dict]) -> dict:
    """Boundary AP: COCOeval with min(mask IoU, Boundary IoU) as the matching IoU, as the Boundary IoU paper
    defines it, from faster-coco-eval's maintained implementation. No predictions at all score 0 where there is
    ground truth.

    Args:
        json_file (str): the ground-truth COCO json.
        results (list[dict]): COCO results with RLE masks.

    Returns:
        (dict): AP, AP50, AP75, APs, APm, APl in percent and "per_class" (category name -> AP); None where there is
            nothing to average.
    """
    from faster_coco_eval import COCO as FastCOCO
    from faster_coco_eval import COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()):
        gt = FastCOCO(json_file)
    names = {c["id"]: c["name"] for c in gt.loadCats(gt.getCatIds())}
    if not results:
        per_class = {n: _scores_without_predictions(gt, [c])["AP"] for c, n in names.items()}
        return {**_scores_without_predictions(gt), "per_class": per_class}
    dets = copy.deepcopy(results)
    for d in dets:  # area and box from the mask, as for segm
        d.pop("bbox", None)
    evaluation = COCOeval_faster(gt, gt.loadRes(dets), "boundary", print_function=lambda *a: None,
                                 boundary_dilation_ratio=BOUNDARY_DILATION_RATIO, boundary_cpu_count=1)
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    metrics = {m: (float(s) * 100 if s >= 0 else None) for m, s in zip(METRICS, evaluation.stats)}
    precision = evaluation.eval["precision"]  # (IoU thresholds, recall points, categories, areas, max dets)
    per_class = {}
    for k, cat_id in enumerate(evaluation.params.catIds):
        values = precision[:, :, k, 0, -1]  # area "all", 100 detections
        values = values[values > -1]
        per_class[names[cat_id]] = float(values.mean()) * 100 if values.size else None
    return {**metrics, "per_class": per_class}


def boundary_band(mask: np.ndarray, ratio: float = BOUNDARY_DILATION_RATIO) -> np.ndarray:
    """The mask's inner boundary band as the Boundary IoU paper defines it: the mask minus its erosion by `ratio` of
    the image diagonal (at least 1 px), with the outside of the image counted empty.

    Args:
        mask (np.ndarray): (H, W) binary mask.
        ratio (float): the band's width as a fraction of the image diagonal.

    Returns:
        (np.ndarray): (H, W) uint8 band, 1 inside it.
    """
    h, w = mask.shape
    dilation = max(int(round(ratio * np.sqrt(h * h + w * w))), 1)
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=dilation)[1 : h + 1, 1 : w + 1]
    return mask.astype(np.uint8) - eroded


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def worst_boundaries(gt: COCO, image_ids: list[int], predictions: list[Instances], category_ids: tuple[int, ...],
                     count: int) -> list[dict]:
    """The `count` ground-truth instances whose best same-class prediction (mask IoU >= 0.5) has the lowest
    Boundary IoU.

    Args:
        gt (COCO): the ground truth.
        image_ids (list[int]): image ids, in the order of `predictions`.
        predictions (list[Instances]): one model's `Instances` per image.
        category_ids (tuple[int, ...]): contiguous class index -> the json's category id.
        count (int): how many to return.

    Returns:
        (list[dict]): {"image_index", "annotation", "prediction", "boundary_iou", "mask_iou"}, lowest Boundary IoU
            first.
    """
    contiguous = {cat: i for i, cat in enumerate(category_ids)}
    pairs = []
    for index, (image_id, instances) in enumerate(zip(image_ids, predictions)):
        masks = instances.pred_masks.numpy().astype(np.uint8)
        for ann in gt.loadAnns(gt.getAnnIds(imgIds=[image_id], iscrowd=False)):
            truth = gt.annToMask(ann)
            same_class = np.flatnonzero(instances.pred_classes.numpy() == contiguous[ann["category_id"]])
            ious = [_iou(truth > 0, masks[k] > 0) for k in same_class]
            if not ious or max(ious) < 0.5:
                continue
            k = int(same_class[int(np.argmax(ious))])
            boundary = _iou(boundary_band(truth) > 0, boundary_band(masks[k]) > 0)
            pairs.append({"image_index": index, "annotation": ann, "prediction": k, "boundary_iou": boundary,
                          "mask_iou": max(ious)})
    return sorted(pairs, key=lambda p: p["boundary_iou"])[:count]
