"""yolo-mask-plugin: YOLO boxes + an RoIAlign FCN mask head, for Detectron2 and Ultralytics.

`adapters/` is installed as `yolo_mask_plugin.adapters` (the way detectron2 installs
`projects/PointRend/point_rend` as `detectron2.projects.point_rend`); a bare top-level `adapters`
would clash with the PyPI package of that name.

detectron2 and ultralytics are deliberately not in `install_requires`: detectron2 is not on PyPI by
its name and users build it from source, and `pip install -e .` must never replace the detectron2 or
ultralytics a user already has; importing the plugin without them fails with Python's own ImportError.
"""
from setuptools import setup

setup(
    name="yolo-mask-plugin",
    version="0.1.0",
    description="YOLO-based instance segmentation (RoIAlign FCN mask head) for Detectron2 and Ultralytics",
    python_requires=">=3.9",
    packages=[
        "yolo_mask_plugin", "yolo_mask_plugin.data", "yolo_mask_plugin.compare", "yolo_mask_plugin.adapters",
        "yolo_mask_plugin.configs",
    ],
    package_dir={"yolo_mask_plugin.adapters": "adapters", "yolo_mask_plugin.configs": "configs"},
    package_data={"yolo_mask_plugin.configs": ["*.yaml", "*/*.yaml"]},
    install_requires=["fvcore", "pycocotools", "numpy", "tqdm", "matplotlib"],
    extras_require={"ultralytics": ["ultralytics>=8.4"], "test": ["pytest"]},
    entry_points={"console_scripts": ["yolo-mask=yolo_mask_plugin.cli:main"]},
    license="Apache-2.0",
)
