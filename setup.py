"""yolo-mask-plugin: YOLO boxes + an RoIAlign FCN mask head, for Detectron2 and Ultralytics.

`adapters/` (the Ultralytics shell) is installed as `yolo_mask_plugin.adapters`, and `configs/` as
`yolo_mask_plugin.configs` (the way detectron2 installs `projects/PointRend/point_rend` as
`detectron2.projects.point_rend`); a bare top-level `adapters` would clash with the PyPI package of that name.
An editable install (`pip install -e .`) maps both folders with setuptools' own import hook.

torch, detectron2 and ultralytics are deliberately not in `install_requires`: detectron2 is not on PyPI by its
name and users build it from source, and `pip install -e .` must never replace the torch, detectron2 or
ultralytics a user already has. An Ultralytics user needs no detectron2: `pip install -e ".[ultralytics]"`, with an
Ultralytics in the range `yolo_mask_plugin/yolo/compat.py` declares and checks on import (CI tests both ends:
requirements.txt pins the newest tested release, `make test-oldest-ultralytics` runs the oldest).
"""
from setuptools import setup

setup(
    name="yolo-mask-plugin",
    version="0.2.0",
    description="YOLO-based instance segmentation (RoIAlign FCN mask head) for Detectron2 and Ultralytics",
    python_requires=">=3.9",
    packages=[
        "yolo_mask_plugin",
        "yolo_mask_plugin.core",
        "yolo_mask_plugin.d2",
        "yolo_mask_plugin.data",
        "yolo_mask_plugin.interop",
        "yolo_mask_plugin.yolo",
        "yolo_mask_plugin.apps",
        "yolo_mask_plugin.apps.compare",
        "yolo_mask_plugin.adapters",
        "yolo_mask_plugin.configs",
    ],
    package_dir={"yolo_mask_plugin.adapters": "adapters", "yolo_mask_plugin.configs": "configs"},
    package_data={"yolo_mask_plugin.configs": ["*.yaml", "*/*.yaml", "*.py", "*/*.py", "*/*/*.py"]},
    install_requires=["numpy", "pycocotools", "tqdm", "matplotlib"],
    extras_require={
        "ultralytics": ["ultralytics>=8.4.175,<8.5"],  # yolo_mask_plugin/yolo/compat.py checks it on import
        "export": ["onnx", "onnxruntime", "onnxslim", "openvino"],  # YOLOMask(...).export and running the files
        "test": ["pytest"],
    },
    entry_points={"console_scripts": ["yolo-mask=yolo_mask_plugin.apps.cli:main"]},
    license="Apache-2.0",
)
