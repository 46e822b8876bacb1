"""Video -> dataset directory: detectors, edges, flow and the streaming pipeline."""
