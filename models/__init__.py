"""The bundled keyer model(s): gskey.onnx and its model card (README.md)."""
