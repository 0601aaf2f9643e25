"""Single-pass YOLO-mask as a LazyConfig model (the yacs twin: yolo_mask_single_pass.yaml).

YOLO's body + neck is the backbone, its detect head (the proposal generator) runs on p3-p5, and the mask
head pools p2-p5 of the same pass. Set `model.backbone.weights` (an Ultralytics .pt, or a model yaml to build
untrained), `model.backbone.num_classes` and, for a yaml, `model.backbone.thing_classes`; the other
components follow them. `model.backbone.frozen`: True keeps YOLO as loaded (Detectron2 trains the mask branch),
False trains it here on its detection losses; None (as shipped) picks True for a .pt and False for a yaml.
"""
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling.matcher import Matcher
from detectron2.modeling.meta_arch import GeneralizedRCNN
from detectron2.modeling.poolers import ROIPooler

from yolo_mask_plugin.core.fcn_head import LevelLaterals
from yolo_mask_plugin.d2 import YOLOBackbone, YOLOMaskFCNHead, YOLOMaskROIHeads, YOLOProposalGenerator
from yolo_mask_plugin.d2.yolo_source import yolo_map_channels

model = L(GeneralizedRCNN)(
    backbone=L(YOLOBackbone)(
        weights="yolo11n.yaml",
        num_classes=80,
        thing_classes=None,
        pixel_mean="${..pixel_mean}",
        pixel_std="${..pixel_std}",
        input_format="${..input_format}",
        frozen=None,  # None: frozen for an Ultralytics checkpoint (.pt), trained here for a model yaml
    ),
    proposal_generator=L(YOLOProposalGenerator)(
        weights="${..backbone.weights}",
        num_classes="${..backbone.num_classes}",
        thing_classes="${..backbone.thing_classes}",
        input_mode="features",
        in_features=["p3", "p4", "p5"],
        pixel_mean="${..pixel_mean}",
        pixel_std="${..pixel_std}",
        input_format="${..input_format}",
        conf_thresh_train=0.05,
        conf_thresh_test=0.01,
        nms_thresh=0.5,
        agnostic_nms=False,
        max_detections_train=100,
        max_detections_test="${..roi_heads.detections_per_image}",
        frozen="${..backbone.frozen}",
    ),
    roi_heads=L(YOLOMaskROIHeads)(
        num_classes="${..backbone.num_classes}",
        batch_size_per_image=512,
        positive_fraction=0.25,
        proposal_matcher=L(Matcher)(thresholds=[0.5], labels=[0, 1], allow_low_quality_matches=False),
        proposal_append_gt=True,
        mask_in_features=["p2", "p3", "p4", "p5"],
        mask_laterals=L(LevelLaterals)(
            in_channels=L(yolo_map_channels)(
                weights="${....backbone.weights}",
                names="${...mask_in_features}",
                num_classes="${....backbone.num_classes}",
                thing_classes="${....backbone.thing_classes}",
            ),
            out_channels=128,
        ),
        mask_pooler=L(ROIPooler)(
            output_size=14,
            scales=(1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32),
            sampling_ratio=0,
            pooler_type="ROIAlignV2",
        ),
        mask_head=L(YOLOMaskFCNHead)(
            input_shape=ShapeSpec(channels=128, height=14, width=14),
            conv_dim=256,
            num_conv=4,
            output_resolution=28,
            num_classes=1,  # class-agnostic
            norm="GN",
        ),
        detections_per_image=100,
    ),
    # Detectron2 hands the backbone pixels exactly as YOLO takes them: RGB / 255.
    pixel_mean=[0.0, 0.0, 0.0],
    pixel_std=[255.0, 255.0, 255.0],
    input_format="RGB",
)
