"""The export floor (``edgeproof.export``): a model becomes an artifact.

Each format is a row of one table (``formats``): a function from a reference model of any
kind (``edgeproof.reference``) and an ``ExportContext`` (class names, preprocessing,
calibration images) to an ``Artifact`` (bytes + manifest), written atomically. Before an
integer format the model gets the float rewrites that keep its answers (``prepare``).
It imports the core only, never ``edgeproof.toolkit`` or ``edgeproof.bench``; importing
it does not import TensorFlow, the converters do when called.
"""
