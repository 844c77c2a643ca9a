"""edgeproof: get an image classifier onto edge devices and prove it still works.

The package has three layers (checked by import-linter contracts in the test suite):

- the core, ``edgeproof/*.py``: errors, parameter validation, registries, the manifest,
  preprocessing, dataset loading, atomic writes, TensorFlow compat, the Keras loader;
- ``edgeproof.toolkit`` (train, evaluate), ``edgeproof.export`` (convert) and
  ``edgeproof.bench`` (measure), which import the core and never each other;
- the application: ``edgeproof.cli`` and the pipelines that combine the three.

Importing this package is cheap: TensorFlow is imported only by the code that trains or
converts (``edgeproof.tfcompat``), so ``edgeproof.bench`` runs on an edge box that has
only ``ai-edge-litert`` or ``onnxruntime`` plus numpy.
"""

__version__ = "0.2.0"
