"""The bench floor (``edgeproof.bench``): artifacts measured where they run.

Runtimes (one file each: Keras, LiteRT, ONNX Runtime, TensorFlow Lite Micro) load an
artifact with its manifest and predict; one method measures accuracy, parity and latency
with its interval, here or on a device over SSH; one gate judges the rows; one table
renders them (console, Markdown, HTML) with their plots. It imports the core only, and
TensorFlow only for the Keras runtime: a .tflite or .onnx file can be measured on a box
that has only ai-edge-litert or onnxruntime plus numpy.
"""
