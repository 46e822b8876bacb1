"""vid2vid: conditional video-to-video synthesis in modern PyTorch.

The core package shared by every stage (config, video I/O, pose formats and
rendering, dataset layout, models, losses, metrics, the CLI). It imports none
of the stage packages (`preprocess`, `train`, `infer`) except lazily from
`vid2vid.cli`, so `import vid2vid` stays cheap.
"""

__version__ = "0.1.0"
