"""What the client and the hub share, and nothing else: errors, names, URIs, versions,
manifests, packaging, signing and the wire models. It imports neither of the other layers."""

__version__ = "0.1.0"
