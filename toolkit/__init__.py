"""edgeproof: train lab image classifiers, export them for the edge, prove the exports match.

Importing this package is cheap: TensorFlow is imported only by the modules that
train or convert (see ``edgeproof.tfcompat``), so ``bench/`` runs on an edge box that has
only ``ai-edge-litert`` or ``onnxruntime`` plus numpy.
"""

__version__ = "0.1.0"
