"""The TensorRT backend: the keyer's ONNX model as an engine built once per GPU.

Split by job, as Polygraphy splits its TensorRT backend:

    profile   which input shapes an engine is built for (the keyer's tiles)
    node      what an engine is valid on: TensorRT version and GPU (nvidia-smi for doctor)
    cache     the cache key, folder layout, lock, atomic write, and the check of a cached engine
    request   what to build for a model: which ONNX TensorRT parses, its hash, the profile
    builder   ONNX -> serialized engine (precision constraints, FP32 head, timing cache)
    loader    an engine from the cache, or built: the only place that builds
    jobs      batches cut into engine calls the profile accepts (no GPU)
    slot      one execution context with its stream, pinned buffers and events
    runner    the Backend that executes an engine with pycuda buffers and streams

The command line over them, `gsrender build-engine`, is gsrender.cli.build_engine.

This file imports nothing, so importing any one of them never imports the others, and
TensorRT and pycuda are imported only inside the functions that need a GPU: everything
else runs and is tested on machines without one.
"""
