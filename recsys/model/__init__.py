"""The model side: the instruction templates (what the model sees), the encoders that turn text into
vectors (torch, the ONNX query path, the hashing stand-in) and query coalescing."""
