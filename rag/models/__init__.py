"""Models we trained and ship, each with a model card beside it; run by onnxruntime, never torch."""
