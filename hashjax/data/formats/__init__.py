"""Readers for the datasets' own published file formats (no TensorFlow, no network).

One module per format: `cifar_python` (the CIFAR-10/100 python version), `stl10_binary` (STL-10
binary), `image_list` (DeepHash-pytorch's train/test/database.txt lists), `image_folder` (one
subfolder per class). `hashjax.data.sources` picks among them by dataset name.
"""
