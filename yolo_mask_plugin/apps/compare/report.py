"""The comparison's outputs: `results.json`, `report.md`, a speed/accuracy scatter, accuracy-against-minutes curves,
an image grid and a grid of each model's worst mask boundaries."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from detectron2.data import MetadataCatalog  # noqa: E402
from detectron2.structures import Instances  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from detectron2.utils.visualizer import ColorMode, Visualizer  # noqa: E402

from yolo_mask_plugin.apps.benchmark import write_result  # noqa: E402
from yolo_mask_plugin.apps.compare.evaluate import METRICS  # noqa: E402
from yolo_mask_plugin.data.convert import annotation_mask  # noqa: E402

GRID_SCORE_THRESHOLD = 0.5  # detections drawn in the image grid (AP uses all above SCORE_THRESHOLD)


def _fmt(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def write_scatter(results: dict, path: Path) -> Path:
    """Median latency (x) against segm and bbox AP (y), one labelled point per model.

    Args:
        results (dict): what results.json holds.
        path (Path): the PNG to write.

    Returns:
        (Path): `path`.
    """
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, model in results["models"].items():
        x = model["speed"]["median_ms"]
        segm, bbox = model["accuracy"]["segm"]["AP"], model["accuracy"]["bbox"]["AP"]
        ax.scatter([x], [segm], s=60, label=f"{model['label']}")
        ax.scatter([x], [bbox], s=60, facecolors="none", edgecolors=ax.collections[-1].get_facecolor())
        ax.annotate(name, (x, segm), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel(f"median ms / image ({results['machine']['description']})")
    ax.set_ylabel("COCO AP (filled: segm, hollow: bbox)")
    ax.set_title(f"speed vs accuracy on {results['dataset']['num_val_images']} val images")
    ax.set_xscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_curves(results: dict, path: Path) -> Path:
    """Segm AP against training minutes, wall clock (left) and CPU (right), one line per model; the dotted line
    marks the minutes every model reached (where `equal_minutes` compares them).

    Args:
        results (dict): what results.json holds.
        path (Path): the PNG to write.

    Returns:
        (Path): `path`.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, axis, title in ((axes[0], "wall_min", "wall-clock minutes"), (axes[1], "cpu_min", "CPU minutes")):
        for name, model in results["models"].items():
            points = model["curve"]
            if points:
                ax.plot([p[axis] for p in points], [p["segm_AP"] for p in points], marker="o", label=model["label"])
        equal = results["equal_minutes"][axis]["minutes"]
        if equal is not None:
            ax.axvline(equal, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(f"training {title}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("segm AP (COCOeval, val)")
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"accuracy against training compute ({results['machine']['description']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_worst_boundaries(worst: dict[str, list[dict]], images_bgr: list, predictions: dict[str, list[Instances]],
                           labels: dict[str, str], path: Path) -> Path:
    """One row per model: crops around the instances whose matched prediction has the lowest Boundary IoU, the
    ground-truth outline in green, the prediction's in red.

    Args:
        worst (dict[str, list[dict]]): model name -> `evaluate.worst_boundaries`.
        images_bgr (list): the val images (BGR), indexed by the pairs' "image_index".
        predictions (dict[str, list[Instances]]): model name -> one `Instances` per image.
        labels (dict[str, str]): model name -> row label.
        path (Path): the PNG to write.

    Returns:
        (Path): `path`.
    """
    columns = max((len(pairs) for pairs in worst.values()), default=0) or 1
    fig, axes = plt.subplots(len(worst), columns, figsize=(2.6 * columns, 2.6 * len(worst)), squeeze=False)
    for row, (name, pairs) in enumerate(worst.items()):
        for col in range(columns):
            ax = axes[row][col]
            ax.set_axis_off()
            if col >= len(pairs):
                continue
            pair = pairs[col]
            image = np.array(images_bgr[pair["image_index"]][:, :, ::-1])  # a writable copy: loaded images are read-only
            truth = annotation_mask(pair["annotation"], *image.shape[:2], "val json")
            predicted = predictions[name][pair["image_index"]].pred_masks[pair["prediction"]].numpy().astype(np.uint8)
            for mask, colour in ((truth, (0, 200, 0)), (predicted, (230, 0, 0))):
                contours, _ = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
                cv2.drawContours(image, contours, -1, colour, 1)
            x, y, w, h = (int(v) for v in pair["annotation"]["bbox"])
            pad = max(w, h) // 4 + 4
            ax.imshow(image[max(y - pad, 0) : y + h + pad, max(x - pad, 0) : x + w + pad])
            ax.set_title(f"boundary IoU {pair['boundary_iou']:.2f}\nmask IoU {pair['mask_iou']:.2f}", fontsize=7)
        axes[row][0].text(-0.1, 0.5, labels.get(name, name), transform=axes[row][0].transAxes, rotation=90,
                          ha="right", va="center", fontsize=7)
    fig.suptitle("worst boundaries per model (green: ground truth, red: prediction)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_image_grid(
    records: list[dict], images_rgb: list, predictions: dict[str, list[Instances]], labels: dict[str, str],
    dataset_name: str, path: Path,
) -> Path:
    """Rows: val images; columns: ground truth, then every model's detections (score >= 0.5), drawn by
    Detectron2's Visualizer.

    Args:
        records (list[dict]): Detectron2 dataset dicts of the images (their ground truth).
        images_rgb (list): the images, RGB.
        predictions (dict[str, list[Instances]]): model name -> one `Instances` per image.
        labels (dict[str, str]): model name -> column title.
        dataset_name (str): the registered dataset (class names and colours).
        path (Path): the PNG to write.

    Returns:
        (Path): `path`.
    """
    metadata = MetadataCatalog.get(dataset_name)
    columns = ["ground truth", *predictions]
    fig, axes = plt.subplots(len(records), len(columns), figsize=(3 * len(columns), 3 * len(records)), squeeze=False)
    for row, (record, image) in enumerate(zip(records, images_rgb)):
        for col, name in enumerate(columns):
            visualizer = Visualizer(image, metadata, instance_mode=ColorMode.IMAGE)
            if name == "ground truth":
                drawn = visualizer.draw_dataset_dict(record)
            else:
                instances = predictions[name][row]
                drawn = visualizer.draw_instance_predictions(instances[instances.scores >= GRID_SCORE_THRESHOLD])
            axes[row][col].imshow(drawn.get_image())
            axes[row][col].set_axis_off()
            if row == 0:
                axes[row][col].set_title(labels.get(name, name), fontsize=7, wrap=True)
    fig.suptitle(f"same val images, detections with score >= {GRID_SCORE_THRESHOLD}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _agreement(check: dict) -> str:
    agreement = check["detectron2_agreement"]
    if not agreement["metrics_compared"]:
        return "nothing to compare (no predictions: Detectron2 reports NaN)"
    return f"{agreement['max_abs_diff']:.2g} over {agreement['metrics_compared']} metrics"


def _budget(model: dict) -> str:
    train = model["train"]
    if "wall_s" not in train:  # given weights
        return train["budget"]
    return f"{train['budget']}; {train['wall_s'] / 60:.1f} min wall, {train['cpu_s'] / 60:.1f} CPU min"


def _curve_lines(results: dict) -> list[str]:
    models = results["models"]
    equal = results["equal_minutes"]
    lines = [
        "", "## Accuracy against training compute", "",
        "Each model scored by the same evaluator at snapshots of its training (`accuracy_vs_minutes.png`). A model "
        "behind at the end of the budget may be worse or only slower to train: a curve still climbing at its end "
        "would gain from more minutes, a flat one would not; where two curves cross, the one ahead before the "
        "crossing wins at smaller budgets. Minutes are training minutes on this machine (wall clock, and CPU "
        "time), so models trained by different frameworks compare at equal cost.",
        "",
        "| model | segm AP at (snapshot: wall min / CPU min) | segm AP at equal wall min | at equal CPU min |",
        "|---|---|---|---|",
    ]
    for name, m in models.items():
        points = "; ".join(f"{_fmt(p['segm_AP'])} ({p['at']}: {p['wall_min']:.1f} / {p['cpu_min']:.1f})"
                           for p in m["curve"]) or "given weights: no curve"
        lines.append(f"| {m['label']} | {points} | {_fmt(equal['wall_min']['segm_AP'].get(name))} | "
                     f"{_fmt(equal['cpu_min']['segm_AP'].get(name))} |")
    for axis, what in (("wall_min", "wall-clock"), ("cpu_min", "CPU")):
        if equal[axis]["minutes"] is not None:
            lines.append(f"\nEqual {what} minutes: {equal[axis]['minutes']:.1f}, the most every trained model "
                         "reached (AP between two snapshots linearly; '–' before a model's first snapshot).")
    return lines


def _boundary_lines(results: dict) -> list[str]:
    return [
        "", "## Boundary quality", "",
        "Boundary AP (Cheng et al., CVPR 2021: COCO AP with min(mask IoU, Boundary IoU), the boundary a band of 2% "
        "of the image diagonal; faster-coco-eval) next to mask AP. Mask AP rewards interiors, Boundary AP the "
        "outline: on thin and hollow shapes both fall below box AP, and the gap between them shows how much "
        "of the loss is at the boundary. `worst_boundaries.png`: each model's worst-outlined matched instances.",
        "", *boundary_table(results),
    ]


def boundary_table(results: dict) -> list[str]:
    """Per model: mask AP, Boundary AP (all, AP50/75, per size, per class), as markdown table rows.

    Args:
        results (dict): what results.json holds.

    Returns:
        (list[str]): the table's lines.
    """
    models = results["models"]
    classes = results["dataset"]["classes"]
    lines = [
        "| model | mask AP | Boundary AP | AP50 | AP75 | APs | APm | APl | " + " | ".join(classes) + " |",
        "|---" * (8 + len(classes)) + "|",
    ]
    for name, m in models.items():
        b = m["accuracy"]["boundary"]
        lines.append(f"| {m['label']} | {_fmt(m['accuracy']['segm']['AP'])} | "
                     + " | ".join(_fmt(b[k]) for k in METRICS) + " | "
                     + " | ".join(_fmt(b["per_class"].get(c)) for c in classes) + " |")
    return lines


def results_table(results: dict) -> list[str]:
    """Per model: segm and bbox AP, latency, size, training budget, as markdown table rows.

    Args:
        results (dict): what results.json holds.

    Returns:
        (list[str]): the table's lines.
    """
    lines = [
        "| model | segm AP | AP50 | AP75 | APs | APm | APl | bbox AP | AP50 | AP75 | APs | APm | APl | ms median | ms p90 | "
        "speed ratio | params (M) | GFLOPs | peak MB | training budget |",
        "|---" * 20 + "|",
    ]
    for m in results["models"].values():
        acc = [_fmt(m["accuracy"][t][k]) for t in ("segm", "bbox") for k in METRICS]
        mem = m["memory"].get("peak_cuda_mb", m["memory"]["peak_rss_mb"])
        lines.append(
            f"| {m['label']} | " + " | ".join(acc) + f" | {m['speed']['median_ms']:.1f} | {m['speed']['p90_ms']:.1f} | "
            f"{m['speed']['ratio_to_reference']:.2f}x | {m['params'] / 1e6:.2f} | {m['flops'] / 1e9:.2f} | {mem:.0f} | "
            f"{_budget(m)} |"
        )
    return lines


def render_markdown(results: dict) -> str:
    """report.md from what results.json holds.

    Args:
        results (dict): what results.json holds.

    Returns:
        (str): the report, markdown.
    """
    models = results["models"]
    reference = results["speed_reference"]
    lines = [
        "# Instance segmentation comparison",
        "",
        f"Dataset: {results['dataset']['num_train_images']} train / {results['dataset']['num_val_images']} val "
        f"images, {len(results['dataset']['classes'])} classes ({', '.join(results['dataset']['classes'])}). "
        f"Input size {results['budget']['imgsz']} (long side) for every model; scored at the images' original size, "
        f"detections with score >= {results['score_threshold']}.",
        "",
        "## Results",
        "",
        "COCO AP (pycocotools COCOeval, percent), latency per image (median / p90 ms), speed ratio = median ms "
        f"over {models[reference]['label']}'s.",
        "",
        *results_table(results),
    ]
    ref_ms = models[reference]["speed"]["median_ms"]
    faster = [f"{m['label']} {ref_ms / m['speed']['median_ms']:.1f}x" for n, m in models.items() if n != reference]
    lines += ["", f"**Speed, as ratios** (median ms, same process and threads, interleaved): faster than "
              f"{models[reference]['label']} by " + ", ".join(faster) + "."]
    if "yolo_mask" in models and "yolo_seg" in models:
        ratio = models["yolo_mask"]["speed"]["median_ms"] / models["yolo_seg"]["speed"]["median_ms"]
        lines[-1] += f" YOLO-mask single-pass / YOLO-seg: {ratio:.2f}x the time."
    lines += _curve_lines(results) + _boundary_lines(results)
    check = results["evaluator_cross_check"]
    lines += [
        "",
        "## Evaluator cross-check",
        "",
        "The same predictions of every model, scored three ways (AP in percent):",
        "",
        "| model | COCOeval segm / bbox AP | Detectron2 COCOEvaluator segm / bbox AP | largest difference | "
        "Ultralytics AP math segm / bbox mAP50-95 | Ultralytics mAP50 segm / bbox |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in check["per_model"].items():
        ours = models[name]["accuracy"]
        d2, ul = c["detectron2_coco_evaluator"], c["ultralytics_ap"]
        lines.append(
            f"| {models[name]['label']} | {_fmt(ours['segm']['AP'])} / {_fmt(ours['bbox']['AP'])} | "
            f"{_fmt(d2.get('segm', {}).get('AP'))} / {_fmt(d2.get('bbox', {}).get('AP'))} | {_agreement(c)} | "
            f"{_fmt(ul['segm']['mAP50_95'])} / {_fmt(ul['bbox']['mAP50_95'])} | "
            f"{_fmt(ul['segm']['mAP50'])} / {_fmt(ul['bbox']['mAP50'])} |"
        )
    if check.get("ultralytics_validator"):
        lines += ["", "Ultralytics' own validator (its own predictions and defaults, `model.val()`), mAP in percent:", ""]
        for name, v in check["ultralytics_validator"].items():
            lines.append(
                f"- {models[name]['label']}: segm mAP50-95 {_fmt(v['segm_mAP50_95'])}, mAP50 {_fmt(v['segm_mAP50'])}; "
                f"bbox mAP50-95 {_fmt(v['bbox_mAP50_95'])}, mAP50 {_fmt(v['bbox_mAP50'])} (COCOeval on our predictions: "
                f"segm {_fmt(models[name]['accuracy']['segm']['AP'])}, bbox {_fmt(models[name]['accuracy']['bbox']['AP'])})"
            )
    lines += ["", *check["explanation"], "", "## How it was run", ""]
    lines += [f"- {line}" for line in results["how_run"]]
    lines += ["", "## Fairness rules", ""] + [f"- {rule}" for rule in results["fairness_rules"]]
    lines += ["", "## Models", ""]
    for name, m in models.items():
        lines.append(f"- **{m['label']}** (`{name}`): {m['recipe']}")
    machine = results["machine"]
    lines += [
        "", "## Machine and versions", "",
        f"- {machine['description']}; torch threads {machine['torch_threads']}; device {machine['device']}",
        "- " + ", ".join(f"{k} {v}" for k, v in results["provenance"]["versions"].items()),
        f"- commit {results['provenance']['commit']}; command `{results['provenance']['command']}`",
        f"- FLOPs: fvcore FlopCountAnalysis of one val image's whole inference (a fused multiply-add counts as one; "
        f"ops fvcore cannot count, e.g. NMS, are skipped); peak MB: {results['memory_method']}",
        f"- total compare time {results['wall_time_s']['total'] / 60:.1f} min",
        "", "Files: `results.json` (everything above), `speed_accuracy.png`, `accuracy_vs_minutes.png`, "
        "`image_grid.png`, `worst_boundaries.png`.", "",
    ]
    return "\n".join(lines)


def write_results(results: dict, output_dir: Path) -> Path:
    """Write results.json into `output_dir`, atomically, its provenance's code files brought up to date
    (`apps.benchmark.write_result`).

    Args:
        results (dict): the comparison's results.
        output_dir (Path): the comparison's folder.

    Returns:
        (Path): the written results.json.
    """
    return write_result(output_dir / "results.json", results)


def write_report(results: dict, output_dir: Path) -> dict[str, Path]:
    """Write results.json and report.md into `output_dir`.

    Args:
        results (dict): the comparison's results.
        output_dir (Path): the comparison's folder.

    Returns:
        (dict[str, Path]): {"results": results.json, "report": report.md}.
    """
    paths = {"results": write_results(results, output_dir), "report": output_dir / "report.md"}
    paths["report"].write_text(render_markdown(results))
    return paths
