"""Applications on top of both shells: the `yolo-mask` command line, the demo, prediction, the comparison."""
